"""A connection's repositories are collected side by side, with nothing missing or twice."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from github_server import TOKEN, FakeGitHub, Route

from obeya.connectors.config import GitHubConnectionConfig
from obeya.connectors.github.collector import github_client
from obeya.connectors.sync import sync
from obeya.model.schema import TABLES
from obeya.store import Store

REPOS = [f"org/repo-{i}" for i in range(4)]
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
