"""Where each webhook receiver finds its secret: environment variables named here, never the secrets.

`WebhookSettings` is the ``webhooks:`` section of `obeya.yaml` (every field has a default, so an empty or
missing section works). A receiver may be bound to a connection (``github: {secret_env: ..., connection:
github-acme}``); docs/webhooks.md ("Connections") says how a delivery finds its connection otherwise.
"""

from __future__ import annotations

import os
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from obeya.connectors.config_checks import check_variable

MAX_BODY_BYTES = 25 * 1024 * 1024
"""GitHub caps webhook payloads at 25 MB; the other tools send far less."""


CONNECTION_NAME = r"^[A-Za-z0-9_.-]+$"
"""What a connection name is made of (as `connections:` declares them)."""


class SourceSettings(BaseModel):
    """One tool's receiver: the environment variable holding its shared secret, and optionally the
    connection every delivery it takes belongs to (`connection`, a name under `connections:`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    secret_env: str
    connection: Annotated[str | None, Field(pattern=CONNECTION_NAME)] = None

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

    def bound(self) -> dict[str, str]:
        """Receiver → the connection it is bound to, for the receivers bound to one."""
        receivers = {name: getattr(self, name) for name in type(self).model_fields}
        return {
            tool: source.connection
            for tool, source in receivers.items()
            if isinstance(source, SourceSettings) and source.connection is not None
        }
