"""The deliveries `webhooks.py` sends: per tool, signed payloads shaped like the tool's documented webhooks.

A part of `bench/webhooks.py`, not a benchmark of its own. Each tool's payloads follow the shapes the
receiver tests post (tests/api/webhooks, from the tools' webhook documentation) and sign or authenticate
them the way the tool does (docs/webhooks.md):

- GitHub: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256>``, id ``X-GitHub-Delivery``; merged pull
  requests, their approving reviews, their workflow runs.
- GitLab: the shared token in ``X-Gitlab-Token``, id ``Idempotency-Key``; merged merge requests, their
  pipelines with two jobs each, closed issues.
- Jira: ``X-Hub-Signature: sha256=<hex HMAC-SHA256>``, id ``X-Atlassian-Webhook-Identifier``; an issue
  created, then moved to In Progress, then to Done.
- PagerDuty (v3): ``X-PagerDuty-Signature: v1=<hex HMAC-SHA256>``, id the body's ``event.id``; an
  incident triggered, acknowledged, resolved.

Every tool's object sits in a scope the bench declares (`ToolLoad.scope_type`, `ToolLoad.scope_key`), so
every delivery is normalized, none kept raw as out of scope.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

SECRET = "bench-secret"
REDELIVERY_EVERY = 50
Payload = dict[str, Any]


@dataclass(frozen=True)
class Delivery:
    """One request to send: headers with the signature, the body, and whether it is a redelivery."""

    delivery_id: str
    headers: dict[str, str]
    body: bytes
    redelivery: bool


@dataclass(frozen=True)
class ToolLoad:
    """How the bench talks to one tool's receiver, and what it should find stored afterwards."""

    tool: str
    label: str
    secret_env: str
    scope_type: str
    scope_key: str
    records: tuple[str, ...]  # the record kinds the deliveries give, counted after the run
    payload: Callable[[int, str], tuple[str, Payload]]  # (index, delivery id) → (event, body)
    headers: Callable[[bytes, str, str], dict[str, str]]  # (body, event, delivery id) → headers

    @property
    def path(self) -> str:
        """The receiver's URL path."""
        return f"/api/v1/webhooks/{self.tool}"


def _hmac(body: bytes) -> str:
    return hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def _day(number: int) -> str:
    return f"2025-03-{1 + number % 28:02d}"


# --- GitHub ---------------------------------------------------------------------------------------------

REPO = "obeya-bench/service"


def _github_user(n: int) -> Payload:
    return {"login": f"dev{n}", "id": 1000 + n, "type": "User"}


def _github(i: int, delivery_id: str) -> tuple[str, Payload]:
    number = i // 3 + 1
    repository = {"full_name": REPO, "id": 1}
    created = f"{_day(number)}T10:00:00Z"
    if i % 3 == 0:
        pr = {
            "number": number,
            "title": f"Change {number}",
            "state": "closed",
            "merged": True,
            "user": _github_user(number % 40),
            "merged_by": _github_user(1),
            "head": {"ref": f"feature/{number}", "sha": f"{number:040x}"},
            "base": {"ref": "main", "sha": "0" * 40},
            "created_at": created,
            "closed_at": created.replace("T10", "T15"),
            "merged_at": created.replace("T10", "T15"),
            "merge_commit_sha": f"{number + 10**6:040x}",
            "additions": number % 500,
            "deletions": number % 70,
        }
        return "pull_request", {
            "action": "closed",
            "number": number,
            "pull_request": pr,
            "repository": repository,
        }
    if i % 3 == 1:
        review = {
            "id": 50_000 + i,
            "user": _github_user(number % 17),
            "state": "approved",
            "submitted_at": created.replace("T10", "T12"),
            "commit_id": f"{number:040x}",
        }
        return "pull_request_review", {
            "action": "submitted",
            "review": review,
            "pull_request": {"number": number},
            "repository": repository,
        }
    run = {
        "id": 900_000 + i,
        "name": "ci",
        "head_sha": f"{number:040x}",
        "head_branch": f"feature/{number}",
        "event": "pull_request",
        "status": "completed",
        "conclusion": "success" if i % 7 else "failure",
        "run_attempt": 1,
        "created_at": created,
        "run_started_at": created,
        "updated_at": created.replace("T10", "T11"),
        "pull_requests": [{"number": number}],
        "actor": _github_user(number % 40),
    }
    return "workflow_run", {"action": "completed", "workflow_run": run, "repository": repository}


def _github_headers(body: bytes, event: str, delivery_id: str) -> dict[str, str]:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id,
        "X-Hub-Signature-256": "sha256=" + _hmac(body),
    }


# --- GitLab ---------------------------------------------------------------------------------------------

GITLAB_PROJECT = {
    "id": 7,
    "name": "service",
    "path_with_namespace": REPO,
    "web_url": f"https://gitlab.example/{REPO}",
}


