"""How `obeya.yaml` declares connections to tools (the `connections:` list)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class GitHubConnectionConfig(BaseModel):
    """A connection to GitHub (github.com or GitHub Enterprise Server) and the repositories it syncs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    tool: Literal["github"] = "github"
    base_url: str = "https://api.github.com"
    token_env: str = "GITHUB_TOKEN"
    repositories: list[str] = Field(default_factory=list)
    value_stream: str | None = None

    @field_validator("repositories")
    @classmethod
    def _owner_slash_name(cls, repositories: list[str]) -> list[str]:
        for repository in repositories:
            if not _REPOSITORY.match(repository):
                raise ValueError(
                    f"{repository!r} is not a repository: write it as owner/name, e.g. panjf2000/ants"
                )
        return repositories

    @field_validator("token_env")
    @classmethod
    def _variable_name(cls, variable: str) -> str:
        if not _VARIABLE.match(variable):
            raise ValueError(
                f"{variable!r} is not an environment variable name (write the name, not the token)"
            )
        return variable

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{url!r} is not an http(s) URL (GitHub Enterprise: https://HOST/api/v3)")
        return url.rstrip("/")


ConnectionConfig = GitHubConnectionConfig
"""Any connection. When a second tool arrives this becomes
``Annotated[GitHubConnectionConfig | JiraConnectionConfig, Field(discriminator="tool")]``."""
