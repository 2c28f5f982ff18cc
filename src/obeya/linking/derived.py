"""Derived rows: write what the rules derive now, remove what they no longer derive, touch nothing else.

A derived row has ``source = "obeya"`` and a deterministic `external_id`, so a second run over the same
data finds every row already in place and writes nothing. Rows from any other source (a user's import)
are never written or removed here, and a derived row is dropped when such an explicit row links the
same pair.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from obeya.model.schema import TABLES
from obeya.store.base import Store

DERIVED_SOURCE = "obeya"
_DELETE_CHUNK = 1000

CANDIDATES = pa.schema(
    [
        pa.field("from_id", pa.string()),
        pa.field("to_id", pa.string()),
        pa.field("evidence", pa.string()),
        pa.field("confidence", pa.float64()),
    ]
)
"""The shape every link rule produces: one row per candidate link, several per pair allowed."""


@dataclass(frozen=True)
class SyncCount:
    """What one run did to one kind of derived row."""

    name: str  # a trace link kind ("implemented_by", ...) or "deployment_change"
    total: int  # derived rows of this kind after the run
    written: int  # rows added or rewritten (their evidence or confidence changed)
    removed: int  # rows that no longer hold, deleted
    added: int = 0  # of the rows written, those that were not stored before

    @property
    def changed(self) -> int:
        """Rows rewritten in place: stored before, with another evidence or confidence now."""
        return self.written - self.added


def fetch(store: Store, sql: str, params: Sequence[Any] = (), schema: pa.Schema | None = None) -> pa.Table:
    """Run a query and return Arrow with `schema`'s columns and types (engines differ in both)."""
    table = store.query_arrow(sql, params)
    if schema is None:
        return table
    if table.num_rows == 0:
        return schema.empty_table()
    return pa.table({f.name: table.column(i).cast(f.type) for i, f in enumerate(schema)}, schema=schema)


def rows_to_scan(texts: pa.ChunkedArray, pattern: str, prefiltered: Collection[str]) -> list[int]:
    """The rows of `texts` that may hold a match of `pattern`, each then scanned exactly in Python.

    For the `prefiltered` patterns (the defaults, checked to be read alike) Arrow's RE2 prefilters the
    column — its ASCII word boundaries find every text Python's would, and more; any other pattern (a
    user's, which RE2 may read otherwise or not at all) leaves every row with a text.
    """
    if pattern not in prefiltered:
        return [i for i, valid in enumerate(pc.is_valid(texts).to_pylist()) if valid]
    mask = pc.fill_null(pc.match_substring_regex(texts, pattern), False)
    return np.flatnonzero(mask.to_numpy(zero_copy_only=False)).tolist()


def empty_candidates() -> pa.Table:
    """No candidate links."""
    return CANDIDATES.empty_table()


def candidates(from_ids: Any, to_ids: Any, evidence: Any, confidence: Any) -> pa.Table:
    """Candidate links from four columns (arrays or lists; a scalar confidence is broadcast)."""
    from_array = _array(from_ids, pa.string())
    if isinstance(confidence, float):
        confidence = np.full(len(from_array), confidence)
    return pa.table(
        [
            from_array,
            _array(to_ids, pa.string()),
            _array(evidence, pa.string()),
            _array(confidence, pa.float64()),
        ],
        schema=CANDIDATES,
    )


def _array(values: Any, type_: pa.DataType) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks().cast(type_)
    if isinstance(values, pa.Array):
        return values.cast(type_)
    return pa.array(values, type_)


def strongest_per_pair(table: pa.Table) -> pa.Table:
    """One candidate per (from_id, to_id): the highest confidence, then the first evidence in order."""
    if table.num_rows == 0:
        return table
    table = table.sort_by(
        [
            ("from_id", "ascending"),
            ("to_id", "ascending"),
            ("confidence", "descending"),
            ("evidence", "ascending"),
        ]
    )
    pair = pc.binary_join_element_wise(table["from_id"], table["to_id"], "\x1f").to_numpy(
        zero_copy_only=False
    )
    keep = np.ones(len(pair), dtype=bool)
    keep[1:] = pair[1:] != pair[:-1]
    return table.filter(pa.array(keep))


def _pair_keys(from_ids: pa.ChunkedArray | pa.Array, to_ids: pa.ChunkedArray | pa.Array) -> Any:
    return pc.binary_join_element_wise(from_ids, to_ids, "\x1f")


