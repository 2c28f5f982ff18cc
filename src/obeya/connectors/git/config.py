"""How `obeya.yaml` declares a connection to local git repositories (``tool: git``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from obeya.connectors.config_checks import given_twice


class GitRepositoryConfig(BaseModel):
    """One repository on disk: a working copy or a (bare, mirror) clone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Annotated[str, Field(min_length=1)]
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-/]+$")]
    branches: list[str] | None = None  # None: every local branch and HEAD

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
    value_stream: str | None = None

    @field_validator("repositories")
    @classmethod
    def _distinct_names(cls, repositories: list[GitRepositoryConfig]) -> list[GitRepositoryConfig]:
        duplicated = given_twice(r.name for r in repositories)
        if duplicated:
            raise ValueError(f"repository names must be distinct: {', '.join(duplicated)} is given twice")
        return repositories
