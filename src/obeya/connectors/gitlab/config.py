"""How `obeya.yaml` declares a connection to GitLab (gitlab.com or a self-managed instance)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from obeya.connectors.config_checks import check_url, check_variable

_PROJECT = re.compile(r"^(\d+|[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+)$")


class GitLabConnectionConfig(BaseModel):
    """A connection to GitLab and the projects it syncs (``group/project`` paths or numeric ids)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    tool: Literal["gitlab"] = "gitlab"
    base_url: str = "https://gitlab.com"
    token_env: str = "GITLAB_TOKEN"
    projects: list[str] = Field(default_factory=list)
    commit_ref: Annotated[str | None, Field(min_length=1)] = None  # the branch or tag whose history the
    # commits walk reads (the git graph of shipped changes); None: each project's default branch
    value_stream: str | None = None

    @field_validator("projects")
    @classmethod
    def _paths_or_ids(cls, projects: list[str]) -> list[str]:
        for project in projects:
            if not _PROJECT.match(project):
                raise ValueError(
                    f"{project!r} is not a GitLab project: write its path (group/project, "
                    "group/subgroup/project) or its numeric id"
                )
        return projects

    @field_validator("token_env")
    @classmethod
    def _variable_name(cls, variable: str) -> str:
        return check_variable(variable)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        url = check_url(url, "self-managed GitLab: https://HOST")
        if url.endswith("/api/v4"):
            raise ValueError(f"{url!r}: give the instance's URL without /api/v4 (e.g. https://gitlab.com)")
        return url
