"""Azure DevOps as a `Connector`: per project, the lists of `RESOURCES`, each with its own cursor."""

from __future__ import annotations

from collections.abc import Sequence

from obeya.connectors.base import Normalized, ScopeCollector, ToolConnector, by_scope
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


def _resources(config: AzureDevOpsConnectionConfig) -> list[str]:
    """``PROJECT/kind`` for each project and each of `RESOURCES`."""
    return [f"{project}/{kind}" for project in config.projects for kind in RESOURCES]


def _normalize(events: Sequence[RawEvent], rules: MappingRules, context: Sequence[RawEvent]) -> Normalized:
    return normalize(events, rules)  # no reference events needed


class AzureDevOpsConnector(ToolConnector[AzureDevOpsConnectionConfig]):
    """Pull requests, builds (with their timelines), work items and classic release deployments of Azure
    DevOps projects; the projects sync side by side."""

    def __init__(self) -> None:
        super().__init__(
            tool="azuredevops",
            label="Azure DevOps",
            source=SOURCE,
            config_type=AzureDevOpsConnectionConfig,
            resource_names=_resources,
            make_client=azure_client,  # the PAT in `token_env`, basic auth with an empty user
            make_collector=lambda client, config, clock: ScopeCollector(
                AzureDevOpsCollector(client, config, clock=clock).collect, AzureCursor.parse
            ),
            parse_cursor=AzureCursor.parse,
            normalizer=_normalize,
            replay_groups=_REPLAY_GROUPS,
            placement=by_scope,
        )
