"""Where each webhook receiver finds its secret: environment variables named here, never the secrets.

`WebhookSettings` is the ``webhooks:`` section of `obeya.yaml` (every field has a default, so an empty or
missing section works).
"""

from __future__ import annotations

import os
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from obeya.connectors.config_checks import check_variable

MAX_BODY_BYTES = 25 * 1024 * 1024
"""GitHub caps webhook payloads at 25 MB; the other tools send far less."""


class SourceSettings(BaseModel):
    """One tool's receiver: the environment variable holding its shared secret."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    secret_env: str

    @field_validator("secret_env")
    @classmethod
    def _variable_name(cls, variable: str) -> str:
        return check_variable(variable)

    def secret(self) -> bytes | None:
        """The secret from the environment, or None when the variable is unset or empty."""
        value = os.environ.get(self.secret_env)
        return value.encode() if value else None


def _source(variable: str) -> SourceSettings:
    return SourceSettings(secret_env=variable)


class WebhookSettings(BaseModel):
    """The webhook receivers' settings: one secret variable per tool, and a cap on the body size."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    github: SourceSettings = Field(default_factory=lambda: _source("OBEYA_WEBHOOK_SECRET_GITHUB"))
    gitlab: SourceSettings = Field(default_factory=lambda: _source("OBEYA_WEBHOOK_SECRET_GITLAB"))
    jira: SourceSettings = Field(default_factory=lambda: _source("OBEYA_WEBHOOK_SECRET_JIRA"))
    pagerduty: SourceSettings = Field(default_factory=lambda: _source("OBEYA_WEBHOOK_SECRET_PAGERDUTY"))
    azuredevops: SourceSettings = Field(default_factory=lambda: _source("OBEYA_WEBHOOK_SECRET_AZUREDEVOPS"))
    generic: SourceSettings = Field(default_factory=lambda: _source("OBEYA_WEBHOOK_SECRET_GENERIC"))
    max_body_bytes: Annotated[int, Field(ge=1024)] = MAX_BODY_BYTES

    def source(self, tool: str) -> SourceSettings:
        """The settings of one tool's receiver (``generic`` for every generic source)."""
        settings: SourceSettings = getattr(self, tool)
        return settings
