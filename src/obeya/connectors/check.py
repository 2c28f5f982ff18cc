"""`obeya connections test`: check each declared connection without syncing, and say what is wrong.

Per connection, in order: the environment variables of its credentials are set; the tool is reachable
at its `base_url` (DNS, refused connection, timeout); it accepts the token (a 401 is "rejected"); the token
may read what the connection names (GitHub's classic-token scopes, each repository, board, project or job).
Only GET requests, one attempt each, no retries, nothing written anywhere.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote

import httpx

from obeya.connectors.azuredevops.collector import API_VERSION as AZURE_API_VERSION
from obeya.connectors.azuredevops.collector import azure_client
from obeya.connectors.azuredevops.config import AzureDevOpsConnectionConfig
from obeya.connectors.config import ConnectionConfig, GitHubConnectionConfig, JiraConnectionConfig
from obeya.connectors.errors import (
    AuthenticationError,
    ConnectorError,
    MalformedResponseError,
    MissingCredentialError,
    NotFoundError,
    PermissionDeniedError,
    RetriesExhaustedError,
)
from obeya.connectors.git.collector import GitError, Repository
from obeya.connectors.git.config import GitConnectionConfig, GitRepositoryConfig
from obeya.connectors.git.mirror import GitFetchError, Mirror, shown
from obeya.connectors.github.collector import github_client
from obeya.connectors.gitlab.collector import gitlab_client, project_path
from obeya.connectors.gitlab.config import GitLabConnectionConfig
from obeya.connectors.http import HttpClient, RetryPolicy
from obeya.connectors.jenkins.collector import jenkins_client, job_path
from obeya.connectors.jenkins.config import JenkinsConnectionConfig
from obeya.connectors.jira.collector import jira_client
from obeya.connectors.opsgenie.collector import opsgenie_client
from obeya.connectors.opsgenie.config import OpsgenieConnectionConfig
from obeya.connectors.pagerduty.collector import pagerduty_client
from obeya.connectors.pagerduty.config import PagerDutyConnectionConfig
from obeya.connectors.servicenow.collector import servicenow_client
from obeya.connectors.servicenow.config import ServiceNowConnectionConfig

DEFAULT_TIMEOUT = 10.0
"""Seconds a check waits for one answer before calling the tool unreachable."""

_CHECK_RETRY = RetryPolicy(max_attempts=1, max_rate_limit_waits=0)
"""One attempt, no waiting: a check reports what it sees instead of retrying."""


class Status(StrEnum):
    """How one check went; only `fail` makes `obeya connections test` exit 1."""

    ok = "ok"
    warn = "warn"
    fail = "fail"


@dataclass(frozen=True)
class CheckResult:
    """One check of one connection: what was checked, what was found, and what to do about it."""

    connection: str
    tool: str
    check: str
    status: Status
    result: str
    action: str = ""


def failed(results: Sequence[CheckResult]) -> bool:
    """Whether any check failed."""
    return any(r.status is Status.fail for r in results)


# --- credentials -------------------------------------------------------------------------------------


def credential_variables(connection: ConnectionConfig) -> list[str]:
    """The environment variables the connection's client reads its credentials from."""
    if isinstance(connection, GitConnectionConfig):
        return []
    if isinstance(connection, JiraConnectionConfig):
        if connection.deployment == "cloud":
            return [connection.email_env, connection.token_env]
        return [connection.token_env]
    if isinstance(connection, JenkinsConnectionConfig):
        return [connection.user_env, connection.token_env]
    if isinstance(connection, ServiceNowConnectionConfig) and connection.auth == "basic":
        return [connection.username_env, connection.token_env]
    token_env = getattr(connection, "token_env", None)
    return [token_env] if isinstance(token_env, str) else []


def _credentials_phrase(connection: ConnectionConfig) -> tuple[str, str]:
    """How a message names the connection's credentials: (subject, verb), e.g. ("the token in $X", "is")."""
    variables = [f"${v}" for v in credential_variables(connection)]
    if len(variables) == 1:
        return f"the token in {variables[0]}", "is"
    return f"the credentials in {' and '.join(variables)}", "are"


