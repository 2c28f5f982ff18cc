"""What a sync does when GitLab, Jenkins, PagerDuty, Opsgenie, ServiceNow or Azure DevOps misbehaves, each on
its own local server: a 5xx once (retried), a 5xx that persists, a 429 with ``Retry-After``, a page that is
not JSON, and answers too slow for the timeout. (Rejected tokens are tested in each tool's sync tests.)

The faults are set on the path of the first list each sync walks, so the failure happens in that list's
walk: the sync stops with an error naming the URL, and the list's cursor is marked failed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from azuredevops_server import PROJECT
from github_server import FakeClock
from gitlab_server import SNOWFLAKE
from jenkins_server import FREESTYLE
from loopback import Fault
from tool_servers import TOOL_SERVERS, ToolServer

from obeya.connectors.errors import MalformedResponseError, RetriesExhaustedError
from obeya.connectors.http import RetryPolicy
from obeya.connectors.sync import SyncReport, load_cursor, sync
from obeya.store import Store

NOW = datetime(2024, 5, 1, tzinfo=UTC)
UNAVAILABLE = {"message": "Service Unavailable"}
LOGIN_PAGE = "<html><body><form action='/login'>Sign in</form></body></html>"


@dataclass(frozen=True)
class Tool(ToolServer):
    """One tool's server, connection, client, credentials, and the first list its sync walks."""

    list_path: str  # a suffix of that list's path
    resource: str  # that list's resource (its cursor)


def _tool(name: str, list_path: str, resource: str) -> Tool:
    return Tool(**vars(TOOL_SERVERS[name]), list_path=list_path, resource=resource)


TOOLS = {
    "gitlab": _tool("gitlab", f"{SNOWFLAKE}/merge_requests", f"{SNOWFLAKE}/merge_requests"),
    "jenkins": _tool("jenkins", "/job/devlake/api/json", f"jobs/{FREESTYLE}"),
    "pagerduty": _tool("pagerduty", "/incidents", "incidents"),
    "opsgenie": _tool("opsgenie", "/v1/incidents", "incidents"),
    "servicenow": _tool("servicenow", "/api/now/table/incident", "incidents"),
    "azuredevops": _tool("azuredevops", "/_apis/git/pullrequests", f"{PROJECT}/pull_requests"),
}


@dataclass
class Setup:
    tool: Tool
    server: Any
    connection: Any
    clock: FakeClock


@pytest.fixture(params=list(TOOLS))
def setup(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    """Each tool's server running, its credentials set, and a connection to it."""
    tool = TOOLS[request.param]
    for variable, value in tool.credentials.items():
        monkeypatch.setenv(variable, value)
    server = tool.server().start()
    yield Setup(tool, server, tool.connection(server.base_url), FakeClock())
    server.stop()


def _sync(store: Store, setup: Setup, timeout: float = 5.0, attempts: int = 3) -> SyncReport:
    client = setup.tool.client(
        setup.connection,
        sleep=setup.clock.sleep,
        clock=setup.clock.time,
        jitter=lambda: 0.0,
        timeout=timeout,
        retry=RetryPolicy(max_attempts=attempts),
    )
    with client:
        return sync(store, setup.connection, client=client, clock=lambda: NOW)


def _failed_cursor(store: Store, setup: Setup) -> str:
    cursor = load_cursor(store, "t", setup.tool.resource)
    assert cursor is not None and cursor.status == "failed"
    return str(cursor.message)


def _asked(setup: Setup) -> int:
    return sum(1 for r in setup.server.requests if _path(r).endswith(setup.tool.list_path))


def _path(request: Any) -> str:
    return str(request[0] if isinstance(request, tuple) else request.path)


def test_server_error_once_is_retried_and_the_sync_completes(store: Store, setup: Setup) -> None:
    setup.server.faults[setup.tool.list_path] = Fault(503, UNAVAILABLE, times=1)
    report = _sync(store, setup)
    assert report.resources[setup.tool.resource].complete
    assert setup.clock.sleeps == [0.5]  # backoff(1) = 1 s halved, no jitter
    cursor = load_cursor(store, "t", setup.tool.resource)
    assert cursor is not None and cursor.status == "complete"


def test_server_error_that_persists_stops_the_sync_naming_url_and_status(store: Store, setup: Setup) -> None:
    setup.server.faults[setup.tool.list_path] = Fault(503, UNAVAILABLE)
    with pytest.raises(RetriesExhaustedError) as error:
        _sync(store, setup)
    message = str(error.value)
    assert "failed with 503 Service Unavailable 3 times" in message
    assert setup.tool.list_path.split("/")[-1] in message and setup.server.base_url in message
    assert setup.clock.sleeps == [0.5, 1.0]  # 1 s and 2 s, halved: no jitter
    assert _asked(setup) == 3
    assert "503" in _failed_cursor(store, setup)


def test_rate_limit_429_waits_as_long_as_retry_after_says(store: Store, setup: Setup) -> None:
    setup.server.faults[setup.tool.list_path] = Fault(
        429, {"message": "Too Many Requests"}, headers={"Retry-After": "7"}, times=1
    )
    report = _sync(store, setup)
    assert report.resources[setup.tool.resource].complete
    assert setup.clock.sleeps == [7.0]


def test_page_that_is_not_json_stops_the_sync_naming_the_url(store: Store, setup: Setup) -> None:
    setup.server.faults[setup.tool.list_path] = Fault(200, LOGIN_PAGE)
    with pytest.raises(MalformedResponseError) as error:
        _sync(store, setup)
    message = str(error.value)
    assert "not JSON" in message and setup.server.base_url in message
    assert "Sign in" in message  # the start of what came instead
    assert "not JSON" in _failed_cursor(store, setup)


def test_answers_slower_than_the_timeout_are_retried_then_named(store: Store, setup: Setup) -> None:
    setup.server.faults[setup.tool.list_path] = Fault(200, {}, delay=0.6)
    with pytest.raises(RetriesExhaustedError) as error:
        _sync(store, setup, timeout=0.2, attempts=2)
    assert "timed out 2 times" in str(error.value)
    assert setup.clock.sleeps == [0.5]
    assert "timed out" in _failed_cursor(store, setup)
