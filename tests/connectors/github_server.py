"""A local GitHub REST API serving the real recordings in shared/fixtures/api-recordings/github.

It answers the way api.github.com does: lists split into pages with ``Link: <...>; rel="next"``,
``X-RateLimit-*`` headers, ``since`` filtering, newest-first ordering, 401 for a wrong token and 404 for
unknown paths. Tests script failures (rate limits, 5xx, slow answers, broken bodies) with `fail`, and
read the requests it received in `requests`.

What the recordings do not hold is derived, and says so: the default branch's commits are the commits of
the merged pull requests; REST deployments and their statuses are built from the GraphQL deployment
recording of facebook/OpenBIC; there is no recorded release, so releases are built from GitHub's
documented "List releases" example (`documented_releases`, docs.github.com/rest/releases/releases), which
`recorded_github` serves for panjf2000/ants.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.shared_fixtures import API_RECORDINGS

RECORDINGS = API_RECORDINGS
TOKEN = "test-token"
ANTS = "panjf2000/ants"
OPENBIC = "facebook/OpenBIC"

Item = dict[str, Any]


def _load(name: str, folder: str = "github") -> list[tuple[str, Item]]:
    """(URL path, item) of every recorded line, each item once (the recordings repeat some)."""
    seen: set[tuple[str, str]] = set()
    rows = []
    for line in (RECORDINGS / folder / f"_raw_github_api_{name}.jsonl").read_text().splitlines():
        row = json.loads(line)
        path = urlsplit(row["url"]).path
        key = (path, json.dumps(row["data"].get("id", row["data"].get("sha")), sort_keys=True))
        if key in seen:
            continue
        seen.add(key)
        rows.append((path, row["data"]))
    return rows


def _time_key(field_name: str) -> Callable[[Item], str]:
    def key(item: Item) -> str:
        value: Any = item
        for part in field_name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return str(value or "")

    return key


@dataclass
class FakeClock:
    """Epoch seconds that move only when the code under test sleeps; every sleep is noted."""

    now: float = 1_700_000_000.0
    sleeps: list[float] = field(default_factory=list)

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class Route:
    """A list the server answers on one path."""

    items: list[Item]
    order_by: str | None = None  # newest first by this (dotted) field
    since_field: str | None = None  # `since` keeps items with this field at or after it
    wrap: str | None = None  # the body is {"total_count": n, wrap: [...]}


@dataclass
class Fault:
    """A scripted answer for requests whose path contains `path` (the next `times` of them)."""

    path: str
    status: int = 500
    body: str | None = None  # None: the route's data for a 200, a GitHub-style error otherwise
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    delay: float = 0.0
    page: int | None = None  # only that page of the list


@dataclass
class Request:
    """A request the server received."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]


