"""Engine benchmark: full recompute of flow + DORA + value stream map for every value stream.

Run: .venv/bin/python bench/engine.py [--sizes 10000,100000,1000000] [--deployments 1000000]
     [--database-url postgresql://...]

Each size's store is built once (demo organisation, seed 7, as of 2025-06-30, + `obeya link`) and kept
under /tmp/obeya-bench for DuckDB (a PostgreSQL schema `obeya_bench_engine_N` is built and kept too; --drop
removes them). With --deployments D the store is the demo store with its production deployments densified
to about D (`bench/densify.py`: copies of every production deployment shifted in time, in SQL in one
transaction; with --copy-changes the copies ship their originals' changes too) and kept apart
(`engine-N-deployments-D[-changes].duckdb`, schema `obeya_bench_engine_N_d_D[_changes]`); on DuckDB it
starts from a copy of the plain store's file when that exists. Then, for each value stream over a 90-day
window: the flow figures, the DORA report and the value stream map beside the previous window's (as the
dashboard and `obeya vsm` show it, `value_stream_map_with_previous`); the recompute is timed three times
and the best and median are printed, with the slowest parts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from densify import densify_deployments
from obeya.demo.generator import load_demo
from obeya.engine import dora, flow
from obeya.engine.snapshot import forget_snapshots
from obeya.engine.stage_comparison import value_stream_map_with_previous
from obeya.engine.window import Slice, Window
from obeya.linking import derive_links
from obeya.store import Store, connect
from obeya.store.postgres_store import PostgresStore

AS_OF = dt.date(2025, 6, 30)
STORE_DIR = Path("/tmp/obeya-bench")


def store_name(items: int, deployments: int | None, copy_changes: bool = False) -> str:
    """The benchmark store's file stem (DuckDB) or schema (PostgreSQL) for a size."""
    return (
        f"engine-{items}"
        + (f"-deployments-{deployments}" if deployments else "")
        + ("-changes" if deployments and copy_changes else "")
    )


def open_store(
    items: int, database_url: str | None, deployments: int | None = None, copy_changes: bool = False
) -> tuple[Store, float | None]:
    """The benchmark store for `items` (densified to about `deployments` production deployments), built
    if missing; returns it and the build seconds (None: reused)."""
    name = store_name(items, deployments, copy_changes)
    started = time.perf_counter()
    if database_url:
        store = connect(
            database_url, schema="obeya_bench_" + name.replace("-deployments-", "_d_").replace("-", "_")
        )
    else:
        STORE_DIR.mkdir(exist_ok=True)
        path = STORE_DIR / f"{name}.duckdb"
        plain = STORE_DIR / f"{store_name(items, None)}.duckdb"
        if deployments and not path.exists() and plain.exists():
            shutil.copyfile(plain, path)
            if plain.with_suffix(".duckdb.wal").exists():
                shutil.copyfile(plain.with_suffix(".duckdb.wal"), path.with_suffix(".duckdb.wal"))
            print(f"copied {plain} to {path}", flush=True)
        store = connect(f"duckdb:///{path}")
    store.migrate()
    if store.count("work_item") and (
        not deployments or store.query("SELECT count(*) FROM deployments WHERE id LIKE '%~%'")[0][0]
    ):
        return store, None
    if not store.count("work_item"):
        load_demo(store, seed=7, items=items, as_of=AS_OF)
        derive_links(store)
    if deployments:
        densify_started = time.perf_counter()
        done = densify_deployments(store, deployments, copy_changes)
        print(
            f"densified {done.production_before:,} production deployment rows x {done.copies_per_row} "
            f"(copies {done.spacing_seconds} s apart) to {done.production_after:,}, "
            f"+{done.deployment_changes_added:,} deployment changes; {done.links}; "
            f"in {time.perf_counter() - densify_started:.1f} s",
            flush=True,
        )
    return store, time.perf_counter() - started


