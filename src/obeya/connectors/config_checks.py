"""Checks shared by configuration sections: a secret's variable, a tool's URL, names given twice."""

from __future__ import annotations

import re
from collections.abc import Iterable

_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_variable(variable: str) -> str:
    """An environment variable's name (not a token or secret pasted in its place)."""
    if not _VARIABLE.match(variable):
        raise ValueError(
            f"{variable!r} is not an environment variable name (write the variable's name, not the secret)"
        )
    return variable


def check_url(url: str, hint: str) -> str:
    """An http(s) URL without its trailing slash; `hint` says what a right one looks like for the tool."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{url!r} is not an http(s) URL ({hint})")
    return url.rstrip("/")


def given_twice(names: Iterable[str]) -> list[str]:
    """The names that stand more than once in `names`, sorted (empty when every one is distinct)."""
    seen: set[str] = set()
    twice: set[str] = set()
    for name in names:
        (twice if name in seen else seen).add(name)
    return sorted(twice)
