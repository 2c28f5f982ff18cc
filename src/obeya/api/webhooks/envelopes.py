"""What each tool's delivery says about itself: delivery id, event type, scope, and whether Obeya uses it.

Each parser reads the headers and the (already authenticated) body of one tool's webhook and returns a
`Delivery`, or raises `MalformedDelivery` naming the header or body field that is missing or wrong. Only
the fields the tool always sends are required; everything else is left to normalization, whose failures
never lose the delivery.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

Headers = Mapping[str, str]
"""Request headers with lowercase names."""

RESERVED_SOURCES = frozenset({"github", "gitlab", "jira", "pagerduty", "azuredevops", "obeya"})
"""Names the generic receiver refuses: they belong to a tool's own receiver (or to Obeya's notes)."""

GENERIC_SOURCE = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
_DELIVERY_ID = re.compile(r"^[A-Za-z0-9._:@+=-]{1,200}$")

GITHUB_EVENTS: dict[str, tuple[str, ...]] = {
    "pull_request": ("pull_request",),
    "pull_request_review": ("pull_request", "review"),
    "push": (),
    "workflow_run": ("workflow_run",),
    "workflow_job": ("workflow_job",),
    "deployment": ("deployment",),
    "deployment_status": ("deployment", "deployment_status"),
    "issues": ("issue",),
    "release": ("release",),
}
"""GitHub events Obeya uses → the objects their body always carries (besides ``repository``)."""

GITLAB_EVENTS = frozenset(
    {"merge_request", "pipeline", "build", "deployment", "push", "tag_push", "issue", "note", "release"}
)
"""GitLab ``object_kind``s Obeya uses (``build`` is a job event, ``note`` a comment)."""

JIRA_EVENTS = frozenset(
    {
        "jira:issue_created",
        "jira:issue_updated",
        "jira:issue_deleted",
        "sprint_created",
        "sprint_started",
        "sprint_updated",
        "sprint_closed",
    }
)
"""Jira ``webhookEvent``s Obeya uses."""


AZURE_DEVOPS_EVENTS = frozenset(
    {
        "git.pullrequest.created",
        "git.pullrequest.updated",
        "git.pullrequest.merged",
        "build.complete",
        "workitem.created",
        "workitem.updated",
        "workitem.restored",
        "workitem.commented",
        "workitem.deleted",
        "git.push",
        "ms.vss-pipelines.run-state-changed-event",
        "ms.vss-pipelines.stage-state-changed-event",
        "ms.vss-release.deployment-completed-event",
        "ms.vss-release.deployment-started-event",
    }
)
"""Azure DevOps service hook ``eventType``s Obeya uses (normalized, or kept raw with a reason)."""


class MalformedDelivery(ValueError):
    """An authentic delivery Obeya cannot take: the message says what is wrong and where."""


@dataclass(frozen=True)
class ScopeKey:
    """The tool object a delivery is about, as a `Scope` declares it (`keys` are tried case-insensitively)."""

    tool: str
    keys: tuple[str, ...]
    label: str


@dataclass(frozen=True)
class Delivery:
    """One authenticated delivery, understood enough to store it and decide what to do with it."""

    source: str
    delivery_id: str
    event_type: str
    payload: dict[str, Any]
    used: bool
    scope: ScopeKey | None = None


def parse_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object; `MalformedDelivery` says where it stops being one."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise MalformedDelivery(
            f"body is not JSON: {error.msg} at line {error.lineno}, column {error.colno}"
        ) from None
    if not isinstance(value, dict):
        raise MalformedDelivery(f"body is a JSON {type(value).__name__}, expected an object")
    return value


def _header(headers: Headers, name: str, *fallbacks: str) -> str:
    for candidate in (name, *fallbacks):
        value = headers.get(candidate.lower(), "").strip()
        if value:
            return value
    alternatives = "".join(f" (or {f})" for f in fallbacks)
    raise MalformedDelivery(f"header {name}{alternatives} is missing")


def _delivery_id(value: str, where: str) -> str:
    if not _DELIVERY_ID.match(value):
        raise MalformedDelivery(
            f"{where} {value[:80]!r} is not a delivery id (1-200 letters, digits and ._:@+=-)"
        )
    return value


def _field(payload: dict[str, Any], path: str, kind: type | tuple[type, ...], event: str) -> Any:
    value: Any = payload
    walked = "body"
    for part in path.split("."):
        walked = f"{walked}.{part}"
        if not isinstance(value, dict) or part not in value or value[part] is None:
            raise MalformedDelivery(f"{walked} is missing from the {event} event")
        value = value[part]
    if not isinstance(value, kind) or isinstance(value, bool):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise MalformedDelivery(
            f"{walked} of the {event} event is a {type(value).__name__}, expected {names}"
        )
    return value


def github_delivery(headers: Headers, body: bytes) -> Delivery:
    """A GitHub delivery: ``X-GitHub-Event``, ``X-GitHub-Delivery``, ``repository.full_name``."""
    event = _header(headers, "X-GitHub-Event")
    delivery_id = _delivery_id(_header(headers, "X-GitHub-Delivery"), "header X-GitHub-Delivery")
    return _github(delivery_id, event, parse_object(body))


def _github(delivery_id: str, event: str, payload: dict[str, Any]) -> Delivery:
    objects = GITHUB_EVENTS.get(event)
    if objects is None:
        return Delivery("github", delivery_id, event, payload, used=False)
    repo = _field(payload, "repository.full_name", str, event)
    for name in objects:
        _field(payload, name, dict, event)
    if event == "push":
        _field(payload, "commits", list, event)
    return Delivery("github", delivery_id, event, payload, used=True, scope=ScopeKey("github", (repo,), repo))


def gitlab_delivery(headers: Headers, body: bytes) -> Delivery:
    """A GitLab delivery: ``object_kind``; ``Idempotency-Key`` (GitLab 17.4+) or ``X-Gitlab-Event-UUID``."""
    raw_id = _header(headers, "Idempotency-Key", "X-Gitlab-Event-UUID")
    delivery_id = _delivery_id(raw_id, "header Idempotency-Key/X-Gitlab-Event-UUID")
    return _gitlab(delivery_id, parse_object(body), headers.get("x-gitlab-event", "GitLab"))


def _gitlab(delivery_id: str, payload: dict[str, Any], hook: str = "GitLab") -> Delivery:
    kind = _field(payload, "object_kind", str, hook)
    if kind not in GITLAB_EVENTS:
        return Delivery("gitlab", delivery_id, kind, payload, used=False)
    project = payload.get("project")
    path = project.get("path_with_namespace") if isinstance(project, dict) else None
    scope = ScopeKey("gitlab", (path,), path) if isinstance(path, str) and path else None
    return Delivery("gitlab", delivery_id, kind, payload, used=True, scope=scope)


def jira_delivery(headers: Headers, body: bytes, payload_hash: str) -> Delivery:
    """A Jira delivery: ``webhookEvent`` and ``timestamp``; issue events carry ``issue.key``.

    The delivery id is ``X-Atlassian-Webhook-Identifier`` (the same on every retry). Jira Data Center does
    not send it; its retries repeat the body byte for byte, so the body's hash stands in.
    """
    identifier = headers.get("x-atlassian-webhook-identifier", "").strip()
    delivery_id = (
        _delivery_id(identifier, "header X-Atlassian-Webhook-Identifier")
        if identifier
        else f"sha256:{payload_hash}"
    )
    return _jira(delivery_id, parse_object(body))


def _jira(delivery_id: str, payload: dict[str, Any]) -> Delivery:
    event = _field(payload, "webhookEvent", str, "Jira")
    _field(payload, "timestamp", int, event)
    if event not in JIRA_EVENTS:
        return Delivery("jira", delivery_id, event, payload, used=False)
    scope = None
    if event.startswith("jira:issue_"):
        _field(payload, "issue.key", str, event)
        fields = payload["issue"].get("fields")
        project = fields.get("project") if isinstance(fields, dict) else None
        key = project.get("key") if isinstance(project, dict) else None
        if isinstance(key, str) and key:
            scope = ScopeKey("jira", (key,), key)
    return Delivery("jira", delivery_id, event, payload, used=True, scope=scope)


def pagerduty_delivery(headers: Headers, body: bytes) -> Delivery:
    """A PagerDuty v3 delivery: ``event.id`` (the delivery id), ``event.event_type``, ``occurred_at``."""
    return _pagerduty(parse_object(body))


def _pagerduty(payload: dict[str, Any]) -> Delivery:
    event_id = _delivery_id(_field(payload, "event.id", str, "PagerDuty"), "body.event.id")
    event = _field(payload, "event.event_type", str, "PagerDuty")
    _field(payload, "event.occurred_at", str, event)
    if not event.startswith("incident."):
        return Delivery("pagerduty", event_id, event, payload, used=False)
    data = _field(payload, "event.data", dict, event)
    service = data.get("service")
    scope = None
    if isinstance(service, dict):
        keys = tuple(str(service[k]) for k in ("id", "summary") if service.get(k))
        if keys:
            scope = ScopeKey("pagerduty", keys, str(service.get("summary") or keys[0]))
    return Delivery("pagerduty", event_id, event, payload, used=True, scope=scope)


def azuredevops_delivery(headers: Headers, body: bytes) -> Delivery:
    """An Azure DevOps service hook delivery: the body's ``id`` (the delivery id, the same on a retry),
    ``eventType`` and ``resource``."""
    return _azuredevops(parse_object(body))


def _azuredevops(payload: dict[str, Any]) -> Delivery:
    delivery_id = _delivery_id(_field(payload, "id", str, "Azure DevOps"), "body.id")
    event = _field(payload, "eventType", str, "Azure DevOps")
    if event not in AZURE_DEVOPS_EVENTS:
        return Delivery("azuredevops", delivery_id, event, payload, used=False)
    resource = _field(payload, "resource", dict, event)
    project = azuredevops_project(event, resource)
    scope = None
    if project:
        repository = resource.get("repository")
        repo = repository.get("name") if isinstance(repository, dict) else None
        keys = (project, repo, f"{project}/{repo}") if isinstance(repo, str) and repo else (project,)
        scope = ScopeKey("azuredevops", keys, project)
    return Delivery("azuredevops", delivery_id, event, payload, used=True, scope=scope)


def azuredevops_project(event: str, resource: dict[str, Any]) -> str | None:
    """The project an Azure DevOps event is about, by name, where its resource says it."""
    places: list[Any] = []
    if event.startswith("workitem."):
        revision = resource.get("revision")
        for item in (revision, resource):
            fields = item.get("fields") if isinstance(item, dict) else None
            if isinstance(fields, dict):
                places.append(fields.get("System.TeamProject"))
    repository = resource.get("repository")
    if isinstance(repository, dict) and isinstance(repository.get("project"), dict):
        places.append(repository["project"].get("name"))
    for holder in (resource, resource.get("definition")):
        if isinstance(holder, dict) and isinstance(holder.get("project"), dict):
            places.append(holder["project"].get("name"))
    return next((p for p in places if isinstance(p, str) and p), None)


def generic_delivery(source: str, headers: Headers, body: bytes) -> Delivery:
    """A delivery to the generic receiver: ``X-Obeya-Delivery``, ``X-Obeya-Event``, a JSON object body."""
    delivery_id = _delivery_id(_header(headers, "X-Obeya-Delivery"), "header X-Obeya-Delivery")
    event = _header(headers, "X-Obeya-Event")
    payload = parse_object(body)
    return Delivery(source, delivery_id, event, payload, used=True)


def stored_delivery(source: str, delivery_id: str, event_type: str, payload_text: str) -> Delivery:
    """A stored delivery understood again from its raw event (the headers are not kept: the delivery id
    and event type are); `MalformedDelivery` if it no longer reads as one."""
    payload = parse_object(payload_text.encode())
    if source == "github":
        return _github(delivery_id, event_type, payload)
    if source == "gitlab":
        return _gitlab(delivery_id, payload)
    if source == "jira":
        return _jira(delivery_id, payload)
    if source == "pagerduty":
        return _pagerduty(payload)
    if source == "azuredevops":
        return _azuredevops(payload)
    return Delivery(source, delivery_id, event_type, payload, used=True)
