"""How `obeya.yaml` declares a connection to local git repositories (``tool: git``)."""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from obeya.connectors.config_checks import check_variable, given_twice

_SCP_LIKE = re.compile(r"^[A-Za-z0-9_.-]+@[A-Za-z0-9_.-]+:[^/].*$")  # git@host:owner/name.git
URL_SCHEMES = ("https", "http", "ssh", "git", "file")


def check_clone_url(url: str) -> str:
    """A URL git can clone (https, http, ssh, git, file, or ``user@host:path``), without a password in it:
    credentials come from the variable named in `token_env`, so none is written into the mirror's config."""
    if _SCP_LIKE.match(url):
        return url
    parts = urlsplit(url)
    if parts.scheme not in URL_SCHEMES:
        raise ValueError(
            f"{url!r} is not a clone URL: give https://HOST/PATH, ssh://USER@HOST/PATH, USER@HOST:PATH "
            "or file:///PATH"
        )
    if parts.password is not None or (parts.scheme in ("http", "https") and parts.username):
        raise ValueError(
            f"the clone URL of host {parts.hostname!r} holds credentials: leave them out and name the "
            "environment variable holding the token in `token_env`"
        )
    if parts.scheme != "file" and not parts.hostname:
        raise ValueError(f"{url!r} is not a clone URL: it names no host")
    return url


class GitRepositoryConfig(BaseModel):
    """One repository: on disk (`path`: a working copy or a bare clone), or at a clone URL (`url`: Obeya
    keeps a bare mirror of it, cloned on the first sync and fetched on each later one)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Annotated[str | None, Field(min_length=1)] = None
    url: Annotated[str | None, Field(min_length=1)] = None
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-/]+$")]
    branches: list[str] | None = None  # None: every local branch and HEAD
    token_env: str | None = None  # https/http URLs: the variable holding the token (basic auth password)
    username: Annotated[str, Field(min_length=1)] = "git"  # sent with the token (hosts ignore or need it)

    @field_validator("url")
    @classmethod
    def _clone_url(cls, url: str | None) -> str | None:
        return None if url is None else check_clone_url(url)

    @field_validator("token_env")
    @classmethod
    def _variable_name(cls, variable: str | None) -> str | None:
        return None if variable is None else check_variable(variable)

    @model_validator(mode="after")
    def _path_or_url(self) -> GitRepositoryConfig:
        if (self.path is None) == (self.url is None):
            given = "both `path` and `url` are given" if self.path else "neither `path` nor `url` is given"
            raise ValueError(
                f"{given}: give `path` (a repository on this machine) or `url` (a clone URL), not both"
            )
        if self.token_env is not None and not str(self.url or "").startswith(("https://", "http://")):
            raise ValueError("`token_env` is for https/http clone URLs: ssh uses your ssh keys or agent")
        return self

    @property
    def where(self) -> str:
        """The path, or the URL, as it is shown in messages."""
        return str(self.path if self.path is not None else self.url)

    @field_validator("branches")
    @classmethod
    def _some_branch(cls, branches: list[str] | None) -> list[str] | None:
        if branches is not None:
            if not branches:
                raise ValueError("`branches` is empty: leave it out to read every local branch and HEAD")
            for branch in branches:
                if not branch.strip() or branch.startswith("-"):
                    raise ValueError(f"{branch!r} is not a branch name")
        return branches


class GitConnectionConfig(BaseModel):
    """A connection to git repositories on this machine, read with the `git` command (no network)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    tool: Literal["git"] = "git"
    repositories: Annotated[list[GitRepositoryConfig], Field(min_length=1)]
    cache_dir: Annotated[str | None, Field(min_length=1)] = None  # mirrors of `url` repositories
    fetch_timeout: Annotated[float, Field(gt=0)] = 600.0  # seconds a clone or fetch may take
    value_stream: str | None = None

    @field_validator("repositories")
    @classmethod
    def _distinct_names(cls, repositories: list[GitRepositoryConfig]) -> list[GitRepositoryConfig]:
        duplicated = given_twice(r.name for r in repositories)
        if duplicated:
            raise ValueError(f"repository names must be distinct: {', '.join(duplicated)} is given twice")
        return repositories
