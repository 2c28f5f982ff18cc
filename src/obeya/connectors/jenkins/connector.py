"""Jenkins as a `Connector`: the deploy rules, then per configured job its builds with their stages."""

from __future__ import annotations

from obeya.connectors.base import ToolConnector, first_alone
from obeya.connectors.jenkins.collector import (
    RULES_RESOURCE,
    SOURCE,
    JenkinsCollector,
    JenkinsCursor,
    jenkins_client,
)
from obeya.connectors.jenkins.config import JenkinsConnectionConfig
from obeya.connectors.jenkins.normalizer import REFERENCE_TYPES, normalize


class JenkinsConnector(ToolConnector[JenkinsConnectionConfig]):
    """Builds (pipeline runs), Pipeline stages (jobs) and deployments of Jenkins jobs."""

    def __init__(self) -> None:
        super().__init__(
            tool="jenkins",
            label="Jenkins",
            source=SOURCE,
            config_type=JenkinsConnectionConfig,
            resource_names=JenkinsCollector.resource_names,
            make_client=jenkins_client,
            make_collector=JenkinsCollector,
            parse_cursor=JenkinsCursor.parse,
            normalizer=normalize,
            context_event_types=REFERENCE_TYPES,
            # A build's stages are normalized with it.
            replay_groups=(("build", "stages", "stage_graph"),),
            placement=first_alone(RULES_RESOURCE),  # every build page reads the deploy rules
        )
