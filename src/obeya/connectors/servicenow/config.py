"""How obeya.yaml declares a ServiceNow connection (`tool: servicenow`)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from obeya.connectors.config_checks import check_url, check_variable
from obeya.connectors.incidents import (
    NAME_PATTERN,
    NotChangeCaused,
    check_severities,
)


class ServiceNowConnectionConfig(BaseModel):
    """A connection to a ServiceNow instance (Table API): incidents and, optionally, change requests."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1, pattern=NAME_PATTERN)]
    tool: Literal["servicenow"] = "servicenow"
    base_url: str
    auth: Literal["basic", "bearer"] = "basic"
    username_env: str = "SERVICENOW_USER"
    token_env: str = "SERVICENOW_TOKEN"
    services: list[str] = Field(default_factory=list)
    assignment_groups: list[str] = Field(default_factory=list)
    query: str | None = None
    change_requests: bool = True
    change_requests_as_deployments: bool = True
    change_environment: str = "production"
    service_names: dict[str, str] = Field(default_factory=dict)
    value_stream: str | None = None
    not_change_caused: NotChangeCaused = Field(default_factory=NotChangeCaused)
    severity: dict[str, str] = Field(default_factory=dict)

    @field_validator("username_env", "token_env")
    @classmethod
    def _variable_name(cls, variable: str) -> str:
        return check_variable(variable)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        return check_url(url, "ServiceNow: https://INSTANCE.service-now.com")

    @field_validator("severity")
    @classmethod
    def _severities(cls, mapping: dict[str, str]) -> dict[str, str]:
        return check_severities(mapping)

    @field_validator("query")
    @classmethod
    def _no_order(cls, query: str | None) -> str | None:
        if query is not None and re.search(r"ORDERBY", query):
            raise ValueError("leave ORDERBY out of `query`: the sync orders by sys_updated_on to resume")
        return query
