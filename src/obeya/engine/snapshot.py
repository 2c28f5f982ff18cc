"""Per-connection snapshots of ``item_times``: a dashboard computes a dozen figures of the same slice,
window end and work start, and each used to compute every item's timeline again.

`item_times_snapshot` writes the rows of `obeya.engine.timeline` ``item_times`` once into a temporary
table of the calling thread's connection and returns its name; `timeline(..., snapshot=name)` reads it.
`materialized` does the same for any query a few figures share (the DORA figures' deployment rows).
A snapshot is keyed by the store's data version, so any write makes the next request build a new one;
the few most recent are kept per connection and older ones dropped. `forget_snapshots` drops them all
(benchmarks measuring a full recompute call it first).
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from obeya.engine.timeline import WorkStart, timeline
from obeya.engine.window import Slice
from obeya.store import Store

KEPT = 8
"""Snapshots kept per connection: the item times and the deployment rows of a dashboard's window and
its previous window, for two slices (each connection — each API worker thread — keeps its own, so this
bounds memory: at 1 M items a snapshot of item times is about 100 MB on DuckDB)."""

_COLUMNS = (
    ("id", "text"),
    ("key", "text"),
    ("title", "text"),
    ("flow_item_type", "text"),
    ("state_now", "text"),
    ("stage_now", "text"),
    ("created_at", "timestamp"),
    ("team_id", "text"),
    ("started_at", "timestamp"),
    ("completed_at", "timestamp"),
    ("settled", "boolean"),
    ("active_time", "double precision"),
)

_Key = tuple[Any, ...]  # (data version, rollbacks, what the rows are of...)
_per_store: weakref.WeakKeyDictionary[Store, threading.local] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _snapshots(store: Store) -> OrderedDict[_Key, str]:
    with _lock:
        local = _per_store.setdefault(store, threading.local())
    if not hasattr(local, "tables"):
        local.tables = OrderedDict()
    tables: OrderedDict[_Key, str] = local.tables
    return tables


def _found(store: Store, what: tuple[Any, ...]) -> tuple[_Key, str | None]:
    """This connection's key for the rows `what` names at the store's current data version, and the
    name of its table if it has one."""
    tables = _snapshots(store)
    # a rolled-back transaction took the temporary tables made in it along
    key = (store.data_version(), store.rollbacks(), *what)
    name = tables.get(key)
    if name is not None:
        tables.move_to_end(key)
    return key, name


def _kept(store: Store, key: _Key, name: str) -> str:
    """Remember table `name` for `key`, dropping the oldest beyond `KEPT`."""
    tables = _snapshots(store)
    tables[key] = name
    while len(tables) > KEPT:
        _, old = tables.popitem(last=False)
        store.execute(f"DROP TABLE IF EXISTS {old}")
    return name


def _table_name(prefix: str, key: _Key) -> str:
    return f"{prefix}_{hashlib.sha1(repr(key).encode(), usedforsecurity=False).hexdigest()[:16]}"


def existing_snapshot(
    store: Store, scope: Slice, now: datetime, work_start: WorkStart = "active"
) -> str | None:
    """The name of this connection's ``item_times`` snapshot of `scope` as of `now` at the store's
    current data version, if it has one (None: not built; nothing is built here)."""
    return _found(store, (scope, now, work_start))[1]


def item_times_snapshot(store: Store, scope: Slice, now: datetime, work_start: WorkStart = "active") -> str:
    """The name of a temporary table holding ``item_times`` of `scope` as of `now` at the store's current
    data version, built now unless this connection has it already."""
    key, name = _found(store, (scope, now, work_start))
    if name is not None:
        return name
    name = _table_name("obeya_item_times", key)
    t = timeline(scope, now, work_start)
    columns = ", ".join(f"{column} {kind}" for column, kind in _COLUMNS)
    store.execute(f"DROP TABLE IF EXISTS {name}")
    store.execute(f"CREATE TEMPORARY TABLE {name} ({columns})")
    store.execute(
        f"WITH {t.ctes} INSERT INTO {name} SELECT {', '.join(c for c, _ in _COLUMNS)} FROM item_times"
        if store.dialect == "duckdb"
        else f"INSERT INTO {name} WITH {t.ctes} SELECT {', '.join(c for c, _ in _COLUMNS)} FROM item_times",
        t.params,
    )
    return _kept(store, key, name)


def materialized(store: Store, key: tuple[Any, ...], select_sql: str, params: Sequence[Any]) -> str:
    """The name of a temporary table of this connection holding the rows of `select_sql` (with `params`)
    at the store's current data version, built now unless this connection has it for `key` (which must
    name everything the rows depend on: the query, its window, slice and rules)."""
    full, name = _found(store, ("rows", repr(key)))
    if name is not None:
        return name
    name = _table_name("obeya_rows", full)
    store.execute(f"DROP TABLE IF EXISTS {name}")
    store.execute(f"CREATE TEMPORARY TABLE {name} AS {select_sql}", params)
    if store.dialect == "postgresql":
        store.execute(f"ANALYZE {name}")  # its estimates, for the queries that read it
    return _kept(store, full, name)


def forget_snapshots(store: Store) -> None:
    """Drop this connection's snapshots of `store`."""
    tables = _snapshots(store)
    while tables:
        _, name = tables.popitem()
        store.execute(f"DROP TABLE IF EXISTS {name}")
