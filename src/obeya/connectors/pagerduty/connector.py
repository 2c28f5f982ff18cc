"""PagerDuty as a `Connector`: the connection's settings, then its incidents with their log entries."""

from __future__ import annotations

from obeya.connectors.base import ToolConnector, first_alone
from obeya.connectors.incidents import SETTINGS, TimeCursor
from obeya.connectors.pagerduty.collector import SOURCE, PagerDutyCollector, pagerduty_client
from obeya.connectors.pagerduty.config import PagerDutyConnectionConfig
from obeya.connectors.pagerduty.normalizer import normalize


class PagerDutyConnector(ToolConnector[PagerDutyConnectionConfig]):
    """Incidents (with acknowledgement and resolution times from their log entries) and responders."""

    def __init__(self) -> None:
        super().__init__(
            tool="pagerduty",
            label="PagerDuty",
            source=SOURCE,
            config_type=PagerDutyConnectionConfig,
            resource_names=PagerDutyCollector.resource_names,
            make_client=pagerduty_client,
            make_collector=PagerDutyCollector,
            parse_cursor=TimeCursor.parse,
            normalizer=normalize,
            context_event_types=(SETTINGS,),
            replay_groups=(("user",), ("incident", "log_entry")),
            placement=first_alone(SETTINGS),
        )
