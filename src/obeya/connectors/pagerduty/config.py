"""How obeya.yaml declares a PagerDuty connection (`tool: pagerduty`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from obeya.connectors.config_checks import check_url, check_variable
from obeya.connectors.incidents import (
    NAME_PATTERN,
    NotChangeCaused,
    check_severities,
)


class PagerDutyConnectionConfig(BaseModel):
    """A connection to PagerDuty (REST API v2): the incidents of some services or teams, or of all."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1, pattern=NAME_PATTERN)]
    tool: Literal["pagerduty"] = "pagerduty"
    base_url: str = "https://api.pagerduty.com"
    token_env: str = "PAGERDUTY_TOKEN"
    services: list[str] = Field(default_factory=list)
    teams: list[str] = Field(default_factory=list)
    log_entries: bool = True
    value_stream: str | None = None
    not_change_caused: NotChangeCaused = Field(default_factory=NotChangeCaused)
    severity: dict[str, str] = Field(default_factory=dict)

    @field_validator("token_env")
    @classmethod
    def _variable_name(cls, variable: str) -> str:
        return check_variable(variable)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        return check_url(
            url, "PagerDuty: https://api.pagerduty.com, EU accounts https://api.eu.pagerduty.com"
        )

    @field_validator("severity")
    @classmethod
    def _severities(cls, mapping: dict[str, str]) -> dict[str, str]:
        return check_severities(mapping)
