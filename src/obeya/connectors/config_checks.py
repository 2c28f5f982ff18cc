"""Checks shared by every configuration section that names a secret's variable or a tool's URL."""

from __future__ import annotations

import re

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
