"""Raw events: a tool's answer items kept exactly as received, so records can be re-derived (replayed)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import orjson

from obeya.model.records import RawEvent


def payload_text(item: Any) -> str:
    """The item's JSON text, keys sorted, so the same answer always has the same text and hash."""
    return orjson.dumps(item, option=orjson.OPT_SORT_KEYS).decode()


def raw_event(
    source: str,
    event_type: str,
    key: str,
    item: Any,
    *,
    connection: str | None,
    received_at: datetime,
    delivery_id: str | None = None,
) -> RawEvent:
    """The raw event of one answer item; its external id ``"{event_type}:{key}"`` is stable per item."""
    payload = payload_text(item)
    return RawEvent(
        source=source,
        external_id=f"{event_type}:{key}",
        event_type=event_type,
        delivery_id=delivery_id,
        connection=connection,
        received_at=received_at,
        payload_hash=hashlib.sha256(payload.encode()).hexdigest(),
        payload=payload,
    )


def event_key(event: RawEvent) -> str:
    """The key part of a raw event's external id (after ``"{event_type}:"``)."""
    prefix = f"{event.event_type}:"
    return event.external_id[len(prefix) :] if event.external_id.startswith(prefix) else event.external_id
