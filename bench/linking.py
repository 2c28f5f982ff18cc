"""Bench of `derive_links` on the demo organisation (DuckDB under /tmp).

    .venv/bin/python bench/linking.py                 # 10 000 and 100 000 items
    .venv/bin/python bench/linking.py --items 20000   # one size

For each size: builds the demo store once (kept under /tmp between runs), derives the links from scratch,
derives them again (nothing should be written), and prints seconds, rows written and coverage.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

from obeya.demo import load_demo
from obeya.linking import derive_links, traceability_coverage
from obeya.store import Store, connect

AS_OF = dt.date(2025, 6, 30)
SEED = 7


def _store(items: int) -> Store:
    path = Path(f"/tmp/obeya-bench-linking-{items}.duckdb")
    fresh = not path.exists()
    store = connect(f"duckdb:///{path}")
    store.migrate()
    if fresh:
        started = time.perf_counter()
        demo = load_demo(store, SEED, items, AS_OF)
        print(f"  demo built in {time.perf_counter() - started:.1f} s: {demo.total_rows:,} rows")
    else:
        store.execute("DELETE FROM trace_links WHERE source = 'obeya'")
        store.execute("DELETE FROM deployment_changes WHERE source = 'obeya'")
    return store


def bench(items: int) -> None:
    """Derive the links of a demo of `items` work items twice; print what it took."""
    print(f"items={items:,}")
    with _store(items) as store:
        sizes = {t: store.count(t) for t in ("work_item", "commit", "commit_parent", "change", "deployment")}
        print("  " + ", ".join(f"{k}: {v:,}" for k, v in sizes.items()))
        first = derive_links(store)
        print(
            f"  derive_links (empty): {first.seconds:.2f} s, rows written {first.rows_written:,} "
            f"(trace_links {first.total_links:,}, deployment_changes {first.deployment_changes.total:,}); "
            f"deployments by graph {first.deployments_by_graph:,}, by time window "
            f"{first.deployments_by_time_window:,}, without base {first.deployments_without_base:,}"
        )
        again = derive_links(store)
        print(
            f"  derive_links (again): {again.seconds:.2f} s, rows written {again.rows_written:,}, "
            f"removed {again.rows_removed:,}"
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
