"""The delivery ledger: each delivery stored once, with a note of what became of it.

A delivery is a `RawEvent` with ``source`` = the tool and ``external_id`` = ``delivery_id`` = the tool's
delivery id. `store_new` inserts the deliveries of a group in one statement, each only if its id is not
stored yet, so a redelivery never rewrites it.

What became of a delivery is a second, small `RawEvent`: ``source`` ``obeya``, ``external_id``
``webhooks/{tool}/{delivery id}``, ``event_type`` ``webhook.{outcome}``, ``raw_event_id`` = the delivery's
raw event, and a JSON payload with the outcome, the record counts, the error or unknown scope, and how many
times the tool redelivered it. `settle` writes the records of a batch of deliveries and their notes in one
transaction. A delivery without a note (or with a ``webhook.pending`` one, made by a redelivery that came
first) is stored but not settled yet: the status endpoint counts it as pending, and `unsettled` finds it
again after a restart.

The ledger does not serialize writers itself: the receiver's intake is the only writer of deliveries and
its worker the only writer of notes (see `obeya.api.webhooks.intake` and `.worker`).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import orjson

from obeya.model.ids import record_id
from obeya.model.records import RawEvent, Record
from obeya.model.schema import TABLES
from obeya.store.base import Store

NOTE_SOURCE = "obeya"
NOTE_PREFIX = "webhooks/"
Outcome = Literal["normalized", "stored", "ignored", "unknown_scope", "failed", "pending"]
OUTCOMES: tuple[Outcome, ...] = ("normalized", "stored", "ignored", "unknown_scope", "failed", "pending")


def note_external_id(tool: str, delivery_id: str) -> str:
    """The external id of the note about one delivery."""
    return f"{NOTE_PREFIX}{tool}/{delivery_id}"


def note_id(tool: str, delivery_id: str) -> str:
    """The id of the note about one delivery."""
    return record_id(NOTE_SOURCE, note_external_id(tool, delivery_id))


@dataclass(frozen=True)
class SourceStatus:
    """What one source's receiver has taken, from the stored raw events."""

    received: int = 0
    duplicates: int = 0
    normalized: int = 0
    stored_raw_only: int = 0
    ignored: int = 0
    unknown_scope: int = 0
    normalization_failures: int = 0
    pending: int = 0
    last_received_at: datetime | None = None


@dataclass(frozen=True)
class Settlement:
    """What became of one stored delivery: its outcome, the records it gave, and details for its note."""

    delivery: RawEvent
    outcome: Outcome
    records: list[Record] = field(default_factory=list)
    detail: dict[str, Any] | None = None


@dataclass(frozen=True)
class Redelivery:
    """One more copy of a stored delivery, to count on its note."""

    delivery: RawEvent


@dataclass(frozen=True)
class DeliveryOutcome:
    """A stored delivery and what became of it so far (``pending`` until its note says otherwise)."""

    delivery: RawEvent
    outcome: str
    note: dict[str, Any]


def _payload(content: dict[str, Any]) -> tuple[str, str]:
    text = orjson.dumps(content, option=orjson.OPT_SORT_KEYS).decode()
    return text, hashlib.sha256(text.encode()).hexdigest()


def _note_event(delivery: RawEvent, outcome: str, content: dict[str, Any], at: datetime) -> RawEvent:
    payload, payload_hash = _payload(content)
    return RawEvent(
        source=NOTE_SOURCE,
        external_id=note_external_id(delivery.source, str(delivery.delivery_id)),
        raw_event_id=delivery.id,
        event_type=f"webhook.{outcome}",
        delivery_id=delivery.delivery_id,
        connection=delivery.connection,
        received_at=at,
        payload_hash=payload_hash,
        payload=payload,
    )


@dataclass
class _Note:
    outcome: str
    content: dict[str, Any]
    at: datetime


