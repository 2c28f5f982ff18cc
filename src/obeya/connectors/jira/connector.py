"""Jira as a `Connector`: catalogs, then per board its sprints and issues, then project/JQL issues."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from obeya.connectors.base import Clock, Normalized
from obeya.connectors.config import JiraConnectionConfig
from obeya.connectors.http import HttpClient
from obeya.connectors.jira.collector import SOURCE, JiraCollector, JiraCursor, jira_client
from obeya.connectors.jira.normalizer import REFERENCE_TYPES, normalize
from obeya.model.records import RawEvent
from obeya.normalize.rules import MappingRules


def _config(connection: Any) -> JiraConnectionConfig:
    if not isinstance(connection, JiraConnectionConfig):
        raise TypeError(f"the Jira connector was given a {type(connection).__name__}")
    return connection


class JiraConnector:
    """Issues with their changelogs, sprints, issue links and accounts of Jira boards and projects."""

    tool = "jira"
    source = SOURCE
    context_event_types: Sequence[str] = REFERENCE_TYPES
    # An issue's fetched changelog is normalized with it.
    replay_groups: Sequence[Sequence[str]] = (("user",), ("sprint",), ("issue", "changelog"))

    def resources(self, connection: Any) -> list[str]:
        """Catalogs, ``boards/ID/sprints`` and ``boards/ID/issues`` per board, ``issues`` for projects/JQL."""
        return JiraCollector.resource_names(_config(connection))

    def client(self, connection: Any) -> HttpClient:
        """The client signed in as the connection's deployment type requires."""
        return jira_client(_config(connection))

    def collector(self, client: HttpClient, connection: Any, clock: Clock) -> JiraCollector:
        """The collector of the connection."""
        return JiraCollector(client, _config(connection), clock=clock)

    def parse_cursor(self, text: str | None) -> JiraCursor:
        """A stored `JiraCursor`."""
        return JiraCursor.parse(text)

    def normalize(
        self, events: Sequence[RawEvent], rules: MappingRules, context: Sequence[RawEvent] = ()
    ) -> Normalized:
        """`obeya.connectors.jira.normalizer.normalize`."""
        return normalize(events, rules, context)