def _gitlab_user(n: int) -> Payload:
    return {"id": 100 + n, "name": f"Dev {n}", "username": f"dev{n}", "email": f"dev{n}@example.com"}


def _gitlab(i: int, delivery_id: str) -> tuple[str, Payload]:
    number = i // 3 + 1
    day = _day(number)
    sha = f"{number:040x}"
    if i % 3 == 0:
        attributes = {
            "id": 10_000 + number,
            "iid": number,
            "title": f"Change {number}",
            "description": "",
            "state": "merged",
            "action": "merge",
            "source_branch": f"feature/{number}",
            "target_branch": "main",
            "author_id": 100 + number % 40,
            "created_at": f"{day} 09:00:00 UTC",
            "updated_at": f"{day} 15:00:00 UTC",
            "merge_commit_sha": f"{number + 10**6:040x}",
            "last_commit": {"id": sha, "message": f"Change {number}", "timestamp": f"{day}T12:00:00+00:00"},
            "url": f"https://gitlab.example/{REPO}/-/merge_requests/{number}",
        }
        return "merge_request", {
            "object_kind": "merge_request",
            "event_type": "merge_request",
            "user": _gitlab_user(number % 40),
            "project": GITLAB_PROJECT,
            "object_attributes": attributes,
        }
    if i % 3 == 1:
        pipeline = 500_000 + number
        builds = [
            {
                "id": pipeline * 10 + j,
                "stage": stage,
                "name": stage,
                "status": "success" if i % 7 else "failed",
                "created_at": f"{day} 10:01:00 UTC",
                "started_at": f"{day} 10:02:00 UTC",
                "finished_at": f"{day} 10:08:00 UTC",
                "environment": None,
            }
            for j, stage in enumerate(("build", "test"))
        ]
        return "pipeline", {
            "object_kind": "pipeline",
            "object_attributes": {
                "id": pipeline,
                "iid": number,
                "name": None,
                "ref": f"feature/{number}",
                "tag": False,
                "sha": sha,
                "source": "merge_request_event",
                "status": "success" if i % 7 else "failed",
                "created_at": f"{day} 10:01:00 UTC",
                "finished_at": f"{day} 10:09:00 UTC",
                "duration": 480,
                "url": f"https://gitlab.example/{REPO}/-/pipelines/{pipeline}",
            },
            "user": _gitlab_user(number % 40),
            "project": GITLAB_PROJECT,
            "builds": builds,
        }
    author = 100 + number % 40
    return "issue", {
        "object_kind": "issue",
        "event_type": "issue",
        "user": _gitlab_user(number % 40),
        "project": GITLAB_PROJECT,
        "object_attributes": {
            "id": 300_000 + number,
            "iid": number,
            "title": f"Issue {number}",
            "assignee_ids": [author],
            "assignee_id": author,
            "author_id": author,
            "project_id": GITLAB_PROJECT["id"],
            "created_at": f"{day}T08:00:00Z",
            "updated_at": f"{day}T16:00:00Z",
            "closed_at": f"{day}T16:00:00Z",
            "state_id": 2,
            "description": "",
            "type": "Issue",
            "url": f"https://gitlab.example/{REPO}/-/issues/{number}",
            "state": "closed",
            "action": "close",
            "labels": [],
        },
        "assignees": [_gitlab_user(number % 40)],
        "labels": [],
    }


def _gitlab_headers(body: bytes, event: str, delivery_id: str) -> dict[str, str]:
    hook = {"merge_request": "Merge Request Hook", "pipeline": "Pipeline Hook", "issue": "Issue Hook"}[event]
    return {"X-Gitlab-Token": SECRET, "X-Gitlab-Event": hook, "Idempotency-Key": delivery_id}


# --- Jira -----------------------------------------------------------------------------------------------

JIRA_PROJECT = "BENCH"
_JIRA_STATUSES = (
    ("10000", "To Do", "new"),
    ("10001", "In Progress", "indeterminate"),
    ("10002", "Done", "done"),
)


def _jira_user(n: int) -> Payload:
    return {"accountId": f"acc-{n}", "displayName": f"Dev {n}", "accountType": "atlassian"}


