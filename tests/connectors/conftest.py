"""Fixtures of the connector tests: the recorded GitHub and Jira servers, a fake clock, a connection."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from github_server import ANTS, OPENBIC, TOKEN, FakeClock, FakeGitHub, recorded_github
from jira_server import EMAIL as JIRA_EMAIL
from jira_server import TOKEN as JIRA_TOKEN
from jira_server import FakeJira

from obeya.connectors.config import GitHubConnectionConfig
from obeya.connectors.github.collector import github_client
from obeya.connectors.http import HttpClient, RetryPolicy


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    """The recorded GitHub API, in pages of 10 items so every list spans several pages."""
    server = recorded_github(page_size=10).start()
    yield server
    server.stop()


@pytest.fixture
def clock() -> FakeClock:
    """The clock and sleep the HTTP client is given."""
    return FakeClock()


@pytest.fixture
def connection(github: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> GitHubConnectionConfig:
    """A connection to the recorded server for panjf2000/ants and facebook/OpenBIC."""
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    return GitHubConnectionConfig(name="gh", base_url=github.base_url, repositories=[ANTS, OPENBIC])


@pytest.fixture
def client(connection: GitHubConnectionConfig, clock: FakeClock) -> Iterator[HttpClient]:
    """The connection's client with the fake clock, no jitter and a short timeout."""
    http = github_client(
        connection,
        sleep=clock.sleep,
        clock=clock.time,
        jitter=lambda: 0.0,
        timeout=2.0,
        retry=RetryPolicy(max_attempts=4, base_delay=1.0),
    )
    yield http
    http.close()


@pytest.fixture
def jira(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeJira]:
    """The recorded Jira Cloud API, in pages of 7 items, embedded changelogs cut to 5 histories."""
    monkeypatch.setenv("JIRA_TOKEN", JIRA_TOKEN)
    monkeypatch.setenv("JIRA_EMAIL", JIRA_EMAIL)
    server = FakeJira().start()
    yield server
    server.stop()
