"""`obeya connections test` for GitLab, Jenkins, PagerDuty, Opsgenie, ServiceNow and Azure DevOps, against
their local servers: the exact line a user reads for a good connection, a rejected token (401), a missing
scope or permission (403), an unreachable host and a tool answering 5xx.

The servers serve the tools' recorded (GitLab, Jenkins, PagerDuty, Opsgenie, Azure DevOps) or documented
(ServiceNow) answers; the 403 and 5xx bodies are the ones each tool documents for them, set as
`loopback.Fault`s.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from azuredevops_server import ORG, PROJECT, FakeAzureDevOps
from azuredevops_server import TOKEN as AZURE_TOKEN
from gitlab_server import INSUFFICIENT_SCOPE, PIP_TEST, SNOWFLAKE, FakeGitLab
from gitlab_server import TOKEN as GITLAB_TOKEN
from jenkins_server import FREESTYLE, MULTIBRANCH, FakeJenkins
from jenkins_server import TOKEN as JENKINS_TOKEN
from jenkins_server import USER as JENKINS_USER
from loopback import Fault
from opsgenie_server import KEY as OPSGENIE_KEY
from opsgenie_server import FakeOpsgenie
from pagerduty_server import TOKEN as PAGERDUTY_TOKEN
from pagerduty_server import FakePagerDuty
from servicenow_server import PASSWORD as SERVICENOW_PASSWORD
from servicenow_server import USER as SERVICENOW_USER
from servicenow_server import FakeServiceNow

from obeya.connectors.azuredevops.config import AzureDevOpsConnectionConfig
from obeya.connectors.check import CheckResult, Status, check_connection, failed
from obeya.connectors.config import ConnectionConfig
from obeya.connectors.gitlab.config import GitLabConnectionConfig
from obeya.connectors.jenkins.config import JenkinsConnectionConfig
from obeya.connectors.opsgenie.config import OpsgenieConnectionConfig
from obeya.connectors.pagerduty.config import PagerDutyConnectionConfig
from obeya.connectors.servicenow.config import ServiceNowConnectionConfig

Row = tuple[str, Status, str, str]  # check, status, result, action


@dataclass(frozen=True)
class Tool:
    """One tool's server, connection, credentials, and the paths its check asks first."""

    name: str
    server: Callable[[], Any]
    connection: Callable[[str], ConnectionConfig]
    credentials: dict[str, str]
    token_variable: str
    first_path: str  # the path of the check's first request (reachable, token)
    api_base: str = ""  # what the client puts before every path


TOOLS = {
    "gitlab": Tool(
        "gitlab",
        FakeGitLab,
        lambda url: GitLabConnectionConfig(name="gl", base_url=url, projects=[SNOWFLAKE, "44"]),
        {"GITLAB_TOKEN": GITLAB_TOKEN},
        "GITLAB_TOKEN",
        "/user",
        "/api/v4",
    ),
    "jenkins": Tool(
        "jenkins",
        FakeJenkins,
        lambda url: JenkinsConnectionConfig(name="ci", base_url=url, jobs=[MULTIBRANCH, FREESTYLE]),
        {"JENKINS_USER": JENKINS_USER, "JENKINS_TOKEN": JENKINS_TOKEN},
        "JENKINS_TOKEN",
        "/api/json",
    ),
    "pagerduty": Tool(
        "pagerduty",
        FakePagerDuty,
        lambda url: PagerDutyConnectionConfig(name="pd", base_url=url),
        {"PAGERDUTY_TOKEN": PAGERDUTY_TOKEN},
        "PAGERDUTY_TOKEN",
        "/incidents",
    ),
    "opsgenie": Tool(
        "opsgenie",
        FakeOpsgenie,
        lambda url: OpsgenieConnectionConfig(name="og", base_url=url),
        {"OPSGENIE_API_KEY": OPSGENIE_KEY},
        "OPSGENIE_API_KEY",
        "/v1/incidents",
    ),
    "servicenow": Tool(
        "servicenow",
        FakeServiceNow,
        lambda url: ServiceNowConnectionConfig(name="snow", base_url=url),
        {"SERVICENOW_USER": SERVICENOW_USER, "SERVICENOW_TOKEN": SERVICENOW_PASSWORD},
        "SERVICENOW_TOKEN",
        "/api/now/table/incident",
    ),
    "azuredevops": Tool(
        "azuredevops",
        FakeAzureDevOps,
        lambda url: AzureDevOpsConnectionConfig(
            name="ado", base_url=url, organization=ORG, projects=[PROJECT]
        ),
        {"AZURE_DEVOPS_TOKEN": AZURE_TOKEN},
        "AZURE_DEVOPS_TOKEN",
        "/_apis/projects",
        f"/{ORG}",
    ),
}