class FakeGitHub:
    """The server; `base_url` goes into the connection's `base_url`."""

    def __init__(self, page_size: int | None = None) -> None:
        self.routes: dict[str, Route] = {}
        self.faults: list[Fault] = []
        self.requests: list[Request] = []
        self.page_size = page_size
        self.rate_limit_reset = 1_700_003_600
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._remaining = 5000
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeGitHub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()

    def fail(self, path: str, **fault: Any) -> Fault:
        """Answer the next request(s) on `path` with a fault instead of the data."""
        scripted = Fault(path=path, **fault)
        self.faults.append(scripted)
        return scripted

    def requested(self, path_part: str) -> list[Request]:
        """The requests received whose path contains `path_part`."""
        return [r for r in self.requests if path_part in r.path]

    # --- answering ---------------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                split = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(split.query).items()}
                server.requests.append(Request(split.path, query, dict(self.headers.items())))
                status, headers, body = server.answer(split.path, query, self.headers.get("Authorization"))
                delay = headers.pop("X-Test-Delay", None)
                if delay:
                    server._released.wait(float(delay))
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        return Handler

    def _rate_headers(self) -> dict[str, str]:
        with self._lock:
            self._remaining = max(self._remaining - 1, 0)
            remaining = self._remaining
        return {
            "X-RateLimit-Limit": "5000",
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(self.rate_limit_reset),
            "X-RateLimit-Resource": "core",
        }

    def answer(
        self, path: str, query: dict[str, str], authorization: str | None
    ) -> tuple[int, dict[str, str], bytes]:
        headers = {"Content-Type": "application/json; charset=utf-8", **self._rate_headers()}
        if authorization != f"Bearer {TOKEN}":
            return (
                401,
                headers,
                b'{"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}',
            )
        page = int(query.get("page", "1"))
        with self._lock:
            fault = next(
                (f for f in self.faults if f.times > 0 and f.path in path and f.page in (None, page)), None
            )
            if fault is not None:
                fault.times -= 1
        if fault is not None:
            fault_headers = {**headers, **fault.headers}
            if fault.delay:
                fault_headers["X-Test-Delay"] = str(fault.delay)
            if fault.body is None and fault.status == 200:
                route_status, route_headers, route_body = self._list(path, query, page)
                return route_status, {**route_headers, **fault_headers}, route_body
            body = fault.body if fault.body is not None else json.dumps({"message": f"status {fault.status}"})
            return fault.status, fault_headers, body.encode()
        status, list_headers, body = self._list(path, query, page)
        return status, {**headers, **list_headers}, body

    def _list(self, path: str, query: dict[str, str], page: int) -> tuple[int, dict[str, str], bytes]:
        route = self.routes.get(path)
        if route is None:
            return 404, {"Content-Type": "application/json"}, b'{"message": "Not Found"}'
        items = list(route.items)
        since = query.get("since")
        if since and route.since_field:
            key = _time_key(route.since_field)
            items = [i for i in items if key(i) >= since]
        if route.order_by:
            items.sort(key=_time_key(route.order_by), reverse=True)
        size = min(int(query.get("per_page", "30")), 100)
        if self.page_size:
            size = min(size, self.page_size)
        chunk = items[(page - 1) * size : page * size]
        headers = {"Content-Type": "application/json; charset=utf-8"}
        links = []
        last = max((len(items) + size - 1) // size, 1)
        if page < last:
            links.append(f'<{self.base_url}{path}?{urlencode({**query, "page": page + 1})}>; rel="next"')
            links.append(f'<{self.base_url}{path}?{urlencode({**query, "page": last})}>; rel="last"')
        if links:
            headers["Link"] = ", ".join(links)
        body: Any = {"total_count": len(items), route.wrap: chunk} if route.wrap else chunk
        return 200, headers, json.dumps(body).encode()


def empty_routes(server: FakeGitHub, repo: str) -> None:
    """The six top-level lists a sync walks for `repo`, all empty (tests fill them)."""
    routes = server.routes
    base = f"/repos/{repo}"
    routes[f"{base}/pulls"] = Route([], order_by="updated_at")
    routes[f"{base}/issues"] = Route([], order_by="updated_at", since_field="updated_at")
    committed = "commit.committer.date"
    routes[f"{base}/commits"] = Route([], order_by=committed, since_field=committed)
    routes[f"{base}/actions/runs"] = Route([], order_by="created_at", wrap="workflow_runs")
    routes[f"{base}/deployments"] = Route([], order_by="created_at")
    routes[f"{base}/releases"] = Route([], order_by="created_at")


def documented_releases(repo: str = ANTS) -> list[Item]:
    """GitHub's documented "List releases" example (release 1, ``v1.0.0``, by octocat), placed in `repo`,
    and a draft beside it (the documented shape with ``draft: true`` and no ``published_at``)."""
    author = {"login": "octocat", "id": 1, "type": "User", "site_admin": False}
    published = {
        "url": f"https://api.github.com/repos/{repo}/releases/1",
        "html_url": f"https://github.com/{repo}/releases/v1.0.0",
        "assets_url": f"https://api.github.com/repos/{repo}/releases/1/assets",
        "tarball_url": f"https://api.github.com/repos/{repo}/tarball/v1.0.0",
        "zipball_url": f"https://api.github.com/repos/{repo}/zipball/v1.0.0",
        "id": 1,
        "node_id": "MDc6UmVsZWFzZTE=",
        "tag_name": "v1.0.0",
        "target_commitish": "master",
        "name": "v1.0.0",
        "body": "Description of the release",
        "draft": False,
        "prerelease": False,
        "created_at": "2013-02-27T19:35:32Z",
        "published_at": "2013-02-27T19:35:32Z",
        "author": author,
        "assets": [],
    }
    draft = {
        **published,
        "id": 2,
        "url": f"https://api.github.com/repos/{repo}/releases/2",
        "tag_name": "v1.1.0",
        "name": None,
        "body": None,
        "draft": True,
        "created_at": "2013-03-01T10:00:00Z",
        "published_at": None,
    }
    return [published, draft]


def recorded_github(page_size: int | None = None) -> FakeGitHub:
    """A server holding the recordings of panjf2000/ants and (deployments only) facebook/OpenBIC, and
    GitHub's documented releases for panjf2000/ants."""
    server = FakeGitHub(page_size=page_size)
    routes = server.routes
    for repo in (ANTS, OPENBIC):
        empty_routes(server, repo)
    routes[f"/repos/{ANTS}/releases"].items = documented_releases(ANTS)

    ants = f"/repos/{ANTS}"
    pulls = [item for _, item in _load("pull_requests")]
    routes[f"{ants}/pulls"].items = pulls
    for number in {p["number"] for p in pulls}:
        for child in ("commits", "reviews", "comments"):
            routes[f"{ants}/pulls/{number}/{child}"] = Route([])
    by_path: dict[str, list[Item]] = defaultdict(list)
    for name in ("pull_request_commits", "pull_request_reviews"):
        for path, item in _load(name):
            by_path[path].append(item)
    for _, item in _load("pull_request_review_comments"):
        number = item["pull_request_url"].rsplit("/", 1)[1]
        by_path[f"{ants}/pulls/{number}/comments"].append(item)
    for path, items in by_path.items():
        routes[path] = Route(items)

    merged = {p["number"] for p in pulls if p.get("merged_at")}
    branch_commits: dict[str, Item] = {}
    for path, item in _load("pull_request_commits"):
        if int(path.split("/")[5]) in merged:
            branch_commits[item["sha"]] = item
    routes[f"{ants}/commits"].items = list(branch_commits.values())

    issues = {item["number"]: item for _, item in _load("issues")}
    events: dict[int, list[Item]] = defaultdict(list)
    for _, item in _load("events"):
        events[item["issue"]["number"]].append(item)
        # The recorded events belong to later issues than the recorded issue list: each event embeds its
        # issue as it was then, so the newest embedded copy stands in for the issue.
        embedded = item["issue"]
        known = issues.get(embedded["number"])
        if known is None or known["updated_at"] < embedded["updated_at"]:
            issues[embedded["number"]] = embedded
    routes[f"{ants}/issues"].items = list(issues.values())
    for issue in issues.values():
        routes[f"{ants}/issues/{issue['number']}/events"] = Route(events.get(issue["number"], []))

    runs = [item for _, item in _load("runs")]
    jobs: dict[int, list[Item]] = defaultdict(list)
    for _, item in _load("jobs"):
        jobs[item["run_id"]].append(item)
    # The recorded jobs belong to runs the run list does not hold: rebuild those runs from their jobs.
    runs.extend(_run_of_jobs(run_id, run_jobs) for run_id, run_jobs in jobs.items())
    routes[f"{ants}/actions/runs"].items = runs
    for run in runs:
        routes[f"{ants}/actions/runs/{run['id']}/jobs"] = Route(jobs.get(run["id"], []), wrap="jobs")

    deployments, statuses = openbic_deployments()
    routes[f"/repos/{OPENBIC}/deployments"].items = deployments
    for deployment_id, items in statuses.items():
        routes[f"/repos/{OPENBIC}/deployments/{deployment_id}/statuses"] = Route(items)

    return server


def openbic_deployments() -> tuple[list[Item], dict[int, list[Item]]]:
    """REST-shaped deployments and statuses built from the GraphQL recording (same facts, REST names)."""
    deployments = []
    statuses: dict[int, list[Item]] = {}
    path = RECORDINGS / "github_graphql" / "_raw_github_graphql_deployment.jsonl"
    for line in path.read_text().splitlines():
        node = json.loads(line)["data"]
        deployment_id = node["DatabaseId"]
        deployments.append(
            {
                "id": deployment_id,
                "node_id": node["Id"],
                "sha": node["CommitOid"],
                "ref": node["Ref"]["Name"] if node.get("Ref") else None,
                "task": node["Task"],
                "environment": node["Environment"],
                "description": node["Description"],
                "created_at": node["CreatedAt"],
                "updated_at": node["UpdatedAt"],
                "creator": {"login": "github-actions[bot]", "id": 41898282, "type": "Bot"},
            }
        )
        # Older deployments were recorded with their latest status only.
        nodes = node["Statuses"]["nodes"] if node.get("Statuses") else [node["LatestStatus"]]
        statuses[deployment_id] = [
            {
                "id": deployment_id * 10 + position,
                "state": (status.get("state") or status["State"]).lower(),
                "created_at": status["updatedAt"],
                "environment": node["Environment"],
                "log_url": "",
            }
            for position, status in enumerate(reversed(nodes))
        ]
        statuses[deployment_id].reverse()  # newest first, as the REST API lists them
    return deployments, statuses


def _run_of_jobs(run_id: int, jobs: list[Item]) -> Item:
    """A workflow run holding what its recorded jobs say about it (id, commit, times, outcome)."""
    conclusions = {job.get("conclusion") for job in jobs}
    conclusion = next((c for c in ("failure", "cancelled", "success") if c in conclusions), None)
    started = min(str(job["started_at"]) for job in jobs)
    return {
        "id": run_id,
        "name": "rebuilt from jobs",
        "head_sha": jobs[0]["head_sha"],
        "head_branch": None,
        "event": "push",
        "status": "completed" if conclusion else "in_progress",
        "conclusion": conclusion,
        "run_attempt": jobs[0].get("run_attempt", 1),
        "created_at": started,
        "run_started_at": started,
        "updated_at": max(str(job.get("completed_at") or job["started_at"]) for job in jobs),
        "html_url": jobs[0]["html_url"].split("/runs/")[0] + f"/actions/runs/{run_id}",
        "pull_requests": [],
    }
