"""API latency benchmark: a stream's dashboard figures over real HTTP on loopback.

Run: .venv/bin/python bench/api.py [--items 100000] [--requests 200] [--deployments D]
     [--database-url postgresql://...]

Uses the store `bench/engine.py` builds with the same options (/tmp/obeya-bench/engine-N.duckdb, or
engine-N-deployments-D.duckdb, or the PostgreSQL schema it names; run that first). For each
dashboard request (flow figures, DORA figures, the value stream map) of one value stream it measures:
cold — the figure computed from the store (the data version is bumped before each request, so the
cache cannot answer; 5 requests) — and warm — `--requests` requests in a row, answered from the figure
cache while the data is unchanged. Prints p50 and p95 in milliseconds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from obeya.api import create_app
from obeya.store import Store, connect

STORE_DIR = Path("/tmp/obeya-bench")
ENDPOINTS = {
    "flow figures": "/api/v1/metrics/flow?stream={stream}&window=90d&as_of=2025-06-30&detail=false",
    "DORA figures": "/api/v1/metrics/dora?stream={stream}&window=90d&as_of=2025-06-30&detail=false",
    "value stream map": "/api/v1/vsm?stream={stream}&window=90d&as_of=2025-06-30",
}


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def open_store(items: int, deployments: int | None, database_url: str | None) -> tuple[Store, str]:
    """The store `bench/engine.py` built for these options (never builds one) and its engine's name."""
    sys.path.insert(0, str(Path(__file__).parent))
    from engine import store_name

    name = store_name(items, deployments)
    if database_url:
        schema = "obeya_bench_" + name.replace("-deployments-", "_d_").replace("-", "_")
        store = connect(database_url, schema=schema)
        if store.schema_version() == 0 or not store.count("work_item"):
            raise SystemExit(f"no benchmark schema {schema}: run bench/engine.py with the same options first")
        return store, "PostgreSQL"
    path = STORE_DIR / f"{name}.duckdb"
    if not path.exists():
        raise SystemExit(f"no benchmark store at {path}: run bench/engine.py with the same options first")
    return connect(f"duckdb:///{path}"), "DuckDB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--stream", default="Payments")
    parser.add_argument("--deployments", type=int, help="the store bench/engine.py --deployments densified")
    parser.add_argument("--database-url", help="PostgreSQL URL (default: the DuckDB file under /tmp)")
    args = parser.parse_args()
    store, engine = open_store(args.items, args.deployments, args.database_url)
    store.migrate()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(store), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    production = store.query("SELECT count(*) FROM deployments WHERE environment_class = 'production'")[0][0]
    print(
        f"API benchmark, {args.items:,} items, {production:,} production deployment rows ({engine}), "
        f"stream {args.stream}, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, load "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
    )
    print(f"{'request':<18} {'cold p50 ms':>12} {'cold max ms':>12} {'warm p50 ms':>12} {'warm p95 ms':>12}")
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
        for name, template in ENDPOINTS.items():
            url = template.format(stream=args.stream)
            cold = []
            for _ in range(5):
                store.execute("UPDATE data_versions SET version = version + 1")
                started = time.perf_counter()
                client.get(url).raise_for_status()
                cold.append((time.perf_counter() - started) * 1000)
            warm = []
            for _ in range(args.requests):
                started = time.perf_counter()
                client.get(url).raise_for_status()
                warm.append((time.perf_counter() - started) * 1000)
            print(
                f"{name:<18} {statistics.median(cold):>12.1f} {max(cold):>12.1f} "
                f"{_percentile(warm, 0.5):>12.1f} {_percentile(warm, 0.95):>12.1f}",
                flush=True,
            )
    print("load " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    server.should_exit = True
    thread.join(timeout=10)


if __name__ == "__main__":
    main()
