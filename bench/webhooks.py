"""Bench of the webhook receivers: one tool's signed deliveries at a steady rate against a real server.

    .venv/bin/python bench/webhooks.py --tool github|gitlab|jira|pagerduty --rate 500 --seconds 20

Starts the app with uvicorn (in a child process, so client and server do not share an interpreter) on a
free loopback port against a fresh DuckDB under /tmp (or ``--database-url postgresql://...?schema=NAME``),
with the tool's bench object (repository, project, service) declared in a scope so every delivery is
normalized. An asyncio client sends ``rate x seconds`` deliveries of the tool, signed as the tool signs
them (`webhook_deliveries`: GitHub pull requests, reviews, workflow runs; GitLab merge requests,
pipelines, issues; Jira issues created and moved; PagerDuty incidents triggered, acknowledged, resolved;
every 50th a redelivery of an earlier one) on a fixed schedule and waits for every answer (bounded by a
deadline), then for the worker to settle everything (the status endpoint's ``pending`` at 0). It prints
latency percentiles, errors, answers by status, how long after the last answer everything was
normalized, and checks in the store that every delivery is stored exactly once, every redelivery counted
once, and every delivery normalized.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson

from webhook_deliveries import SECRET, TOOLS, Delivery, ToolLoad, deliveries

# --- the server (child process) ---------------------------------------------------------------------


def serve(port: int, url: str) -> None:
    """Run the app on `port` against the store at `url` until terminated."""
    import uvicorn

    from obeya.api.app import create_app, quiet_garbage_collector
    from obeya.store import connect

    app = create_app(connect(url))
    quiet_garbage_collector()  # as `obeya serve` does
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _prepare(url: str, load: ToolLoad) -> None:
    from obeya.model import Scope, ValueStream
    from obeya.store import connect
    from obeya.store.postgres_store import PostgresStore

    with connect(url) as store:
        if isinstance(store, PostgresStore):
            if not store.schema:
                raise SystemExit("--database-url needs ?schema=NAME: the bench drops that schema first")
            store.drop_schema()
    with connect(url) as store:
        store.migrate()
        store.upsert_records(
            [
                ValueStream(source="obeya", external_id="bench", name="Bench"),
                Scope(
                    source="obeya",
                    external_id=f"bench-{load.tool}",
                    value_stream_id="obeya:bench",
                    tool=load.tool,
                    object_type=load.scope_type,
                    object_key=load.scope_key,
                ),
            ]
        )


def _server_stack() -> str:
    """What uvicorn serves with here (as `obeya serve` does): its HTTP parser and event loop."""
    import importlib.util
    from importlib.metadata import version

    http = "httptools" if importlib.util.find_spec("httptools") else "h11 (pure Python)"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return f"uvicorn {version('uvicorn')}, {http}, {loop}"


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the load -----------------------------------------------------------------------------------------


@dataclass
class Result:
    """The answer to one request (status 0: no answer) and how long it took."""

    status: int
    seconds: float
    answer: str
    delivery_id: str


CONNECTIONS = 64
"""Keep-alive connections the load generator sends over (as a tool's webhook senders would)."""


class _Connection:
    """One keep-alive HTTP/1.1 connection: a request written whole, its answer read by Content-Length.

    httpx's async pool spent several milliseconds of CPU per request with thousands of requests waiting
    for a connection, so the load generator, not the server, set the pace; this costs a few tens of
    microseconds per request.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        lines = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        try:
            await writer.drain()
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            return status, await reader.readexactly(length)
        except BaseException:
            writer.close()
            self._streams = None
            raise


async def _send(
    pool: asyncio.Queue[_Connection], path: str, delivery: Delivery, due: float, out: list[Result]
) -> None:
    """Send when a connection is free; the latency counts from the delivery's tick, waiting included."""
    connection = await pool.get()
    try:
        status, body = await asyncio.wait_for(connection.post(path, delivery.headers, body=delivery.body), 10)
        answer = str(orjson.loads(body).get("status"))
        out.append(Result(status, time.perf_counter() - due, answer, delivery.delivery_id))
    except (TimeoutError, OSError, ValueError, IndexError, asyncio.IncompleteReadError) as error:
        out.append(Result(0, time.perf_counter() - due, type(error).__name__, delivery.delivery_id))
    finally:
        pool.put_nowait(connection)


async def _load(url: str, deliveries: list[Delivery], rate: float, deadline: float) -> list[Result]:
    """Start each request on its tick of a fixed schedule (not when the previous answer came back)."""
    results: list[Result] = []
    address = httpx.URL(url)
    host, port = str(address.host), int(address.port or 80)
    pool: asyncio.Queue[_Connection] = asyncio.Queue()
    for _ in range(CONNECTIONS):
        pool.put_nowait(_Connection(host, port))
    start = time.perf_counter()
    tasks = []
    for i, delivery in enumerate(deliveries):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(_send(pool, address.path, delivery, due, results)))
    remaining = max(1.0, start + deadline - time.perf_counter())
    _, pending = await asyncio.wait(tasks, timeout=remaining)
    for task in pending:
        task.cancel()
    return results


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _check_store(url: str, load: ToolLoad, sent: list[Delivery]) -> tuple[int, int, int, dict[str, int]]:
    from obeya.store import connect

    unique = {d.delivery_id for d in sent}
    with connect(url) as store:
        stored = store.query(
            "SELECT external_id, count(*) FROM raw_events WHERE source = ? "
            "AND external_id = delivery_id GROUP BY external_id",
            [load.tool],
        )
        counts = {str(k): int(n) for k, n in stored}
        missing = len(unique - set(counts))
        twice = sum(1 for n in counts.values() if n > 1)
        extra = len(set(counts) - unique)
        records = {kind: store.count(kind) for kind in load.records}
    return missing, twice, extra, records


