"""ServiceNow as a `Connector`: settings, then incidents and change requests (Table API)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from obeya.connectors.base import Clock, Normalized
from obeya.connectors.http import HttpClient
from obeya.connectors.incidents import SETTINGS, TimeCursor
from obeya.connectors.servicenow.collector import SOURCE, ServiceNowCollector, servicenow_client
from obeya.connectors.servicenow.config import ServiceNowConnectionConfig
from obeya.connectors.servicenow.normalizer import normalize
from obeya.model.records import RawEvent
from obeya.normalize.rules import MappingRules


def _config(connection: Any) -> ServiceNowConnectionConfig:
    if not isinstance(connection, ServiceNowConnectionConfig):
        raise TypeError(f"the ServiceNow connector was given a {type(connection).__name__}")
    return connection


class ServiceNowConnector:
    """Incidents, and change requests as releases (and deployments)."""

    tool = "servicenow"
    source = SOURCE
    context_event_types: Sequence[str] = (SETTINGS,)
    replay_groups: Sequence[Sequence[str]] = (("user",), ("change_request",), ("incident",))

    def resources(self, connection: Any) -> list[str]:
        """``settings``, ``incidents`` and ``change_requests``."""
        return ServiceNowCollector.resource_names(_config(connection))

    def client(self, connection: Any) -> HttpClient:
        """The client signed in with basic auth or a bearer token."""
        return servicenow_client(_config(connection))

    def collector(self, client: HttpClient, connection: Any, clock: Clock) -> ServiceNowCollector:
        """The collector of the connection."""
        return ServiceNowCollector(client, _config(connection), clock=clock)

    def parse_cursor(self, text: str | None) -> TimeCursor:
        """A stored `TimeCursor`."""
        return TimeCursor.parse(text)

    def normalize(
        self, events: Sequence[RawEvent], rules: MappingRules, context: Sequence[RawEvent] = ()
    ) -> Normalized:
        """`obeya.connectors.servicenow.normalizer.normalize`."""
        return normalize(events, rules, context)
