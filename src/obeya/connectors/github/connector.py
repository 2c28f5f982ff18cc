"""GitHub as a `Connector`: per repository, the lists of `RESOURCES`, each with its own cursor."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa

from obeya.connectors.base import Clock, CollectedPage, Normalized
from obeya.connectors.config import GitHubConnectionConfig
from obeya.connectors.github.collector import RESOURCES, SOURCE, GitHubCollector, WalkCursor, github_client
from obeya.connectors.github.normalizer import HANDLERS, normalize, normalize_rows
from obeya.connectors.http import HttpClient
from obeya.model.records import RawEvent
from obeya.normalize.rules import MappingRules

# A deployment's statuses are normalized with it, and an issue's events with the issue (its closed_at
# dates the last close), so replay reads them together.
_TOGETHER = (("issue", "issue_event"), ("deployment", "deployment_status"))
_REPLAY_GROUPS: tuple[tuple[str, ...], ...] = (
    *((t,) for t in HANDLERS if not any(t in group for group in _TOGETHER)),
    *_TOGETHER,
)


def _config(connection: Any) -> GitHubConnectionConfig:
    if not isinstance(connection, GitHubConnectionConfig):
        raise TypeError(f"the GitHub connector was given a {type(connection).__name__}")
    return connection


class _ResourceCollector:
    """`GitHubCollector` seen through the generic interface: resources are ``owner/name/kind``."""

    def __init__(self, collector: GitHubCollector) -> None:
        self.collector = collector

    def collect_resource(self, resource: str, cursor: str | None, full: bool) -> Iterator[CollectedPage]:
        repo, kind = resource.rsplit("/", 1)
        yield from self.collector.collect(repo, kind, WalkCursor.parse(cursor), full)


class GitHubConnector:
    """Pull requests, issues, commits, workflow runs, deployments and releases of repositories."""

    tool = "github"
    source = SOURCE
    # The stored deployment statuses say which runs made a GitHub deployment: their jobs get none by name.
    context_event_types: Sequence[str] = ("deployment_status",)
    replay_groups: Sequence[Sequence[str]] = _REPLAY_GROUPS

    def resources(self, connection: Any) -> list[str]:
        """``owner/name/kind`` for each repository and each of `RESOURCES`."""
        return [f"{repo}/{kind}" for repo in _config(connection).repositories for kind in RESOURCES]

    def client(self, connection: Any) -> HttpClient:
        """The client with the token in the connection's `token_env`."""
        return github_client(_config(connection))

    def collector(self, client: HttpClient, connection: Any, clock: Clock) -> _ResourceCollector:
        """The collector of the connection's repositories."""
        return _ResourceCollector(GitHubCollector(client, _config(connection), clock=clock))

    def parse_cursor(self, text: str | None) -> WalkCursor:
        """A stored `WalkCursor`."""
        return WalkCursor.parse(text)

    def normalize(
        self, events: Sequence[RawEvent], rules: MappingRules, context: Sequence[RawEvent] = ()
    ) -> Normalized:
        """`obeya.connectors.github.normalizer.normalize`, `context` being the stored deployment statuses."""
        return normalize(events, rules, context)

    def normalize_rows(
        self, rows: pa.Table, rules: MappingRules, context: Sequence[RawEvent] = ()
    ) -> Normalized:
        """`normalize` of stored raw events given as columns (``id, event_type, external_id, payload``);
        replay calls it instead, to skip building a `RawEvent` per row."""
        return normalize_rows(rows, rules, context)
