"""What the incident connectors (PagerDuty, Opsgenie, ServiceNow) share: config pieces, severities, the
`not_change_caused` rules, time cursors and pages.

The connector protocol gives a normalizer the raw events and the mapping rules, not the connection. So the
connection's incident rules (`not_change_caused`, `severity`) are kept with its raw events: every sync first
stores them as a ``settings`` raw event (resource ``settings``, `context_event_types`), and the normalizer
reads them from there. A sync and a replay therefore apply the same rules; after changing the rules in
obeya.yaml, a sync stores them and a replay applies them to every stored incident.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from obeya.connectors.raw import raw_event
from obeya.model.ids import record_id
from obeya.model.records import Identity, Person, RawEvent, Record

SEVERITIES = ("sev1", "sev2", "sev3", "sev4")
SETTINGS = "settings"
"""Raw event type (and resource) of a connection's incident rules."""

NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"


class NotChangeCaused(BaseModel):
    """Incidents that no change caused (a provider's outage, a customer's misuse): by label or service."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    labels: list[str] = Field(default_factory=list)
    services: list[str] = Field(default_factory=list)


def check_severities(mapping: dict[str, str]) -> dict[str, str]:
    """A `severity:` map: the tool's value → sev1..sev4."""
    for raw, severity in mapping.items():
        if severity not in SEVERITIES:
            raise ValueError(f"severity of {raw!r} is {severity!r}: write one of {', '.join(SEVERITIES)}")
    return mapping


# --- settings kept with the raw events -----------------------------------------------------------------


@dataclass(frozen=True)
class IncidentSettings:
    """A connection's incident rules, as the normalizer reads them."""

    not_change_caused_labels: tuple[str, ...] = ()
    not_change_caused_services: tuple[str, ...] = ()
    severity: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        """The settings as the JSON payload of their raw event."""
        return {
            "not_change_caused": {
                "labels": list(self.not_change_caused_labels),
                "services": list(self.not_change_caused_services),
            },
            "severity": dict(self.severity),
            "options": dict(self.options),
        }

    @classmethod
    def of_payload(cls, item: Mapping[str, Any]) -> IncidentSettings:
        """The settings of a stored ``settings`` raw event."""
        rules = item.get("not_change_caused") or {}
        return cls(
            tuple(str(x) for x in rules.get("labels") or ()),
            tuple(str(x) for x in rules.get("services") or ()),
            {str(k): str(v) for k, v in (item.get("severity") or {}).items()},
            dict(item.get("options") or {}),
        )

    def severity_of(self, raw: str | None, defaults: Mapping[str, str]) -> str | None:
        """sev1..sev4 for the tool's value: the connection's `severity:` map, then the defaults."""
        if raw is None:
            return None
        key = raw.strip().lower()
        for mapping in (self.severity, defaults):
            for name, severity in mapping.items():
                if name.strip().lower() == key:
                    return severity
        return None

    def change_caused(self, services: Iterable[str | None], labels: Iterable[str]) -> bool | None:
        """False when a rule says no change caused the incident; None (not ruled out) otherwise."""
        wanted = {s.strip().lower() for s in self.not_change_caused_services}
        if wanted & {s.strip().lower() for s in services if s}:
            return False
        wanted = {label.strip().lower() for label in self.not_change_caused_labels}
        if wanted & {label.strip().lower() for label in labels}:
            return False
        return None


def settings_event(
    source: str,
    connection: str,
    not_change_caused: NotChangeCaused,
    severity: Mapping[str, str],
    received_at: datetime,
    options: Mapping[str, Any] | None = None,
) -> RawEvent:
    """The ``settings:{connection}`` raw event holding a connection's incident rules."""
    settings = IncidentSettings(
        tuple(not_change_caused.labels),
        tuple(not_change_caused.services),
        dict(severity),
        dict(options or {}),
    )
    return raw_event(
        source, SETTINGS, connection, settings.payload(), connection=connection, received_at=received_at
    )


def settings_of(events: Sequence[RawEvent], context: Sequence[RawEvent]) -> IncidentSettings:
    """The rules among `events` (a sync's settings page), else among the stored `context`."""
    for pool in (events, context):
        found = [e for e in pool if e.event_type == SETTINGS]
        if found:
            return IncidentSettings.of_payload(json.loads(found[-1].payload))
    return IncidentSettings()


# --- times, cursors, pages -------------------------------------------------------------------------------


def iso(moment: datetime) -> str:
    """A UTC time as ``2022-11-03T06:23:06Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class TimeCursor:
    """A resource's time mark (`mark`, ISO 8601 UTC) and, while a walk is under way, where it stands."""

    mark: str | None = None
    walk: Mapping[str, Any] | None = None

    @classmethod
    def parse(cls, text: str | None) -> TimeCursor:
        """The cursor stored as JSON text (empty for None)."""
        if not text:
            return cls()
        data = json.loads(text)
        return cls(data.get("mark"), data.get("walk"))

    def dumps(self) -> str:
        """The cursor as JSON text for `SyncCursor.cursor`."""
        return json.dumps({"mark": self.mark, "walk": self.walk}, sort_keys=True)


@dataclass
class Batch:
    """One page of a resource, stored in one transaction with its cursor."""

    events: list[RawEvent]
    cursor: TimeCursor
    complete: bool
    fetched: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


def unique(events: Iterable[RawEvent]) -> list[RawEvent]:
    """One raw event per id (the last seen wins), in first-seen order."""
    by_id: dict[str, RawEvent] = {}
    for event in events:
        by_id[event.id] = event
    return list(by_id.values())


def person(
    source: str,
    tool: str,
    key: str,
    display_name: str,
    raw_event_id: str,
    email: str | None = None,
    username: str | None = None,
) -> list[Record]:
    """A tool account as `Person` + `Identity`, both ``{source}:user/{key}``."""
    external_id = f"user/{key}"
    return [
        Person(
            source=source,
            external_id=external_id,
            raw_event_id=raw_event_id,
            display_name=display_name or key,
            email=email,
        ),
        Identity(
            source=source,
            external_id=external_id,
            raw_event_id=raw_event_id,
            person_id=record_id(source, external_id),
            tool=tool,
            username=username,
            email=email,
        ),
    ]
