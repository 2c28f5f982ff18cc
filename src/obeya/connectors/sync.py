"""Sync a connection into the store, and replay its stored raw events without calling the tool.

Works for every tool of `obeya.connectors.registry`: the connection's `tool` picks the connector, which
names the resources to walk, collects them page by page and normalizes the pages.

Per page, the raw events, the records normalized from them and the resource's cursor are written in one
transaction. The cursor therefore never runs ahead of what was stored: a sync that stops half-way (crash,
network, Ctrl-C) resumes at the first page it did not store, and nothing is missing or twice.

Resources are collected side by side where they are independent: the connector splits them into phases
(`Connector.resource_phases`) run one after another, each of groups a bounded pool of worker threads
walks side by side, a group's resources in order. A GitHub repository, a GitLab or Azure DevOps project,
a Jenkins job, a Jira board, a ServiceNow table, an Opsgenie service is a group; reference data that later
pages read (Jira's catalogs, Jenkins' deploy rules, the incident tools' settings) is a phase of its own
before them. Local git repositories stay one group (see `obeya.connectors.git.connector`). The HTTP
client's per-host semaphore bounds the requests in flight and its pacing keeps them within the rate
budget. Fetching and normalizing run in the workers; the page transactions are written one at a time (a
lock), so concurrent writers never conflict on the store.

Replay reads a connection's raw events group by group (`Connector.replay_groups`) and writes everything
in one transaction. A connector that offers ``normalize_rows(table, rules)`` (GitHub) is given the
stored columns ``id, event_type, external_id, payload`` instead of a `RawEvent` per row, which was a
third of replay's time.
"""

from __future__ import annotations

import gc
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, overload

import pyarrow as pa

from obeya.connectors.base import Collector, Connector, Normalized
from obeya.connectors.config import ConnectionConfig
from obeya.connectors.http import HttpClient
from obeya.connectors.registry import connector_for, connector_for_source
from obeya.connectors.scopes import learn_scopes
from obeya.model.ids import record_id
from obeya.model.records import RawEvent, SyncCursor
from obeya.model.schema import TABLES
from obeya.normalize.rules import MappingRules
from obeya.store.base import Store

CURSOR_SOURCE = "obeya"
DEFAULT_WORKERS = 8
Progress = Callable[[str, int], None]
"""Called after every stored page with the resource (``owner/name/pull_requests``) and its item count.

Calls come in the order of a sequential sync: a group's pages stored while an earlier group is still under
way are reported once that one is done."""


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


def stored_events(
    store: Store, source: str, connection: str, event_types: Sequence[str], prefix: str | None = None
) -> list[RawEvent]:
    """The stored raw events of some types from one connection, ordered by id; with `prefix`, only those
    whose key (the external id after ``EVENT_TYPE:``, `obeya.connectors.raw`) starts with it (e.g. one
    repository's).

    Read as one Arrow table and built without validating again (they were validated when stored):
    replay reads every raw event of a connection, and validation was most of its time.
    """
    if not event_types:
        return []
    placeholders = ", ".join("?" for _ in event_types)
    spec = TABLES["raw_event"]
    columns = ", ".join(f'"{c}"' for c in spec.column_names if c != "id")  # `id` is derived, not a field
    # `substr`, not LIKE (a repository name may hold `_`) nor a range (PostgreSQL collations vary)
    within = f" AND substr(external_id, length(event_type) + 2, {len(prefix)}) = ?" if prefix else ""
    table = store.query_arrow(
        # webhook deliveries (with a delivery id) carry another payload shape: the receiver
        # normalizes them; replay rebuilds from the API answers
        f'SELECT {columns} FROM "{spec.name}" WHERE source = ? AND connection = ? '
        f"AND delivery_id IS NULL AND event_type IN ({placeholders}){within} ORDER BY id",
        [source, connection, *event_types, *([prefix] if prefix else [])],
    )
    return [_stored_raw_event(values) for values in table.to_pylist()]