def _account(connection: ConnectionConfig) -> str:
    """The account whose rights a 403 is about, named by the variable that holds it."""
    if isinstance(connection, JenkinsConnectionConfig):
        return f"the user in ${connection.user_env}"
    if isinstance(connection, ServiceNowConnectionConfig) and connection.auth == "basic":
        return f"the user in ${connection.username_env}"
    if isinstance(connection, ServiceNowConnectionConfig):
        return f"the user of the OAuth token in ${connection.token_env}"
    return f"the token in ${getattr(connection, 'token_env', '')}"


def permissions_needed(connection: ConnectionConfig) -> str:
    """What a connection's credentials must be allowed, in the tool's words (said when a 403 comes)."""
    if isinstance(connection, GitLabConnectionConfig):
        return "the read_api scope, and at least Reporter access to the projects"
    if isinstance(connection, JenkinsConnectionConfig):
        return "the Overall/Read and Job/Read permissions"
    if isinstance(connection, PagerDutyConnectionConfig):
        return "to be a REST API key (read-only is enough), or a user token whose user can see the services"
    if isinstance(connection, OpsgenieConnectionConfig):
        return "to be an API key with the Read access right (an API integration's key, or the account's)"
    if isinstance(connection, ServiceNowConnectionConfig):
        tables = "incident and change_request tables" if connection.change_requests else "incident table"
        return f"read access to the {tables} (the itil role, or read ACLs on them)"
    if isinstance(connection, AzureDevOpsConnectionConfig):
        return "the scopes Code (Read), Work Items (Read), Build (Read) and Release (Read)"
    return "read access"


def _client(connection: ConnectionConfig, timeout: float) -> HttpClient:
    options: dict[str, Any] = {"retry": _CHECK_RETRY, "timeout": timeout}
    if isinstance(connection, GitHubConnectionConfig):
        return github_client(connection, **options)
    if isinstance(connection, JiraConnectionConfig):
        return jira_client(connection, **options)
    if isinstance(connection, GitLabConnectionConfig):
        return gitlab_client(connection, **options)
    if isinstance(connection, JenkinsConnectionConfig):
        return jenkins_client(connection, **options)
    if isinstance(connection, PagerDutyConnectionConfig):
        return pagerduty_client(connection, **options)
    if isinstance(connection, OpsgenieConnectionConfig):
        return opsgenie_client(connection, **options)
    if isinstance(connection, ServiceNowConnectionConfig):
        return servicenow_client(connection, **options)
    if isinstance(connection, AzureDevOpsConnectionConfig):
        return azure_client(connection, **options)
    raise TypeError(f"no HTTP check for a {type(connection).__name__}")


# --- probing -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Answer:
    """What one GET gave: the response, or the error and what kind of failure it was."""

    url: str
    response: httpx.Response | None = None
    error: ConnectorError | None = None
    kind: str = "ok"
    """ok, unreachable, rejected, forbidden, not_found, rate_limited, server, malformed or other."""

    def body(self) -> Any:
        if self.response is None:
            return None
        try:
            return self.response.json()
        except ValueError:
            return None


def _probe(client: HttpClient, path: str, params: Mapping[str, Any] | None = None) -> _Answer:
    url = client.url(path, params)
    try:
        response = client.get(url)
    except AuthenticationError as error:
        return _Answer(str(url), error=error, kind="rejected")
    except PermissionDeniedError as error:
        return _Answer(str(url), error=error, kind="forbidden")
    except NotFoundError as error:
        return _Answer(str(url), error=error, kind="not_found")
    except MalformedResponseError as error:
        return _Answer(str(url), error=error, kind="malformed")
    except RetriesExhaustedError as error:
        if error.status is None:
            return _Answer(str(url), error=error, kind="unreachable")
        kind = "rate_limited" if error.status in (403, 429) else "server"
        return _Answer(str(url), error=error, kind=kind)
    except ConnectorError as error:
        return _Answer(str(url), error=error, kind="other")
    if "json" not in response.headers.get("Content-Type", "json"):
        return _Answer(str(url), response=response, kind="malformed")
    return _Answer(str(url), response=response)


