"""Azure DevOps as a `Connector`: per project, the lists of `RESOURCES`, each with its own cursor."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from obeya.connectors.base import Clock, CollectedPage, Normalized
from obeya.connectors.http import HttpClient
from obeya.model.records import RawEvent
from obeya.normalize.rules import MappingRules

from .collector import RESOURCES, SOURCE, AzureCursor, AzureDevOpsCollector, azure_client
from .config import AzureDevOpsConnectionConfig
from .normalizer import normalize

# Events normalized together: a pull request with its threads, a build with its timeline, a work item
# with its revisions.
_REPLAY_GROUPS: tuple[tuple[str, ...], ...] = (
    ("user",),
    ("git_author",),
    ("pull_request", "pull_request_thread"),
    ("pull_request_commit",),
    ("commit",),
    ("build", "timeline_record"),
    ("work_item", "work_item_revision"),
    ("release_deployment",),
)


def _config(connection: Any) -> AzureDevOpsConnectionConfig:
    if not isinstance(connection, AzureDevOpsConnectionConfig):
        raise TypeError(f"the Azure DevOps connector was given a {type(connection).__name__}")
    return connection


class _ResourceCollector:
    """`AzureDevOpsCollector` seen through the generic interface: resources are ``PROJECT/kind``."""

    def __init__(self, collector: AzureDevOpsCollector) -> None:
        self.collector = collector

    def collect_resource(self, resource: str, cursor: str | None, full: bool) -> Iterator[CollectedPage]:
        project, kind = resource.rsplit("/", 1)
        yield from self.collector.collect(project, kind, AzureCursor.parse(cursor), full)


class AzureDevOpsConnector:
    """Pull requests, builds (with their timelines), work items and classic release deployments of Azure
    DevOps projects."""

    tool = "azuredevops"
    source = SOURCE
    context_event_types: Sequence[str] = ()
    replay_groups: Sequence[Sequence[str]] = _REPLAY_GROUPS

    def resources(self, connection: Any) -> list[str]:
        """``PROJECT/kind`` for each project and each of `RESOURCES`."""
        return [f"{project}/{kind}" for project in _config(connection).projects for kind in RESOURCES]

    def client(self, connection: Any) -> HttpClient:
        """The client with the PAT in the connection's `token_env` (basic auth, empty user)."""
        return azure_client(_config(connection))

    def collector(self, client: HttpClient, connection: Any, clock: Clock) -> _ResourceCollector:
        """The collector of the connection's projects."""
        return _ResourceCollector(AzureDevOpsCollector(client, _config(connection), clock=clock))

    def parse_cursor(self, text: str | None) -> AzureCursor:
        """A stored `AzureCursor`."""
        return AzureCursor.parse(text)

    def normalize(
        self, events: Sequence[RawEvent], rules: MappingRules, context: Sequence[RawEvent] = ()
    ) -> Normalized:
        """`obeya.connectors.azuredevops.normalizer.normalize` (no reference events needed)."""
        return normalize(events, rules)
