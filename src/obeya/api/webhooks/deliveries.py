"""The delivery ledger: each delivery stored once, with a note of what became of it.

A delivery is a `RawEvent` with ``source`` = the tool and ``external_id`` = ``delivery_id`` = the tool's
delivery id. It is inserted only if absent, in a transaction of its own, so a redelivery never rewrites it.

What became of it is a second, small `RawEvent`: ``source`` ``obeya``, ``external_id``
``webhooks/{tool}/{delivery id}``, ``event_type`` ``webhook.{outcome}``, ``raw_event_id`` = the delivery's
raw event, and a JSON payload with the outcome, the record counts, the error or unknown scope, and how many
times the tool redelivered it. A delivery without a note was stored but its answer never computed (the
process stopped in between): the status endpoint counts it as pending.

Writes go through one writer at a time (see `_GroupCommit`): DuckDB aborts concurrent transactions that
replace the same rows (two deliveries naming the same account), one writer keeps the insert-if-absent
atomic on an engine without a unique index, and sharing commits between concurrent requests is what lets
one DuckDB file take hundreds of deliveries a second.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
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


@dataclass
class _Batch:
    """What the operations of one group commit write together when they are done."""

    records: list[Record] = field(default_factory=list)
    notes: dict[str, RawEvent] = field(default_factory=dict)
    settled: set[str] = field(default_factory=set)  # notes whose stored redelivery count must be kept


_Operation = Callable[[_Batch], Any]


class _GroupCommit:
    """Runs the writes of concurrent requests in shared transactions, each request waiting for its commit.

    A request queues its operation and takes the writer lock; if an earlier writer has committed it
    meanwhile it returns at once, else it runs every queued operation in one transaction. Under load the
    requests that queued during one commit share the next, so a commit (an fsync on DuckDB) is paid per
    batch rather than per delivery. If a shared transaction fails, each of its operations is retried alone,
    so one bad delivery cannot fail the others.
    """

    def __init__(self, store: Store, flush: Callable[[_Batch], None]) -> None:
        self._store = store
        self._flush = flush
        self._queue: list[tuple[_Operation, Future[Any]]] = []
        self._queue_lock = threading.Lock()
        self._writer = threading.Lock()

    def run(self, operation: _Operation) -> Any:
        """Run `operation` in a committed transaction (shared with others); its result."""
        future: Future[Any] = Future()
        with self._queue_lock:
            self._queue.append((operation, future))
        with self._writer:
            if not future.done():
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._commit(batch)
        return future.result()

    def _transaction(self, batch: list[tuple[_Operation, Future[Any]]]) -> list[Any]:
        shared = _Batch()
        with self._store.transaction():
            results = [operation(shared) for operation, _ in batch]
            self._flush(shared)
        return results

    def _commit(self, batch: list[tuple[_Operation, Future[Any]]]) -> None:
        try:
            results = self._transaction(batch)
        except Exception as error:
            if len(batch) == 1:
                batch[0][1].set_exception(error)
                return
            for item in batch:
                try:
                    (result,) = self._transaction([item])
                except Exception as alone:
                    item[1].set_exception(alone)
                else:
                    item[1].set_result(result)
            return
        for (_, future), result in zip(batch, results, strict=True):
            future.set_result(result)


def _note_event(
    delivery: RawEvent, tool: str, outcome: str, content: dict[str, Any], at: datetime
) -> RawEvent:
    payload = orjson.dumps(content, option=orjson.OPT_SORT_KEYS).decode()
    return RawEvent(
        source=NOTE_SOURCE,
        external_id=note_external_id(tool, str(delivery.delivery_id)),
        raw_event_id=delivery.id,
        event_type=f"webhook.{outcome}",
        delivery_id=delivery.delivery_id,
        connection=delivery.connection,
        received_at=at,
        payload_hash=hashlib.sha256(payload.encode()).hexdigest(),
        payload=payload,
    )


def _rewrite(note: RawEvent, content: dict[str, Any]) -> RawEvent:
    payload = orjson.dumps(content, option=orjson.OPT_SORT_KEYS).decode()
    return note.model_copy(
        update={"payload": payload, "payload_hash": hashlib.sha256(payload.encode()).hexdigest()}
    )


class DeliveryLedger:
    """Stores deliveries once and keeps a note of each one's outcome, in one store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._group = _GroupCommit(store, self._flush)
        spec = TABLES["raw_event"]
        self._columns = spec.column_names
        names = ", ".join(f'"{c}"' for c in self._columns)
        values = ", ".join("CAST(? AS TIMESTAMP)" if c == "received_at" else "?" for c in self._columns)
        conflict = " ON CONFLICT (id) DO NOTHING" if store.dialect == "postgresql" else ""
        # One statement, portable to both engines: insert unless a row with the id is stored already,
        # and say whether it did. PostgreSQL's unique key also guards against other processes.
        self._insert = (
            f'INSERT INTO "{spec.name}" ({names}) SELECT {values} '
            f'WHERE NOT EXISTS (SELECT 1 FROM "{spec.name}" WHERE id = ?){conflict} RETURNING id'
        )

    def store_new(self, delivery: RawEvent) -> bool:
        """Store a delivery unless one with its id is stored; whether it was new. Committed on return."""
        row = TABLES["raw_event"].to_row(delivery)
        params = [row[c] for c in self._columns] + [delivery.id]

        def insert(_: _Batch) -> bool:
            return bool(self.store.query(self._insert, params))

        return bool(self._group.run(insert))

    def _stored_notes(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        placeholders = ", ".join("?" for _ in ids)
        rows = self.store.query(f"SELECT id, payload FROM raw_events WHERE id IN ({placeholders})", ids)
        return {str(i): orjson.loads(p) for i, p in rows}

    def _flush(self, batch: _Batch) -> None:
        previous = self._stored_notes(sorted(batch.settled))
        for note_id, content in previous.items():
            count = int(content.get("redeliveries", 0))
            note = batch.notes[note_id]
            mine = orjson.loads(note.payload)
            if count > int(mine.get("redeliveries", 0)):
                batch.notes[note_id] = _rewrite(note, {**mine, "redeliveries": count})
        self.store.upsert_records([*batch.records, *batch.notes.values()])

    def settle(
        self,
        delivery: RawEvent,
        tool: str,
        outcome: Outcome,
        at: datetime,
        *,
        records: list[Record] | None = None,
        detail: dict[str, Any] | None = None,
    ) -> Counter[str]:
        """Write a delivery's records and its outcome note in one transaction; the records counted."""
        written = Counter(r.kind for r in records or [])
        note_id = record_id(NOTE_SOURCE, note_external_id(tool, str(delivery.delivery_id)))

        def write(batch: _Batch) -> None:
            earlier = batch.notes.get(note_id)
            content = {
                "tool": tool,
                "delivery_id": delivery.delivery_id,
                "event_type": delivery.event_type,
                "outcome": outcome,
                "records": dict(sorted(written.items())),
                "redeliveries": int(orjson.loads(earlier.payload).get("redeliveries", 0)) if earlier else 0,
                **(detail or {}),
            }
            batch.records.extend(records or [])
            batch.notes[note_id] = _note_event(delivery, tool, outcome, content, at)
            batch.settled.add(note_id)

        self._group.run(write)
        return written

    def count_redelivery(self, delivery: RawEvent, tool: str, at: datetime) -> dict[str, Any]:
        """Count one more redelivery of a stored delivery; the note as it now stands."""
        note_id = record_id(NOTE_SOURCE, note_external_id(tool, str(delivery.delivery_id)))

        def count(batch: _Batch) -> dict[str, Any]:
            note = batch.notes.get(note_id)
            if note is None:
                found = self.store.fetch_records("raw_event", "id = ?", [note_id])
                note = found[0] if found and isinstance(found[0], RawEvent) else None
            outcome = note.event_type.removeprefix("webhook.") if note else "pending"
            content: dict[str, Any] = {
                "tool": tool,
                "delivery_id": delivery.delivery_id,
                "event_type": delivery.event_type,
                "outcome": outcome,
                **(orjson.loads(note.payload) if note else {}),
            }
            content["redeliveries"] = int(content.get("redeliveries", 0)) + 1
            stamp = note.received_at if note else at
            batch.notes[note_id] = _note_event(delivery, tool, outcome, content, stamp)
            return content

        result: dict[str, Any] = self._group.run(count)
        return result

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
