"""Bench of replay: normalization throughput from a tool's stored raw answers.

    .venv/bin/python bench/replay.py --tool github|gitlab|jira --events 200000

Builds `--events` synthetic raw events of the tool shaped like the recordings (`replay_events`: GitHub
pull requests with their commits, reviews and review comments, accounts, git authors, commits, issues and
issue events, workflow runs and jobs, deployments with statuses, releases; GitLab merge requests with
their commits, notes and approvals, accounts, git authors, commits, issues with their state events,
pipelines and jobs, deployments, environments; Jira issues with their changelogs, accounts, sprints and
the catalogs), keyed as the collector keys them, directly in a fresh DuckDB store in a temporary folder
under /tmp, removed at the end (one Arrow batch, no HTTP). Then times
`obeya.connectors.sync.replay(store, connection)` and prints raw events/s and records written/s, and the
CPU time the process used (all threads), which other work on the machine inflates less than the wall
time.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from obeya.connectors.sync import replay
from obeya.store import Store, connect
from replay_events import CONNECTION, UNITS, raw_events


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tool", choices=sorted(UNITS), default="github", help="whose raw events (github)")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the replay")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="obeya-bench-replay-") as folder:  # removed, store and all
        store = connect(f"duckdb:///{folder}/obeya.duckdb")
        try:
            _run(store, args.tool, args.events, args.profile)
        finally:
            store.close()


def _run(store: Store, tool: str, events: int, profile: bool) -> None:
    """Store `events` synthetic raw events of `tool` in `store`, replay them, print the figures."""
    store.migrate()
    began = time.perf_counter()
    batch = raw_events(tool, events)
    store.upsert("raw_event", batch)
    built = time.perf_counter() - began
    print(f"raw events stored     {batch.num_rows} ({built:.1f} s to build and store)")

    began, cpu = time.perf_counter(), time.process_time()
    if profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        report = profiler.runcall(replay, store, CONNECTION)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    else:
        report = replay(store, CONNECTION)
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu
    raw = sum(r.raw_events for r in report.resources.values())
    print(f"replay wall time      {wall:.2f} s (CPU {cpu:.2f} s, load average {os.getloadavg()[0]:.2f})")
    print(f"raw events replayed   {raw} ({raw / wall:,.0f} events/s)")
    print(f"records written       {report.normalized} ({report.normalized / wall:,.0f} records/s)")
    print(f"skipped               {dict(report.skipped)}")


if __name__ == "__main__":
    main()