@pytest.fixture(params=list(TOOLS))
def tool(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Tool, Any]]:
    """Each tool with its server running and its credentials in the environment."""
    spec = TOOLS[request.param]
    for variable, value in spec.credentials.items():
        monkeypatch.setenv(variable, value)
    server = spec.server().start()
    yield spec, server
    server.stop()


def _rows(results: list[CheckResult]) -> list[Row]:
    return [(r.check, r.status, r.result, r.action) for r in results]


def _credentials_ok(spec: Tool) -> list[Row]:
    return [("credentials", Status.ok, f"${v} is set", "") for v in spec.credentials]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# --- a good connection -----------------------------------------------------------------------------------

GOOD_ROWS: dict[str, list[Row]] = {
    "gitlab": [
        ("token", Status.ok, "accepted (user john_smith)", ""),
        ("scopes", Status.ok, "scopes: api", ""),
        (f"project {SNOWFLAKE}", Status.ok, "readable", ""),
        ("project 44", Status.ok, "readable", ""),
    ],
    "jenkins": [
        ("token", Status.ok, "accepted", ""),
        (f"job {MULTIBRANCH}", Status.ok, "readable", ""),
        (f"job {FREESTYLE}", Status.ok, "readable", ""),
    ],
    "pagerduty": [
        ("token", Status.ok, "accepted", ""),
        ("access incidents", Status.ok, "can list incidents", ""),
    ],
    "opsgenie": [
        ("token", Status.ok, "accepted", ""),
        ("access incidents", Status.ok, "can list v1/incidents", ""),
    ],
    "servicenow": [
        ("token", Status.ok, "accepted", ""),
        ("access incidents", Status.ok, "can list api/now/table/incident", ""),
        ("access change requests", Status.ok, "can list api/now/table/change_request", ""),
    ],
    "azuredevops": [
        ("token", Status.ok, "accepted", ""),
        (f"project {PROJECT}", Status.ok, "readable", ""),
    ],
}


def test_good_connection_passes_every_check(tool: tuple[Tool, Any]) -> None:
    spec, server = tool
    results = check_connection(spec.connection(server.base_url))
    assert not failed(results)
    base = f"{server.base_url}{spec.api_base}"
    assert _rows(results) == [
        *_credentials_ok(spec),
        ("reachable", Status.ok, f"{base} answers", ""),
        *GOOD_ROWS[spec.name],
    ]


# --- a rejected token (401) ----------------------------------------------------------------------------

REJECTED: dict[str, str] = {
    "gitlab": "rejected (401) by gitlab: the token in $GITLAB_TOKEN is not valid",
    "jenkins": "rejected (401) by jenkins: the credentials in $JENKINS_USER and $JENKINS_TOKEN are not valid",
    "pagerduty": "rejected (401) by pagerduty: the token in $PAGERDUTY_TOKEN is not valid",
    "opsgenie": "rejected (401) by opsgenie: the token in $OPSGENIE_API_KEY is not valid",
    "servicenow": (
        "rejected (401) by servicenow: the credentials in $SERVICENOW_USER and $SERVICENOW_TOKEN are "
        "not valid"
    ),
    "azuredevops": "rejected (401) by azuredevops: the token in $AZURE_DEVOPS_TOKEN is not valid",
}