class _StoredContext(Sequence[RawEvent]):
    """A connector's context events, read from the store (under the sync's write lock) the first time its
    normalizer looks at them: a resource whose batches need none (GitHub's deployment statuses matter only
    to workflow jobs) costs no read of them."""

    def __init__(self, load: Callable[[], list[RawEvent]], lock: threading.Lock) -> None:
        self._load, self._lock = load, lock
        self._events: list[RawEvent] | None = None

    def _read(self) -> list[RawEvent]:
        if self._events is None:
            with self._lock:
                self._events = self._load()
        return self._events

    @overload
    def __getitem__(self, index: int) -> RawEvent: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[RawEvent]: ...

    def __getitem__(self, index: int | slice) -> RawEvent | Sequence[RawEvent]:
        return self._read()[index]

    def __len__(self) -> int:
        return len(self._read())

    def __iter__(self) -> Iterator[RawEvent]:
        return iter(self._read())


def _stored_rows(store: Store, source: str, connection: str, event_types: Sequence[str]) -> pa.Table:
    """What a connector's `normalize_rows` reads: the columns ``id, event_type, external_id, payload`` of
    the raw events `stored_events` would return, in the same order."""
    placeholders = ", ".join("?" for _ in event_types)
    return store.query_arrow(
        "SELECT id, event_type, external_id, payload FROM raw_events WHERE source = ? AND connection = ? "
        f"AND delivery_id IS NULL AND event_type IN ({placeholders}) ORDER BY id",
        [source, connection, *event_types],
    )


_RAW_EVENT_FIELDS = frozenset(RawEvent.model_fields)


def _stored_raw_event(values: dict[str, Any]) -> RawEvent:
    """A `RawEvent` of stored (validated) values; what `model_construct` does, without its overhead."""
    event = RawEvent.__new__(RawEvent)
    object.__setattr__(event, "__dict__", values)
    object.__setattr__(event, "__pydantic_fields_set__", set(_RAW_EVENT_FIELDS))
    object.__setattr__(event, "__pydantic_extra__", None)
    object.__setattr__(event, "__pydantic_private__", None)
    return event


def sync(
    store: Store,
    connection: ConnectionConfig,
    full: bool = False,
    progress: Progress | None = None,
    *,
    rules: MappingRules | None = None,
    client: HttpClient | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    workers: int | None = None,
) -> SyncReport:
    """Fetch what changed in the connection's tool since the last sync (everything when `full`).

    `client` defaults to one built from the connection (credentials from the environment variables it
    names). A phase's groups (repositories, projects, jobs, boards) are collected by up to `workers`
    threads (default `DEFAULT_WORKERS`; 1 walks them one after another); phases run one after another.
    A failure stops the sync with the error; the resource's cursor is marked failed with the message,
    and pages stored before it stay stored, so the next run resumes.
    """
    rules = rules or MappingRules()
    connector = connector_for(connection.tool)
    own_client = client is None
    http = client or connector.client(connection)
    collector = connector.collector(http, connection, clock)
    report = SyncReport(connection.name)
    phases = connector.resource_phases(connection)
    ordered = _OrderedProgress(progress, sum(len(p) for p in phases)) if progress is not None else None
    run = _Run(store, connector, collector, connection.name, full, rules, report, ordered, clock)
    try:
        first = 0  # the index of the phase's first group among every group (the progress order)
        for groups in phases:
            _walk_side_by_side(run, groups, first, workers or DEFAULT_WORKERS)
            first += len(groups)
    finally:
        if own_client:
            http.close()
    learn_scopes(store, connection)  # the stream's scopes: what the stored records carry
    return report


def _walk_side_by_side(run: _Run, groups: Sequence[Sequence[str]], first: int, workers: int) -> None:
    """Walk `groups` with up to `workers` threads; the first failure stops the others at a page boundary
    and is raised."""
    pool_size = min(max(workers, 1), len(groups))
    if pool_size <= 1:
        for index, group in enumerate(groups, first):
            run.walk(group, index)
        return
    with ThreadPoolExecutor(pool_size, thread_name_prefix="obeya-sync") as pool:
        futures = [pool.submit(run.walk, group, index) for index, group in enumerate(groups, first)]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in futures if f in done and f.exception() is not None), None)
        if failed is not None:
            run.stop.set()
            for future in futures:
                future.cancel()
            error = failed.exception()
            assert error is not None
            raise error


