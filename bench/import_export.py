"""Measure the JSONL import and export: lines per second on a synthetic, valid file.

    .venv/bin/python bench/import_export.py --lines 100000
    .venv/bin/python bench/import_export.py --lines 1000000 --no-raw
    .venv/bin/python bench/import_export.py --lines 100000 \
        --database-url 'postgresql://postgres@127.0.0.1:5432/test?schema=obeya_bench'

The file mixes kinds the way a real export does: mostly work items and their status transitions, then
changes, commits and deployments, a few people, teams and a value stream that the rest refer to. With
``--database-url`` the store there is used (a PostgreSQL schema is dropped afterwards); otherwise a fresh
DuckDB file under /tmp.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from obeya.interchange import export_jsonl, import_jsonl
from obeya.store import Store, connect
from obeya.store.postgres_store import PostgresStore

FLOW = [("To Do", "waiting"), ("In Progress", "active"), ("In Review", "active"), ("Done", "done")]
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _time(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_file(path: Path, lines: int, seed: int = 7) -> None:
    """A valid file of about `lines` lines; references point backward, as in a tool's feed."""
    rng = random.Random(seed)
    out = path.open("wb")
    written = 0

    def put(obj: dict[str, object]) -> None:
        nonlocal written
        out.write(orjson.dumps(obj) + b"\n")
        written += 1

    put({"kind": "value_stream", "source": "obeya", "external_id": "pay", "name": "Payments"})
    for t in range(5):
        put(
            {
                "kind": "team",
                "source": "obeya",
                "external_id": f"t{t}",
                "name": f"Team {t}",
                "value_stream_id": "obeya:pay",
            }
        )
    for p in range(50):
        put(
            {
                "kind": "person",
                "source": "github",
                "external_id": f"u{p}",
                "display_name": f"User {p}",
                "team_id": f"obeya:t{p % 5}",
                "email": f"u{p}@example.com",
            }
        )
    item = change = commit = deployment = 0
    while written < lines:
        roll = rng.random()
        minute = written * 3.0
        if roll < 0.30:
            item += 1
            put(
                {
                    "kind": "work_item",
                    "source": "jira",
                    "external_id": str(item),
                    "key": f"PAY-{item}",
                    "title": f"Make payments faster, part {item}",
                    "project": "PAY",
                    "tool_type": "Story",
                    "flow_item_type": rng.choice(["feature", "defect", "risk", "debt"]),
                    "status": "To Do",
                    "flow_state": "waiting",
                    "team_id": f"obeya:t{item % 5}",
                    "assignee_id": f"github:u{item % 50}",
                    "labels": ["payments", "api"][: item % 3],
                    "story_points": float(item % 8),
                    "created_at": _time(minute),
                }
            )
        elif roll < 0.75 and item:
            target = rng.randint(max(1, item - 500), item)
            step = rng.randrange(len(FLOW) - 1)
            put(
                {
                    "kind": "status_transition",
                    "source": "jira",
                    "external_id": f"{target}-{written}",
                    "work_item_id": f"jira:{target}",
                    "at": _time(minute),
                    "from_status": FLOW[step][0],
                    "to_status": FLOW[step + 1][0],
                    "from_flow_state": FLOW[step][1],
                    "to_flow_state": FLOW[step + 1][1],
                    "author_id": f"github:u{written % 50}",
                }
            )
        elif roll < 0.85:
            change += 1
            put(
                {
                    "kind": "change",
                    "source": "github",
                    "external_id": f"pay/{change}",
                    "repo": "acme/pay",
                    "number": change,
                    "title": f"PAY-{max(item, 1)}: faster",
                    "branch": f"feat/{change}",
                    "base_branch": "main",
                    "author_id": f"github:u{change % 50}",
                    "state": "merged",
                    "created_at": _time(minute),
                    "merged_at": _time(minute + 90),
                    "merge_commit_sha": f"{change:040x}",
                    "additions": change % 300,
                    "deletions": change % 40,
                }
            )
        elif roll < 0.95:
            commit += 1
            put(
                {
                    "kind": "commit",
                    "source": "github",
                    "external_id": f"acme/pay@{commit:040x}",
                    "repo": "acme/pay",
                    "sha": f"{commit:040x}",
                    "message": f"Speed up payments ({commit})",
                    "author_id": f"github:u{commit % 50}",
                    "authored_at": _time(minute),
                    "additions": commit % 100,
                    "deletions": commit % 20,
                }
            )
        else:
            deployment += 1
            put(
                {
                    "kind": "deployment",
                    "source": "github",
                    "external_id": f"d{deployment}",
                    "service": "pay",
                    "environment": "prod",
                    "environment_class": "production",
                    "repo": "acme/pay",
                    "commit_sha": f"{max(commit, 1):040x}",
                    "result": "success",
                    "started_at": _time(minute),
                    "finished_at": _time(minute + 4),
                }
            )
    out.close()


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--no-raw", action="store_true", help="import without keeping raw events")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="obeya-bench-", dir="/tmp"))
    source = workdir / "in.jsonl"
    exported = workdir / "out.jsonl"
    url = args.database_url or f"duckdb:///{workdir}/bench.duckdb"
    started = time.perf_counter()
    write_file(source, args.lines)
    print(
        f"generated {args.lines:,} lines ({source.stat().st_size / 1e6:,.1f} MB) "
        f"in {time.perf_counter() - started:.1f} s"
    )

    store: Store = connect(url)
    try:
        store.migrate()
        report = import_jsonl(store, source, keep_raw=not args.no_raw)
        print(
            f"import: {report.lines:,} lines in {report.seconds:.2f} s = "
            f"{report.lines / report.seconds:,.0f} lines/s "
            f"({report.total:,} records, {report.raw_events_kept:,} raw events kept) on {store.dialect}"
        )
        started = time.perf_counter()
        with exported.open("w", encoding="utf-8", newline="\n") as out:
            counts = export_jsonl(store, out)
        seconds = time.perf_counter() - started
        total = sum(counts.values())
        print(
            f"export: {total:,} lines in {seconds:.2f} s = {total / seconds:,.0f} lines/s "
            f"({exported.stat().st_size / 1e6:,.1f} MB)"
        )
        print(f"peak memory (max RSS): {_max_rss_mb():,.0f} MB")
    finally:
        if isinstance(store, PostgresStore) and store.schema:
            store.drop_schema()
        store.close()
        for path in workdir.iterdir():
            path.unlink()
        os.rmdir(workdir)


if __name__ == "__main__":
    main()