def _unreachable_reason(answer: _Answer) -> str:
    cause = answer.error.__cause__ if answer.error is not None else None
    if isinstance(cause, httpx.TimeoutException):
        return "timed out"
    if isinstance(cause, httpx.ConnectError):
        text = str(cause)
        if "Name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
            return f"the host name does not resolve ({text})"
        if "refused" in text.lower():
            return f"the connection was refused ({text})"
        return f"the connection failed ({text})"
    return f"the request failed ({cause or answer.error})"


class _Checker:
    """Collects the results of one connection's checks."""

    def __init__(self, connection: ConnectionConfig) -> None:
        self.connection = connection
        self.results: list[CheckResult] = []
        self.last: _Answer | None = None

    def add(self, check: str, status: Status, result: str, action: str = "") -> None:
        self.results.append(
            CheckResult(self.connection.name, self.connection.tool, check, status, result, action)
        )

    def access(self, client: HttpClient, path: str, params: Mapping[str, Any] | None = None) -> bool:
        """The first request: reachable at base_url, then token accepted. False when either failed."""
        answer = _probe(client, path, params)
        base = str(client.base_url).rstrip("/")
        if answer.kind == "unreachable":
            self.add(
                "reachable",
                Status.fail,
                f"cannot reach {base}: {_unreachable_reason(answer)}",
                "check base_url, DNS, the proxy (HTTPS_PROXY) and the firewall",
            )
            return False
        if answer.kind == "server":
            self.add(
                "reachable",
                Status.fail,
                f"{base} answered {answer.error.status if answer.error else '5xx'} at {answer.url}",
                "the service may be down: try again later",
            )
            return False
        if answer.kind == "malformed":
            self.add(
                "reachable",
                Status.fail,
                f"{answer.url} did not answer JSON: {base} is not the API's URL",
                "check base_url (a proxy or login page in between?)",
            )
            return False
        self.add("reachable", Status.ok, f"{base} answers")
        variable = getattr(self.connection, "token_env", "")
        if answer.kind == "rejected":
            subject, verb = _credentials_phrase(self.connection)
            self.add(
                "token",
                Status.fail,
                f"rejected (401) by {self.connection.tool}: {subject} {verb} not valid",
                f"create a new token (or check it has not expired or been revoked) and set it in ${variable}",
            )
            return False
        if answer.kind == "rate_limited":
            self.add("token", Status.warn, f"rate limited at {answer.url}", "try again later")
            return False
        self.last = answer
        return True

    def refused(self, check: str, where: str, what: str) -> None:
        """A 403: the credentials are valid, and what they lack to read `where`."""
        needs = permissions_needed(self.connection)
        self.add(
            check,
            Status.fail,
            f"refused (403) at {where}: {_account(self.connection)} lacks {what}",
            f"{_account(self.connection)} needs {needs}",
        )

    def readable(
        self,
        what: str,
        client: HttpClient,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        lacks: str | None = None,
        missing: str | None = None,
    ) -> None:
        """One resource the connection names: readable, or why not.

        `lacks` says what the account lacks when the tool answers 403, `missing` what a 404 means.
        """
        answer = _probe(client, path, params)
        name = what.split(" ", 1)[-1]
        status = answer.error.status if answer.error is not None else None
        if answer.kind == "ok":
            self.add(what, Status.ok, "readable")
        elif answer.kind == "forbidden" and lacks is not None:
            account = _account(self.connection)
            self.add(
                what,
                Status.fail,
                f"cannot read {name} (403): {account} lacks {lacks}",
                f"{account} needs {permissions_needed(self.connection)}",
            )
        elif answer.kind == "not_found" and missing is not None:
            self.add(
                what,
                Status.fail,
                f"cannot read {name} (404): {missing}",
                "check the name in obeya.yaml and that the token's account may read it",
            )
        elif answer.kind in ("forbidden", "not_found"):
            self.add(
                what,
                Status.fail,
                f"cannot read {name} ({status or 404}): check the token's access",
                "check the name in obeya.yaml and that the token's account may read it",
            )
        elif answer.kind == "unreachable":
            self.add(what, Status.fail, f"cannot reach {answer.url}: {_unreachable_reason(answer)}")
        elif answer.kind == "server":
            self.add(
                what,
                Status.fail,
                f"{answer.url} answered {status}: the service may be down",
                "try again later",
            )
        else:
            self.add(what, Status.fail, str(answer.error or f"unexpected answer at {answer.url}"))