def test_rejected_token_names_the_variable_that_holds_it(
    tool: tuple[Tool, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, server = tool
    monkeypatch.setenv(spec.token_variable, "not-the-token")
    results = check_connection(spec.connection(server.base_url))
    assert failed(results)
    assert _rows(results)[len(spec.credentials) + 1 :] == [
        (
            "token",
            Status.fail,
            REJECTED[spec.name],
            "create a new token (or check it has not expired or been revoked) and set it in "
            f"${spec.token_variable}",
        )
    ]
    assert len(server.requests) == 1  # nothing more is asked once the token is rejected


# --- a missing scope or permission (403) -----------------------------------------------------------------

# Each tool's 403, as it documents it: GitLab's insufficient_scope, Jenkins' "Access Denied" page,
# PagerDuty's error object, Opsgenie's message, ServiceNow's ACL failure.
FORBIDDEN: dict[str, tuple[str, Fault, Row]] = {
    "gitlab": (
        "/user",
        Fault(403, INSUFFICIENT_SCOPE),
        (
            "token",
            Status.fail,
            "refused (403) at /user: the token in $GITLAB_TOKEN lacks a scope GitLab needs to read the API "
            "(read_api)",
            "the token in $GITLAB_TOKEN needs the read_api scope, and at least Reporter access to the "
            "projects",
        ),
    ),
    "jenkins": (
        "/api/json",
        Fault(
            403,
            "<html><body><h1>Access Denied</h1>obeya is missing the Overall/Read permission</body></html>",
        ),
        (
            "token",
            Status.fail,
            "refused (403) at /api/json: the user in $JENKINS_USER lacks the Overall/Read permission",
            "the user in $JENKINS_USER needs the Overall/Read and Job/Read permissions",
        ),
    ),
    "pagerduty": (
        "/incidents",
        Fault(403, {"error": {"message": "Access Denied", "code": 2010}}),
        (
            "access incidents",
            Status.fail,
            "refused (403) at /incidents: the token in $PAGERDUTY_TOKEN lacks the right to list incidents",
            "the token in $PAGERDUTY_TOKEN needs to be a REST API key (read-only is enough), or a user token "
            "whose user can see the services",
        ),
    ),
    "opsgenie": (
        "/v1/incidents",
        Fault(403, {"message": "You are not authorized for this action", "took": 0.0, "requestId": "r-1"}),
        (
            "access incidents",
            Status.fail,
            "refused (403) at /v1/incidents: the token in $OPSGENIE_API_KEY lacks the right to list "
            "incidents",
            "the token in $OPSGENIE_API_KEY needs to be an API key with the Read access right (an API "
            "integration's key, or the account's)",
        ),
    ),
    "servicenow": (
        "/api/now/table/change_request",
        Fault(
            403, {"error": {"message": "User Not Authorized", "detail": "ACL Exception"}, "status": "failure"}
        ),
        (
            "access change requests",
            Status.fail,
            "refused (403) at /api/now/table/change_request: the user in $SERVICENOW_USER lacks the right to "
            "list change requests",
            "the user in $SERVICENOW_USER needs read access to the incident and change_request tables (the "
            "itil role, or read ACLs on them)",
        ),
    ),
    "azuredevops": (
        f"/{PROJECT}/_apis/git/repositories",
        Fault(
            403, {"message": "TF401027: You need the Git 'GenericRead' permission to perform this action."}
        ),
        (
            f"project {PROJECT}",
            Status.fail,
            f"cannot read {PROJECT} (403): the token in $AZURE_DEVOPS_TOKEN lacks the Code (Read) scope, or "
            "access to the project",
            "the token in $AZURE_DEVOPS_TOKEN needs the scopes Code (Read), Work Items (Read), Build (Read) "
            "and Release (Read)",
        ),
    ),
}


def test_missing_permission_says_what_is_missing(tool: tuple[Tool, Any]) -> None:
    spec, server = tool
    path, fault, row = FORBIDDEN[spec.name]
    server.faults[path] = fault
    results = check_connection(spec.connection(server.base_url))
    assert failed(results)
    assert row in _rows(results)
    assert [r for r in results if r.status is Status.fail] == [r for r in results if r.check == row[0]]


def test_gitlab_token_without_read_api_scope_names_its_scopes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITLAB_TOKEN", GITLAB_TOKEN)
    server = FakeGitLab().start()
    try:
        server.token_self = {**server.token_self, "scopes": ["read_user", "read_repository"]}
        found = {r.check: r for r in check_connection(TOOLS["gitlab"].connection(server.base_url))}
    finally:
        server.stop()
    assert (found["scopes"].status, found["scopes"].result, found["scopes"].action) == (
        Status.fail,
        "the token in $GITLAB_TOKEN has no read_api or api scope (scopes: read_repository, read_user)",
        "create a token with the read_api scope and set it in $GITLAB_TOKEN",
    )


def test_gitlab_project_refused_or_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITLAB_TOKEN", GITLAB_TOKEN)
    server = FakeGitLab().start()
    try:
        server.faults[f"/projects/{PIP_TEST}"] = Fault(403, {"message": "403 Forbidden"})
        connection = GitLabConnectionConfig(
            name="gl", base_url=server.base_url, projects=[SNOWFLAKE, PIP_TEST, "acme/nothing"]
        )
        found = {r.check: r for r in check_connection(connection)}
    finally:
        server.stop()
    assert found[f"project {SNOWFLAKE}"].status is Status.ok
    assert (found[f"project {PIP_TEST}"].result, found[f"project {PIP_TEST}"].action) == (
        f"cannot read {PIP_TEST} (403): the token in $GITLAB_TOKEN lacks at least Reporter access to it",
        "the token in $GITLAB_TOKEN needs the read_api scope, and at least Reporter access to the projects",
    )
    assert found["project acme/nothing"].result == (
        "cannot read acme/nothing (404): no such project, or the token's account is not a member of it"
    )


def test_jenkins_job_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable, value in TOOLS["jenkins"].credentials.items():
        monkeypatch.setenv(variable, value)
    server = FakeJenkins().start()
    try:
        server.faults["/job/devlake/api/json"] = Fault(403, "<html><body>Access Denied</body></html>")
        found = {r.check: r for r in check_connection(TOOLS["jenkins"].connection(server.base_url))}
    finally:
        server.stop()
    assert found[f"job {MULTIBRANCH}"].status is Status.ok
    assert (found[f"job {FREESTYLE}"].status, found[f"job {FREESTYLE}"].result) == (
        Status.fail,
        f"cannot read {FREESTYLE} (403): the user in $JENKINS_USER lacks the Job/Read permission on it",
    )


# --- an unreachable host, a tool answering 5xx ---------------------------------------------------------


def test_unreachable_host_says_so_with_the_url(tool: tuple[Tool, Any]) -> None:
    spec, _server = tool
    url = f"http://127.0.0.1:{_closed_port()}"
    results = check_connection(spec.connection(url), timeout=2.0)
    assert _rows(results) == [
        *_credentials_ok(spec),
        (
            "reachable",
            Status.fail,
            f"cannot reach {url}{spec.api_base}: the connection was refused ([Errno 111] Connection refused)",
            "check base_url, DNS, the proxy (HTTPS_PROXY) and the firewall",
        ),
    ]


def test_tool_answering_5xx_is_down_not_misconfigured(tool: tuple[Tool, Any]) -> None:
    spec, server = tool
    server.faults[spec.first_path] = Fault(503, {"message": "Service Unavailable"})
    results = check_connection(spec.connection(server.base_url))
    base = f"{server.base_url}{spec.api_base}"
    assert _rows(results)[len(spec.credentials) :] == [
        (
            "reachable",
            Status.fail,
            f"{base} answered 503 at {base}{spec.first_path}{_first_query(spec.name)}",
            "the service may be down: try again later",
        )
    ]
    assert len(server.requests) == 1  # one attempt, no retries


def _first_query(tool: str) -> str:
    return {
        "gitlab": "",
        "jenkins": "?tree=mode",
        "pagerduty": "?date_range=all&limit=1",
        "opsgenie": "?limit=1",
        "servicenow": "?sysparm_limit=1&sysparm_fields=sys_id",
        "azuredevops": "?api-version=7.1&%24top=1",
    }[tool]
