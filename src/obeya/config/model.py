"""What `obeya.yaml` may say, validated by pydantic. Every setting has a default (docs/configuration.md)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from obeya.config.webhooks import WebhookSettings
from obeya.connectors.config import ConnectionConfig
from obeya.model.vocabulary import EnvironmentClass, FlowItemType, FlowState
from obeya.normalize.rules import EnvironmentRule, MappingRules, StatusMapping


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StatusRuleConfig(_Section):
    """Where a tool status puts a work item."""

    flow_state: FlowState
    stage: str | None = None


class EnvironmentRuleConfig(_Section):
    """Environments whose name matches `pattern` (regular expression, case-insensitive) are of `class`."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    pattern: str
    environment_class: EnvironmentClass = Field(alias="class")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as error:
            raise ValueError(f"not a valid regular expression: {error}") from error
        return pattern


class RulesConfig(_Section):
    """Mapping rules; entries here win over the built-in defaults and heuristics."""

    statuses: dict[str, StatusRuleConfig] = Field(default_factory=dict)
    item_types: dict[str, FlowItemType] = Field(default_factory=dict)
    labels: dict[str, FlowItemType] = Field(default_factory=dict)
    environments: list[EnvironmentRuleConfig] = Field(default_factory=list)

    def mapping_rules(self) -> MappingRules:
        """The rules as the normalizers use them."""
        return MappingRules(
            statuses={k: StatusMapping(v.flow_state, v.stage) for k, v in self.statuses.items()},
            item_types=dict(self.item_types),
            label_types=dict(self.labels),
            environments=tuple(EnvironmentRule(e.pattern, e.environment_class) for e in self.environments),
        )


class ObeyaConfig(_Section):
    """The whole of `obeya.yaml`."""

    database_url: str | None = None
    rules: RulesConfig = Field(default_factory=RulesConfig)
    connections: list[ConnectionConfig] = Field(default_factory=list)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)

    @field_validator("connections")
    @classmethod
    def _unique_names(cls, connections: list[ConnectionConfig]) -> list[ConnectionConfig]:
        names = [c.name for c in connections]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"connection names must be unique; given more than once: {', '.join(twice)}")
        return connections

    def connection(self, name: str) -> ConnectionConfig:
        """The connection called `name`."""
        for c in self.connections:
            if c.name == name:
                return c
        known = ", ".join(c.name for c in self.connections) or "none (declare them under connections:)"
        raise KeyError(f"no connection named {name!r} in the configuration; known: {known}")
