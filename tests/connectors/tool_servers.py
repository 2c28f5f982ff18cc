"""Each REST tool's local server with the connection, client factory and credentials that reach it: what
the tests that make a tool misbehave (test_tool_failures.py) or interrupt its walk
(test_resume_every_tool.py) share. A tool's connection takes the server's base URL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from azuredevops_server import ORG, PROJECT, FakeAzureDevOps
from azuredevops_server import TOKEN as AZURE_TOKEN
from gitlab_server import SNOWFLAKE, FakeGitLab
from gitlab_server import TOKEN as GITLAB_TOKEN
from jenkins_server import FREESTYLE, MULTIBRANCH, FakeJenkins
from jenkins_server import TOKEN as JENKINS_TOKEN
from jenkins_server import USER as JENKINS_USER
from jira_server import EMAIL as JIRA_EMAIL
from jira_server import TOKEN as JIRA_TOKEN
from jira_server import FakeJira
from opsgenie_server import KEY as OPSGENIE_KEY
from opsgenie_server import FakeOpsgenie
from pagerduty_server import TOKEN as PAGERDUTY_TOKEN
from pagerduty_server import FakePagerDuty
from servicenow_server import PASSWORD as SERVICENOW_PASSWORD
from servicenow_server import USER as SERVICENOW_USER
from servicenow_server import FakeServiceNow

from obeya.connectors.azuredevops.collector import azure_client
from obeya.connectors.azuredevops.config import AzureDevOpsConnectionConfig
from obeya.connectors.config import JiraConnectionConfig
from obeya.connectors.gitlab.collector import gitlab_client
from obeya.connectors.gitlab.config import GitLabConnectionConfig
from obeya.connectors.http import HttpClient
from obeya.connectors.jenkins.collector import jenkins_client
from obeya.connectors.jenkins.config import JenkinsConnectionConfig
from obeya.connectors.jira.collector import jira_client
from obeya.connectors.opsgenie.collector import opsgenie_client
from obeya.connectors.opsgenie.config import OpsgenieConnectionConfig
from obeya.connectors.pagerduty.collector import pagerduty_client
from obeya.connectors.pagerduty.config import PagerDutyConnectionConfig
from obeya.connectors.servicenow.collector import servicenow_client
from obeya.connectors.servicenow.config import ServiceNowConnectionConfig


@dataclass(frozen=True)
class ToolServer:
    """A tool's local server, a connection to it (from its base URL), its client factory and the
    environment variables its credentials are read from."""

    server: Callable[[], Any]
    connection: Callable[[str], Any]
    client: Callable[..., HttpClient]
    credentials: dict[str, str]


JENKINS_CREDENTIALS = {"JENKINS_USER": JENKINS_USER, "JENKINS_TOKEN": JENKINS_TOKEN}

TOOL_SERVERS = {
    "gitlab": ToolServer(
        FakeGitLab,
        lambda url: GitLabConnectionConfig(name="t", base_url=url, projects=[SNOWFLAKE]),
        gitlab_client,
        {"GITLAB_TOKEN": GITLAB_TOKEN},
    ),
    "jira": ToolServer(
        FakeJira,
        lambda url: JiraConnectionConfig(name="t", base_url=url, boards=[8]),
        jira_client,
        {"JIRA_TOKEN": JIRA_TOKEN, "JIRA_EMAIL": JIRA_EMAIL},
    ),
    "jenkins": ToolServer(  # the freestyle job
        FakeJenkins,
        lambda url: JenkinsConnectionConfig(name="t", base_url=url, jobs=[FREESTYLE]),
        jenkins_client,
        JENKINS_CREDENTIALS,
    ),
    "jenkins-multibranch": ToolServer(
        FakeJenkins,
        lambda url: JenkinsConnectionConfig(name="t", base_url=url, jobs=[MULTIBRANCH]),
        jenkins_client,
        JENKINS_CREDENTIALS,
    ),
    "pagerduty": ToolServer(
        FakePagerDuty,
        lambda url: PagerDutyConnectionConfig(name="t", base_url=url),
        pagerduty_client,
        {"PAGERDUTY_TOKEN": PAGERDUTY_TOKEN},
    ),
    "opsgenie": ToolServer(
        FakeOpsgenie,
        lambda url: OpsgenieConnectionConfig(name="t", base_url=url),
        opsgenie_client,
        {"OPSGENIE_API_KEY": OPSGENIE_KEY},
    ),
    "servicenow": ToolServer(
        FakeServiceNow,
        lambda url: ServiceNowConnectionConfig(name="t", base_url=url),
        servicenow_client,
        {"SERVICENOW_USER": SERVICENOW_USER, "SERVICENOW_TOKEN": SERVICENOW_PASSWORD},
    ),
    "azuredevops": ToolServer(
        FakeAzureDevOps,
        lambda url: AzureDevOpsConnectionConfig(name="t", base_url=url, organization=ORG, projects=[PROJECT]),
        azure_client,
        {"AZURE_DEVOPS_TOKEN": AZURE_TOKEN},
    ),
}