class _OrderedProgress:
    """Passes progress on in group order: a later group's calls wait until the earlier groups are done."""

    def __init__(self, progress: Progress, groups: int) -> None:
        self._progress = progress
        self._pending: list[list[tuple[str, int]]] = [[] for _ in range(groups)]
        self._done = [False] * groups
        self._current = 0
        self._lock = threading.RLock()

    def report(self, group: int, resource: str, items: int) -> None:
        with self._lock:
            if group == self._current:
                self._progress(resource, items)
            else:
                self._pending[group].append((resource, items))

    def finished(self, group: int) -> None:
        with self._lock:
            self._done[group] = True
            while self._current < len(self._done) and self._done[self._current]:
                self._current += 1
                if self._current < len(self._pending):
                    calls, self._pending[self._current] = self._pending[self._current], []
                    for resource, items in calls:
                        self._progress(resource, items)


class _Stopped(Exception):
    """Another worker failed: this one stops at a page boundary (its cursor is where it stood)."""


@dataclass
class _Run:
    """One sync's shared state: the workers fetch and normalize, and write under `write_lock`."""

    store: Store
    connector: Connector
    collector: Collector
    connection: str
    full: bool
    rules: MappingRules
    report: SyncReport
    progress: _OrderedProgress | None
    clock: Callable[[], datetime]
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def walk(self, resources: Sequence[str], group: int) -> None:
        """Sync `resources` one after another (one repository's), marking a failed one's cursor."""
        for resource in resources:
            if self.stop.is_set():
                return
            with self.write_lock:
                stored = load_cursor(self.store, self.connection, resource)
            try:
                self._resource(resource, stored.cursor if stored else None, group)
            except _Stopped:
                return
            except Exception as error:
                self.stop.set()
                with self.write_lock:
                    latest = load_cursor(self.store, self.connection, resource)
                    kept = self.connector.parse_cursor(latest.cursor if latest else None).dumps()
                    with self.store.transaction():
                        self.store.upsert_records(
                            [
                                _cursor_record(
                                    self.connection, resource, kept, "failed", self.clock(), str(error)[:1000]
                                )
                            ]
                        )
                raise
        if self.progress is not None:
            self.progress.finished(group)

    def _resource(self, resource: str, cursor: str | None, group: int) -> None:
        connector, store = self.connector, self.store
        with self.write_lock:
            entry = self.report.resource(resource)
        # A connector may keep a resource's context to the raw events of its part of the connection
        # (`context_prefix(resource)`: GitHub, the repository's deployment statuses).
        context_prefix: Callable[[str], str | None] | None = getattr(connector, "context_prefix", None)
        prefix = context_prefix(resource) if context_prefix is not None else None
        context = _StoredContext(
            lambda: stored_events(
                store, connector.source, self.connection, connector.context_event_types, prefix
            ),
            self.write_lock,
        )
        for batch in self.collector.collect_resource(resource, cursor, self.full):
            normalized = connector.normalize(batch.events, self.rules, context)
            status = "complete" if batch.complete else "running"
            cursor_record = _cursor_record(
                self.connection, resource, batch.cursor.dumps(), status, self.clock()
            )
            with self.write_lock:
                if self.stop.is_set():
                    raise _Stopped
                with store.transaction():
                    store.upsert_records(batch.events)
                    store.upsert_records(normalized.records)
                    store.upsert_records([cursor_record])
                entry.pages += 1
                entry.fetched += batch.fetched
                entry.raw_events += len(batch.events)
                entry.normalized += len(normalized.records)
                entry.skipped.update(batch.skipped)
                entry.skipped.update(reason for _, reason in normalized.skipped)
                entry.complete = batch.complete
            if self.progress is not None:
                self.progress.report(group, resource, batch.fetched)