# --- per tool ----------------------------------------------------------------------------------------


_GITHUB_ACTION = (
    "give the token read access to the repository (classic token: the repo scope for a private one; "
    "fine-grained: add the repository with read access to contents, pull requests, issues, actions, "
    "deployments)"
)


def _github_scopes(checker: _Checker, answer: _Answer | None) -> None:
    headers = answer.response.headers if answer is not None and answer.response is not None else None
    if headers is None or "X-OAuth-Scopes" not in headers:
        checker.add(
            "scopes",
            Status.ok,
            "no X-OAuth-Scopes: a fine-grained or app token, its access is checked per repository",
        )
        return
    scopes = sorted(s.strip() for s in headers["X-OAuth-Scopes"].split(",") if s.strip())
    listed = ", ".join(scopes) or "none"
    if {"repo", "public_repo"} & set(scopes):
        checker.add("scopes", Status.ok, f"classic token with scopes: {listed}")
    else:
        checker.add(
            "scopes",
            Status.fail,
            f"classic token without repo or public_repo (scopes: {listed})",
            "add the repo scope (public_repo is enough for public repositories only)",
        )


def _check_github(checker: _Checker, connection: GitHubConnectionConfig, client: HttpClient) -> None:
    if not checker.access(client, "user"):
        return
    answer = checker.last
    body = answer.body() if answer is not None else None
    if answer is not None and answer.kind == "ok":
        login = body.get("login") if isinstance(body, dict) else None
        checker.add("token", Status.ok, f"accepted (user {login})" if login else "accepted")
    else:  # an app installation token may not read /user; the repositories tell
        checker.add("token", Status.ok, "accepted (/user not readable: an app token?)")
    _github_scopes(checker, answer if answer is not None and answer.kind == "ok" else None)
    if not connection.repositories:
        checker.add(
            "repositories", Status.warn, "none configured: a sync fetches nothing", "add repositories"
        )
    for repository in connection.repositories:
        what = f"repository {repository}"
        before = len(checker.results)
        checker.readable(what, client, f"repos/{repository}/pulls", {"state": "all", "per_page": 1})
        if checker.results[before].status is Status.fail and "cannot read" in checker.results[before].result:
            checker.results[before] = CheckResult(
                connection.name,
                connection.tool,
                what,
                Status.fail,
                f"cannot read {repository}: check the token's access",
                _GITHUB_ACTION,
            )


def _check_jira(checker: _Checker, connection: JiraConnectionConfig, client: HttpClient) -> None:
    api = "rest/api/3" if connection.deployment == "cloud" else "rest/api/2"
    if not checker.access(client, f"{api}/myself"):
        return
    answer = checker.last
    if answer is not None and answer.kind == "ok":
        body = answer.body()
        who = body.get("displayName") or body.get("emailAddress") if isinstance(body, dict) else None
        checker.add("token", Status.ok, f"accepted (user {who})" if who else "accepted")
    else:
        checker.add("token", Status.fail, str(answer.error if answer else "no answer"))
        return
    for board in connection.boards:
        checker.readable(f"board {board}", client, f"rest/agile/1.0/board/{board}")
    for project in connection.projects:
        checker.readable(f"project {project}", client, f"{api}/project/{project}")
    if connection.jql:
        search = "search/jql" if connection.deployment == "cloud" else "search"
        checker.readable("jql", client, f"{api}/{search}", {"jql": connection.jql, "maxResults": 1})


_GITLAB_SCOPES = {"api", "read_api"}


