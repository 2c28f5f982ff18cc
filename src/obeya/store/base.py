"""The store: what every engine offers, and the parts (migrations, record upserts) they share."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from obeya.model.records import Record
from obeya.model.schema import TABLES, TableSpec
from obeya.store import derived
from obeya.store.ddl import render
from obeya.store.errors import SchemaVersionError
from obeya.store.migrations import LATEST_VERSION, MIGRATIONS, DeleteRows, RebuildDerived

VERSION_TABLE = "obeya_schema_versions"
_DIRTY_IDS = "_obeya_touched_items"


class Store(ABC):
    """A connection to Obeya's store on one engine.

    SQL passed to `execute` and `query` uses ``?`` placeholders on every engine. Writes go through
    `upsert` (one Arrow batch of one table) or `upsert_records`; several writes become one atomic unit
    inside ``with store.transaction():``.
    """

    dialect: ClassVar[str]

    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()

    # --- what each engine provides ---------------------------------------------------------------

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run a statement that returns no rows."""

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a query and return its rows."""

    @abstractmethod
    def query_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        """Run a query and return its result as an Arrow table."""

    @abstractmethod
    def _begin(self) -> None: ...

    @abstractmethod
    def _commit(self) -> None: ...

    @abstractmethod
    def _rollback(self) -> None: ...

    @abstractmethod
    def _replace_rows(self, spec: TableSpec, batch: pa.Table) -> None:
        """Insert the batch's rows, replacing stored rows with the same id (inside a transaction)."""

    @abstractmethod
    def _register_ids(self, name: str, ids: pa.Array) -> None:
        """Make `ids` readable in SQL as table `name` with one column ``item_id`` (until unregistered)."""

    @abstractmethod
    def _unregister_ids(self, name: str) -> None: ...

    @abstractmethod
    def table_names(self) -> set[str]:
        """The tables in the store's schema."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection."""

    # --- transactions -----------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic unit of work; nested uses join the outermost transaction."""
        depth = getattr(self._local, "depth", 0)
        if depth:
            self._local.depth = depth + 1
            try:
                yield
            finally:
                self._local.depth = depth
            return
        self._begin()
        self._local.depth = 1
        self._local.wrote = False
        try:
            yield
            if self._local.wrote:
                self.execute("UPDATE data_versions SET version = version + 1")
        except BaseException:
            self._local.rollbacks = self.rollbacks() + 1
            self._rollback()
            raise
        else:
            self._commit()
        finally:
            self._local.depth = 0

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Reads that all see one state of the store: a figure computed from several statements inside
        ``with store.reading():`` is never half before and half after another connection's write.

        A transaction at snapshot isolation on this thread's connection (DuckDB's transactions are;
        PostgreSQL's is opened ``REPEATABLE READ``); inside a transaction already, it joins it. Meant for
        reads (temporary tables included): a write inside it is committed with it, but on PostgreSQL may
        fail to serialize against a concurrent writer.
        """
        if getattr(self._local, "depth", 0):
            with self.transaction():
                yield
            return
        self._local.reading = True
        try:
            with self.transaction():
                yield
        finally:
            self._local.reading = False

    def rollbacks(self) -> int:
        """How many transactions this thread's connection has rolled back: the temporary tables made
        inside one of them are gone with it (`obeya.engine.snapshot` keys its tables by this)."""
        return int(getattr(self._local, "rollbacks", 0))

    # --- schema -----------------------------------------------------------------------------------

    def schema_version(self) -> int:
        """The version of the store's schema; 0 for an empty store."""
        if VERSION_TABLE not in self.table_names():
            return 0
        rows = self.query(f"SELECT max(version) FROM {VERSION_TABLE}")
        return int(rows[0][0] or 0)

    def migrate(self, target: int | None = None) -> list[int]:
        """Bring the schema to `target` (default: the latest), in place; return the versions applied."""
        target = LATEST_VERSION if target is None else target
        current = self.schema_version()
        if current > LATEST_VERSION:
            raise SchemaVersionError(
                f"the store at {self.url} has schema version {current}, newer than this Obeya knows "
                f"({LATEST_VERSION}); upgrade Obeya"
            )
        applied = []
        # The derived tables are filled by today's SQL, which fits only the latest schema: a version
        # that asks for a rebuild gets it once, after the last version is applied, in its transaction.
        pending = [m for m in MIGRATIONS if current < m.version <= target]
        rebuild = target == LATEST_VERSION and any(
            isinstance(step, RebuildDerived) for m in pending for step in m.steps
        )
        for migration in pending:
            with self.transaction():
                if migration.version == 1:
                    self.execute(
                        f"CREATE TABLE {VERSION_TABLE} (version BIGINT NOT NULL, "
                        "description TEXT NOT NULL, applied_at TIMESTAMP NOT NULL)"
                    )
                for step in migration.steps:
                    for statement in render(step, self.dialect):
                        self.execute(statement)
                    if isinstance(step, DeleteRows):
                        self._bump_data_version()  # figures cached at the version before are stale
                if rebuild and migration is pending[-1]:
                    derived.rebuild(self)
                    self._bump_data_version()
                self.execute(
                    f"INSERT INTO {VERSION_TABLE} VALUES (?, ?, ?)",
                    (migration.version, migration.description, datetime.now(UTC).replace(tzinfo=None)),
                )
            applied.append(migration.version)
        return applied

    def require_current_schema(self) -> None:
        """Raise unless the schema is at the version this Obeya was built for."""
        version = self.schema_version()
        if version != LATEST_VERSION:
            raise SchemaVersionError(
                f"the store at {self.url} has schema version {version}, this Obeya needs "
                f"{LATEST_VERSION}: run `obeya db upgrade`"
            )

    # --- writes -----------------------------------------------------------------------------------

    def upsert(self, kind: str, batch: pa.Table) -> int:
        """Write a batch of one table's rows; a row whose id is stored already replaces it.

        When the batch holds the same id more than once, its last row wins. Returns the batch's rows.
        """
        spec = TABLES[kind]
        batch = batch.select(spec.column_names).cast(spec.arrow_schema)
        if batch.num_rows == 0:
            return 0
        with self.transaction():
            self._replace_rows(spec, batch)
            if kind == "status_transition":
                self._refresh_derived(pc.unique(batch["work_item_id"]))
            self._bump_data_version()
        return int(batch.num_rows)

    def _bump_data_version(self) -> None:
        """Note that this transaction wrote: its commit bumps the data version once."""
        self._local.wrote = True

    def data_version(self) -> int:
        """A number that grows with every write: figures computed at one version are still right
        while the store reports the same version."""
        return int(self.query("SELECT version FROM data_versions")[0][0])

    def _refresh_derived(self, item_ids: pa.Array) -> None:
        """Bring the derived timeline of these items in step with their transitions (in the transaction)."""
        self._register_ids(_DIRTY_IDS, item_ids)
        try:
            derived.refresh_items(self, f"SELECT item_id FROM {_DIRTY_IDS}")
        finally:
            self._unregister_ids(_DIRTY_IDS)

    def delete_where(self, kind: str, where: str, params: Sequence[Any] = ()) -> int:
        """Delete the rows of `kind` matching a SQL condition, keeping derived tables in step."""
        spec = TABLES[kind]
        with self.transaction():
            touched = None
            if kind == "status_transition":
                touched = self.query_arrow(
                    f"SELECT DISTINCT work_item_id FROM status_transitions WHERE {where}", params
                ).column(0)
            count = int(self.query(f'SELECT count(*) FROM "{spec.name}" WHERE {where}', params)[0][0])
            self.execute(f'DELETE FROM "{spec.name}" WHERE {where}', params)
            if touched is not None and len(touched):
                self._refresh_derived(touched)
            self._bump_data_version()
        return count

    def upsert_records(self, records: Iterable[Record]) -> Counter[str]:
        """Write records of any kinds in one transaction; return how many of each kind were written."""
        by_kind: dict[str, list[Record]] = {}
        for record in records:
            by_kind.setdefault(record.kind, []).append(record)
        written: Counter[str] = Counter()
        with self.transaction():
            for kind, spec in TABLES.items():
                if kind in by_kind:
                    written[kind] = self.upsert(kind, spec.to_arrow(by_kind[kind]))
        return written

    # --- reads ------------------------------------------------------------------------------------

    def count(self, kind: str) -> int:
        """How many rows the table of `kind` holds."""
        return int(self.query(f'SELECT count(*) FROM "{TABLES[kind].name}"')[0][0])

    def fetch_records(self, kind: str, where: str = "", params: Sequence[Any] = ()) -> list[Record]:
        """The stored records of `kind` (optionally filtered by a SQL condition), ordered by id."""
        spec = TABLES[kind]
        columns = ", ".join(f'"{c}"' for c in spec.column_names)
        sql = f'SELECT {columns} FROM "{spec.name}" {"WHERE " + where if where else ""} ORDER BY id'
        return [
            spec.from_row(dict(zip(spec.column_names, row, strict=True))) for row in self.query(sql, params)
        ]

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
