"""Jira webhooks to records, through the same normalizer a sync uses.

A Jira issue webhook (``jira:issue_created`` / ``jira:issue_updated``) carries the issue as the REST API
returns it (``id``, ``key``, ``fields``), the account that made the change (``user``) and, for an update,
the one changelog history the update wrote (``changelog``: ``id`` and ``items``, without its time and
author, which are the delivery's ``timestamp`` and ``user``). `collector_events` unwraps it into the raw
events the collector would have stored (``issue:ID`` with that one history embedded, ``user:ACCOUNT``),
and `normalize_webhook` runs `obeya.connectors.jira.normalizer.normalize` over them with the stored
catalogs (statuses, issue types, fields) as context. Sprint webhooks give the ``sprint:ID`` event.

A webhook holds only its own history, so what depends on the whole changelog is not taken from it:

- the ``KEY/created`` transition (its status is the one before the first status change) is kept only for
  ``jira:issue_created``; a sync makes it;
- the work item's ``started_at`` is the earliest of the stored work item's and the delivery's own
  entries into an active state (None when neither has one).

The transitions of the delivery's history have the ids a sync gives them (``KEY/HISTORY_ID/INDEX``), so
they replace each other in place.

``jira:issue_deleted`` (the issue as it was when deleted) marks the work item removed rather than
deleting rows (the model keeps history; Jira's API no longer answers for the issue, so no sync brings it
back): the `WorkItem` gets the status `DELETED_STATUS`, the flow state ``canceled``, no stage, no
``done_at`` and ``canceled_at`` the delivery's ``timestamp``, and a `StatusTransition` ``KEY/deleted``
from the status it had (the stored work item's, else the delivery's) to `DELETED_STATUS` at that time, by
the delivery's ``user``, so the derived timeline ends in ``canceled`` and the item leaves flow load,
velocity and the value stream map from then on (docs/metrics.md). The raw delivery is stored first, as
for every event.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from obeya.api.webhooks.envelopes import MalformedDelivery
from obeya.connectors.base import Normalized
from obeya.connectors.jira.collector import SOURCE, user_key
from obeya.connectors.jira.normalizer import REFERENCE_TYPES, normalize, person_id
from obeya.connectors.raw import raw_event
from obeya.model.records import RawEvent, Record, StatusTransition, WorkItem
from obeya.model.vocabulary import FlowState
from obeya.normalize.rules import MappingRules

from .github import WebhookRecords

Item = dict[str, Any]

__all__ = ["REFERENCE_TYPES", "collector_events", "normalize_webhook"]

_USER_FIELDS = ("assignee", "reporter", "creator")
DELETED_STATUS = "Deleted"
"""The status of a work item whose issue was deleted in Jira (flow state ``canceled``)."""
_FAILED = "could not normalize"

PreviousWorkItem = Callable[[str], WorkItem | None]
"""The stored work item of an id, if any."""


def _object(payload: Item, path: str, event_type: str) -> Item:
    value = payload.get(path.rsplit(".", 1)[-1])
    if not isinstance(value, dict):
        raise MalformedDelivery(f"body.{path} of the {event_type} event is not an object")
    return value


def _history(payload: Item, event_type: str) -> Item | None:
    """The delivery's changelog as a REST changelog history (None when the update wrote none)."""
    changelog = payload.get("changelog")
    if changelog is None:
        return None
    if not isinstance(changelog, dict) or not isinstance(changelog.get("items"), list):
        raise MalformedDelivery(f"body.changelog of the {event_type} event has no list of items")
    if changelog.get("id") is None:
        raise MalformedDelivery(f"body.changelog.id is missing from the {event_type} event")
    at = datetime.fromtimestamp(int(payload["timestamp"]) / 1000, UTC)
    return {
        "id": str(changelog["id"]),
        "created": at.isoformat(timespec="milliseconds"),
        "author": payload.get("user"),
        "items": changelog["items"],
    }


