"""The scheduled sync of `obeya serve` against the recorded GitHub server, on DuckDB and PostgreSQL."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from github_server import OPENBIC, TOKEN, FakeGitHub, recorded_github
from pydantic import ValidationError

from obeya.api.routes.sync_status import router
from obeya.connectors.config import ConnectionConfig, GitHubConnectionConfig
from obeya.connectors.schedule import ScheduleConfig, SyncScheduler
from obeya.connectors.sync import SyncReport, sync
from obeya.store import Store


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("OBEYA_TEST_WRONG_TOKEN", "wrong")
    server = recorded_github().start()
    yield server
    server.stop()


def _wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


class _Watch:
    """Wraps `sync`: counts the syncs under way per connection, and the most ever at once."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.active: Counter[str] = Counter()
        self.most: Counter[str] = Counter()
        self.fulls: list[bool] = []
        self.lock = threading.Lock()

    def __call__(self, connection: ConnectionConfig, full: bool) -> SyncReport:
        with self.lock:
            self.active[connection.name] += 1
            self.most[connection.name] = max(self.most[connection.name], self.active[connection.name])
            self.fulls.append(full)
        try:
            time.sleep(0.1)  # longer than half the interval: a tick falls inside a run
            return sync(self.store, connection, full=full)
        finally:
            with self.lock:
                self.active[connection.name] -= 1


def test_config_reads_durations_and_defaults() -> None:
    assert ScheduleConfig().interval is None
    assert ScheduleConfig().connections == []
    config = ScheduleConfig.model_validate({"interval": "15m", "full_every": "1d", "connections": ["gh"]})
    assert config.interval == timedelta(minutes=15)
    assert config.full_every == timedelta(days=1)
    with pytest.raises(ValidationError, match="positive"):
        ScheduleConfig.model_validate({"interval": "0m"})
    with pytest.raises(ValidationError):
        ScheduleConfig.model_validate({"interval": "15m", "every": "1h"})


def test_unknown_connection_in_schedule_is_named(store: Store) -> None:
    good = GitHubConnectionConfig(name="gh", repositories=[OPENBIC])
    with pytest.raises(ValueError, match=r"nope.*known: gh"):
        SyncScheduler(store, ScheduleConfig(interval=timedelta(minutes=1), connections=["nope"]), [good])


def test_no_interval_schedules_nothing(store: Store) -> None:
    scheduler = SyncScheduler(store, ScheduleConfig(), [GitHubConnectionConfig(name="gh")])
    scheduler.start()
    assert not scheduler.running
    assert scheduler.status().enabled is False
    assert scheduler.stop()


def test_scheduler_runs_repeatedly_never_overlaps_and_survives_a_failure(
    store: Store, github: FakeGitHub
) -> None:
    good = GitHubConnectionConfig(name="gh", base_url=github.base_url, repositories=[OPENBIC])
    bad = GitHubConnectionConfig(
        name="gh-bad", base_url=github.base_url, token_env="OBEYA_TEST_WRONG_TOKEN", repositories=[OPENBIC]
    )
    watch = _Watch(store)
    schedule = ScheduleConfig(interval=timedelta(seconds=0.2), full_every=timedelta(seconds=0.5))
    scheduler = SyncScheduler(store, schedule, [good, bad], runner=watch)
    scheduler.start()
    try:
        _wait_for(lambda: sum(r.connection == "gh" and r.status == "ok" for r in scheduler.runs()) >= 3)
        _wait_for(lambda: sum(r.connection == "gh-bad" for r in scheduler.runs()) >= 2)
        status = scheduler.status()
    finally:
        assert scheduler.stop(timeout=15)
    assert not scheduler.running

    assert watch.most == Counter({"gh": 1, "gh-bad": 1})
    runs = scheduler.runs()
    ok = [r for r in runs if r.connection == "gh"]
    assert all(r.status == "ok" for r in ok)
    assert ok[0].fetched > 0 and ok[0].full is False
    assert any(watch.fulls), "a run after full_every is a full sync"
    failed = [r for r in runs if r.connection == "gh-bad"]
    assert all(r.status == "failed" for r in failed)
    assert failed[0].error is not None and "rejected the token" in failed[0].error
    for one, two in itertools.pairwise(runs):
        assert one.finished_at <= two.started_at  # one sync at a time

    by_name = {c.connection: c for c in status.connections}
    assert status.enabled and status.running and status.interval_seconds == pytest.approx(0.2)
    assert by_name["gh"].consecutive_failures == 0 and by_name["gh"].last_success_at is not None
    assert by_name["gh-bad"].consecutive_failures >= 2 and by_name["gh-bad"].last_success_at is None
    assert store.count("deployment") > 0

    finished = len(scheduler.runs())
    time.sleep(0.5)
    assert len(scheduler.runs()) == finished  # stopped for good


def test_status_endpoint(store: Store, github: FakeGitHub) -> None:
    good = GitHubConnectionConfig(name="gh", base_url=github.base_url, repositories=[OPENBIC])
    bad = GitHubConnectionConfig(
        name="gh-bad", base_url=github.base_url, token_env="OBEYA_TEST_WRONG_TOKEN", repositories=[OPENBIC]
    )
    scheduler = SyncScheduler(store, ScheduleConfig(interval=timedelta(minutes=10)), [good, bad])
    app = FastAPI()
    app.include_router(router)
    with TestClient(app) as client:
        assert client.get("/api/v1/sync/status").json()["enabled"] is False  # no scheduler
        app.state.sync_scheduler = scheduler
        scheduler.start()
        try:
            _wait_for(lambda: len(scheduler.runs()) == 2)
            body = client.get("/api/v1/sync/status").json()
        finally:
            scheduler.stop(timeout=15)
    assert body["enabled"] is True and body["interval_seconds"] == 600
    assert [c["connection"] for c in body["connections"]] == ["gh", "gh-bad"]
    gh, gh_bad = body["connections"]
    assert gh["last_run"]["status"] == "ok" and gh["next_run_at"] is not None
    assert gh_bad["last_run"]["status"] == "failed" and "401" in gh_bad["last_run"]["error"]
    assert [r["connection"] for r in body["recent_runs"]] == ["gh-bad", "gh"]  # newest first