def drop_explicit(table: pa.Table, explicit: pa.Table) -> pa.Table:
    """The candidates whose (from_id, to_id) pair is not in `explicit` (columns from_id, to_id)."""
    if table.num_rows == 0 or explicit.num_rows == 0:
        return table
    taken = _pair_keys(explicit["from_id"], explicit["to_id"])
    return table.filter(pc.invert(pc.is_in(_pair_keys(table["from_id"], table["to_id"]), value_set=taken)))


def _sync(
    store: Store,
    kind: str,
    name: str,
    desired: pa.Table,
    existing: pa.Table,
    compare: Sequence[str],
    total_before: int | None = None,
) -> SyncCount:
    """Write the desired rows that are new or differ in `compare`; delete existing rows not desired.

    `existing` and `desired` cover the same scope; `total_before` is how many rows of this kind the store
    held before, in and out of the scope (None: the scope is everything).
    """
    added = 0
    if desired.num_rows:
        old = existing.rename_columns(["id", *(f"_old_{c}" for c in compare)])
        joined = desired.join(old, "id", join_type="left outer")
        new = pc.is_null(joined[f"_old_{compare[0]}"])
        added = int(pc.sum(pc.cast(new, pa.int64())).as_py() or 0)
        changed = new
        for column in compare:
            differs = pc.fill_null(pc.not_equal(joined[column], joined[f"_old_{column}"]), True)
            changed = pc.or_(changed, differs)
        to_write = joined.filter(changed).select(TABLES[kind].column_names)
    else:
        to_write = desired
    obsolete = existing["id"].filter(pc.invert(pc.is_in(existing["id"], value_set=desired["id"])))
    ids = obsolete.to_pylist()
    for start in range(0, len(ids), _DELETE_CHUNK):
        chunk = ids[start : start + _DELETE_CHUNK]
        store.delete_where(kind, f"id IN ({', '.join('?' * len(chunk))})", chunk)
    written = store.upsert(kind, to_write) if to_write.num_rows else 0
    total = desired.num_rows if total_before is None else total_before + added - len(ids)
    return SyncCount(name, total, written, len(ids), added)


@dataclass(frozen=True)
class Scope:
    """Only the derived rows whose `column` (``from_id`` or ``to_id``) is one of the ids in SQL table
    `table` (column ``item_id``, see `obeya.linking.touched.registered`); `ids` are the same ids."""

    column: str
    table: str
    ids: pa.Array

    def within(self, links: pa.Table) -> pa.Table:
        """The candidate links in the scope."""
        if links.num_rows == 0:
            return links
        return links.filter(pc.is_in(links[self.column], value_set=self.ids))

    def condition(self, alias: str = "") -> str:
        """The SQL condition on `trace_links` (optionally aliased)."""
        prefix = f"{alias}." if alias else ""
        return f"{prefix}{self.column} IN (SELECT item_id FROM {self.table})"


