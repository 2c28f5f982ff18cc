"""Sync a connection into the store, and replay its stored raw events without calling the tool.

Per page, the raw events, the records normalized from them and the resource's cursor are written in one
transaction. The cursor therefore never runs ahead of what was stored: a sync that stops half-way (crash,
network, Ctrl-C) resumes at the first page it did not store, and nothing is missing or twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from obeya.connectors.config import GitHubConnectionConfig
from obeya.connectors.github.collector import RESOURCES, SOURCE, GitHubCollector, WalkCursor, github_client
from obeya.connectors.github.normalizer import HANDLERS, normalize
from obeya.connectors.http import HttpClient
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
    connection: str, resource: str, cursor: WalkCursor, status: str, now: datetime, message: str | None = None
) -> SyncCursor:
    return SyncCursor(
        source=CURSOR_SOURCE,
        external_id=f"{connection}/{resource}",
        connection=connection,
        resource=resource,
        cursor=cursor.dumps(),
        status=status,
        synced_at=now,
        message=message,
    )


def sync(
    store: Store,
    connection: GitHubConnectionConfig,
    full: bool = False,
    progress: Progress | None = None,
    *,
    rules: MappingRules | None = None,
    client: HttpClient | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> SyncReport:
    """Fetch what changed in the connection's repositories since the last sync (everything when `full`).

    `client` defaults to one built from the connection (token from its `token_env`). A failure stops the
    sync with the error; the resource's cursor is marked failed with the message, and pages stored before
    it stay stored, so the next run resumes.
    """
    rules = rules or MappingRules()
    own_client = client is None
    http = client or github_client(connection)
    collector = GitHubCollector(http, connection, clock=clock)
    report = SyncReport(connection.name)
    try:
        for repo in connection.repositories:
            for kind in RESOURCES:
                resource = f"{repo}/{kind}"
                stored = load_cursor(store, connection.name, resource)
                cursor = WalkCursor.parse(stored.cursor if stored else None)
                try:
                    _sync_resource(
                        store,
                        collector,
                        connection.name,
                        repo,
                        kind,
                        cursor,
                        full,
                        rules,
                        report,
                        progress,
                        clock,
                    )
                except Exception as error:
                    latest = load_cursor(store, connection.name, resource)
                    kept = WalkCursor.parse(latest.cursor if latest else None)
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
    collector: GitHubCollector,
    connection: str,
    repo: str,
    kind: str,
    cursor: WalkCursor,
    full: bool,
    rules: MappingRules,
    report: SyncReport,
    progress: Progress | None,
    clock: Callable[[], datetime],
) -> None:
    resource = f"{repo}/{kind}"
    entry = report.resource(resource)
    for batch in collector.collect(repo, kind, cursor, full):
        normalized = normalize(batch.events, rules)
        status = "complete" if batch.complete else "running"
        with store.transaction():
            store.upsert_records(batch.events)
            store.upsert_records(normalized.records)
            store.upsert_records([_cursor_record(connection, resource, batch.cursor, status, clock())])
        entry.pages += 1
        entry.fetched += batch.fetched
        entry.raw_events += len(batch.events)
        entry.normalized += len(normalized.records)
        entry.skipped.update(batch.skipped)
        entry.skipped.update(reason for _, reason in normalized.skipped)
        entry.complete = batch.complete
        if progress is not None:
            progress(resource, batch.fetched)


def replay(
    store: Store,
    connection: GitHubConnectionConfig | str,
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
    # A deployment's statuses are normalized with it, so they are read together.
    groups = [[t] for t in HANDLERS if t not in ("deployment", "deployment_status")]
    groups.append(["deployment", "deployment_status"])
    for event_types in groups:
        placeholders = ", ".join("?" for _ in event_types)
        events = [
            e
            for e in store.fetch_records(
                "raw_event",
                f"source = ? AND connection = ? AND event_type IN ({placeholders})",
                [SOURCE, name, *event_types],
            )
            if isinstance(e, RawEvent)
        ]
        if not events:
            continue
        normalized = normalize(events, rules)
        with store.transaction():
            store.upsert_records(normalized.records)
        entry = report.resource("+".join(event_types))
        entry.raw_events += len(events)
        entry.normalized += len(normalized.records)
        entry.skipped.update(reason for _, reason in normalized.skipped)
        entry.complete = True
        if progress is not None:
            progress("+".join(event_types), len(events))
    return report
