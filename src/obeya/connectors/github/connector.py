"""GitHub as a `Connector`: per repository, the lists of `RESOURCES`, each with its own cursor."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from obeya.connectors.base import Normalized, ScopeCollector, ToolConnector, by_scope
from obeya.connectors.config import GitHubConnectionConfig
from obeya.connectors.github.collector import RESOURCES, SOURCE, GitHubCollector, WalkCursor, github_client
from obeya.connectors.github.normalizer import HANDLERS, normalize, normalize_rows
from obeya.model.records import RawEvent
from obeya.normalize.rules import MappingRules

# A deployment's statuses are normalized with it, and an issue's events with the issue (its closed_at
# dates the last close), so replay reads them together.
_TOGETHER = (("issue", "issue_event"), ("deployment", "deployment_status"))
_REPLAY_GROUPS: tuple[tuple[str, ...], ...] = (
    *((t,) for t in HANDLERS if not any(t in group for group in _TOGETHER)),
    *_TOGETHER,
)


def _resources(config: GitHubConnectionConfig) -> list[str]:
    """``owner/name/kind`` for each repository and each of `RESOURCES`."""
    return [f"{repo}/{kind}" for repo in config.repositories for kind in RESOURCES]


class GitHubConnector(ToolConnector[GitHubConnectionConfig]):
    """Pull requests, issues, commits, workflow runs, deployments and releases of repositories; the
    repositories sync side by side."""

    def __init__(self) -> None:
        super().__init__(
            tool="github",
            label="GitHub",
            source=SOURCE,
            config_type=GitHubConnectionConfig,
            resource_names=_resources,
            make_client=github_client,
            make_collector=lambda client, config, clock: ScopeCollector(
                GitHubCollector(client, config, clock=clock).collect, WalkCursor.parse
            ),
            parse_cursor=WalkCursor.parse,
            normalizer=normalize,
            # The stored deployment statuses say which runs made a GitHub deployment: their jobs get none
            # by name.
            context_event_types=("deployment_status",),
            replay_groups=_REPLAY_GROUPS,
            placement=by_scope,
        )

    @staticmethod
    def context_prefix(resource: str) -> str:
        """The key prefix of the context a sync of `resource` (``owner/name/kind``) reads: its repository's
        deployment statuses (keys ``owner/name/DEPLOYMENT/STATUS``) — a workflow job names a run of its
        own repository, so the other repositories' statuses never decide its deployment."""
        return resource.rsplit("/", 1)[0] + "/"

    def normalize_rows(
        self, rows: pa.Table, rules: MappingRules, context: Sequence[RawEvent] = ()
    ) -> Normalized:
        """`normalize` of stored raw events given as columns (``id, event_type, external_id, payload``);
        replay calls it instead, to skip building a `RawEvent` per row."""
        return normalize_rows(rows, rules, context)