def _check_gitlab(checker: _Checker, connection: GitLabConnectionConfig, client: HttpClient) -> None:
    if not checker.access(client, "user"):
        return
    answer = checker.last
    if answer is not None and answer.kind == "forbidden":  # GitLab: 403 insufficient_scope
        checker.refused("token", "/user", "a scope GitLab needs to read the API (read_api)")
        return
    if answer is not None and answer.kind == "ok":
        body = answer.body()
        who = body.get("username") if isinstance(body, dict) else None
        checker.add("token", Status.ok, f"accepted (user {who})" if who else "accepted")
    else:
        checker.add("token", Status.ok, "accepted (/user not readable)")
    own = _probe(client, "personal_access_tokens/self")
    body = own.body() if own.kind == "ok" else None
    scopes = body.get("scopes") if isinstance(body, dict) else None
    if not isinstance(scopes, list):
        checker.add(
            "scopes",
            Status.ok,
            "not told (an OAuth token, or GitLab before 15.5): access is checked per project",
        )
    elif _GITLAB_SCOPES & set(scopes):
        checker.add("scopes", Status.ok, f"scopes: {', '.join(sorted(scopes))}")
    else:
        checker.add(
            "scopes",
            Status.fail,
            f"the token in ${connection.token_env} has no read_api or api scope (scopes: "
            f"{', '.join(sorted(scopes)) or 'none'})",
            f"create a token with the read_api scope and set it in ${connection.token_env}",
        )
    for project in connection.projects:
        checker.readable(
            f"project {project}",
            client,
            f"projects/{project_path(project)}",
            lacks="at least Reporter access to it",
            missing="no such project, or the token's account is not a member of it",
        )


def _check_jenkins(checker: _Checker, connection: JenkinsConnectionConfig, client: HttpClient) -> None:
    if not checker.access(client, "api/json", {"tree": "mode"}):
        return
    answer = checker.last
    if answer is not None and answer.kind == "forbidden":
        checker.refused("token", "/api/json", "the Overall/Read permission")
        return
    if answer is None or answer.kind != "ok":
        checker.add("token", Status.fail, str(answer.error if answer else "no answer"))
        return
    checker.add("token", Status.ok, "accepted")
    for job in connection.jobs:
        checker.readable(
            f"job {job}",
            client,
            f"{job_path(job)}api/json",
            {"tree": "name"},
            lacks="the Job/Read permission on it",
            missing=f"no such job, or {_account(connection)} may not see it",
        )


def _check_list(
    path: str,
    params: Mapping[str, Any],
    what: str,
    more: Callable[[Any], list[tuple[str, str]]] = lambda _c: [],
) -> Callable[[_Checker, Any, HttpClient], None]:
    """A tool proven by cheap list calls: `path`, then each (path, what) of `more` (PagerDuty, Opsgenie,
    ServiceNow)."""

    def check(checker: _Checker, connection: Any, client: HttpClient) -> None:
        if not checker.access(client, path, params):
            return
        answer = checker.last
        checker.add("token", Status.ok, "accepted")
        lists = [(path, what, answer), *((p, w, _probe(client, p, params)) for p, w in more(connection))]
        for where, listed, found in lists:
            if found is not None and found.kind == "ok":
                checker.add(f"access {listed}", Status.ok, f"can list {where}")
            elif found is not None and found.kind == "forbidden":
                checker.refused(f"access {listed}", f"/{where}", f"the right to list {listed}")
            else:
                checker.add(
                    f"access {listed}",
                    Status.fail,
                    f"cannot list {where}: {found.error if found else 'no answer'}",
                    f"{_account(connection)} needs {permissions_needed(connection)}",
                )

    return check


def _servicenow_tables(connection: ServiceNowConnectionConfig) -> list[tuple[str, str]]:
    return [("api/now/table/change_request", "change requests")] if connection.change_requests else []


def _check_azure(checker: _Checker, connection: AzureDevOpsConnectionConfig, client: HttpClient) -> None:
    version = {"api-version": AZURE_API_VERSION}
    if not checker.access(client, "_apis/projects", {**version, "$top": 1}):
        return
    answer = checker.last
    if answer is not None and answer.kind == "forbidden":
        checker.refused("token", "/_apis/projects", "read access to the organization's projects")
        return
    checker.add("token", Status.ok, "accepted")
    for project in connection.projects:
        name = quote(project, safe="")
        checker.readable(
            f"project {project}",
            client,
            f"{name}/_apis/git/repositories",
            version,
            lacks="the Code (Read) scope, or access to the project",
            missing="no such project in the organization",
        )


