"""PagerDuty v3 webhooks to records, through the same normalizer a sync uses.

An ``incident.*`` webhook carries the incident in ``event.data`` in the REST API's shape (``id``,
``title``, ``status``, ``service``, ``created_at``, ``urgency``, ``priority``, ``teams``, ``html_url``),
but not when it was acknowledged or resolved: that is the event's own ``occurred_at``, and ``agent`` is
who did it. `collector_events` turns it into the raw events the collector would have stored: the
``incident:ID`` item, and for ``incident.acknowledged`` / ``incident.resolved`` an ``acknowledge_log_entry``
/ ``resolve_log_entry`` at ``occurred_at`` by the agent (with the acknowledgement the stored incident
already has, so a later delivery does not lose it), plus the agent as a ``user``. `normalize_webhook`
runs `obeya.connectors.pagerduty.normalizer.normalize` over them with the connection's stored incident
settings (severity map, ``not_change_caused``) as context; the records point at the delivery.

Events other than ``incident.*`` are ignored by the receiver before they get here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from obeya.api.webhooks.envelopes import MalformedDelivery
from obeya.connectors.incidents import SETTINGS
from obeya.connectors.pagerduty.collector import SOURCE
from obeya.connectors.pagerduty.normalizer import normalize
from obeya.connectors.raw import raw_event
from obeya.model.ids import record_id
from obeya.model.records import Incident, RawEvent, Record
from obeya.normalize.rules import MappingRules

from .github import WebhookRecords

__all__ = ["SETTINGS", "collector_events", "normalize_webhook"]

Item = dict[str, Any]

PreviousIncident = Callable[[str], Incident | None]
"""The stored incident of an id, if any."""

_FAILED = "could not normalize"
_LOG_ENTRIES = {
    "incident.acknowledged": "acknowledge_log_entry",
    "incident.resolved": "resolve_log_entry",
}


def _is_user(reference: Any) -> bool:
    return (
        isinstance(reference, dict)
        and bool(reference.get("id"))
        and str(reference.get("type", "")).startswith("user")
    )


def collector_events(
    payload: Item,
    *,
    connection: str | None,
    received_at: datetime,
    previous: PreviousIncident = lambda _id: None,
) -> list[RawEvent]:
    """The raw events the collector would store for the incident of one webhook (not to be stored).

    Raises `MalformedDelivery` when ``event.data`` is not an incident with an id.
    """
    event = payload["event"]
    event_type = str(event["event_type"])
    data = event.get("data")
    if not isinstance(data, dict) or not data.get("id") or data.get("type", "incident") != "incident":
        raise MalformedDelivery(f"body.event.data of the {event_type} event is not an incident with an id")
    incident_id = str(data["id"])
    occurred_at = str(event["occurred_at"])
    agent = event.get("agent")

    def raw(kind: str, key: str, item: Any) -> RawEvent:
        return raw_event(SOURCE, kind, key, item, connection=connection, received_at=received_at)

    item = dict(data)
    stored = previous(record_id(SOURCE, incident_id))
    if stored is not None and stored.acknowledged_at is not None and not item.get("acknowledgements"):
        item["acknowledgements"] = [{"at": stored.acknowledged_at.isoformat()}]
    events = [raw("incident", incident_id, item)]
    entry_type = _LOG_ENTRIES.get(event_type)
    if entry_type == "acknowledge_log_entry" and item.get("acknowledgements"):
        entry_type = None  # acknowledged before: the first acknowledgement is the one kept
    if entry_type is not None:
        entry = {
            "id": f"webhook-{event['id']}",
            "type": entry_type,
            "created_at": occurred_at,
            "agent": agent,
            "incident": {"id": incident_id, "type": "incident_reference"},
        }
        events.append(raw("log_entry", str(entry["id"]), entry))
    references: list[Any] = [a.get("assignee") for a in item.get("assignments") or [] if isinstance(a, dict)]
    references += [agent]
    events.extend(raw("user", str(r["id"]), r) for r in references if _is_user(r))
    return list({e.id: e for e in events}.values())


def normalize_webhook(
    delivery: RawEvent,
    payload: Item,
    rules: MappingRules,
    context: Sequence[RawEvent] = (),
    previous: PreviousIncident = lambda _id: None,
) -> WebhookRecords:
    """The records of one PagerDuty delivery (`delivery` is its stored raw event), pointing at it.

    `context` holds the connection's stored incident settings; `previous` finds the stored incident.
    Raises `MalformedDelivery` on a payload it cannot unwrap.
    """
    events = collector_events(
        payload, connection=delivery.connection, received_at=delivery.received_at, previous=previous
    )
    normalized = normalize(events, rules, context)
    records: list[Record] = [r.model_copy(update={"raw_event_id": delivery.id}) for r in normalized.records]
    result = WebhookRecords(records=records)
    for raw_id, reason in normalized.skipped:
        (result.failures if reason.startswith(_FAILED) else result.skipped).append(f"{raw_id}: {reason}")
    return result
