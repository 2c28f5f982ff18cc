"""Jenkins as a `Connector`: the deploy rules, then per configured job its builds with their stages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from obeya.connectors.base import Clock, Normalized
from obeya.connectors.http import HttpClient
from obeya.connectors.jenkins.collector import SOURCE, JenkinsCollector, JenkinsCursor, jenkins_client
from obeya.connectors.jenkins.config import JenkinsConnectionConfig
from obeya.connectors.jenkins.normalizer import REFERENCE_TYPES, normalize
from obeya.model.records import RawEvent
from obeya.normalize.rules import MappingRules


def _config(connection: Any) -> JenkinsConnectionConfig:
    if not isinstance(connection, JenkinsConnectionConfig):
        raise TypeError(f"the Jenkins connector was given a {type(connection).__name__}")
    return connection


class JenkinsConnector:
    """Builds (pipeline runs), Pipeline stages (jobs) and deployments of Jenkins jobs."""

    tool = "jenkins"
    source = SOURCE
    context_event_types: Sequence[str] = REFERENCE_TYPES
    # A build's stages are normalized with it.
    replay_groups: Sequence[Sequence[str]] = (("build", "stages", "stage_graph"),)

    def resources(self, connection: Any) -> list[str]:
        """``deploy_rules``, then ``jobs/FULL_NAME`` per configured job."""
        return JenkinsCollector.resource_names(_config(connection))

    def client(self, connection: Any) -> HttpClient:
        """The client signed in with the user and API token the connection's variables hold."""
        return jenkins_client(_config(connection))

    def collector(self, client: HttpClient, connection: Any, clock: Clock) -> JenkinsCollector:
        """The collector of the connection."""
        return JenkinsCollector(client, _config(connection), clock=clock)

    def parse_cursor(self, text: str | None) -> JenkinsCursor:
        """A stored `JenkinsCursor`."""
        return JenkinsCursor.parse(text)

    def normalize(
        self, events: Sequence[RawEvent], rules: MappingRules, context: Sequence[RawEvent] = ()
    ) -> Normalized:
        """`obeya.connectors.jenkins.normalizer.normalize`."""
        return normalize(events, rules, context)
