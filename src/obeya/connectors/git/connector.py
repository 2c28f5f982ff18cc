"""Local git repositories as a `Connector`: per repository its commits, then its tags."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from obeya.connectors.base import Clock, Normalized
from obeya.connectors.git.collector import SOURCE, GitCollector, GitCursor
from obeya.connectors.git.config import GitConnectionConfig
from obeya.connectors.git.normalizer import normalize
from obeya.connectors.http import HttpClient
from obeya.model.records import RawEvent
from obeya.normalize.rules import MappingRules


def _config(connection: Any) -> GitConnectionConfig:
    if not isinstance(connection, GitConnectionConfig):
        raise TypeError(f"the git connector was given a {type(connection).__name__}")
    return connection


class GitConnector:
    """Commits (with parents and paths), authors and tags of repositories on disk."""

    tool = "git"
    source = SOURCE
    context_event_types: Sequence[str] = ()
    replay_groups: Sequence[Sequence[str]] = (("author",), ("commit",), ("tag",))

    def resources(self, connection: Any) -> list[str]:
        """``NAME/commits`` and ``NAME/tags`` per repository."""
        return GitCollector.resource_names(_config(connection))

    def client(self, connection: Any) -> HttpClient:
        """An HTTP client that is never used: git is read with the `git` command, not over HTTP.

        The generic sync asks every connector for one; this one makes no request.
        """
        _config(connection)
        return HttpClient("http://localhost", tool="git")

    def collector(self, client: HttpClient, connection: Any, clock: Clock) -> GitCollector:
        """The collector of the connection (`client` is not used)."""
        return GitCollector(_config(connection), clock=clock)

    def parse_cursor(self, text: str | None) -> GitCursor:
        """A stored `GitCursor`."""
        return GitCursor.parse(text)

    def normalize(
        self, events: Sequence[RawEvent], rules: MappingRules, context: Sequence[RawEvent] = ()
    ) -> Normalized:
        """`obeya.connectors.git.normalizer.normalize`."""
        return normalize(events, rules, context)