def collector_events(
    event_type: str, payload: Item, *, connection: str | None, received_at: datetime
) -> list[RawEvent]:
    """The raw events the collector would store for the objects of one webhook (not to be stored).

    Raises `MalformedDelivery` when the webhook's object is not there to unwrap. A deletion gives the
    issue as it was (`normalize_webhook` marks its work item removed).
    """

    def event(kind: str, key: str, item: Any) -> RawEvent:
        return raw_event(SOURCE, kind, key, item, connection=connection, received_at=received_at)

    if event_type.startswith("sprint_"):
        sprint = _object(payload, "sprint", event_type)
        if sprint.get("id") is None:
            raise MalformedDelivery(f"body.sprint.id is missing from the {event_type} event")
        return [event("sprint", str(sprint["id"]), sprint)]
    issue = _object(payload, "issue", event_type)
    fields = _object(issue, "issue.fields", event_type) if "fields" in issue else None
    if fields is None or issue.get("id") is None:
        raise MalformedDelivery(f"body.issue of the {event_type} event has no id or no fields")
    history = _history(payload, event_type)
    item = {**issue, "changelog": {"histories": [history] if history else [], "total": 1 if history else 0}}
    events = [event("issue", str(issue["id"]), item)]
    for user in [*(fields.get(name) for name in _USER_FIELDS), payload.get("user")]:
        key = user_key(user)
        if key:
            events.append(event("user", key, user))
    by_id = {e.id: e for e in events}
    return list(by_id.values())


def _started_at(records: list[Record], previous: WorkItem | None, keep_created: bool) -> datetime | None:
    entries = [
        r.at
        for r in records
        if isinstance(r, StatusTransition)
        and r.to_flow_state is FlowState.ACTIVE
        and (keep_created or not r.external_id.endswith("/created"))
    ]
    if previous is not None and previous.started_at is not None:
        entries.append(previous.started_at)
    return min(entries) if entries else None


def _records(
    delivery: RawEvent, normalized: Normalized, previous: PreviousWorkItem, keep_created: bool
) -> WebhookRecords:
    records: list[Record] = []
    for record in normalized.records:
        if (
            isinstance(record, StatusTransition)
            and not keep_created
            and record.external_id.endswith("/created")
        ):
            continue
        if isinstance(record, WorkItem):
            started = _started_at(normalized.records, previous(record.id), keep_created)
            record = record.model_copy(update={"started_at": started})
        records.append(record.model_copy(update={"raw_event_id": delivery.id}))
    result = WebhookRecords(records=records)
    for raw_id, reason in normalized.skipped:
        (result.failures if reason.startswith(_FAILED) else result.skipped).append(f"{raw_id}: {reason}")
    return result


def normalize_webhook(
    delivery: RawEvent,
    payload: Item,
    rules: MappingRules,
    context: Sequence[RawEvent] = (),
    previous: PreviousWorkItem = lambda _id: None,
) -> WebhookRecords:
    """The records of one Jira delivery (`delivery` is its stored raw event), pointing at it.

    `context` holds the stored catalogs; `previous` finds the stored work item (for ``started_at``).
    Raises `MalformedDelivery` on a payload it cannot unwrap.
    """
    events = collector_events(
        delivery.event_type, payload, connection=delivery.connection, received_at=delivery.received_at
    )
    normalized = normalize(events, rules, context)
    created = delivery.event_type == "jira:issue_created"
    result = _records(delivery, normalized, previous, keep_created=created)
    if delivery.event_type == "jira:issue_deleted":
        result.records = _removed(delivery, payload, result.records, previous)
    return result


def _removed(
    delivery: RawEvent, payload: Item, records: list[Record], previous: PreviousWorkItem
) -> list[Record]:
    """The records of a deleted issue: its work item canceled as `DELETED_STATUS`, with the transition."""
    at = datetime.fromtimestamp(int(payload["timestamp"]) / 1000, UTC)
    marked: list[Record] = []
    for record in records:
        if not isinstance(record, WorkItem):
            marked.append(record)
            continue
        before = previous(record.id) or record
        marked.append(
            record.model_copy(
                update={
                    "status": DELETED_STATUS,
                    "flow_state": FlowState.CANCELED,
                    "stage": None,
                    "done_at": None,
                    "canceled_at": at,
                    "updated_at": at,
                }
            )
        )
        marked.append(
            StatusTransition(
                source=SOURCE,
                external_id=f"{record.key}/deleted",
                raw_event_id=delivery.id,
                work_item_id=record.id,
                at=at,
                from_status=before.status,
                to_status=DELETED_STATUS,
                from_flow_state=before.flow_state,
                to_flow_state=FlowState.CANCELED,
                from_stage=before.stage,
                to_stage=None,
                author_id=person_id(payload.get("user")),
            )
        )
    return marked
