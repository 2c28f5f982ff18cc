"""ServiceNow as a `Connector`: settings, then incidents and change requests (Table API)."""

from __future__ import annotations

from obeya.connectors.base import ToolConnector, first_alone
from obeya.connectors.incidents import SETTINGS, TimeCursor
from obeya.connectors.servicenow.collector import SOURCE, ServiceNowCollector, servicenow_client
from obeya.connectors.servicenow.config import ServiceNowConnectionConfig
from obeya.connectors.servicenow.normalizer import normalize


class ServiceNowConnector(ToolConnector[ServiceNowConnectionConfig]):
    """Incidents, and change requests as releases (and deployments)."""

    def __init__(self) -> None:
        super().__init__(
            tool="servicenow",
            label="ServiceNow",
            source=SOURCE,
            config_type=ServiceNowConnectionConfig,
            resource_names=ServiceNowCollector.resource_names,
            make_client=servicenow_client,
            make_collector=ServiceNowCollector,
            parse_cursor=TimeCursor.parse,
            normalizer=normalize,
            context_event_types=(SETTINGS,),
            replay_groups=(("user",), ("change_request",), ("incident",)),
            placement=first_alone(SETTINGS),
        )
