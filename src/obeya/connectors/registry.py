"""The connectors Obeya knows, by the `tool:` of a connection and by the `source` of raw events."""

from __future__ import annotations

from obeya.connectors.azuredevops.connector import AzureDevOpsConnector
from obeya.connectors.base import Connector
from obeya.connectors.git.connector import GitConnector
from obeya.connectors.github.connector import GitHubConnector
from obeya.connectors.gitlab.connector import GitLabConnector
from obeya.connectors.jenkins.connector import JenkinsConnector
from obeya.connectors.jira.connector import JiraConnector
from obeya.connectors.opsgenie.connector import OpsgenieConnector
from obeya.connectors.pagerduty.connector import PagerDutyConnector
from obeya.connectors.servicenow.connector import ServiceNowConnector

CONNECTORS: dict[str, Connector] = {
    c.tool: c
    for c in (
        GitHubConnector(),
        JiraConnector(),
        GitConnector(),
        JenkinsConnector(),
        PagerDutyConnector(),
        OpsgenieConnector(),
        ServiceNowConnector(),
        GitLabConnector(),
        AzureDevOpsConnector(),
    )
}
"""Tool name → its connector. A new tool adds its connector here and its config to `ConnectionConfig`."""


def connector_for(tool: str) -> Connector:
    """The connector of a tool; an unknown tool is an error naming the known ones."""
    try:
        return CONNECTORS[tool]
    except KeyError:
        known = ", ".join(sorted(CONNECTORS))
        raise KeyError(f"no connector for tool {tool!r}; known tools: {known}") from None


def connector_for_source(source: str) -> Connector | None:
    """The connector whose raw events have `source`, if any."""
    return next((c for c in CONNECTORS.values() if c.source == source), None)
