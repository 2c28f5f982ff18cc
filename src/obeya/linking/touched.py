"""What changed since links were last derived: the linking watermark and the records' fingerprints.

The store keeps, in `linking_seen`, a fingerprint (a hash of every column but `raw_event_id`) of each record
a link rule reads, as it was when links were last derived, and in `linking_state` the data version and the
rules of that derivation. Comparing the fingerprints with the records now (one SQL pass per table, on the
engine) gives the records added, changed or deleted since: the *touched* records an incremental
derivation starts from. Nothing depends on the writers saying what they wrote: a sync, a replay, a
webhook or an import are all seen, as every write through the store bumps its data version (a change made
behind the store's back, in plain SQL, is seen by the next derivation after any write, or by `--full`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import orjson
import pyarrow as pa

from obeya.linking.derived import DERIVED_SOURCE
from obeya.linking.rules import LinkingRules
from obeya.model.schema import TABLES
from obeya.store.base import Store

DEPLOYMENT_GROUP = "COALESCE({t}service, '') || '|' || COALESCE({t}environment, '')"
"""SQL (format with ``t`` = a table alias and a dot, or ""): the service and environment of a deployment —
the group its chain of deployments belongs to (docs/metrics.md, "Shipped changes of a deployment")."""

WATCHED: Mapping[str, str | None] = {
    "work_item": None,
    "commit": 't."repo"',
    "commit_parent": 't."repo"',
    "change": 't."repo"',
    "change_commit": 't."change_id"',
    "pipeline_run": None,
    "deployment": DEPLOYMENT_GROUP.format(t="t."),
    "incident": None,
    "release": None,
}
"""The kinds a link rule reads, each with what of a record's *old* state is kept (``ref``, SQL): a
deleted or moved `change_commits` row must still name the change whose `contains` links it made; a
deleted or moved deployment, commit or change the deployment group or repository whose shipped changes
it took part in."""

EXPLICIT: tuple[str, ...] = ("trace_link", "deployment_change")
"""Kinds whose rows from a source other than Obeya (a user's import) change which derived rows are kept:
when one of them changes, the derivation is a full one (trace links: only those of a kind the rules
write)."""


@dataclass
class Touched:
    """The records added, changed or deleted since the last derivation, by kind."""

    ids: dict[str, list[str]] = field(default_factory=dict)
    old_refs: dict[str, list[str]] = field(default_factory=dict)  # the ``ref`` values before the change
    summaries: dict[str, str] = field(default_factory=dict)  # each table's `_summary` as it was read

    def of(self, kind: str) -> list[str]:
        """The touched ids of `kind`."""
        return self.ids.get(kind, [])

    def any(self, *kinds: str) -> bool:
        """Whether a record of one of `kinds` was touched."""
        return any(self.ids.get(k) for k in kinds)

    def counts(self) -> dict[str, int]:
        """How many records of each kind were touched (kinds with none left out)."""
        return {k: len(v) for k, v in self.ids.items() if v}


def rules_fingerprint(rules: LinkingRules) -> int:
    """A number that changes whenever a linking rule does (a rule change means a full derivation)."""
    canonical = orjson.dumps(
        {
            "key_patterns": list(rules.key_patterns),
            "window": rules.incident_attribution_window.total_seconds(),
            "service_paths": {
                s: {r: list(p) for r, p in sorted(repos.items())}
                for s, repos in sorted(rules.service_paths.items())
            },
            "production_class": rules.production_class,
            "change_number_pattern": rules.change_number_pattern,
        }
    )
    return int.from_bytes(hashlib.sha256(canonical).digest()[:7], "big")


def read_state(store: Store) -> tuple[int, int]:
    """(data version, rules fingerprint) of the last derivation; version -1 when links were never derived."""
    version, rules = store.query("SELECT version, rules FROM linking_state")[0]
    return int(version), int(rules)


def write_state(store: Store, version: int, rules: LinkingRules) -> None:
    """Record the data version the links now stand at (call inside the derivation's transaction)."""
    store.execute("UPDATE linking_state SET version = ?, rules = ?", (version, rules_fingerprint(rules)))


def _fingerprint(kind: str, dialect: str) -> str:
    """SQL: a text that changes whenever a column of the row (but its raw event) does.

    DuckDB: its 64-bit `hash` of the columns (8x faster than md5 there); PostgreSQL: md5 of the row's text
    (the row syntax quotes every field, so two different rows never give the same text).
    """
    columns = ", ".join(f't."{c}"' for c in TABLES[kind].column_names if c not in ("id", "raw_event_id"))
    if dialect == "duckdb":
        return f"CAST(hash({columns}) AS VARCHAR)"
    return f"md5(CAST(ROW({columns}) AS TEXT))"


def _condition(kind: str) -> str:
    if kind == "trace_link":
        # only links of the kinds the rules write decide which derived ones are kept; others (a Jira
        # issue link "Blocks" between two work items) change no derived link, so need no full derivation
        from obeya.linking.derive import LINKS  # derive imports this module

        kinds = ", ".join(sorted({f"'{link_kind}'" for _, link_kind, _ in LINKS}))
        return f"t.source <> ? AND t.link_kind IN ({kinds})"
    return "t.source <> ?" if kind in EXPLICIT else "TRUE"


def _params(kind: str) -> tuple[str, ...]:
    return (DERIVED_SOURCE,) if kind in EXPLICIT else ()


def _ref(kind: str) -> str:
    return WATCHED.get(kind) or "NULL"


def _summary(store: Store, kind: str) -> str:
    """Rows and a sum of the rows' hashes (ids included): when equal to the stored one, no row of the
    table was added, changed or deleted, and the row-by-row comparison is skipped."""
    columns = ", ".join(f't."{c}"' for c in TABLES[kind].column_names if c != "raw_event_id")
    if store.dialect == "duckdb":
        hashed = f"sum(hash({columns}))"
    else:
        hashed = (
            f"sum(CAST(CAST('x' || substr(md5(CAST(ROW({columns}) AS TEXT)), 1, 15) AS bit(60)) AS bigint))"
        )
    row = store.query(
        f'SELECT count(*), CAST({hashed} AS VARCHAR) FROM "{TABLES[kind].name}" t WHERE {_condition(kind)}',
        _params(kind),
    )[0]
    return f"{row[0]}:{row[1] or 0}"


def _stored_summaries(store: Store) -> dict[str, str]:
    rows = store.query("SELECT kind, fingerprint FROM linking_seen WHERE id = '#'")
    return {kind[1:]: fingerprint for kind, fingerprint in rows}


def find_touched(store: Store) -> Touched:
    """The records added, changed or deleted since the fingerprints were last recorded."""
    touched = Touched()
    stored = _stored_summaries(store)
    for kind in (*WATCHED, *EXPLICIT):
        table, where, params = TABLES[kind].name, _condition(kind), _params(kind)
        touched.summaries[kind] = _summary(store, kind)
        if stored.get(kind) == touched.summaries[kind]:
            touched.ids[kind], touched.old_refs[kind] = [], []
            continue
        rows = store.query(
            f'SELECT t.id, s.ref FROM "{table}" t LEFT JOIN linking_seen s ON s.kind = ? AND s.id = t.id '
            f"WHERE {where} AND (s.id IS NULL OR s.fingerprint <> {_fingerprint(kind, store.dialect)}) "
            "AND t.id <> '#' "
            "UNION ALL "
            "SELECT s.id, s.ref FROM linking_seen s WHERE s.kind = ? AND s.id <> '#' AND NOT EXISTS "
            f'(SELECT 1 FROM "{table}" t WHERE t.id = s.id AND {where})',
            (kind, *params, kind, *params),
        )
        touched.ids[kind] = sorted({r[0] for r in rows})
        touched.old_refs[kind] = sorted({r[1] for r in rows if r[1] is not None})
    return touched


def record_seen(store: Store, touched: Touched | None) -> None:
    """Bring the fingerprints in step with the records: of the touched ones, or of all (`touched` None)."""
    for kind in (*WATCHED, *EXPLICIT):
        table, where, params = TABLES[kind].name, _condition(kind), _params(kind)
        fingerprint = _fingerprint(kind, store.dialect)
        select = f'SELECT ?, t.id, {fingerprint}, {_ref(kind)} FROM "{table}" t WHERE {where}'
        summary = touched.summaries[kind] if touched is not None else _summary(store, kind)
        store.execute("DELETE FROM linking_seen WHERE kind = ? AND id = '#'", (f"#{kind}",))
        store.execute(
            "INSERT INTO linking_seen (kind, id, fingerprint) VALUES (?, '#', ?)", (f"#{kind}", summary)
        )
        if touched is None:
            store.execute("DELETE FROM linking_seen WHERE kind = ?", (kind,))
            store.execute(f"INSERT INTO linking_seen (kind, id, fingerprint, ref) {select}", (kind, *params))
            continue
        ids = touched.of(kind)
        if not ids:
            continue
        name = f"_obeya_seen_{kind}"
        with registered(store, {name: ids}):  # one statement each, not one per chunk (each rescans)
            listed = f"IN (SELECT item_id FROM {name})"
            store.execute(f"DELETE FROM linking_seen WHERE kind = ? AND id {listed}", (kind,))
            store.execute(
                f"INSERT INTO linking_seen (kind, id, fingerprint, ref) {select} AND t.id {listed}",
                (kind, *params),
            )


@contextmanager
def registered(store: Store, tables: Mapping[str, Sequence[str]]) -> Iterator[None]:
    """Make each id list readable in SQL as a table of that name (column ``item_id``) for the block."""
    done: list[str] = []
    try:
        for name, ids in tables.items():
            store._register_ids(name, pa.array(sorted(set(ids)), pa.string()))
            done.append(name)
        yield
    finally:
        for name in done:
            store._unregister_ids(name)