_HTTP_CHECKS: dict[str, Callable[[_Checker, Any, HttpClient], None]] = {
    "github": _check_github,
    "jira": _check_jira,
    "gitlab": _check_gitlab,
    "jenkins": _check_jenkins,
    "pagerduty": _check_list("incidents", {"date_range": "all", "limit": 1}, "incidents"),
    "opsgenie": _check_list("v1/incidents", {"limit": 1}, "incidents"),
    "servicenow": _check_list(
        "api/now/table/incident",
        {"sysparm_limit": 1, "sysparm_fields": "sys_id"},
        "incidents",
        _servicenow_tables,
    ),
    "azuredevops": _check_azure,
}


def _check_git(checker: _Checker, connection: GitConnectionConfig, timeout: float) -> None:
    for config in connection.repositories:
        if config.url is not None:
            _check_git_url(checker, connection, config, timeout)
            continue
        repository = Repository(config, connection.name)
        what = f"path {config.path}"
        try:
            repository.check()
            if config.branches is not None:
                repository.heads()
        except GitError as error:
            checker.add(what, Status.fail, str(error), "give the folder of a clone (working copy or bare)")
        else:
            checker.add(what, Status.ok, f"a git repository ({config.name})")


def _check_git_url(
    checker: _Checker, connection: GitConnectionConfig, config: GitRepositoryConfig, timeout: float
) -> None:
    """A clone URL answers ``git ls-remote`` (with the token of `token_env`); nothing is cloned."""
    what = f"url {shown(config.url or '')}"
    try:
        found = Mirror(config, connection).branches(timeout)
    except GitFetchError as error:
        action = (
            f"check the URL, the network and the token in ${config.token_env}"
            if config.token_env
            else "check the URL, the network and the credentials (ssh keys or agent; https: token_env)"
        )
        checker.add(what, Status.fail, str(error), action)
    else:
        checker.add(what, Status.ok, f"answers with {found} branches ({config.name})")


# --- running -----------------------------------------------------------------------------------------


def check_connection(
    connection: ConnectionConfig,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    environ: Mapping[str, str] | None = None,
) -> list[CheckResult]:
    """Check one connection; never raises for what the checks find (they say it)."""
    checker = _Checker(connection)
    if isinstance(connection, GitConnectionConfig):
        _check_git(checker, connection, timeout)
        return checker.results
    env = os.environ if environ is None else environ
    missing = [v for v in credential_variables(connection) if not env.get(v, "").strip()]
    for variable in credential_variables(connection):
        if variable in missing:
            checker.add(
                "credentials",
                Status.fail,
                f"${variable} is not set",
                f"export {variable}=... (or name another variable in the connection)",
            )
        else:
            checker.add("credentials", Status.ok, f"${variable} is set")
    if missing:
        return checker.results
    check = _HTTP_CHECKS.get(connection.tool)
    if check is None:
        checker.add("reachable", Status.warn, f"no check for {connection.tool} connections yet")
        return checker.results
    try:
        client = _client(connection, timeout)
    except MissingCredentialError as error:  # a variable set to blanks only
        checker.add("credentials", Status.fail, str(error))
        return checker.results
    with client:
        check(checker, connection, client)
    return checker.results


def check_connections(
    connections: Sequence[ConnectionConfig], *, timeout: float = DEFAULT_TIMEOUT, workers: int = 8
) -> list[CheckResult]:
    """Check connections side by side; the results in the order of `connections`."""
    if not connections:
        return []

    def one(connection: ConnectionConfig) -> list[CheckResult]:
        try:
            return check_connection(connection, timeout=timeout)
        except Exception as error:  # a check must report, never crash the others
            return [
                CheckResult(connection.name, connection.tool, "check", Status.fail, f"check failed: {error}")
            ]

    with ThreadPoolExecutor(min(workers, len(connections)), thread_name_prefix="obeya-check") as pool:
        found: Iterator[list[CheckResult]] = pool.map(one, connections)
        return [result for results in found for result in results]
