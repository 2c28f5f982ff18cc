"""Sync a connection into the store, and replay its stored raw events without calling the tool.

Works for every tool of `obeya.connectors.registry`: the connection's `tool` picks the connector, which
names the resources to walk, collects them page by page and normalizes the pages.

Per page, the raw events, the records normalized from them and the resource's cursor are written in one
transaction. The cursor therefore never runs ahead of what was stored: a sync that stops half-way (crash,
network, Ctrl-C) resumes at the first page it did not store, and nothing is missing or twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from obeya.connectors.base import Collector, Connector
from obeya.connectors.config import ConnectionConfig
from obeya.connectors.http import HttpClient
from obeya.connectors.registry import connector_for, connector_for_source
from obeya.model.ids import record_id
from obeya.model.records import RawEvent, SyncCursor
from obeya.normalize.rules import MappingRules
from obeya.store.base import Store

CURSOR_SOURCE = "obeya"
Progress = Callable[[str, int], None]
"""Called after every stored page with the resource (``owner/name/pull_requests``) and its item count."""


@dataclass
class ResourceReport:
    """What one resource's sync did."""

    fetched: int = 0
    raw_events: int = 0
    normalized: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    pages: int = 0
    complete: bool = False


@dataclass
class SyncReport:
    """What a sync (or a replay) did, per resource."""

    connection: str
    resources: dict[str, ResourceReport] = field(default_factory=dict)

    def resource(self, name: str) -> ResourceReport:
        """The report of one resource (created empty on first use)."""
        return self.resources.setdefault(name, ResourceReport())

    @property
    def fetched(self) -> int:
        """Items fetched over every resource."""
        return sum(r.fetched for r in self.resources.values())

    @property
    def normalized(self) -> int:
        """Records written over every resource."""
        return sum(r.normalized for r in self.resources.values())

    @property
    def skipped(self) -> Counter[str]:
        """Skip reasons with their counts, over every resource."""
        total: Counter[str] = Counter()
        for report in self.resources.values():
            total.update(report.skipped)
        return total


def cursor_id(connection: str, resource: str) -> str:
    """The id of the `SyncCursor` of one connection's resource."""
    return record_id(CURSOR_SOURCE, f"{connection}/{resource}")


def load_cursor(store: Store, connection: str, resource: str) -> SyncCursor | None:
    """The stored cursor of a resource, if it was ever synced."""
    found = store.fetch_records("sync_cursor", "id = ?", [cursor_id(connection, resource)])
    return found[0] if found and isinstance(found[0], SyncCursor) else None


def _cursor_record(
    connection: str, resource: str, cursor: str, status: str, now: datetime, message: str | None = None
) -> SyncCursor:
    return SyncCursor(
        source=CURSOR_SOURCE,
        external_id=f"{connection}/{resource}",
        connection=connection,
        resource=resource,
        cursor=cursor,
        status=status,
        synced_at=now,
        message=message,
    )


def stored_events(store: Store, source: str, connection: str, event_types: Sequence[str]) -> list[RawEvent]:
    """The stored raw events of some types from one connection."""
    if not event_types:
        return []
    placeholders = ", ".join("?" for _ in event_types)
    return [
        e
        for e in store.fetch_records(
            "raw_event",
            # webhook deliveries (with a delivery id) carry another payload shape: the receiver
            # normalizes them; replay rebuilds from the API answers
            f"source = ? AND connection = ? AND delivery_id IS NULL AND event_type IN ({placeholders})",
            [source, connection, *event_types],
        )
        if isinstance(e, RawEvent)
    ]


def sync(
    store: Store,
    connection: ConnectionConfig,
    full: bool = False,
    progress: Progress | None = None,
    *,
    rules: MappingRules | None = None,
    client: HttpClient | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> SyncReport:
    """Fetch what changed in the connection's tool since the last sync (everything when `full`).

    `client` defaults to one built from the connection (credentials from the environment variables it
    names). A failure stops the sync with the error; the resource's cursor is marked failed with the
    message, and pages stored before it stay stored, so the next run resumes.
    """
    rules = rules or MappingRules()
    connector = connector_for(connection.tool)
    own_client = client is None
    http = client or connector.client(connection)
    collector = connector.collector(http, connection, clock)
    report = SyncReport(connection.name)
    try:
        for resource in connector.resources(connection):
            stored = load_cursor(store, connection.name, resource)
            try:
                _sync_resource(
                    store,
                    connector,
                    collector,
                    connection.name,
                    resource,
                    stored.cursor if stored else None,
                    full,
                    rules,
                    report,
                    progress,
                    clock,
                )
            except Exception as error:
                latest = load_cursor(store, connection.name, resource)
                kept = connector.parse_cursor(latest.cursor if latest else None).dumps()
                with store.transaction():
                    store.upsert_records(
                        [
                            _cursor_record(
                                connection.name, resource, kept, "failed", clock(), str(error)[:1000]
                            )
                        ]
                    )
                raise
    finally:
        if own_client:
            http.close()
    return report


def _sync_resource(
    store: Store,
    connector: Connector,
    collector: Collector,
    connection: str,
    resource: str,
    cursor: str | None,
    full: bool,
    rules: MappingRules,
    report: SyncReport,
    progress: Progress | None,
    clock: Callable[[], datetime],
) -> None:
    entry = report.resource(resource)
    context = stored_events(store, connector.source, connection, connector.context_event_types)
    for batch in collector.collect_resource(resource, cursor, full):
        normalized = connector.normalize(batch.events, rules, context)
        status = "complete" if batch.complete else "running"
        with store.transaction():
            store.upsert_records(batch.events)
            store.upsert_records(normalized.records)
            store.upsert_records(
                [_cursor_record(connection, resource, batch.cursor.dumps(), status, clock())]
            )
        entry.pages += 1
        entry.fetched += batch.fetched
        entry.raw_events += len(batch.events)
        entry.normalized += len(normalized.records)
        entry.skipped.update(batch.skipped)
        entry.skipped.update(reason for _, reason in normalized.skipped)
        entry.complete = batch.complete
        if progress is not None:
            progress(resource, batch.fetched)


def _connectors_of(store: Store, connection: ConnectionConfig | str) -> list[Connector]:
    """The connector of a connection; for a bare name, those whose raw events it has stored."""
    if not isinstance(connection, str):
        return [connector_for(connection.tool)]
    rows = store.query("SELECT DISTINCT source FROM raw_events WHERE connection = ? ORDER BY 1", [connection])
    found = (connector_for_source(str(row[0])) for row in rows)
    return [c for c in found if c is not None]


def replay(
    store: Store,
    connection: ConnectionConfig | str,
    *,
    rules: MappingRules | None = None,
    progress: Progress | None = None,
) -> SyncReport:
    """Normalize a connection's stored raw events again (after a mapping-rule change), without HTTP.

    The records written are those a sync writes from the same raw events.
    """
    name = connection if isinstance(connection, str) else connection.name
    rules = rules or MappingRules()
    report = SyncReport(name)
    for connector in _connectors_of(store, connection):
        context = stored_events(store, connector.source, name, connector.context_event_types)
        for event_types in connector.replay_groups:
            events = stored_events(store, connector.source, name, event_types)
            if not events:
                continue
            normalized = connector.normalize(events, rules, context)
            with store.transaction():
                store.upsert_records(normalized.records)
            label = "+".join(event_types)
            entry = report.resource(label)
            entry.raw_events += len(events)
            entry.normalized += len(normalized.records)
            entry.skipped.update(reason for _, reason in normalized.skipped)
            entry.complete = True
            if progress is not None:
                progress(label, len(events))
    return report
