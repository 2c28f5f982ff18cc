"""What `obeya.yaml` may say, validated by pydantic. Every setting has a default (docs/configuration.md)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from obeya.config.webhooks import WebhookSettings
from obeya.connectors.config import ConnectionConfig
from obeya.connectors.schedule import ScheduleConfig
from obeya.engine.dora_rules import DeploymentRules, DoraRules, IncidentRules
from obeya.linking.rules import GITHUB_ISSUE, JIRA_KEY, LinkingRules
from obeya.model.vocabulary import EnvironmentClass, FlowItemType, FlowState
from obeya.normalize.rules import DeploymentNameRule, EnvironmentRule, MappingRules, StatusMapping


def _duration(value: object) -> object:
    """``30m``, ``24h``, ``2d``, ``1w`` as durations; anything else is left to pydantic (ISO 8601)."""
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*", value)
        if match:
            unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[match.group(2)]
            return timedelta(**{unit: float(match.group(1))})
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]
"""A duration written as 30m, 24h, 2d or 1w (or ISO 8601, e.g. PT24H)."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StatusRuleConfig(_Section):
    """Where a tool status puts a work item."""

    flow_state: FlowState
    stage: str | None = None


def _regular_expression(pattern: str) -> str:
    """A pattern that compiles as a (case-insensitive) regular expression."""
    try:
        re.compile(pattern, re.IGNORECASE)
    except re.error as error:
        raise ValueError(f"not a valid regular expression: {error}") from error
    return pattern


def _some(patterns: list[str]) -> list[str]:
    empty = [i for i, p in enumerate(patterns) if not p.strip()]
    if empty:
        raise ValueError(f"pattern {empty[0]} is empty: it would match every job (leave it out)")
    return patterns


RegularExpression = Annotated[str, AfterValidator(_regular_expression)]


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


def _names(names: list[str]) -> list[str]:
    """Names compared case-insensitively: none empty, none twice."""
    seen: set[str] = set()
    for name in names:
        key = name.strip().lower()
        if not key:
            raise ValueError("names must not be empty")
        if key in seen:
            raise ValueError(f"{name!r} is given more than once")
        seen.add(key)
    return names


Names = Annotated[list[str], AfterValidator(_names)]
"""A list of names (services, environments, labels), compared case-insensitively."""


DeploymentResult = Literal["success", "failure", "rolled_back"]


def _successful() -> list[DeploymentResult]:
    return ["success"]


class DeploymentRulesConfig(_Section):
    """What counts as a production deployment for DORA. `job_patterns` and `job_environment` apply when raw
    events are normalized (`obeya replay` re-applies them); the others when figures are computed."""

    job_patterns: Annotated[list[RegularExpression], AfterValidator(_some)] | None = None
    job_environment: EnvironmentClass = EnvironmentClass.OTHER
    frequency_results: list[DeploymentResult] = Field(default_factory=_successful, min_length=1)
    count_rollbacks: bool = False
    exclude_services: Names = Field(default_factory=list)
    exclude_environments: Names = Field(default_factory=list)

    @field_validator("frequency_results")
    @classmethod
    def _each_once(cls, results: list[DeploymentResult]) -> list[DeploymentResult]:
        twice = sorted({r for r in results if results.count(r) > 1})
        if twice:
            raise ValueError(f"given more than once: {', '.join(twice)}")
        return results


class NotChangeCausedConfig(_Section):
    """Incidents no change caused (a provider's outage): by label or by service."""

    labels: Names = Field(default_factory=list)
    services: Names = Field(default_factory=list)


class IncidentRulesConfig(_Section):
    """What counts as an incident for DORA; applied when figures are computed (no re-sync)."""

    min_severity: Literal["sev1", "sev2", "sev3", "sev4"] | None = None
    not_change_caused: NotChangeCausedConfig = Field(default_factory=NotChangeCausedConfig)


class RulesConfig(_Section):
    """Mapping rules; entries here win over the built-in defaults and heuristics."""

    statuses: dict[str, StatusRuleConfig] = Field(default_factory=dict)
    item_types: dict[str, FlowItemType] = Field(default_factory=dict)
    labels: dict[str, FlowItemType] = Field(default_factory=dict)
    environments: list[EnvironmentRuleConfig] = Field(default_factory=list)
    work_start: Literal["active", "committed"] = "active"
    deployments: DeploymentRulesConfig = Field(default_factory=DeploymentRulesConfig)
    incidents: IncidentRulesConfig = Field(default_factory=IncidentRulesConfig)

    def dora_rules(self) -> DoraRules:
        """What counts as a deployment and an incident, as the engine's DORA queries take it."""
        d, i = self.deployments, self.incidents
        return DoraRules(
            DeploymentRules(
                tuple(d.frequency_results),
                d.count_rollbacks,
                tuple(d.exclude_services),
                tuple(d.exclude_environments),
            ),
            IncidentRules(
                i.min_severity,
                tuple(i.not_change_caused.labels),
                tuple(i.not_change_caused.services),
            ),
        )

    def mapping_rules(self) -> MappingRules:
        """The rules as the normalizers use them."""
        return MappingRules(
            statuses={k: StatusMapping(v.flow_state, v.stage) for k, v in self.statuses.items()},
            item_types=dict(self.item_types),
            label_types=dict(self.labels),
            environments=tuple(EnvironmentRule(e.pattern, e.environment_class) for e in self.environments),
            deployment_names=None
            if self.deployments.job_patterns is None
            else DeploymentNameRule(tuple(self.deployments.job_patterns), self.deployments.job_environment),
        )


class LinkingConfig(_Section):
    """How traceability links are derived (docs/traceability.md)."""

    key_patterns: list[str] = Field(default_factory=lambda: [JIRA_KEY, GITHUB_ISSUE])
    incident_attribution_window: Duration = timedelta(hours=24)
    service_paths: dict[str, dict[str, list[str]]] = Field(default_factory=dict)

    @field_validator("key_patterns")
    @classmethod
    def _one_group_each(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                compiled = re.compile(pattern)
            except re.error as error:
                raise ValueError(f"{pattern!r} is not a valid regular expression: {error}") from error
            if compiled.groups != 1:
                raise ValueError(f"{pattern!r} must have exactly one group capturing the key")
        return patterns

    @field_validator("incident_attribution_window")
    @classmethod
    def _positive(cls, window: timedelta) -> timedelta:
        if window <= timedelta(0):
            raise ValueError("must be a positive duration, e.g. 24h or PT24H")
        return window

    def linking_rules(self) -> LinkingRules:
        """The rules as `derive_links` takes them."""
        return LinkingRules(
            key_patterns=tuple(self.key_patterns),
            incident_attribution_window=self.incident_attribution_window,
            service_paths={
                s: {r: tuple(p) for r, p in repos.items()} for s, repos in self.service_paths.items()
            },
        )


class ObeyaConfig(_Section):
    """The whole of `obeya.yaml`."""

    database_url: str | None = None
    rules: RulesConfig = Field(default_factory=RulesConfig)
    linking: LinkingConfig = Field(default_factory=LinkingConfig)
    connections: list[ConnectionConfig] = Field(default_factory=list)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    sync: ScheduleConfig = Field(default_factory=ScheduleConfig)

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
