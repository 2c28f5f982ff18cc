"""Where PagerDuty incidents become `Incident` records and their responders `Person`s: pure functions.

Record ids, under source ``pagerduty``: ``INCIDENT_ID`` (Incident), ``user/ID`` (Person, Identity).

- severity: the incident's priority (``P1``..``P5``) when the account uses priorities, else its urgency,
  through the connection's `severity:` map and then `DEFAULT_SEVERITY`; the raw values are kept in the
  labels (``priority:P1``, ``urgency:high``);
- status: ``triggered`` → ``open``, ``acknowledged``, ``resolved``;
- acknowledged: the first ``acknowledge_log_entry`` (else the first current acknowledgement); resolved: the
  incident's ``resolved_at``, else its last ``resolve_log_entry``, else its last status change — only for
  incidents resolved now (a re-triggered incident is open again);
- change_caused: False when the service (name or id) or a label is in the connection's
  `not_change_caused`, else unknown (None: not ruled out).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from obeya.connectors.base import Normalized
from obeya.connectors.incidents import SETTINGS, IncidentSettings, person, settings_of
from obeya.connectors.pagerduty.collector import SOURCE
from obeya.connectors.times import parse_time
from obeya.model.records import Incident, RawEvent, Record
from obeya.normalize.rules import MappingRules

DEFAULT_SEVERITY = {
    "P1": "sev1",
    "P2": "sev2",
    "P3": "sev3",
    "P4": "sev4",
    "P5": "sev4",
    "high": "sev2",
    "low": "sev3",
}
"""PagerDuty priority (default names) or urgency → severity."""

STATUSES = {"triggered": "open", "acknowledged": "acknowledged", "resolved": "resolved"}
Item = dict[str, Any]


def incident(
    item: Item, log_entries: Sequence[Item], settings: IncidentSettings, raw_event_id: str
) -> Incident:
    """The `Incident` of a PagerDuty incident and its log entries."""
    service = item.get("service") or {}
    service_name = service.get("summary") or service.get("name") or service.get("id")
    priority = item.get("priority") or {}
    priority_name = priority.get("summary") or priority.get("name")
    urgency = item.get("urgency")
    labels = [f"priority:{priority_name}"] if priority_name else []
    labels += [f"urgency:{urgency}"] if urgency else []
    labels += [f"team:{t.get('summary')}" for t in item.get("teams") or [] if t.get("summary")]
    severity = settings.severity_of(priority_name, DEFAULT_SEVERITY) or settings.severity_of(
        urgency, DEFAULT_SEVERITY
    )
    status = str(item.get("status") or "triggered")
    entries = sorted(log_entries, key=lambda e: str(e.get("created_at")))
    acknowledged = [e.get("created_at") for e in entries if e.get("type") == "acknowledge_log_entry"]
    acknowledged += sorted(str(a["at"]) for a in item.get("acknowledgements") or [] if a.get("at"))
    acknowledged_at = parse_time(acknowledged[0]) if acknowledged else None
    resolved = None
    if status == "resolved":
        resolves = [parse_time(e.get("created_at")) for e in entries if e.get("type") == "resolve_log_entry"]
        resolved = (
            parse_time(item.get("resolved_at"))
            or (resolves[-1] if resolves else None)
            or parse_time(item.get("last_status_change_at"))
        )
    created = parse_time(item.get("created_at"))
    if created is None:
        raise ValueError("the incident has no created_at")
    return Incident(
        source=SOURCE,
        external_id=str(item["id"]),
        raw_event_id=raw_event_id,
        title=str(item.get("title") or item.get("summary") or item["id"]),
        service=service_name,
        severity=severity,
        status=STATUSES.get(status, status),
        created_at=created,
        acknowledged_at=acknowledged_at,
        resolved_at=resolved,
        change_caused=settings.change_caused([service_name, service.get("id")], labels),
        labels=labels,
        url=item.get("html_url"),
    )


def normalize(
    events: Sequence[RawEvent], rules: MappingRules | None = None, context: Sequence[RawEvent] = ()
) -> Normalized:
    """The records of PagerDuty raw events; an incident's log entries must be among `events` with it (the
    collector stores them in one page), the connection's settings among `events` or `context`."""
    settings = settings_of(events, context)
    entries: dict[str, list[Item]] = defaultdict(list)
    for event in events:
        if event.event_type == "log_entry":
            entry = json.loads(event.payload)
            incident_id = (entry.get("incident") or {}).get("id")
            if incident_id:
                entries[str(incident_id)].append(entry)
    result = Normalized()
    for event in events:
        try:
            item = json.loads(event.payload)
            records: list[Record]
            if event.event_type == "incident":
                records = [incident(item, entries.get(str(item["id"]), []), settings, event.id)]
            elif event.event_type == "user":
                name = str(item.get("summary") or item.get("name") or item["id"])
                records = person(SOURCE, SOURCE, str(item["id"]), name, event.id, email=item.get("email"))
            elif event.event_type in ("log_entry", SETTINGS):
                records = []  # part of its incident / the rules
            else:
                result.skipped.append((event.id, f"no normalizer for {event.event_type!r}"))
                continue
        except (ValidationError, ValueError, KeyError, TypeError) as error:
            result.skipped.append((event.id, f"could not normalize: {type(error).__name__}: {error}"[:500]))
            continue
        result.records.extend(records)
        result.normalized_events += 1
    return result