def main() -> None:
    """Parse the arguments, run the bench, print the figures; exit 1 if a delivery was lost, doubled,
    miscounted or not normalized."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--tool", choices=sorted(TOOLS), default="github", help="whose deliveries to send (default github)"
    )
    parser.add_argument("--rate", type=float, default=500.0, help="requests per second (default 500)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to send (default 20)")
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL store to use (postgresql://...?schema=NAME: the schema is dropped first and "
        "left for inspection); default a fresh DuckDB file under /tmp",
    )
    parser.add_argument("--serve", nargs=2, metavar=("PORT", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), args.serve[1])
        return

    total = int(args.rate * args.seconds)
    database = f"/tmp/obeya-bench-webhooks-{os.getpid()}.duckdb"
    url = args.database_url or f"duckdb:///{database}"
    for leftover in (Path(database), Path(database + ".wal")):
        leftover.unlink(missing_ok=True)
    load = TOOLS[args.tool]
    _prepare(url, load)
    sent = deliveries(load, total)
    port = _free_port()
    env = {**os.environ, load.secret_env: SECRET}
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port), url], env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(f"{base}/api/v1/health", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        else:
            raise SystemExit("the server did not start within 10 s")
        print(
            f"sending {total:,} {load.label} deliveries at {args.rate:g}/s for {args.seconds:g} s "
            f"to {base}{load.path} ..."
        )
        print(f"server: {_server_stack()}")
        began = time.perf_counter()
        server_cpu = _cpu_seconds(server.pid)
        client_cpu = time.process_time()
        results = asyncio.run(_load(f"{base}{load.path}", sent, args.rate, args.seconds + 30))
        elapsed = time.perf_counter() - began
        client_cpu = time.process_time() - client_cpu
        # Normalization runs after the answers: how long after the last answer is everything settled?
        answered_at = time.perf_counter()
        while True:
            status = httpx.get(f"{base}/api/v1/webhooks/status", timeout=10.0).json()["sources"][load.tool]
            if status["pending"] == 0 or time.perf_counter() - answered_at > 60:
                break
            time.sleep(0.01)
        settle_lag = time.perf_counter() - answered_at
        server_cpu = _cpu_seconds(server.pid) - server_cpu
    finally:
        server.terminate()
        server.wait(timeout=30)

    latencies = [r.seconds * 1000 for r in results if r.status]
    errors = [r for r in results if not 200 <= r.status < 300]
    answers = Counter(f"{r.status} {r.answer}" for r in results)
    # Whichever copy arrives first is taken; every other copy must be answered duplicate.
    taken = Counter(r.delivery_id for r in results if r.status and r.answer != "duplicate")
    wrong_dupes = sum(1 for n in taken.values() if n != 1)
    print(f"answered {len(results):,}/{total:,} in {elapsed:.1f} s ({len(results) / elapsed:.0f}/s)")
    if latencies:
        print(
            f"latency ms: p50 {_percentile(latencies, 50):.1f}  p95 {_percentile(latencies, 95):.1f}  "
            f"p99 {_percentile(latencies, 99):.1f}  max {max(latencies):.1f}"
        )
    print(f"errors (no answer or not 2xx): {len(errors)}; unsent or unanswered: {total - len(results)}")
    print(f"settled (normalized, pending 0) {settle_lag * 1000:.0f} ms after the last answer")
    print(
        f"server CPU {server_cpu:.1f} s ({server_cpu / max(len(results), 1) * 1000:.2f} ms per answer), "
        f"load generator CPU {client_cpu:.1f} s; "
        f"load average at the end {os.getloadavg()[0]:.2f}"
    )
    print("answers: " + ", ".join(f"{k}: {v}" for k, v in sorted(answers.items())))
    print("status endpoint: " + ", ".join(f"{k} {v}" for k, v in status.items() if k != "last_received_at"))
    missing, twice, extra, records = _check_store(url, load, sent)
    unique = len({d.delivery_id for d in sent})
    redeliveries = sum(1 for d in sent if d.redelivery)
    print(
        f"store: {unique:,} distinct deliveries, missing {missing}, stored more than once {twice}, "
        f"unexpected {extra}; deliveries not taken exactly once: {wrong_dupes}"
    )
    # The status endpoint counts from the store: each redelivery once, each delivery normalized once.
    counted = (
        status["received"] == unique
        and status["duplicates"] == redeliveries
        and status["normalized"] == unique
        and status["normalization_failures"] == 0
    )
    print(
        f"redeliveries sent {redeliveries}, counted {status['duplicates']}; "
        f"normalized {status['normalized']:,} of {unique:,}: " + ("yes" if counted else "NO")
    )
    print("records: " + ", ".join(f"{k} {v:,}" for k, v in records.items()))
    ok = (
        missing == 0
        and twice == 0
        and extra == 0
        and wrong_dupes == 0
        and counted
        and not errors
        and status["pending"] == 0
    )
    print("exactly once: " + ("yes" if ok else "NO"))
    for leftover in (Path(database), Path(database + ".wal")):
        leftover.unlink(missing_ok=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
