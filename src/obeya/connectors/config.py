"""How `obeya.yaml` declares connections to tools (the `connections:` list)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails

from obeya.connectors.azuredevops.config import AzureDevOpsConnectionConfig
from obeya.connectors.config_checks import check_url, check_variable
from obeya.connectors.git.config import GitConnectionConfig
from obeya.connectors.gitlab.config import GitLabConnectionConfig
from obeya.connectors.jenkins.config import JenkinsConnectionConfig
from obeya.connectors.opsgenie.config import OpsgenieConnectionConfig
from obeya.connectors.pagerduty.config import PagerDutyConnectionConfig
from obeya.connectors.servicenow.config import ServiceNowConnectionConfig

_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


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
        return check_variable(variable)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        return check_url(url, "GitHub Enterprise: https://HOST/api/v3")


_PROJECT_KEY = re.compile(r"^[A-Z][A-Z0-9_]+$")


class JiraConnectionConfig(BaseModel):
    """A connection to Jira (Cloud or Data Center) and the boards, projects or JQL it syncs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    tool: Literal["jira"] = "jira"
    base_url: str
    deployment: Literal["cloud", "datacenter"] = "cloud"
    email_env: str = "JIRA_EMAIL"
    token_env: str = "JIRA_TOKEN"
    boards: list[int] = Field(default_factory=list)
    projects: list[str] = Field(default_factory=list)
    jql: str | None = None
    value_stream: str | None = None

    @field_validator("email_env", "token_env")
    @classmethod
    def _variable_name(cls, variable: str) -> str:
        return check_variable(variable)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        return check_url(url, "Jira Cloud: https://SITE.atlassian.net")

    @field_validator("projects")
    @classmethod
    def _project_keys(cls, projects: list[str]) -> list[str]:
        for project in projects:
            if not _PROJECT_KEY.match(project):
                raise ValueError(f"{project!r} is not a Jira project key (upper case, e.g. OPS)")
        return projects

    @field_validator("jql")
    @classmethod
    def _no_order(cls, jql: str | None) -> str | None:
        if jql is not None and re.search(r"\border\s+by\b", jql, re.IGNORECASE):
            raise ValueError("leave ORDER BY out of `jql`: the sync orders by `updated` to resume")
        return jql

    @model_validator(mode="after")
    def _something_to_sync(self) -> JiraConnectionConfig:
        if not (self.boards or self.projects or self.jql):
            raise ValueError("a Jira connection needs `boards`, `projects` or `jql` to know what to sync")
        return self


def _untagged(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """Validate a connection by its `tool`; errors are located as in the file (without the tool's tag).

    A connection without `tool:` is a GitHub one, as it was before other tools arrived.
    """
    if isinstance(value, dict) and "tool" not in value:
        value = {**value, "tool": "github"}
    try:
        return handler(value)
    except ValidationError as error:
        tool = value.get("tool") if isinstance(value, dict) else None
        details: list[InitErrorDetails] = []
        for problem in error.errors():
            location = tuple(problem["loc"])
            if location and location[0] == tool:
                location = location[1:]
            elif problem["type"] == "union_tag_invalid":
                location = ("tool",)
            detail = InitErrorDetails(type=problem["type"], loc=location, input=problem["input"])
            if "ctx" in problem:
                detail["ctx"] = problem["ctx"]
            details.append(detail)
        raise ValidationError.from_exception_data(error.title, details) from None


ConnectionConfig = Annotated[
    Annotated[
        GitHubConnectionConfig
        | JiraConnectionConfig
        | GitConnectionConfig
        | JenkinsConnectionConfig
        | PagerDutyConnectionConfig
        | OpsgenieConnectionConfig
        | ServiceNowConnectionConfig
        | GitLabConnectionConfig
        | AzureDevOpsConnectionConfig,
        Field(discriminator="tool"),
    ],
    WrapValidator(_untagged),
]
"""Any connection, told apart by its `tool:` (``github`` when left out)."""
