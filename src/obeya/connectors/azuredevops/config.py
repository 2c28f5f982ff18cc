"""How `obeya.yaml` declares a connection to Azure DevOps (dev.azure.com or Azure DevOps Server)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from obeya.connectors.config_checks import check_url, check_variable

_NAME = re.compile(r"^[^/\\!@#?]+$")


class AzureDevOpsConnectionConfig(BaseModel):
    """A connection to an Azure DevOps organization and the projects (and repositories) it syncs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    tool: Literal["azuredevops"] = "azuredevops"
    base_url: str = "https://dev.azure.com"
    organization: Annotated[str, Field(min_length=1)]
    projects: Annotated[list[str], Field(min_length=1)]
    repositories: list[str] = Field(default_factory=list)
    token_env: str = "AZURE_DEVOPS_TOKEN"
    release_url: str | None = None
    value_stream: str | None = None

    @property
    def releases_base_url(self) -> str:
        """Where classic Release pipelines answer: `release_url`, else ``https://vsrm.dev.azure.com`` for
        dev.azure.com, else `base_url` (Azure DevOps Server serves them at the collection's URL)."""
        if self.release_url:
            return self.release_url
        return "https://vsrm.dev.azure.com" if self.base_url == "https://dev.azure.com" else self.base_url

    @field_validator("organization")
    @classmethod
    def _organization(cls, organization: str) -> str:
        if not _NAME.match(organization):
            raise ValueError(f"{organization!r} is not an organization name (write it without slashes)")
        return organization

    @field_validator("projects", "repositories")
    @classmethod
    def _names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not name.strip() or not _NAME.match(name):
                raise ValueError(f"{name!r} is not a project or repository name (no / \\ ! @ # ?)")
        return names

    @field_validator("token_env")
    @classmethod
    def _variable_name(cls, variable: str) -> str:
        return check_variable(variable)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        return check_url(url, "Azure DevOps Server: https://HOST/COLLECTION-PARENT")

    @field_validator("release_url")
    @classmethod
    def _release_url(cls, url: str | None) -> str | None:
        return None if url is None else check_url(url, "classic releases: https://vsrm.dev.azure.com")
