"""Bench of `derive_links` and `update_links` on the demo organisation (DuckDB under /tmp).

    .venv/bin/python bench/linking.py                 # 10 000 and 100 000 items
    .venv/bin/python bench/linking.py --items 20000   # one size

For each size: builds the demo store once (kept under /tmp between runs) and sets 1 % of the rows link
rules read aside (every 100th row by id of work items, commits, commit parents, changes, change commits,
pipeline runs, deployments and incidents: new data spread over the whole year, the worst case for an
incremental derivation), and the latest deployment apart (a webhook's deployment). Then: derives every
link from scratch (`derive_links`), derives incrementally with nothing changed, writes the 1 % back and
derives incrementally (`update_links`), writes the one deployment back and derives incrementally, and
checks that a full derivation afterwards writes and removes nothing (the incremental ones gave the same
links).
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

import pyarrow as pa

from obeya.demo import load_demo
from obeya.linking import derive_links, traceability_coverage, update_links
from obeya.linking.touched import WATCHED
from obeya.model.schema import TABLES
from obeya.store import Store, connect

AS_OF = dt.date(2025, 6, 30)
SEED = 7
EVERY = 100  # 1 % new data


def _store(items: int) -> Store:
    path = Path(f"/tmp/obeya-bench-linking-{items}.duckdb")
    fresh = not path.exists()
    store = connect(f"duckdb:///{path}")
    store.migrate()
    if fresh:
        started = time.perf_counter()
        demo = load_demo(store, SEED, items, AS_OF)
        print(f"  demo built in {time.perf_counter() - started:.1f} s: {demo.total_rows:,} rows")
    with store.transaction():
        store.execute("DELETE FROM trace_links WHERE source = 'obeya'")
        store.execute("DELETE FROM deployment_changes WHERE source = 'obeya'")
        store.execute("DELETE FROM linking_seen")
        store.execute("UPDATE linking_state SET version = -1")
    return store


def _set_aside(store: Store) -> dict[str, pa.Table]:
    """Take every EVERY-th row (by id) of the tables link rules read out of the store; return them."""
    held: dict[str, pa.Table] = {}
    with store.transaction():
        for kind in WATCHED:
            name = TABLES[kind].name
            rows = store.query_arrow(
                f'SELECT * FROM (SELECT t.*, row_number() OVER (ORDER BY id) AS _n FROM "{name}" t) s '
                f"WHERE _n % {EVERY} = 0"
            ).drop_columns(["_n"])
            held[kind] = rows
            ids = rows["id"].to_pylist()
            for start in range(0, len(ids), 1000):
                chunk = ids[start : start + 1000]
                store.delete_where(kind, f"id IN ({', '.join('?' * len(chunk))})", chunk)
    return held


def _latest_deployment(store: Store) -> pa.Table:
    """Take the deployment that finished last out of the store; return it."""
    row = store.query_arrow("SELECT * FROM deployments ORDER BY finished_at DESC NULLS LAST, id LIMIT 1")
    store.delete_where("deployment", "id = ?", (row["id"][0].as_py(),))
    return row


def bench(items: int) -> None:
    """Derive the links of a demo of `items` work items: full, unchanged, after 1 % new data, after one
    new deployment."""
    print(f"items={items:,}")
    with _store(items) as store:
        held = _set_aside(store)
        latest = _latest_deployment(store)
        sizes = {t: store.count(t) for t in ("work_item", "commit", "commit_parent", "change", "deployment")}
        print("  " + ", ".join(f"{k}: {v:,}" for k, v in sizes.items()) + " (99 %)")
        first = derive_links(store)
        print(
            f"  derive_links (from scratch): {first.seconds:.2f} s, rows written {first.rows_written:,} "
            f"(trace_links {first.total_links:,}, deployment_changes {first.deployment_changes.total:,}); "
            f"deployments by graph {first.deployments_by_graph:,}, by time window "
            f"{first.deployments_by_time_window:,}, without base {first.deployments_without_base:,}"
        )
        same = update_links(store)
        print(f"  update_links (nothing changed): {same.seconds * 1000:.1f} ms, mode {same.mode}")
        started = time.perf_counter()
        with store.transaction():
            for kind, rows in held.items():
                store.upsert(kind, rows)
        written = sum(t.num_rows for t in held.values())
        print(f"  wrote 1 % back: {written:,} rows in {time.perf_counter() - started:.2f} s")
        after = update_links(store)
        print(
            f"  update_links (1 % new): {after.seconds:.2f} s, mode {after.mode}, touched "
            f"{sum(after.touched.values()):,} records; {after.summary()}; rules run: {len(after.links)}"
        )
        store.upsert("deployment", latest)
        one = update_links(store)
        print(
            f"  update_links (1 new deployment): {one.seconds:.2f} s, mode {one.mode}, "
            f"touched {one.touched}; {one.summary()}; rules run: {len(one.links)}"
        )
        check = derive_links(store)
        print(
            f"  derive_links (check, full): {check.seconds:.2f} s, rows written {check.rows_written:,}, "
            f"removed {check.rows_removed:,} (0 and 0: the incremental links were the full ones)"
        )
        started = time.perf_counter()
        coverage = traceability_coverage(store)
        print(f"  traceability_coverage: {time.perf_counter() - started:.2f} s")
        for label, cov in coverage.as_rows():
            share = "no data" if cov.share is None else f"{cov.share:.1%}"
            print(f"    {label}: {cov.numerator:,} of {cov.denominator:,} ({share})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--items", type=int, action="append", help="work items (repeatable)")
    args = parser.parse_args()
    for items in args.items or [10_000, 100_000]:
        bench(items)


if __name__ == "__main__":
    main()