class DeliveryLedger:
    """Stores deliveries once and keeps a note of each one's outcome, in one store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._columns = TABLES["raw_event"].column_names
        self._inserts: dict[int, str] = {}

    def _insert_sql(self, rows: int) -> str:
        """One statement, portable to both engines: insert the rows whose id is not stored, say which.

        PostgreSQL's unique key also guards against other processes (``ON CONFLICT DO NOTHING``).
        """
        sql = self._inserts.get(rows)
        if sql is None:
            names = ", ".join(f'"{c}"' for c in self._columns)
            one = ", ".join("CAST(? AS TIMESTAMP)" if c == "received_at" else "?" for c in self._columns)
            values = ", ".join(f"({one})" for _ in range(rows))
            conflict = " ON CONFLICT (id) DO NOTHING" if self.store.dialect == "postgresql" else ""
            sql = (
                f"INSERT INTO raw_events ({names}) SELECT {names} FROM (VALUES {values}) AS new ({names}) "
                f"WHERE NOT EXISTS (SELECT 1 FROM raw_events stored WHERE stored.id = new.id){conflict} "
                "RETURNING id"
            )
            self._inserts[rows] = sql
        return sql

    def store_new(self, deliveries: list[RawEvent]) -> list[bool]:
        """Store the deliveries whose id is not stored yet, in one transaction committed on return; per
        delivery, whether it was new (a second copy of an id in `deliveries` is not)."""
        first: dict[str, RawEvent] = {}
        for delivery in deliveries:
            first.setdefault(delivery.id, delivery)
        spec = TABLES["raw_event"]
        params: list[Any] = []
        for delivery in first.values():
            row = spec.to_row(delivery)
            params.extend(row[c] for c in self._columns)
        with self.store.transaction():
            inserted = {str(r[0]) for r in self.store.query(self._insert_sql(len(first)), params)}
        return [d.id in inserted and first[d.id] is d for d in deliveries]

    def _stored_notes(self, ids: list[str]) -> dict[str, _Note]:
        if not ids:
            return {}
        placeholders = ", ".join("?" for _ in ids)
        rows = self.store.query(
            f"SELECT id, event_type, payload, received_at FROM raw_events WHERE id IN ({placeholders})", ids
        )
        return {
            str(i): _Note(str(event_type).removeprefix("webhook."), orjson.loads(payload), at)
            for i, event_type, payload, at in rows
        }

    def outcomes(self, deliveries: list[RawEvent]) -> list[str]:
        """What became of each stored delivery so far (``pending`` while it has no note)."""
        ids = [note_id(d.source, str(d.delivery_id)) for d in deliveries]
        notes = self._stored_notes(sorted(set(ids)))
        return [notes[i].outcome if i in notes else "pending" for i in ids]

    def settle(self, items: list[Settlement | Redelivery], at: datetime) -> Counter[str]:
        """Write the settled deliveries' records and their notes in one transaction, in `items`' order
        (a settlement keeps the redeliveries counted before it); the rows written per kind."""
        keys = [note_id(i.delivery.source, str(i.delivery.delivery_id)) for i in items]
        records: list[Record] = []
        with self.store.transaction():
            notes = self._stored_notes(sorted(set(keys)))
            touched: dict[str, RawEvent] = {}
            for key, item in zip(keys, items, strict=True):
                delivery = touched[key] = item.delivery
                known = notes.get(key)
                redeliveries = int(known.content.get("redeliveries", 0)) if known else 0
                if isinstance(item, Redelivery):
                    if known is None:
                        known = _Note("pending", self._content(delivery, "pending", Counter()), at)
                    notes[key] = _Note(
                        known.outcome, {**known.content, "redeliveries": redeliveries + 1}, known.at
                    )
                    continue
                content = {
                    **self._content(delivery, item.outcome, Counter(r.kind for r in item.records)),
                    "redeliveries": redeliveries,
                    **(item.detail or {}),
                }
                notes[key] = _Note(item.outcome, content, at)
                records.extend(item.records)
            written = self.store.upsert_records(
                [
                    *records,
                    *(
                        _note_event(d, notes[k].outcome, notes[k].content, notes[k].at)
                        for k, d in touched.items()
                    ),
                ]
            )
        return written

    @staticmethod
    def _content(delivery: RawEvent, outcome: str, counts: Counter[str]) -> dict[str, Any]:
        return {
            "tool": delivery.source,
            "delivery_id": delivery.delivery_id,
            "event_type": delivery.event_type,
            "outcome": outcome,
            "records": dict(sorted(counts.items())),
            "redeliveries": 0,
        }

    def unsettled(self) -> list[RawEvent]:
        """The stored deliveries with no outcome noted yet (the process stopped in between), oldest first."""
        where = (
            "delivery_id IS NOT NULL AND external_id = delivery_id AND source <> ? AND NOT EXISTS ("
            "SELECT 1 FROM raw_events note WHERE note.id = ? || raw_events.source || '/' || "
            "raw_events.delivery_id AND note.event_type <> 'webhook.pending')"
        )
        found = self.store.fetch_records("raw_event", where, [NOTE_SOURCE, f"{NOTE_SOURCE}:{NOTE_PREFIX}"])
        events = [e for e in found if isinstance(e, RawEvent)]
        return sorted(events, key=lambda e: (e.received_at, e.id))

    def delivery(self, source: str, delivery_id: str) -> DeliveryOutcome | None:
        """One stored delivery and what became of it so far; None if it was never stored."""
        found = self.store.fetch_records(
            "raw_event", "id = ? AND external_id = delivery_id", [record_id(source, delivery_id)]
        )
        if not found or not isinstance(found[0], RawEvent):
            return None
        delivery = found[0]
        note = self._stored_notes([note_id(source, delivery_id)]).get(note_id(source, delivery_id))
        if note is None:
            return DeliveryOutcome(delivery, "pending", self._content(delivery, "pending", Counter()))
        return DeliveryOutcome(delivery, note.outcome, note.content)

    def status(self) -> dict[str, SourceStatus]:
        """Per source: deliveries received, redeliveries, and outcomes, counted in the store."""
        received = self.store.query(
            "SELECT source, count(*), max(received_at) FROM raw_events "
            "WHERE delivery_id IS NOT NULL AND external_id = delivery_id AND source <> ? GROUP BY source",
            [NOTE_SOURCE],
        )
        redeliveries = (
            "CAST(json_extract_string(payload, '$.redeliveries') AS BIGINT)"
            if self.store.dialect == "duckdb"
            else "CAST(CAST(payload AS json) ->> 'redeliveries' AS BIGINT)"
        )
        notes = self.store.query(
            f"SELECT split_part(external_id, '/', 2) AS tool, event_type, count(*), "
            f"coalesce(sum({redeliveries}), 0) FROM raw_events "
            "WHERE source = ? AND external_id LIKE ? GROUP BY 1, 2",
            [NOTE_SOURCE, f"{NOTE_PREFIX}%"],
        )
        counts: dict[str, Counter[str]] = {}
        for tool, event_type, count, redelivered in notes:
            counter = counts.setdefault(str(tool), Counter())
            counter[str(event_type).removeprefix("webhook.")] += int(count)
            counter["duplicates"] += int(redelivered or 0)
        statuses: dict[str, SourceStatus] = {}
        seen: dict[str, tuple[int, datetime | None]] = {str(s): (int(n), last) for s, n, last in received}
        for tool in sorted(set(seen) | set(counts)):
            total, last = seen.get(tool, (0, None))
            c = counts.get(tool, Counter())
            settled = sum(c[o] for o in OUTCOMES if o != "pending")
            statuses[tool] = SourceStatus(
                received=total,
                duplicates=c["duplicates"],
                normalized=c["normalized"],
                stored_raw_only=c["stored"],
                ignored=c["ignored"],
                unknown_scope=c["unknown_scope"],
                normalization_failures=c["failed"],
                pending=max(total - settled, 0),
                last_received_at=last,
            )
        return statuses