def _connectors_of(store: Store, connection: ConnectionConfig | str) -> list[Connector]:
    """The connector of a connection; for a bare name, those whose raw events it has stored."""
    if not isinstance(connection, str):
        return [connector_for(connection.tool)]
    rows = store.query("SELECT DISTINCT source FROM raw_events WHERE connection = ? ORDER BY 1", [connection])
    found = (connector_for_source(str(row[0])) for row in rows)
    return [c for c in found if c is not None]


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Replay makes a few small objects (parsed JSON, records) per raw event, hundreds of thousands in
    all, none of them in a reference cycle; the cyclic collector rescanning the growing heap every few
    hundred allocations cost about a fifth of replay's time. Reference counting still frees them."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def replay(
    store: Store,
    connection: ConnectionConfig | str,
    *,
    rules: MappingRules | None = None,
    progress: Progress | None = None,
) -> SyncReport:
    """Normalize a connection's stored raw events again (after a mapping-rule change), without HTTP.

    The records written are those a sync writes from the same raw events; a deployment they no longer
    give (a job name pattern removed) is deleted.
    """
    name = connection if isinstance(connection, str) else connection.name
    with _cyclic_gc_paused():
        return _replay(store, connection, name, rules or MappingRules(), progress)


def _drop_deployments_no_longer_derived(
    store: Store, source: str, connection: str, event_types: Sequence[str], normalized: Normalized
) -> None:
    """Delete the deployments these raw events gave before but no longer give: a deployment recognised by
    a job name pattern (`rules.deployments.job_patterns`) is gone once the pattern no longer matches.

    Only deployments are concerned: whether a raw event gives one is the one thing a mapping rule decides
    (every other record's existence depends on the raw event alone). Webhook deliveries' records are left.
    """
    placeholders = ", ".join("?" for _ in event_types)
    raw = TABLES["raw_event"].name
    derived = store.query(
        f'SELECT d.id FROM "{TABLES["deployment"].name}" d JOIN "{raw}" r ON r.id = d.raw_event_id '
        "WHERE r.source = ? AND r.connection = ? AND r.delivery_id IS NULL "
        f"AND r.event_type IN ({placeholders})",
        [source, connection, *event_types],
    )
    kept = {r.id for r in normalized.records if r.kind == "deployment"}
    gone = [deployment_id for (deployment_id,) in derived if deployment_id not in kept]
    if gone:
        store.delete_where("deployment", f"id IN ({', '.join('?' for _ in gone)})", gone)


def _replay(
    store: Store,
    connection: ConnectionConfig | str,
    name: str,
    rules: MappingRules,
    progress: Progress | None,
) -> SyncReport:
    report = SyncReport(name)
    with store.transaction():  # all or nothing, and one commit
        for connector in _connectors_of(store, connection):
            _replay_connector(store, connector, name, rules, progress, report)
        if not isinstance(connection, str):
            learn_scopes(store, connection)
    return report


def _replay_connector(
    store: Store,
    connector: Connector,
    name: str,
    rules: MappingRules,
    progress: Progress | None,
    report: SyncReport,
) -> None:
    # Read once, and only if a normalizer looks at it (GitHub's deployment statuses matter only under a
    # job name rule): reading them as `RawEvent`s cost a GitHub replay that never used them a few per cent.
    context = _StoredContext(
        lambda: stored_events(store, connector.source, name, connector.context_event_types), threading.Lock()
    )
    # A connector may read stored rows as columns (`normalize_rows(rows, rules, context)`), skipping a
    # `RawEvent` per row.
    normalize_rows: Callable[[pa.Table, MappingRules, Sequence[RawEvent]], Normalized] | None = getattr(
        connector, "normalize_rows", None
    )
    for event_types in connector.replay_groups:
        if normalize_rows is not None:
            rows = _stored_rows(store, connector.source, name, event_types)
            count = rows.num_rows
            normalized = normalize_rows(rows, rules, context) if count else Normalized()
        else:
            events = stored_events(store, connector.source, name, event_types)
            count = len(events)
            normalized = connector.normalize(events, rules, context) if events else Normalized()
        if not count:
            continue
        store.upsert_records(normalized.records)
        _drop_deployments_no_longer_derived(store, connector.source, name, event_types, normalized)
        label = "+".join(event_types)
        entry = report.resource(label)
        entry.raw_events += count
        entry.normalized += len(normalized.records)
        entry.skipped.update(reason for _, reason in normalized.skipped)
        entry.complete = True
        if progress is not None:
            progress(label, count)
