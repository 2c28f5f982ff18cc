"""A connection's repositories, projects, boards and jobs are collected side by side, with nothing missing
or twice: the same rows as a sync that walks them one after another."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import pytest
from azuredevops_server import ORG, FakeAzureDevOps
from azuredevops_server import PROJECT as AZURE_PROJECT
from azuredevops_server import TOKEN as AZURE_TOKEN
from github_server import TOKEN, FakeGitHub, Route
from jenkins_server import FREESTYLE, MULTIBRANCH, FakeJenkins
from jenkins_server import TOKEN as JENKINS_TOKEN
from jenkins_server import USER as JENKINS_USER
from jira_server import EMAIL as JIRA_EMAIL
from jira_server import TOKEN as JIRA_TOKEN
from jira_server import FakeJira

from obeya.connectors.azuredevops.config import AzureDevOpsConnectionConfig
from obeya.connectors.config import GitHubConnectionConfig, JiraConnectionConfig
from obeya.connectors.github.collector import github_client
from obeya.connectors.jenkins.config import JenkinsConnectionConfig, JenkinsDeployRule
from obeya.connectors.sync import sync
from obeya.model.schema import TABLES
from obeya.store import Store

REPOS = [f"org/repo-{i}" for i in range(4)]
NOW = datetime(2024, 5, 1, tzinfo=UTC)
JENKINS_RULES = [
    JenkinsDeployRule(job=FREESTYLE, service="lake", environment="production"),
    JenkinsDeployRule(job=f"{MULTIBRANCH}/*", stage=r"^deploy$", service="devlake", environment="staging"),
]
DELAY = 0.1


class SlowGitHub(FakeGitHub):
    """Answers every request after `DELAY` seconds and notes which repositories were in flight at once."""

    def __init__(self) -> None:
        super().__init__()
        self._flight_lock = threading.Lock()
        self.in_flight: Counter[str] = Counter()
        self.peak_repos = 0
        self.peak_requests = 0

    def answer(
        self, path: str, query: dict[str, str], authorization: str | None
    ) -> tuple[int, dict[str, str], bytes]:
        repo = "/".join(path.split("/")[2:4])
        with self._flight_lock:
            self.in_flight[repo] += 1
            self.peak_repos = max(self.peak_repos, sum(1 for n in self.in_flight.values() if n))
            self.peak_requests = max(self.peak_requests, sum(self.in_flight.values()))
        try:
            time.sleep(DELAY)
            return super().answer(path, query, authorization)
        finally:
            with self._flight_lock:
                self.in_flight[repo] -= 1


def _stamp(minute: int) -> str:
    return f"2024-04-01T10:{minute:02d}:00Z"


def _add_repo(server: FakeGitHub, repo: str, index: int) -> None:
    base = f"/repos/{repo}"
    user = {"login": f"dev{index}", "id": 100 + index, "type": "User"}
    pulls = []
    for number in (1, 2, 3):
        pulls.append(
            {
                "number": number,
                "state": "closed",
                "title": f"change {number}",
                "user": user,
                "head": {"ref": f"f{number}", "sha": f"{index}{number}" * 10},
                "base": {"ref": "main"},
                "created_at": _stamp(number),
                "updated_at": _stamp(10 + number),
                "merged_at": _stamp(10 + number),
                "closed_at": _stamp(10 + number),
                "merge_commit_sha": f"{index}{number}" * 10,
            }
        )
        commit = {
            "sha": f"{index}{number}" * 10,
            "commit": {
                "message": "m",
                "author": {"name": "D", "email": "d@example.com", "date": _stamp(number)},
                "committer": {"name": "D", "email": "d@example.com", "date": _stamp(number)},
            },
            "author": user,
            "parents": [],
        }
        server.routes[f"{base}/pulls/{number}/commits"] = Route([commit])
        server.routes[f"{base}/pulls/{number}/reviews"] = Route(
            [{"id": index * 10 + number, "user": user, "state": "APPROVED", "submitted_at": _stamp(20)}]
        )
        server.routes[f"{base}/pulls/{number}/comments"] = Route([])
    server.routes[f"{base}/pulls"] = Route(pulls, order_by="updated_at")
    server.routes[f"{base}/issues"] = Route([], order_by="updated_at", since_field="updated_at")
    server.routes[f"{base}/commits"] = Route(
        [
            {
                "sha": f"{index}{n}" * 10,
                "commit": {
                    "message": "m",
                    "author": {"name": "D", "email": "d@example.com", "date": _stamp(n)},
                    "committer": {"name": "D", "email": "d@example.com", "date": _stamp(n)},
                },
                "author": user,
                "parents": [],
            }
            for n in (1, 2, 3)
        ],
        order_by="commit.committer.date",
        since_field="commit.committer.date",
    )
    server.routes[f"{base}/actions/runs"] = Route([], order_by="created_at", wrap="workflow_runs")
    server.routes[f"{base}/deployments"] = Route([], order_by="created_at")
    server.routes[f"{base}/releases"] = Route([], order_by="created_at")


@pytest.fixture
def slow_github() -> Iterator[SlowGitHub]:
    server = SlowGitHub()
    server.page_size = 2
    for index, repo in enumerate(REPOS):
        _add_repo(server, repo, index)
    server.start()
    yield server
    server.stop()


def _rows(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table the sync writes (cursors without their time), sorted."""
    tables = {}
    for kind, spec in TABLES.items():
        if kind in ("sync_cursor", "raw_event"):
            continue
        tables[kind] = sorted(store.query(f'SELECT * FROM "{spec.name}"'), key=repr)
    tables["raw_event"] = sorted(store.query("SELECT id, payload FROM raw_events"))
    tables["sync_cursor"] = sorted(store.query("SELECT id, cursor, status FROM sync_cursors"))
    return tables


