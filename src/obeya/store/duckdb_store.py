"""The embedded store: one DuckDB file."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from obeya.model.schema import TableSpec
from obeya.store.base import Store

_BATCH = "_obeya_batch"
_SMALL_BATCH = 32


class DuckDBStore(Store):
    """A store in one DuckDB file (or in memory for ``:memory:``).

    Each thread works through its own cursor on the one database, so the API can serve requests from
    a thread pool. Tables have no primary-key index: bulk loads are several times faster without one,
    and `_replace_rows` keeps ids unique by deleting the batch's ids before inserting, inside the
    caller's transaction.
    """

    dialect = "duckdb"

    def __init__(self, url: str, path: str) -> None:
        super().__init__(url)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._root = duckdb.connect(path)
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._cursors_lock = threading.Lock()

    def _con(self) -> duckdb.DuckDBPyConnection:
        con: duckdb.DuckDBPyConnection | None = getattr(self._local, "con", None)
        if con is None:
            con = self._root.cursor()
            self._local.con = con
            with self._cursors_lock:
                self._cursors.append(con)
        return con

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._con().execute(sql, list(params))

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._con().execute(sql, list(params)).fetchall()

    def query_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        return self._con().sql(sql, params=list(params) or None).to_arrow_table()

    def _begin(self) -> None:
        self._con().execute("BEGIN TRANSACTION")

    def _commit(self) -> None:
        self._con().execute("COMMIT")

    def _rollback(self) -> None:
        self._con().execute("ROLLBACK")

    def _replace_rows(self, spec: TableSpec, batch: pa.Table) -> None:
        con = self._con()
        columns = ", ".join(f'"{c}"' for c in spec.column_names)
        unique = pc.count_distinct(batch["id"]).as_py() == batch.num_rows
        if unique and batch.num_rows <= _SMALL_BATCH:
            # A few rows (a webhook delivery): plain parameterized statements cost less than
            # registering an Arrow table.
            rows = batch.to_pylist()
            ids = [row["id"] for row in rows]
            con.execute(f'DELETE FROM "{spec.name}" WHERE id IN ({", ".join("?" * len(ids))})', ids)
            one = f"({', '.join('?' * len(spec.column_names))})"
            values = [row[c] for row in rows for c in spec.column_names]
            con.execute(
                f'INSERT INTO "{spec.name}" ({columns}) VALUES {", ".join([one] * len(rows))}', values
            )
            return
        if unique:
            rows = f"SELECT {columns} FROM {_BATCH}"
        else:
            batch = batch.append_column("_ord", pa.array(np.arange(batch.num_rows)))
            rows = (
                f"SELECT {columns} FROM {_BATCH} "
                "QUALIFY row_number() OVER (PARTITION BY id ORDER BY _ord DESC) = 1"
            )
        con.register(_BATCH, batch)
        try:
            if con.execute(f'SELECT 1 FROM "{spec.name}" LIMIT 1').fetchone() is not None:
                con.execute(f'DELETE FROM "{spec.name}" WHERE id IN (SELECT id FROM {_BATCH})')
            con.execute(f'INSERT INTO "{spec.name}" ({columns}) {rows}')
        finally:
            con.unregister(_BATCH)

    def _register_ids(self, name: str, ids: pa.Array) -> None:
        self._con().register(name, pa.table({"item_id": ids.cast(pa.string())}))

    def _unregister_ids(self, name: str) -> None:
        self._con().unregister(name)

    def table_names(self) -> set[str]:
        rows = self.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
        return {r[0] for r in rows}

    def close(self) -> None:
        with self._cursors_lock:
            for con in self._cursors:
                con.close()
            self._cursors.clear()
        self._root.close()
