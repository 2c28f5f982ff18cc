"""GitLab as a `Connector`: per project, the lists of `RESOURCES`, each with its own cursor."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from obeya.connectors.base import Clock, CollectedPage, Normalized
from obeya.connectors.http import HttpClient
from obeya.model.records import RawEvent
from obeya.normalize.rules import MappingRules

from .collector import RESOURCES, SOURCE, GitLabCollector, UpdatedCursor, gitlab_client
from .config import GitLabConnectionConfig
from .normalizer import HANDLERS, normalize

# A merge request's approvals are normalized with its notes (an approval note carries the time), an
# issue with its state events (which say whether its last close is recorded there).
_TOGETHER = (("merge_request_note", "merge_request_approvals"), ("issue", "issue_state_events"))
_REPLAY_GROUPS: tuple[tuple[str, ...], ...] = (
    *((t,) for t in HANDLERS if not any(t in group for group in _TOGETHER)),
    *_TOGETHER,
)


def _config(connection: Any) -> GitLabConnectionConfig:
    if not isinstance(connection, GitLabConnectionConfig):
        raise TypeError(f"the GitLab connector was given a {type(connection).__name__}")
    return connection


class _ResourceCollector:
    """`GitLabCollector` seen through the generic interface: resources are ``PROJECT/kind``."""

    def __init__(self, collector: GitLabCollector) -> None:
        self.collector = collector

    def collect_resource(self, resource: str, cursor: str | None, full: bool) -> Iterator[CollectedPage]:
        project, kind = resource.rsplit("/", 1)
        yield from self.collector.collect(project, kind, UpdatedCursor.parse(cursor), full)


class GitLabConnector:
    """Merge requests, issues, commits, pipelines, environments, deployments and members of projects."""

    tool = "gitlab"
    source = SOURCE
    context_event_types: Sequence[str] = ("environment",)  # their tiers class the deployments
    replay_groups: Sequence[Sequence[str]] = _REPLAY_GROUPS

    def resources(self, connection: Any) -> list[str]:
        """``PROJECT/kind`` for each project and each of `RESOURCES`."""
        return [f"{project}/{kind}" for project in _config(connection).projects for kind in RESOURCES]

    def client(self, connection: Any) -> HttpClient:
        """The client with the token in the connection's `token_env`."""
        return gitlab_client(_config(connection))

    def collector(self, client: HttpClient, connection: Any, clock: Clock) -> _ResourceCollector:
        """The collector of the connection's projects."""
        return _ResourceCollector(GitLabCollector(client, _config(connection), clock=clock))

    def parse_cursor(self, text: str | None) -> UpdatedCursor:
        """A stored `UpdatedCursor`."""
        return UpdatedCursor.parse(text)

    def normalize(
        self, events: Sequence[RawEvent], rules: MappingRules, context: Sequence[RawEvent] = ()
    ) -> Normalized:
        """`obeya.connectors.gitlab.normalizer.normalize`, with the stored environments as `context`."""
        return normalize(events, rules, context)
