"""Opsgenie as a `Connector`: settings, the service, team and user catalogs, then incidents."""

from __future__ import annotations

from obeya.connectors.base import Placement, ToolConnector
from obeya.connectors.incidents import SETTINGS, TimeCursor
from obeya.connectors.opsgenie.collector import CATALOGS, SOURCE, OpsgenieCollector, opsgenie_client
from obeya.connectors.opsgenie.config import OpsgenieConnectionConfig
from obeya.connectors.opsgenie.normalizer import REFERENCE_TYPES, normalize


def placement(resource: str) -> Placement:
    """The settings, then the catalogs side by side, then the incidents (per service) side by side: an
    incident page reads the stored settings and catalogs."""
    if resource == SETTINGS:
        return (0, resource)
    return (1, resource) if resource in CATALOGS else (2, resource)


class OpsgenieConnector(ToolConnector[OpsgenieConnectionConfig]):
    """Incidents of impacted services, with their teams and users."""

    def __init__(self) -> None:
        super().__init__(
            tool="opsgenie",
            label="Opsgenie",
            source=SOURCE,
            config_type=OpsgenieConnectionConfig,
            resource_names=OpsgenieCollector.resource_names,
            make_client=opsgenie_client,
            make_collector=OpsgenieCollector,
            parse_cursor=TimeCursor.parse,
            normalizer=normalize,
            context_event_types=REFERENCE_TYPES,
            # An incident's timeline (its acknowledgement) is normalized with it.
            replay_groups=(("user",), ("incident", "incident_timeline")),
            placement=placement,
        )
