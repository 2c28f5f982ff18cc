"""Scale benchmark of the demo generator: generate and load into a fresh DuckDB file per size.

Run: .venv/bin/python bench/demo_scale.py [--sizes 10000,100000,1000000]
     [--database-url postgresql://postgres@127.0.0.1:5432/test]  (a schema of its own, dropped after)

Each size runs in a child process of its own, so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

BIG_KINDS = (
    "work_item",
    "status_transition",
    "commit",
    "commit_parent",
    "pipeline_run",
    "pipeline_job",
    "change",
)
AS_OF = "2025-06-30"


def run_one(items: int, database_url: str | None = None) -> dict[str, Any]:
    """Generate and load `items` work items into a new DuckDB file, or a new PostgreSQL schema."""
    from obeya.demo.generator import load_demo
    from obeya.store import connect
    from obeya.store.postgres_store import PostgresStore

    with tempfile.TemporaryDirectory(prefix="obeya-demo-bench-", dir="/tmp") as directory:
        if database_url:
            store = connect(database_url, schema=f"obeya_bench_{items}")
        else:
            store = connect(f"duckdb:///{directory}/demo.duckdb")
        store.migrate()
        report = load_demo(store, seed=7, items=items, as_of=dt.date.fromisoformat(AS_OF))
        if isinstance(store, PostgresStore):
            store.drop_schema()
            size_mib = 0.0
        else:
            size_mib = (Path(directory) / "demo.duckdb").stat().st_size / 2**20
        store.close()
    return {
        "items": items,
        "rows": report.rows,
        "total_rows": report.total_rows,
        "seconds": report.seconds,
        "generate_seconds": report.generate_seconds,
        "write_seconds": report.write_seconds,
        "peak_rss_mib": report.peak_memory_mib,
        "file_mib": size_mib,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated work item counts")
    parser.add_argument("--database-url", help="PostgreSQL URL to load into instead of a DuckDB file")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.database_url)))
        return
    where = "PostgreSQL (own schema)" if args.database_url else "DuckDB file under /tmp"
    print(f"demo scale benchmark, as_of {AS_OF}, seed 7, {where}, {dt.date.today()}")
    header = (
        f"{'items':>9} {'total rows':>11} {'gen s':>7} {'write s':>8} {'total s':>8} "
        f"{'rows/s written':>15} {'peak RSS MiB':>13}"
    )
    print(header)
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        command = [sys.executable, __file__, "--one", str(size)]
        if args.database_url:
            command += ["--database-url", args.database_url]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        results.append(r)
        rate = r["total_rows"] / r["write_seconds"] if r["write_seconds"] else 0.0
        print(
            f"{r['items']:>9,} {r['total_rows']:>11,} {r['generate_seconds']:>7.1f} "
            f"{r['write_seconds']:>8.1f} "
            f"{r['seconds']:>8.1f} {rate:>15,.0f} {r['peak_rss_mib']:>13,.0f}",
            flush=True,
        )
    print()
    print("rows per kind (big tables):")
    print(f"{'kind':<18}" + "".join(f"{r['items']:>14,}" for r in results))
    for kind in BIG_KINDS:
        print(f"{kind:<18}" + "".join(f"{r['rows'].get(kind, 0):>14,}" for r in results))


if __name__ == "__main__":
    main()