def _jira(i: int, delivery_id: str) -> tuple[str, Payload]:
    number = i // 3 + 1
    step = i % 3  # created in To Do, then In Progress, then Done
    day = _day(number)
    hour = 9 + step
    status_id, status, category = _JIRA_STATUSES[step]
    issue = {
        "id": str(100_000 + number),
        "key": f"{JIRA_PROJECT}-{number}",
        "fields": {
            "summary": f"Story {number}",
            "project": {"key": JIRA_PROJECT, "name": "Bench"},
            "issuetype": {"id": "10001", "name": "Story"},
            "status": {"id": status_id, "name": status, "statusCategory": {"key": category}},
            "labels": [],
            "priority": {"name": "Medium"},
            "assignee": _jira_user(number % 40),
            "reporter": _jira_user(number % 17),
            "creator": _jira_user(number % 17),
            "created": f"{day}T09:00:00.000+0000",
            "updated": f"{day}T{hour:02d}:00:00.000+0000",
            "resolutiondate": f"{day}T11:00:00.000+0000" if step == 2 else None,
        },
    }
    timestamp = int(f"{1_740_000_000 + number * 86_400 + step * 3_600}000")
    payload: Payload = {
        "timestamp": timestamp,
        "webhookEvent": "jira:issue_created" if step == 0 else "jira:issue_updated",
        "issue_event_type_name": "issue_created" if step == 0 else "issue_generic",
        "user": _jira_user(number % 40),
        "issue": issue,
    }
    if step:
        before = _JIRA_STATUSES[step - 1]
        item = {
            "field": "status",
            "fieldtype": "jira",
            "fieldId": "status",
            "from": before[0],
            "fromString": before[1],
            "to": status_id,
            "toString": status,
        }
        payload["changelog"] = {"id": str(200_000 + i), "items": [item]}
    return str(payload["webhookEvent"]), payload


def _jira_headers(body: bytes, event: str, delivery_id: str) -> dict[str, str]:
    return {"X-Hub-Signature": "sha256=" + _hmac(body), "X-Atlassian-Webhook-Identifier": delivery_id}


# --- PagerDuty ------------------------------------------------------------------------------------------

PAGERDUTY_SERVICE = {"id": "PBENCH1", "type": "service_reference", "summary": "service"}
_PAGERDUTY_STEPS = (
    ("incident.triggered", "triggered", 0),
    ("incident.acknowledged", "acknowledged", 4),
    ("incident.resolved", "resolved", 37),
)


def _pagerduty(i: int, delivery_id: str) -> tuple[str, Payload]:
    number = i // 3 + 1
    event_type, status, minute = _PAGERDUTY_STEPS[i % 3]
    day = _day(number)
    incident = {
        "id": f"PINC{number}",
        "type": "incident",
        "number": number,
        "status": status,
        "title": f"Incident {number}",
        "created_at": f"{day}T10:00:00Z",
        "urgency": "high",
        "priority": {"id": "PPRIO1", "type": "priority_reference", "summary": "P1"},
        "service": PAGERDUTY_SERVICE,
        "teams": [{"id": "PTEAM1", "type": "team_reference", "summary": "Bench"}],
        "html_url": f"https://acme.pagerduty.com/incidents/PINC{number}",
    }
    agent = {"id": f"PUSER{number % 17}", "type": "user_reference", "summary": f"Dev {number % 17}"}
    return event_type, {
        "event": {
            "id": delivery_id,  # PagerDuty's delivery id is the event's own id
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": f"{day}T10:{minute:02d}:00.000Z",
            "agent": agent,
            "data": incident,
        }
    }


def _pagerduty_headers(body: bytes, event: str, delivery_id: str) -> dict[str, str]:
    return {"X-PagerDuty-Signature": f"v1={_hmac(body)}"}


TOOLS = {
    load.tool: load
    for load in (
        ToolLoad(
            "github",
            "GitHub",
            "OBEYA_WEBHOOK_SECRET_GITHUB",
            "repository",
            REPO,
            ("change", "review", "pipeline_run", "person"),
            _github,
            _github_headers,
        ),
        ToolLoad(
            "gitlab",
            "GitLab",
            "OBEYA_WEBHOOK_SECRET_GITLAB",
            "project",
            REPO,
            ("change", "pipeline_run", "pipeline_job", "work_item", "status_transition", "person"),
            _gitlab,
            _gitlab_headers,
        ),
        ToolLoad(
            "jira",
            "Jira",
            "OBEYA_WEBHOOK_SECRET_JIRA",
            "project",
            JIRA_PROJECT,
            ("work_item", "status_transition", "person"),
            _jira,
            _jira_headers,
        ),
        ToolLoad(
            "pagerduty",
            "PagerDuty",
            "OBEYA_WEBHOOK_SECRET_PAGERDUTY",
            "service",
            str(PAGERDUTY_SERVICE["id"]),
            ("incident", "person"),
            _pagerduty,
            _pagerduty_headers,
        ),
    )
}
"""Tool name → its load, for ``--tool``."""


def deliveries(load: ToolLoad, total: int) -> list[Delivery]:
    """`total` requests for one tool; every `REDELIVERY_EVERY`-th repeats an earlier one byte for byte."""
    sent: list[Delivery] = []
    for i in range(total):
        if i and i % REDELIVERY_EVERY == 0:
            earlier = sent[i - REDELIVERY_EVERY // 2]
            sent.append(Delivery(earlier.delivery_id, earlier.headers, earlier.body, True))
            continue
        delivery_id = str(uuid.uuid4())
        event, payload = load.payload(i, delivery_id)
        body = orjson.dumps(payload)
        headers = {**load.headers(body, event, delivery_id), "Content-Type": "application/json"}
        sent.append(Delivery(delivery_id, headers, body, False))
    return sent
