"""GitLab as a `Connector`: per project, the lists of `RESOURCES`, each with its own cursor."""

from __future__ import annotations

from obeya.connectors.base import ScopeCollector, ToolConnector, by_scope

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


def _resources(config: GitLabConnectionConfig) -> list[str]:
    """``PROJECT/kind`` for each project and each of `RESOURCES`."""
    return [f"{project}/{kind}" for project in config.projects for kind in RESOURCES]


class GitLabConnector(ToolConnector[GitLabConnectionConfig]):
    """Merge requests, issues, commits, pipelines, environments, deployments and members of projects;
    the projects sync side by side."""

    def __init__(self) -> None:
        super().__init__(
            tool="gitlab",
            label="GitLab",
            source=SOURCE,
            config_type=GitLabConnectionConfig,
            resource_names=_resources,
            make_client=gitlab_client,
            make_collector=lambda client, config, clock: ScopeCollector(
                GitLabCollector(client, config, clock=clock).collect, UpdatedCursor.parse
            ),
            parse_cursor=UpdatedCursor.parse,
            normalizer=normalize,
            context_event_types=("environment",),  # their tiers class the deployments
            replay_groups=_REPLAY_GROUPS,
            placement=by_scope,
        )
