"""PagerDuty as a `Connector`: the connection's settings, then its incidents with their log entries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from obeya.connectors.base import Clock, Normalized
from obeya.connectors.http import HttpClient
from obeya.connectors.incidents import SETTINGS, TimeCursor
from obeya.connectors.pagerduty.collector import SOURCE, PagerDutyCollector, pagerduty_client
from obeya.connectors.pagerduty.config import PagerDutyConnectionConfig
from obeya.connectors.pagerduty.normalizer import normalize
from obeya.model.records import RawEvent
from obeya.normalize.rules import MappingRules


def _config(connection: Any) -> PagerDutyConnectionConfig:
    if not isinstance(connection, PagerDutyConnectionConfig):
        raise TypeError(f"the PagerDuty connector was given a {type(connection).__name__}")
    return connection


class PagerDutyConnector:
    """Incidents (with acknowledgement and resolution times from their log entries) and responders."""

    tool = "pagerduty"
    source = SOURCE
    context_event_types: Sequence[str] = (SETTINGS,)
    replay_groups: Sequence[Sequence[str]] = (("user",), ("incident", "log_entry"))

    def resources(self, connection: Any) -> list[str]:
        """``settings`` then ``incidents``."""
        return PagerDutyCollector.resource_names(_config(connection))

    def client(self, connection: Any) -> HttpClient:
        """The client with the connection's API key."""
        return pagerduty_client(_config(connection))

    def collector(self, client: HttpClient, connection: Any, clock: Clock) -> PagerDutyCollector:
        """The collector of the connection."""
        return PagerDutyCollector(client, _config(connection), clock=clock)

    def parse_cursor(self, text: str | None) -> TimeCursor:
        """A stored `TimeCursor`."""
        return TimeCursor.parse(text)

    def normalize(
        self, events: Sequence[RawEvent], rules: MappingRules, context: Sequence[RawEvent] = ()
    ) -> Normalized:
        """`obeya.connectors.pagerduty.normalizer.normalize`."""
        return normalize(events, rules, context)