def load() -> str:
    """The machine's 1-, 5- and 15-minute load averages."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def recompute(store: Store, streams: list[str], window: Window) -> dict[str, float]:
    """Compute every stream's figures once, as a dashboard does (the item age reuses the flow times for
    its SLEs); seconds per part. The item timeline snapshots are dropped first: nothing is reused from
    an earlier run."""
    forget_snapshots(store)
    times: dict[Slice, flow.FlowTimes] = {}

    def flow_time(s: Slice) -> flow.FlowTimes:
        times[s] = flow.flow_time(store, window, s)
        return times[s]

    parts: dict[str, Callable[[Slice], object]] = {
        "flow velocity": lambda s: flow.flow_velocity(store, window, s),
        "flow time": flow_time,
        "flow efficiency": lambda s: flow.flow_efficiency(store, window, s),
        "flow load": lambda s: flow.flow_load(store, window, s),
        "flow distribution": lambda s: flow.flow_distribution(store, window, s),
        "flow predictability": lambda s: flow.flow_predictability(store, window, s),
        "work item age": lambda s: flow.work_item_age(store, window, s, flow_times=times[s]),
        "dora": lambda s: dora.dora_report(store, window, s),
        # the map beside the previous window's, as the dashboard and `obeya vsm` show it (one pass over
        # the visits for both windows)
        "map + previous window": lambda s: value_stream_map_with_previous(store, window, s),
    }
    seconds = dict.fromkeys(parts, 0.0)
    for stream in streams:
        scope = Slice(value_stream_id=stream)
        for name, compute in parts.items():
            started = time.perf_counter()
            compute(scope)
            seconds[name] += time.perf_counter() - started
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated work item counts")
    parser.add_argument(
        "--deployments",
        type=int,
        help="densify the production deployments to about this many (bench/densify.py); default: the demo's",
    )
    parser.add_argument(
        "--copy-changes",
        action="store_true",
        help="with --deployments: each copy also ships its original's changes (bench/densify.py)",
    )
    parser.add_argument("--database-url", help="PostgreSQL URL (default: DuckDB files under /tmp)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--drop", action="store_true", help="drop the benchmark stores afterwards")
    args = parser.parse_args()
    engine = "PostgreSQL" if args.database_url else "DuckDB"
    print(f"engine benchmark on {engine}, 90-day window ending {AS_OF}, {dt.date.today()}")
    print(f"{'items':>9} {'rows':>11} {'build s':>8} {'best s':>7} {'median s':>9}  slowest parts (best run)")
    window = Window.last("90d", AS_OF)
    for items in (int(s) for s in args.sizes.split(",")):
        store, built = open_store(items, args.database_url, args.deployments, args.copy_changes)
        rows = sum(store.count(kind) for kind in ("work_item", "status_transition", "deployment", "change"))
        production = store.query("SELECT count(*) FROM deployments WHERE environment_class = 'production'")
        print(f"{items:,} items: {production[0][0]:,} production deployment rows, load {load()}", flush=True)
        streams = [r[0] for r in store.query("SELECT id FROM value_streams ORDER BY id")]
        runs = [recompute(store, streams, window) for _ in range(args.repeat)]
        totals = [sum(r.values()) for r in runs]
        best = runs[totals.index(min(totals))]
        slowest = ", ".join(f"{k} {v:.2f}" for k, v in sorted(best.items(), key=lambda kv: -kv[1])[:4])
        print(
            f"{items:>9,} {rows:>11,} {'reused' if built is None else f'{built:.0f}':>8} {min(totals):>7.2f} "
            f"{statistics.median(totals):>9.2f}  {slowest}  "
            f"(load {load()}, {dt.datetime.now(dt.UTC):%H:%M} UTC)",
            flush=True,
        )
        if args.drop and isinstance(store, PostgresStore):
            store.drop_schema()
        store.close()
        if args.drop and not args.database_url:
            (STORE_DIR / f"{store_name(items, args.deployments, args.copy_changes)}.duckdb").unlink(
                missing_ok=True
            )


if __name__ == "__main__":
    main()
