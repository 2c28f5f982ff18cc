"""Jira as a `Connector`: catalogs, then per board its sprints and issues, then project/JQL issues."""

from __future__ import annotations

from obeya.connectors.base import Placement, ToolConnector
from obeya.connectors.config import JiraConnectionConfig
from obeya.connectors.jira.collector import CATALOGS, SOURCE, JiraCollector, JiraCursor, jira_client
from obeya.connectors.jira.normalizer import REFERENCE_TYPES, normalize


def placement(resource: str) -> Placement:
    """The catalogs first (side by side), then each board (its sprints, then its issues) and the
    project/JQL issues side by side: every issue page reads the stored catalogs."""
    if resource in CATALOGS:
        return (0, resource)
    if resource.startswith("boards/"):
        return (1, resource.rsplit("/", 1)[0])
    return (1, resource)


class JiraConnector(ToolConnector[JiraConnectionConfig]):
    """Issues with their changelogs, sprints, issue links and accounts of Jira boards and projects."""

    def __init__(self) -> None:
        super().__init__(
            tool="jira",
            label="Jira",
            source=SOURCE,
            config_type=JiraConnectionConfig,
            resource_names=JiraCollector.resource_names,
            make_client=jira_client,
            make_collector=JiraCollector,
            parse_cursor=JiraCursor.parse,
            normalizer=normalize,
            context_event_types=REFERENCE_TYPES,
            # An issue's fetched changelog is normalized with it.
            replay_groups=(("user",), ("sprint",), ("issue", "changelog")),
            placement=placement,
        )
