"""A sync interrupted halfway through a paged walk, then run again, stores exactly what an uninterrupted
sync stores: no record missing, none twice, none different. For Jira, Jenkins, PagerDuty, Opsgenie,
ServiceNow and Azure DevOps, each on its own local server (GitHub: test_sync_killed.py; GitLab and local
git: their own sync tests).

The interruption is a `loopback.Fault` on a list's path that lets the walk's first page (or, for Jenkins,
the first jobs' builds) through (`after`) and then answers 500 on every retry, so the sync stops with the
pages before it stored and the list's cursor marked failed. The fault is lifted and the sync run again; it
resumes from the stored cursor (its first request to that path is not the one the walk started with).
The reference is an uninterrupted sync of the same server into a second store of the same engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from azuredevops_server import PROJECT
from github_server import FakeClock
from jenkins_server import MULTIBRANCH
from loopback import Fault
from tool_servers import TOOL_SERVERS, ToolServer

from obeya.connectors.errors import RetriesExhaustedError
from obeya.connectors.http import RetryPolicy
from obeya.connectors.sync import load_cursor, sync
from obeya.model.records import RECORD_TYPES
from obeya.store import Store

NOW = datetime(2024, 5, 1, tzinfo=UTC)
BROKEN = {"message": "Internal Server Error"}
KINDS = tuple(t.kind for t in RECORD_TYPES if t.kind != "sync_cursor")


@dataclass(frozen=True)
class Walk(ToolServer):
    """A tool's server and connection, and where its walk is interrupted."""

    fault_path: str  # a suffix of the path of the list (or child) that fails halfway
    let_through: int  # how many requests to that path are answered first
    resource: str  # the resource whose walk is interrupted (its cursor)
    kind: str  # a record kind the interrupted walk makes


def _walk(server: str, fault_path: str, let_through: int, resource: str, kind: str) -> Walk:
    return Walk(
        **vars(TOOL_SERVERS[server]),
        fault_path=fault_path,
        let_through=let_through,
        resource=resource,
        kind=kind,
    )


WALKS = {
    "jira": _walk("jira", "/rest/agile/1.0/board/8/issue", 1, "boards/8/issues", "work_item"),
    # the stages of the first branch's four builds, then the next branch's fail
    "jenkins": _walk("jenkins-multibranch", "/wfapi/describe", 4, f"jobs/{MULTIBRANCH}", "pipeline_run"),
    "pagerduty": _walk("pagerduty", "/incidents", 1, "incidents", "incident"),
    "opsgenie": _walk("opsgenie", "/v1/incidents", 1, "incidents", "incident"),
    "servicenow": _walk("servicenow", "/api/now/table/incident", 1, "incidents", "incident"),
    "azuredevops": _walk("azuredevops", "/_apis/build/builds", 1, f"{PROJECT}/builds", "pipeline_run"),
}


@dataclass
class Running:
    walk: Walk
    server: Any
    connection: Any


@pytest.fixture(params=list(WALKS))
def running(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Running]:
    """Each tool's server running, its credentials set, and a connection to it."""
    walk = WALKS[request.param]
    for variable, value in walk.credentials.items():
        monkeypatch.setenv(variable, value)
    server = walk.server().start()
    yield Running(walk, server, walk.connection(server.base_url))
    server.stop()


def _sync(store: Store, running: Running) -> None:
    clock = FakeClock()
    client = running.walk.client(
        running.connection,
        sleep=clock.sleep,
        clock=clock.time,
        jitter=lambda: 0.0,
        timeout=5.0,
        retry=RetryPolicy(max_attempts=2),
    )
    with client:
        sync(store, running.connection, client=client, clock=lambda: NOW)


def snapshot(store: Store) -> dict[str, dict[str, dict[str, Any]]]:
    """Every stored record but the cursors, by kind and id."""
    return {kind: {r.id: r.model_dump() for r in store.fetch_records(kind)} for kind in KINDS}


def _asked(running: Running) -> list[tuple[str, str]]:
    """The requests to the interrupted path, as (path, query) text."""
    found = []
    for request in running.server.requests:
        path, query = request if isinstance(request, tuple) else (request.path, request.query)
        if str(path).endswith(running.walk.fault_path):
            found.append((str(path), repr(sorted(dict(query).items()))))
    return found


def test_sync_interrupted_halfway_resumes_to_what_an_uninterrupted_sync_stores(
    running: Running, open_store: Callable[[str], Store], engine: str
) -> None:
    reference = open_store(engine)
    reference.migrate()
    _sync(reference, running)
    expected = snapshot(reference)
    kind = running.walk.kind

    store = open_store(engine)
    store.migrate()
    running.server.requests.clear()
    running.server.faults[running.walk.fault_path] = Fault(500, BROKEN, after=running.walk.let_through)
    with pytest.raises(RetriesExhaustedError, match="500"):
        _sync(store, running)
    cursor = load_cursor(store, "t", running.walk.resource)
    assert cursor is not None and cursor.status == "failed"
    partial = snapshot(store)
    assert 0 < len(partial[kind]) < len(expected[kind]), "the walk did not stop halfway"
    assert all(partial[k].items() <= expected[k].items() for k in KINDS)  # what it stored is right
    first_walk = _asked(running)

    del running.server.faults[running.walk.fault_path]
    running.server.requests.clear()
    _sync(store, running)
    resumed = _asked(running)
    assert resumed and resumed[0] != first_walk[0], "the second sync started the walk again"
    assert snapshot(store) == expected
    cursor = load_cursor(store, "t", running.walk.resource)
    assert cursor is not None and cursor.status == "complete"