def sync_trace_links(
    store: Store,
    link_kind: str,
    from_kind: str,
    to_kind: str,
    links: pa.Table,
    *,
    explicit_by_from: bool = False,
    scope: Scope | None = None,
) -> SyncCount:
    """Make the derived `trace_links` from_kind → to_kind of `link_kind` exactly `links` (candidates,
    several per pair allowed) — within `scope` only when one is given (`links` outside it are ignored,
    stored rows outside it are left as they are).

    A pair that an explicit (non-derived) link of the same kinds already links is left to it; with
    `explicit_by_from`, any explicit link of that kind from the same record wins over every derived one.
    """
    if scope is not None:
        links = scope.within(links)
    links = strongest_per_pair(links)
    kinds = "link_kind = ? AND from_kind = ? AND to_kind = ?"
    explicit = fetch(
        store,
        f"SELECT from_id, to_id FROM trace_links WHERE source <> ? AND {kinds}",
        (DERIVED_SOURCE, link_kind, from_kind, to_kind),
        pa.schema([("from_id", pa.string()), ("to_id", pa.string())]),
    )
    if explicit_by_from and explicit.num_rows and links.num_rows:
        links = links.filter(pc.invert(pc.is_in(links["from_id"], value_set=explicit["from_id"])))
    links = drop_explicit(links, explicit)
    n = links.num_rows
    prefix = pa.array([f"{link_kind}:"] * n, pa.string())
    external = pc.binary_join_element_wise(
        pc.binary_join_element_wise(prefix, links["from_id"], ""), links["to_id"], ">"
    )
    ids = pc.binary_join_element_wise(pa.array([f"{DERIVED_SOURCE}:"] * n, pa.string()), external, "")
    columns: dict[str, Any] = {
        "id": ids,
        "source": pa.array([DERIVED_SOURCE] * n, pa.string()),
        "external_id": external,
        "raw_event_id": pa.nulls(n, pa.string()),
        "from_kind": pa.array([from_kind] * n, pa.string()),
        "from_id": links["from_id"],
        "to_kind": pa.array([to_kind] * n, pa.string()),
        "to_id": links["to_id"],
        "link_kind": pa.array([link_kind] * n, pa.string()),
        "evidence": links["evidence"],
        "confidence": links["confidence"],
    }
    desired = pa.table(columns, schema=TABLES["trace_link"].arrow_schema)
    params = (DERIVED_SOURCE, link_kind, from_kind, to_kind)
    total_before = None
    if scope is not None:
        total_before = int(
            store.query(f"SELECT count(*) FROM trace_links WHERE source = ? AND {kinds}", params)[0][0]
        )
    existing = fetch(
        store,
        f"SELECT id, evidence, confidence FROM trace_links WHERE source = ? AND {kinds}"
        + (f" AND {scope.condition()}" if scope is not None else ""),
        params,
        pa.schema([("id", pa.string()), ("evidence", pa.string()), ("confidence", pa.float64())]),
    )
    name = f"{from_kind}>{link_kind}>{to_kind}"
    return _sync(store, "trace_link", name, desired, existing, ("evidence", "confidence"), total_before)


def sync_deployment_changes(store: Store, pairs: pa.Table, scope: Scope | None = None) -> SyncCount:
    """Make the derived `deployment_changes` exactly `pairs` (columns from_id = deployment, to_id = change)
    — of the deployments in `scope` (a ``from_id`` scope) only, when one is given.

    A pair an imported `deployment_changes` row already holds is left to that row.
    """
    if scope is not None:
        pairs = scope.within(pairs)
    explicit = fetch(
        store,
        "SELECT deployment_id, change_id FROM deployment_changes WHERE source <> ?",
        (DERIVED_SOURCE,),
        pa.schema([("from_id", pa.string()), ("to_id", pa.string())]),
    )
    pairs = drop_explicit(pairs.select(["from_id", "to_id"]), explicit)
    n = pairs.num_rows
    external = (
        pc.binary_join_element_wise(pairs["from_id"], pairs["to_id"], ">") if n else pa.array([], pa.string())
    )
    desired = pa.table(
        {
            "id": pc.binary_join_element_wise(pa.array([DERIVED_SOURCE] * n, pa.string()), external, ":"),
            "source": pa.array([DERIVED_SOURCE] * n, pa.string()),
            "external_id": external,
            "raw_event_id": pa.nulls(n, pa.string()),
            "deployment_id": pairs["from_id"],
            "change_id": pairs["to_id"],
        },
        schema=TABLES["deployment_change"].arrow_schema,
    )
    total_before = None
    within = ""
    if scope is not None:
        total_before = int(
            store.query("SELECT count(*) FROM deployment_changes WHERE source = ?", (DERIVED_SOURCE,))[0][0]
        )
        within = f" AND deployment_id IN (SELECT item_id FROM {scope.table})"
    existing = fetch(
        store,
        "SELECT id, deployment_id FROM deployment_changes WHERE source = ?" + within,
        (DERIVED_SOURCE,),
        pa.schema([("id", pa.string()), ("deployment_id", pa.string())]),
    )
    return _sync(
        store, "deployment_change", "deployment_change", desired, existing, ("deployment_id",), total_before
    )


def remove_stale(store: Store, triples: Sequence[tuple[str, str, str]]) -> int:
    """Delete derived trace links whose (from_kind, link_kind, to_kind) no rule produces; return how many."""
    produced = " OR ".join("(from_kind = ? AND link_kind = ? AND to_kind = ?)" for _ in triples)
    where = f"source = ? AND NOT ({produced})"
    params = (DERIVED_SOURCE, *(value for triple in triples for value in triple))
    return store.delete_where("trace_link", where, params)