def test_repositories_are_collected_side_by_side_with_nothing_missing_or_twice(
    store: Store,
    slow_github: SlowGitHub,
    open_store: Callable[[str], Store],
    engine: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    connection = GitHubConnectionConfig(name="gh", base_url=slow_github.base_url, repositories=REPOS)
    with github_client(connection, timeout=5.0) as client:
        report = sync(store, connection, client=client)

    # Every repository had a request under way at the same time: the sync takes about as long as the
    # slowest repository, not the sum of them. The client's per-host limit still holds.
    assert slow_github.peak_repos == len(REPOS)
    assert slow_github.peak_requests <= 4

    assert report.resources[f"{REPOS[0]}/pull_requests"].fetched == 3
    assert all(report.resources[f"{repo}/{kind}"].complete for repo in REPOS for kind in ("pull_requests",))
    for kind in TABLES:
        spec = TABLES[kind]
        total, distinct = store.query(f'SELECT count(*), count(DISTINCT id) FROM "{spec.name}"')[0]
        assert total == distinct, f"{kind}: {total - distinct} rows twice"
    assert store.count("change") == 3 * len(REPOS)
    assert store.count("commit") == 3 * len(REPOS)
    assert store.count("review") == 3 * len(REPOS)
    assert store.count("sync_cursor") == 6 * len(REPOS)

    # The same rows as a sync that walks the repositories one after another.
    sequential = open_store(engine)
    sequential.migrate()
    slow_github.peak_repos = 0
    with github_client(connection, timeout=5.0) as client:
        sync(sequential, connection, client=client, workers=1)
    assert slow_github.peak_repos == 1
    parallel_rows, sequential_rows = _rows(store), _rows(sequential)
    assert parallel_rows == sequential_rows


class InFlight:
    """Holds every answer `DELAY` seconds and notes which groups (boards, jobs, projects) had a request
    under way at the same time, and the order requests started and ended in. A request of group ``""``
    (one not telling its group) counts among the requests, not the groups."""

    def __init__(
        self, group_of: Callable[[str], str], delay: float = DELAY, meet: frozenset[str] = frozenset()
    ) -> None:
        self._group_of = group_of
        self._delay = delay
        # The first request of each of the `meet` groups is held until all of them have one under way (5 s
        # at most): a sync that walks them side by side gets there, one that walks them in turn does not.
        self._meet = set(meet)
        self._lock = threading.Lock()
        self._met = threading.Condition(self._lock)
        self.in_flight: Counter[str] = Counter()
        self.peak_groups = 0
        self.peak_requests = 0
        self.log: list[tuple[str, str]] = []  # ("start" | "end", group), in the order they happened

    def around(self, path: str, answer: Callable[[], Any]) -> Any:
        group = self._group_of(path)
        with self._lock:
            self.log.append(("start", group))
            self.in_flight[group] += 1
            busy = sum(1 for g, n in self.in_flight.items() if n and g)
            self.peak_groups = max(self.peak_groups, busy)
            self.peak_requests = max(self.peak_requests, sum(self.in_flight.values()))
            if group in self._meet:
                self._meet.discard(group)
                self._met.notify_all()
                self._met.wait_for(lambda: not self._meet, timeout=5.0)
        try:
            time.sleep(self._delay)
            return answer()
        finally:
            with self._lock:
                self.in_flight[group] -= 1
                self.log.append(("end", group))

    def reset(self) -> None:
        with self._lock:
            self.peak_groups = self.peak_requests = 0
            self.log.clear()
            self._meet.clear()


def _assert_same_rows_as_one_after_another(store: Store, sequential: Store) -> None:
    for kind in TABLES:
        spec = TABLES[kind]
        total, distinct = store.query(f'SELECT count(*), count(DISTINCT id) FROM "{spec.name}"')[0]
        assert total == distinct, f"{kind}: {total - distinct} rows twice"
    assert _rows(store) == _rows(sequential)


def _jira_group(path: str) -> str:
    if match := re.match(r"/rest/agile/1\.0/board/(\d+)/", path):
        return f"board {match.group(1)}"
    if "/search" in path:
        return "project issues"
    if path.split("/")[-1] in ("status", "issuetype", "field"):
        return "catalogs"
    return ""  # an issue's own changelog, fetched within a board's or the project's walk


class SlowJira(FakeJira):
    def __init__(self) -> None:
        super().__init__()
        walks = frozenset({"board 8", "board 93", "project issues"})
        self.flight = InFlight(_jira_group, delay=DELAY / 5, meet=walks)  # walks of many short requests

    def answer(self, path: str, query: dict[str, str]) -> tuple[int, Any]:
        return self.flight.around(path, lambda: super(SlowJira, self).answer(path, query))  # type: ignore[no-any-return]


def test_jira_boards_and_projects_sync_side_by_side_after_the_catalogs(
    store: Store, open_store: Callable[[str], Store], engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JIRA_TOKEN", JIRA_TOKEN)
    monkeypatch.setenv("JIRA_EMAIL", JIRA_EMAIL)
    server = SlowJira().start()
    try:
        project = server.all_issues()[0]["fields"]["project"]["key"]
        connection = JiraConnectionConfig(
            name="jira", base_url=server.base_url, boards=[8, 93], projects=[project]
        )
        shown: list[tuple[str, int]] = []
        report = sync(store, connection, progress=lambda *call: shown.append(call), clock=lambda: NOW)

        # Both boards and the project search had requests under way at once, never more than the
        # client's 4 per host; every catalog was answered before any board or search was asked.
        assert server.flight.peak_groups == 3
        assert server.flight.peak_requests <= 4
        first_walk = next(i for i, (_, group) in enumerate(server.flight.log) if group != "catalogs")
        catalog_ends = [i for i, entry in enumerate(server.flight.log) if entry == ("end", "catalogs")]
        assert len(catalog_ends) == 3 and max(catalog_ends) < first_walk
        assert all(r.complete for r in report.resources.values())

        sequential = open_store(engine)
        sequential.migrate()
        server.flight.reset()
        shown_in_order: list[tuple[str, int]] = []
        sync(
            sequential,
            connection,
            progress=lambda *call: shown_in_order.append(call),
            clock=lambda: NOW,
            workers=1,
        )
        assert server.flight.peak_groups == 1
        _assert_same_rows_as_one_after_another(store, sequential)
        assert store.count("work_item") > 0
        # The progress bar is told of the pages in the order of a sync one after another.
        assert shown == shown_in_order
        assert [resource for resource, _ in shown][:3] == ["statuses", "issue_types", "fields"]
    finally:
        server.stop()


def _jenkins_group(path: str) -> str:
    return unquote(path.split("/")[2]) if path.startswith("/job/") else "root"


class SlowJenkins(FakeJenkins):
    def __init__(self) -> None:
        super().__init__()
        jobs = frozenset({MULTIBRANCH.split("/")[0], FREESTYLE.split("/")[0]})
        self.flight = InFlight(_jenkins_group, delay=DELAY / 5, meet=jobs)

    def answer(self, path: str, query: dict[str, str]) -> tuple[int, Any]:
        return self.flight.around(path, lambda: super(SlowJenkins, self).answer(path, query))  # type: ignore[no-any-return]


def test_jenkins_jobs_sync_side_by_side(
    store: Store, open_store: Callable[[str], Store], engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JENKINS_USER", JENKINS_USER)
    monkeypatch.setenv("JENKINS_TOKEN", JENKINS_TOKEN)
    server = SlowJenkins().start()
    try:
        connection = JenkinsConnectionConfig(
            name="ci", base_url=server.base_url, jobs=[MULTIBRANCH, FREESTYLE], deploy_jobs=JENKINS_RULES
        )
        sync(store, connection)

        # The two jobs (their first path segments) had requests under way at the same time.
        assert server.flight.peak_groups == 2
        assert server.flight.peak_requests <= 4

        sequential = open_store(engine)
        sequential.migrate()
        server.flight.reset()
        sync(sequential, connection, workers=1)
        assert server.flight.peak_groups == 1
        _assert_same_rows_as_one_after_another(store, sequential)
        assert store.count("pipeline_run") > 0
        assert store.count("deployment") > 0
    finally:
        server.stop()


OTHER_PROJECT = "other-project"


def _azure_group(path: str) -> str:
    return path.split("/")[2] if path.count("/") > 2 else "organization"


class SlowAzureDevOps(FakeAzureDevOps):
    """Serves the recorded project under a second name too, so a connection can have two projects."""

    flight: InFlight

    def answer(self, path: str, query: dict[str, str]) -> tuple[int, Any, str]:
        served = path.replace(f"/{ORG}/{OTHER_PROJECT}/", f"/{ORG}/{AZURE_PROJECT}/", 1)
        return self.flight.around(path, lambda: super(SlowAzureDevOps, self).answer(served, query))  # type: ignore[no-any-return]


def test_azure_devops_projects_sync_side_by_side(
    store: Store, open_store: Callable[[str], Store], engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_DEVOPS_TOKEN", AZURE_TOKEN)
    server = SlowAzureDevOps(page_size=3)
    server.flight = InFlight(_azure_group, delay=DELAY / 5, meet=frozenset({AZURE_PROJECT, OTHER_PROJECT}))
    server.start()
    try:
        connection = AzureDevOpsConnectionConfig(
            name="ado",
            base_url=server.base_url,
            organization=ORG,
            projects=[AZURE_PROJECT, OTHER_PROJECT],
        )
        report = sync(store, connection)

        assert server.flight.peak_groups == 2
        assert server.flight.peak_requests <= 4
        assert report.resources[f"{OTHER_PROJECT}/pull_requests"].complete

        sequential = open_store(engine)
        sequential.migrate()
        server.flight.reset()
        sync(sequential, connection, workers=1)
        assert server.flight.peak_groups == 1
        _assert_same_rows_as_one_after_another(store, sequential)
    finally:
        server.stop()
