"""Opsgenie as a `Connector`: settings, the service, team and user catalogs, then incidents."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from obeya.connectors.base import Clock, Normalized
from obeya.connectors.http import HttpClient
from obeya.connectors.incidents import TimeCursor
from obeya.connectors.opsgenie.collector import SOURCE, OpsgenieCollector, opsgenie_client
from obeya.connectors.opsgenie.config import OpsgenieConnectionConfig
from obeya.connectors.opsgenie.normalizer import REFERENCE_TYPES, normalize
from obeya.model.records import RawEvent
from obeya.normalize.rules import MappingRules


def _config(connection: Any) -> OpsgenieConnectionConfig:
    if not isinstance(connection, OpsgenieConnectionConfig):
        raise TypeError(f"the Opsgenie connector was given a {type(connection).__name__}")
    return connection


class OpsgenieConnector:
    """Incidents of impacted services, with their teams and users."""

    tool = "opsgenie"
    source = SOURCE
    context_event_types: Sequence[str] = REFERENCE_TYPES
    # An incident's timeline (its acknowledgement) is normalized with it.
    replay_groups: Sequence[Sequence[str]] = (("user",), ("incident", "incident_timeline"))

    def resources(self, connection: Any) -> list[str]:
        """``settings``, the catalogs, then the incidents (per configured service)."""
        return OpsgenieCollector.resource_names(_config(connection))

    def client(self, connection: Any) -> HttpClient:
        """The client with the connection's API key."""
        return opsgenie_client(_config(connection))

    def collector(self, client: HttpClient, connection: Any, clock: Clock) -> OpsgenieCollector:
        """The collector of the connection."""
        return OpsgenieCollector(client, _config(connection), clock=clock)

    def parse_cursor(self, text: str | None) -> TimeCursor:
        """A stored `TimeCursor`."""
        return TimeCursor.parse(text)

    def normalize(
        self, events: Sequence[RawEvent], rules: MappingRules, context: Sequence[RawEvent] = ()
    ) -> Normalized:
        """`obeya.connectors.opsgenie.normalizer.normalize`."""
        return normalize(events, rules, context)
