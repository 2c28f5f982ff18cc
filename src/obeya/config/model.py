"""What `obeya.yaml` may say, validated by pydantic. Every setting has a default (docs/configuration.md)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from obeya.config.webhooks import WebhookSettings
from obeya.connectors.config import ConnectionConfig
from obeya.connectors.config_checks import given_twice
from obeya.connectors.schedule import ScheduleConfig
from obeya.engine.dora_rules import DeploymentRules, DoraRules, IncidentRules
from obeya.linking.rules import CHANGE_NUMBER, GITHUB_ISSUE, JIRA_KEY, LinkingRules
from obeya.model.vocabulary import EnvironmentClass, FlowItemType, FlowState, StageCategory
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
        twice = given_twice(results)
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
    change_number_pattern: str = CHANGE_NUMBER

    @field_validator("change_number_pattern")
    @classmethod
    def _one_group(cls, pattern: str) -> str:
        return cls._one_group_each([pattern])[0]

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
            change_number_pattern=self.change_number_pattern,
        )


def _stage_entry(value: object) -> object:
    """A stage written as its bare name (``- integration``) is a stage of that name."""
    return {"name": value} if isinstance(value, str) else value


class StageConfig(_Section):
    """One stage of a value stream, in the order of the list."""

    name: Annotated[str, Field(min_length=1)]
    category: StageCategory | None = None
    wip_limit: Annotated[int, Field(ge=1)] | None = None

    @field_validator("name")
    @classmethod
    def _not_blank(cls, name: str) -> str:
        if not name.strip():
            raise ValueError("a stage's name must not be blank")
        return name

    @property
    def stage_category(self) -> StageCategory | None:
        """`category`, else the stage's name when it is one of the five default stages."""
        if self.category is not None:
            return self.category
        return StageCategory(self.name) if self.name in set(StageCategory) else None


def _default_stages() -> list[StageConfig]:
    return [StageConfig(name=c.value) for c in StageCategory]


_SLUG = r"^[a-z0-9][a-z0-9_-]*$"


def slug(name: str) -> str:
    """The id a value stream gets from its name: lower case, runs of other characters as one ``-``."""
    return re.sub(r"[^a-z0-9_]+", "-", name.lower()).strip("-")


class ValueStreamConfig(_Section):
    """A value stream declared in `obeya.yaml`: what the connections that name it feed."""

    name: Annotated[str, Field(min_length=1)]
    id: Annotated[str, Field(pattern=_SLUG)] | None = None
    type: Literal["core", "supporting"] = "core"
    description: str | None = None
    owner: str | None = None
    stages: Annotated[list[Annotated[StageConfig, BeforeValidator(_stage_entry)]], Field(min_length=1)] = (
        Field(default_factory=_default_stages)
    )

    @field_validator("name")
    @classmethod
    def _sluggable(cls, name: str) -> str:
        if not slug(name):
            raise ValueError(f"{name!r} has no letter or digit: give the stream an `id` too")
        return name

    @field_validator("stages")
    @classmethod
    def _distinct_stages(cls, stages: list[StageConfig]) -> list[StageConfig]:
        twice = given_twice(s.name for s in stages)
        if twice:
            raise ValueError(f"stage names must be distinct in a stream; given twice: {', '.join(twice)}")
        return stages

    @property
    def key(self) -> str:
        """The stream's stable id in the store (`id`, else the slug of its name)."""
        return self.id or slug(self.name)


def _reference_error(location: tuple[str | int, ...], message: str, value: object) -> InitErrorDetails:
    return InitErrorDetails(
        type=PydanticCustomError("value_stream_reference", message), loc=location, input=value
    )


class ObeyaConfig(_Section):
    """The whole of `obeya.yaml`."""

    database_url: str | None = None
    value_streams: list[ValueStreamConfig] = Field(default_factory=list)
    rules: RulesConfig = Field(default_factory=RulesConfig)
    linking: LinkingConfig = Field(default_factory=LinkingConfig)
    connections: list[ConnectionConfig] = Field(default_factory=list)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    sync: ScheduleConfig = Field(default_factory=ScheduleConfig)

    @field_validator("connections")
    @classmethod
    def _unique_names(cls, connections: list[ConnectionConfig]) -> list[ConnectionConfig]:
        twice = given_twice(c.name for c in connections)
        if twice:
            raise ValueError(f"connection names must be unique; given more than once: {', '.join(twice)}")
        return connections

    @model_validator(mode="after")
    def _streams_known(self) -> ObeyaConfig:
        """Streams have distinct names and ids; each connection's `value_stream` names one of them; a
        webhook receiver's `connection` names a connection of its tool (any, for the generic one)."""
        problems: list[InitErrorDetails] = []
        seen: dict[str, int] = {}
        for index, stream in enumerate(self.value_streams):
            keys = {stream.name.strip().lower(): "name"}
            keys.setdefault(stream.key, "id" if stream.id else "name")
            for key, where in keys.items():
                other = seen.setdefault(key, index)
                if other != index:
                    problems.append(
                        _reference_error(
                            ("value_streams", index, where),
                            f"{key!r} is already the name or id of value_streams[{other}]",
                            key,
                        )
                    )
        for index, connection in enumerate(self.connections):
            reference = connection.value_stream
            if reference is not None and self.value_stream(reference) is None:
                known = ", ".join(s.name for s in self.value_streams)
                hint = f"declared: {known}" if known else "declare it under value_streams:"
                problems.append(
                    _reference_error(
                        ("connections", index, "value_stream"),
                        f"{reference!r} is not a declared value stream ({hint})",
                        reference,
                    )
                )
        tools = {c.name: c.tool for c in self.connections}
        for receiver, name in self.webhooks.bound().items():
            if name not in tools or receiver not in (tools[name], "generic"):
                declared = ", ".join(n for n, t in tools.items() if receiver in (t, "generic")) or "none"
                problems.append(
                    _reference_error(
                        ("webhooks", receiver, "connection"),
                        f"{name!r} is not a {receiver} connection (declared: {declared})",
                        name,
                    )
                )
        if problems:
            raise ValidationError.from_exception_data("ObeyaConfig", problems)
        return self

    def value_stream(self, reference: str) -> ValueStreamConfig | None:
        """The declared stream whose name (case-insensitive) or id is `reference`."""
        for stream in self.value_streams:
            if reference == stream.key or reference.strip().lower() == stream.name.strip().lower():
                return stream
        return None

    def connection(self, name: str) -> ConnectionConfig:
        """The connection called `name`."""
        for c in self.connections:
            if c.name == name:
                return c
        known = ", ".join(c.name for c in self.connections) or "none (declare them under connections:)"
        raise KeyError(f"no connection named {name!r} in the configuration; known: {known}")
