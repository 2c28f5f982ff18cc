"""Bench of the GitHub connector against a local server that enforces a GitHub-like rate budget.

    .venv/bin/python bench/connector_rate.py --repos 200 --limit-per-hour 3000 --seconds 30

A `ThreadingHTTPServer` on loopback serves `--repos` synthetic repositories shaped like the recordings
(pull requests with commits, reviews and review comments; issues with events; commits; workflow runs with
jobs; a deployment with statuses; a release), in small pages with ``Link: rel="next"``. It enforces a
budget scaled to a short run: `--limit-per-hour` requests per fixed window of `--seconds` seconds (the
"hour"), announced in ``X-RateLimit-Limit/Remaining/Reset``; a request over it is refused with 403 and
``X-RateLimit-Remaining: 0`` (GitHub's primary limit). A secondary limit refuses a request while more
than `--max-concurrent` are in flight, with 403 and ``Retry-After`` (GitHub's secondary limit).

Obeya's real connector (`obeya.connectors.sync.sync`, its own client) syncs every repository into a
fresh DuckDB under /tmp. Printed: requests made, requests the budget allowed over the run (the limit
times the run's length in windows), the share used, refused requests, records written, wall time.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson

from obeya.connectors.config import GitHubConnectionConfig
from obeya.connectors.sync import sync
from obeya.store import connect

TOKEN = "bench-token"
Item = dict[str, Any]


def _stamp(base: float, minutes: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base - minutes * 60))


def _user(uid: int) -> Item:
    return {"login": f"dev{uid}", "id": 1000 + uid, "type": "User", "site_admin": False}


def synthetic_repo(index: int, base: float) -> dict[str, list[Item]]:
    """The lists of one repository, by URL path below ``/repos/OWNER/NAME``, shaped like the recordings."""
    routes: dict[str, list[Item]] = {}
    uid = index % 40
    pulls = []
    for n in range(1, 4):
        sha = f"{index:08x}{n:032x}"
        merged = n != 3
        pulls.append(
            {
                "number": n,
                "state": "closed" if merged else "open",
                "title": f"change {n} of repo {index}",
                "user": _user(uid + n),
                "head": {"ref": f"feature-{n}", "sha": sha},
                "base": {"ref": "main", "sha": f"{index:08x}{0:032x}"},
                "created_at": _stamp(base, 600 + n),
                "updated_at": _stamp(base, 100 + n),
                "closed_at": _stamp(base, 100 + n) if merged else None,
                "merged_at": _stamp(base, 100 + n) if merged else None,
                "merge_commit_sha": sha if merged else None,
            }
        )
        commits = [
            {
                "sha": f"{index:08x}{n:016x}{c:016x}",
                "commit": {
                    "message": f"commit {c} of change {n}",
                    "author": {
                        "name": f"Dev {uid}",
                        "email": f"dev{uid}@example.com",
                        "date": _stamp(base, 700),
                    },
                    "committer": {
                        "name": f"Dev {uid}",
                        "email": f"dev{uid}@example.com",
                        "date": _stamp(base, 700),
                    },
                },
                "author": _user(uid + n),
                "committer": _user(uid + n),
                "parents": [{"sha": f"{index:08x}{0:032x}"}],
            }
            for c in range(2)
        ]
        routes[f"pulls/{n}/commits"] = commits
        routes[f"pulls/{n}/reviews"] = [
            {
                "id": index * 100 + n,
                "user": _user(uid + 5),
                "state": "APPROVED",
                "submitted_at": _stamp(base, 200),
            }
        ]
        routes[f"pulls/{n}/comments"] = [
            {
                "id": index * 100 + n,
                "user": _user(uid + 6),
                "body": "nit",
                "path": "main.go",
                "created_at": _stamp(base, 300),
            }
        ]
        if merged:
            routes.setdefault("commits", []).extend(commits)
    routes["pulls"] = pulls
    issues = []
    for n in range(10, 12):
        issues.append(
            {
                "number": n,
                "state": "closed",
                "title": f"issue {n}",
                "user": _user(uid),
                "labels": [{"name": "bug"}],
                "assignee": _user(uid + 1),
                "created_at": _stamp(base, 900),
                "updated_at": _stamp(base, 50 + n),
                "closed_at": _stamp(base, 50 + n),
                "state_reason": "completed",
            }
        )
        routes[f"issues/{n}/events"] = [
            {
                "id": index * 100 + n,
                "event": "closed",
                "actor": _user(uid),
                "created_at": _stamp(base, 50 + n),
            }
        ]
    routes["issues"] = issues
    runs = []
    for r in range(2):
        run_id = index * 10 + r
        runs.append(
            {
                "id": run_id,
                "name": "CI",
                "head_sha": f"{index:08x}{1:032x}",
                "head_branch": "main",
                "event": "push",
                "status": "completed",
                "conclusion": "success" if r else "failure",
                "run_attempt": 1,
                "created_at": _stamp(base, 400 + r),
                "run_started_at": _stamp(base, 400 + r),
                "updated_at": _stamp(base, 390 + r),
                "html_url": f"https://github.example/runs/{run_id}",
                "pull_requests": [{"number": 1}],
                "actor": _user(uid),
            }
        )
        routes[f"actions/runs/{run_id}/jobs"] = [
            {
                "id": run_id * 10 + j,
                "run_id": run_id,
                "name": f"job {j}",
                "status": "completed",
                "conclusion": "success",
                "run_attempt": 1,
                "started_at": _stamp(base, 400),
                "completed_at": _stamp(base, 395),
            }
            for j in range(2)
        ]
    routes["actions/runs"] = runs
    deployment_id = index * 10
    routes["deployments"] = [
        {
            "id": deployment_id,
            "sha": f"{index:08x}{1:032x}",
            "ref": "main",
            "environment": "production",
            "created_at": _stamp(base, 380),
            "creator": _user(uid),
        }
    ]
    routes[f"deployments/{deployment_id}/statuses"] = [
        {"id": deployment_id * 10 + 1, "state": "success", "created_at": _stamp(base, 370), "log_url": ""},
        {"id": deployment_id * 10, "state": "in_progress", "created_at": _stamp(base, 379), "log_url": ""},
    ]
    routes["releases"] = [
        {
            "id": index,
            "name": "v1.0.0",
            "tag_name": "v1.0.0",
            "draft": False,
            "published_at": _stamp(base, 360),
            "created_at": _stamp(base, 360),
            "body": "first",
            "author": _user(uid),
        }
    ]
    return routes


_TIME_FIELDS = {"pulls": "updated_at", "issues": "updated_at", "actions/runs": "created_at"}


@dataclass
class Budget:
    """GitHub-like limits: `limit` requests per fixed window of `window` seconds, `concurrent` in flight."""

    limit: int
    window: float
    concurrent: int
    start: float = 0.0
    used: Counter[int] = field(default_factory=Counter)  # accepted requests per window
    in_flight: int = 0
    made: int = 0
    refused_primary: int = 0
    refused_secondary: int = 0
    peak_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def admit(self) -> tuple[int, dict[str, str]]:
        """The status (200, or 403 when refused) and the rate-limit headers of one request."""
        with self.lock:
            self.made += 1
            now = time.time()
            window = max(int((now - self.start) // self.window), 0)
            reset = self.start + (window + 1) * self.window
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            if self.in_flight > self.concurrent:
                self.refused_secondary += 1
                return 403, {"Retry-After": "1", "X-Obeya-Refused": "secondary"}
            if self.used[window] >= self.limit:
                self.refused_primary += 1
                status = 403
            else:
                self.used[window] += 1
                status = 200
            headers = {
                "X-RateLimit-Limit": str(self.limit),
                "X-RateLimit-Remaining": str(self.limit - self.used[window]),
                "X-RateLimit-Reset": str(math.ceil(reset)),
                "X-RateLimit-Used": str(self.used[window]),
                "X-RateLimit-Resource": "core",
            }
            return status, headers

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1


class BenchGitHub:
    """The loopback server: synthetic repositories, paged, behind a `Budget`."""

    def __init__(self, repos: dict[str, dict[str, list[Item]]], budget: Budget, page_size: int) -> None:
        self.routes: dict[str, list[Item]] = {}
        for name, lists in repos.items():
            for path, items in lists.items():
                self.routes[f"/repos/{name}/{path}"] = items
        self.budget = budget
        self.page_size = page_size
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.server.request_queue_size = 128
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        bench = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                status, headers, body = bench.answer(self.path, self.headers.get("Authorization"))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler

    def answer(self, target: str, authorization: str | None) -> tuple[int, dict[str, str], bytes]:
        status, headers = self.budget.admit()
        try:
            headers["Content-Type"] = "application/json; charset=utf-8"
            if status == 403:
                reason = headers.pop("X-Obeya-Refused", "primary")
                message = (
                    "You have exceeded a secondary rate limit"
                    if reason == "secondary"
                    else "API rate limit exceeded"
                )
                return 403, headers, orjson.dumps({"message": message})
            if authorization != f"Bearer {TOKEN}":
                return 401, headers, b'{"message": "Bad credentials"}'
            split = urlsplit(target)
            items = self.routes.get(split.path)
            if items is None:
                return 404, headers, b'{"message": "Not Found"}'
            query = {k: v[-1] for k, v in parse_qs(split.query).items()}
            page = int(query.get("page", "1"))
            size = min(int(query.get("per_page", "30")), self.page_size)
            chunk = items[(page - 1) * size : page * size]
            if (page * size) < len(items):
                next_query = urlencode({**query, "page": page + 1})
                headers["Link"] = f'<{self.base_url}{split.path}?{next_query}>; rel="next"'
            wrap = {"actions/runs": "workflow_runs", "jobs": "jobs"}
            key = next((k for suffix, k in wrap.items() if split.path.endswith(suffix)), None)
            body: Any = {"total_count": len(items), key: chunk} if key else chunk
            return 200, headers, orjson.dumps(body)
        finally:
            self.budget.leave()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repos", type=int, default=200)
    parser.add_argument("--limit-per-hour", type=int, default=3000, help="requests per scaled hour")
    parser.add_argument("--seconds", type=float, default=30.0, help="real seconds standing for one hour")
    parser.add_argument("--max-concurrent", type=int, default=10, help="secondary limit: requests in flight")
    parser.add_argument("--page-size", type=int, default=2, help="items per page of every list")
    parser.add_argument("--workers", type=int, default=None, help="sync workers (default: Obeya's)")
    args = parser.parse_args()

    base = time.time()
    repos = {f"bench-org/repo-{i:04d}": synthetic_repo(i, base) for i in range(args.repos)}
    budget = Budget(limit=args.limit_per_hour, window=args.seconds, concurrent=args.max_concurrent)
    server = BenchGitHub(repos, budget, args.page_size)
    server.thread.start()
    os.environ["BENCH_GITHUB_TOKEN"] = TOKEN
    connection = GitHubConnectionConfig(
        name="bench", base_url=server.base_url, token_env="BENCH_GITHUB_TOKEN", repositories=list(repos)
    )
    folder = tempfile.mkdtemp(prefix="obeya-bench-rate-")
    store = connect(f"duckdb:///{folder}/obeya.duckdb")
    store.migrate()
    try:
        # Windows start on a whole second, as GitHub's integer X-RateLimit-Reset does.
        start = math.ceil(time.time())
        time.sleep(max(start - time.time(), 0.0))
        budget.start = start
        began = time.perf_counter()
        report = sync(store, connection, workers=args.workers)
        wall = time.perf_counter() - began
    finally:
        server.server.shutdown()
        server.server.server_close()
    records = report.normalized
    raw = sum(r.raw_events for r in report.resources.values())
    accepted = sum(budget.used.values())
    allowed = args.limit_per_hour * wall / args.seconds
    windows = wall / args.seconds
    print(f"repositories          {args.repos}")
    print(
        f"budget                {args.limit_per_hour} requests per {args.seconds:g} s window "
        f"({args.limit_per_hour / args.seconds:.1f}/s), secondary limit {args.max_concurrent} in flight"
    )
    print(f"wall time             {wall:.2f} s ({windows:.2f} windows)")
    print(f"requests made         {budget.made}")
    print(f"requests answered 200 {accepted} (per window: {[budget.used[w] for w in sorted(budget.used)]})")
    print(f"allowed over the run  {allowed:.0f}")
    print(f"share of budget used  {100 * accepted / allowed:.1f} %")
    print(f"refused (primary)     {budget.refused_primary}")
    print(f"refused (secondary)   {budget.refused_secondary}")
    print(f"peak in flight        {budget.peak_in_flight}")
    print(f"raw events stored     {raw}")
    print(f"records written       {records}")
    print(f"request rate          {budget.made / wall:.1f}/s")
    counts = {
        kind: store.count(kind) for kind in ("change", "commit", "review", "pipeline_run", "deployment")
    }
    print(f"store                 {counts}")
    store.close()


if __name__ == "__main__":
    main()
