"""The server store: PostgreSQL, through psycopg 3."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from obeya.model.schema import TableSpec
from obeya.store.base import Store
from obeya.store.derived import DERIVED_TABLES

_BATCH = "_obeya_batch"
_COPY_CHUNK_ROWS = 50_000
ANALYZE_AFTER_ROWS = 5_000
"""A transaction that writes at least this many rows into a table refreshes the table's planner
statistics after it commits: without them (autovacuum off, or not yet run after a bulk load) the planner
guesses row counts and picks nested loops that turn a 50 ms metric into minutes."""


def _placeholders(sql: str) -> str:
    """Obeya's ``?`` placeholders as psycopg's ``%s``."""
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresStore(Store):
    """A store in a PostgreSQL database, in the schema given (the server's search path otherwise).

    Each thread has its own connection. Bulk writes are COPYed (as CSV written by Arrow) into a
    temporary table, then merged with ``INSERT ... ON CONFLICT (id) DO UPDATE``.
    """

    dialect = "postgresql"

    def __init__(self, url: str, conninfo: str, schema: str | None = None) -> None:
        super().__init__(url)
        self.conninfo = conninfo
        self.schema = schema
        self._connections: list[psycopg.Connection[Any]] = []
        self._connections_lock = threading.Lock()
        self._conn()  # fail now, with the server's words, if the database cannot be reached

    def _conn(self) -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = psycopg.connect(self.conninfo, autocommit=True)
            # JIT compiling a metric query cost more than running it (the rework rate of 100 000 items:
            # 15 s with JIT, 4.6 s without; docs/performance.md): the metrics run in seconds at most.
            conn.execute("SET jit = off")
            if self.schema:
                conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
                conn.execute(f'SET search_path TO "{self.schema}"')
            self._local.conn = conn
            with self._connections_lock:
                self._connections.append(conn)
        return conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._conn().execute(_placeholders(sql) if params else sql, list(params) or None)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = self._conn().execute(_placeholders(sql) if params else sql, list(params) or None)
        return list(cur.fetchall())

    def query_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        cur = self._conn().execute(_placeholders(sql) if params else sql, list(params) or None)
        names = [d.name for d in cur.description or []]
        rows = cur.fetchall()
        return pa.table({name: [row[i] for row in rows] for i, name in enumerate(names)})

    def _begin(self) -> None:
        # a read (`Store.reading`) sees one snapshot for all its statements; writes keep READ COMMITTED,
        # so concurrent writers wait for each other instead of failing to serialize
        reading = getattr(self._local, "reading", False)
        self._conn().execute("BEGIN ISOLATION LEVEL REPEATABLE READ" if reading else "BEGIN")
        self._local.bulk_written = set()

    def _commit(self) -> None:
        conn = self._conn()
        conn.execute("COMMIT")
        for table in sorted(getattr(self._local, "bulk_written", ())):
            conn.execute(f'ANALYZE "{table}"')
        self._local.bulk_written = set()

    def _rollback(self) -> None:
        self._conn().execute("ROLLBACK")
        self._local.bulk_written = set()

    def _bulk_wrote(self, *tables: str) -> None:
        """Note tables this transaction wrote many rows into (their statistics are refreshed at commit)."""
        self._local.__dict__.setdefault("bulk_written", set()).update(tables)

    def _refresh_derived(self, item_ids: pa.Array) -> None:
        super()._refresh_derived(item_ids)
        if len(item_ids) >= ANALYZE_AFTER_ROWS // 10:
            self._bulk_wrote(*DERIVED_TABLES)

    def migrate(self, target: int | None = None) -> list[int]:
        applied = super().migrate(target)
        if applied:  # the store's own tables only: a bare ANALYZE would sample every schema
            for table in sorted(self.table_names()):
                self.execute(f'ANALYZE "{table}"')
        return applied

    def _replace_rows(self, spec: TableSpec, batch: pa.Table) -> None:
        if batch.num_rows >= ANALYZE_AFTER_ROWS:
            self._bulk_wrote(spec.name)
        conn = self._conn()
        names = spec.column_names
        columns = ", ".join(f'"{c}"' for c in names)
        unique = pc.count_distinct(batch["id"]).as_py() == batch.num_rows
        conn.execute(f'CREATE TEMP TABLE {_BATCH} (LIKE "{spec.name}")')
        try:
            conn.execute(f"ALTER TABLE {_BATCH} ADD COLUMN _ord BIGINT")
            batch = batch.append_column("_ord", pa.array(range(batch.num_rows), pa.int64()))
            options = pacsv.WriteOptions(include_header=False)
            with conn.cursor().copy(f"COPY {_BATCH} ({columns}, _ord) FROM STDIN (FORMAT csv)") as copy:
                for offset in range(0, batch.num_rows, _COPY_CHUNK_ROWS):
                    sink = pa.BufferOutputStream()
                    pacsv.write_csv(batch.slice(offset, _COPY_CHUNK_ROWS), sink, options)
                    copy.write(sink.getvalue().to_pybytes())
            rows = (
                f"SELECT {columns} FROM {_BATCH}"
                if unique
                else f"SELECT DISTINCT ON (id) {columns} FROM {_BATCH} ORDER BY id, _ord DESC"
            )
            updates = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in names if c != "id")
            conn.execute(
                f'INSERT INTO "{spec.name}" ({columns}) {rows} ON CONFLICT (id) DO UPDATE SET {updates}'
            )
        finally:
            conn.execute(f"DROP TABLE IF EXISTS {_BATCH}")

    def _register_ids(self, name: str, ids: pa.Array) -> None:
        conn = self._conn()
        conn.execute(f"CREATE TEMP TABLE {name} (item_id TEXT PRIMARY KEY)")
        with conn.cursor().copy(f"COPY {name} (item_id) FROM STDIN") as copy:
            for value in ids.cast(pa.string()).to_pylist():
                copy.write_row((value,))

    def _unregister_ids(self, name: str) -> None:
        self._conn().execute(f"DROP TABLE IF EXISTS {name}")

    def table_names(self) -> set[str]:
        rows = self.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
        return {r[0] for r in rows}

    def drop_schema(self) -> None:
        """Drop the store's own schema and everything in it (tests and `obeya db reset` use this)."""
        if not self.schema:
            raise ValueError("this store has no schema of its own to drop")
        self.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')

    def close(self) -> None:
        with self._connections_lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
