"""Where Opsgenie incidents become `Incident` records and its users `Person`s: pure functions.

Record ids, under source ``opsgenie``: ``INCIDENT_ID`` (Incident), ``user/ID`` (Person, Identity).

- service: the first impacted service's name from the ``services`` catalog (its id when the catalog does
  not have it); every impacted service is also a ``service:NAME`` label;
- severity: the priority ``P1``..``P5`` through the connection's `severity:` map, then `DEFAULT_SEVERITY`;
  the raw value is kept as the label ``priority:P3``; the incident's tags are labels too, and its
  responder / owner teams ``team:NAME``;
- status: ``open``, ``resolved``, ``closed``; created: ``createdAt``; resolved: ``impactEndDate`` (else
  ``updatedAt``) of a resolved or closed incident; acknowledged: the ``eventTime`` of the earliest
  ``ResponderAlertAcked`` entry of the incident's timeline (a responder acknowledged the incident's
  alert; Opsgenie incidents have no acknowledged state of their own), unknown without a timeline;
- change_caused: False when a service (name or id) or a label is in the connection's `not_change_caused`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from obeya.connectors.base import Normalized
from obeya.connectors.incidents import SETTINGS, IncidentSettings, person, settings_of
from obeya.connectors.opsgenie.collector import SOURCE
from obeya.connectors.raw import event_key
from obeya.connectors.times import parse_time
from obeya.model.records import Incident, RawEvent, Record
from obeya.normalize.rules import MappingRules

DEFAULT_SEVERITY = {"P1": "sev1", "P2": "sev2", "P3": "sev3", "P4": "sev4", "P5": "sev4"}
"""Opsgenie priority → severity."""
REFERENCE_TYPES = (SETTINGS, "service", "team")
ACKNOWLEDGED_ENTRY = "ResponderAlertAcked"
"""The timeline entry type of an acknowledgement of the incident's alert."""
Item = dict[str, Any]


def acknowledged_at(entries: Any) -> datetime | None:
    """The time of the earliest `ACKNOWLEDGED_ENTRY` among an incident's timeline entries, if any."""
    listed = entries if isinstance(entries, list) else []
    times = [
        parse_time(e.get("eventTime"))
        for e in listed
        if isinstance(e, dict) and e.get("type") == ACKNOWLEDGED_ENTRY
    ]
    found = [t for t in times if t is not None]
    return min(found) if found else None


def incident(
    item: Item,
    names: dict[str, dict[str, str]],
    settings: IncidentSettings,
    raw_event_id: str,
    acknowledged: datetime | None = None,
) -> Incident:
    """The `Incident` of an Opsgenie incident; `names` maps service and team ids to their names;
    `acknowledged` is the first acknowledgement its timeline records."""
    service_ids = [str(s) for s in item.get("impactedServices") or []]
    services = [names["service"].get(s, s) for s in service_ids]
    priority = item.get("priority")
    labels = [f"priority:{priority}"] if priority else []
    labels += [str(tag) for tag in item.get("tags") or []]
    labels += [f"service:{name}" for name in services]
    team_ids = [str(r.get("id")) for r in item.get("responders") or [] if r.get("type") == "team"]
    if item.get("ownerTeam"):
        team_ids.insert(0, str(item["ownerTeam"]))
    labels += [f"team:{names['team'].get(t, t)}" for t in dict.fromkeys(team_ids)]
    status = str(item.get("status") or "open")
    created = parse_time(item.get("createdAt"))
    if created is None:
        raise ValueError("the incident has no createdAt")
    resolved = None
    if status in ("resolved", "closed"):
        resolved = parse_time(item.get("impactEndDate")) or parse_time(item.get("updatedAt"))
    return Incident(
        source=SOURCE,
        external_id=str(item["id"]),
        raw_event_id=raw_event_id,
        title=str(item.get("message") or item["id"]),
        service=services[0] if services else None,
        severity=settings.severity_of(str(priority) if priority else None, DEFAULT_SEVERITY),
        status=status,
        created_at=created,
        acknowledged_at=acknowledged,
        resolved_at=resolved,
        change_caused=settings.change_caused([*services, *service_ids], labels),
        labels=labels,
        url=(item.get("links") or {}).get("web"),
    )


def normalize(
    events: Sequence[RawEvent], rules: MappingRules | None = None, context: Sequence[RawEvent] = ()
) -> Normalized:
    """The records of Opsgenie raw events; the catalogs (services, teams) and the connection's settings
    are read from `events` and the stored `context`, an incident's acknowledgement from its timeline among
    `events` (the collector stores them in one batch; replay reads them together)."""
    settings = settings_of(events, context)
    names: dict[str, dict[str, str]] = {"service": {}, "team": {}}
    for event in [*context, *events]:
        if event.event_type in names:
            item = json.loads(event.payload)
            if item.get("id") and item.get("name"):
                names[event.event_type][str(item["id"])] = str(item["name"])
    acknowledgements: dict[str, datetime | None] = {}
    for event in events:
        if event.event_type == "incident_timeline":
            acknowledgements[event_key(event)] = acknowledged_at(json.loads(event.payload))
    result = Normalized()
    for event in events:
        try:
            item = json.loads(event.payload)
            records: list[Record]
            if event.event_type == "incident":
                ack = acknowledgements.get(str(item["id"]))
                records = [incident(item, names, settings, event.id, ack)]
            elif event.event_type == "user":
                username = item.get("username")
                email = username if isinstance(username, str) and "@" in username else None
                name = str(item.get("fullName") or username or item["id"])
                records = person(
                    SOURCE, SOURCE, str(item["id"]), name, event.id, email=email, username=username
                )
            elif event.event_type in (*REFERENCE_TYPES, "incident_timeline"):
                records = []  # reference data, or part of its incident
            else:
                result.skipped.append((event.id, f"no normalizer for {event.event_type!r}"))
                continue
        except (ValidationError, ValueError, KeyError, TypeError) as error:
            result.skipped.append((event.id, f"could not normalize: {type(error).__name__}: {error}"[:500]))
            continue
        result.records.extend(records)
        result.normalized_events += 1
    return result
