"""Signed deliveries for each receiver, built from the tools' documented payload shapes."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from obeya.api import create_app
from obeya.api.webhooks import WebhookReceiver
from obeya.model import Scope, ValueStream
from obeya.model.schema import TABLES
from obeya.store import Store
from tests.shared_fixtures import API_RECORDINGS

RECORDINGS = API_RECORDINGS / "github"
SECRET = "it's a secret to everybody"
REPO = "panjf2000/ants"


def client_for(store: Store) -> TestClient:
    """A test client of the app (which includes the webhook routes)."""
    return TestClient(create_app(store))


def receiver_of(client: TestClient) -> WebhookReceiver:
    """The app's webhook receiver (made by its first delivery)."""
    receiver: WebhookReceiver = client.app.state.webhook_receiver  # type: ignore[attr-defined]
    return receiver


def settled(client: TestClient, response: Any) -> dict[str, Any]:
    """What became of an accepted delivery, once the worker has settled everything stored so far."""
    assert receiver_of(client).wait_idle(timeout=30), "the webhook worker did not settle within 30 s"
    found = client.get(response.json()["outcome_url"])
    assert found.status_code == 200, found.text
    outcome: dict[str, Any] = found.json()
    return outcome


def declare_scopes(store: Store) -> None:
    """A value stream whose scope holds the repository, GitLab project, Jira project and PagerDuty service."""
    scopes = [
        ("github", "repository", REPO),
        ("gitlab", "project", "acme/shop"),
        ("jira", "project", "PAY"),
        ("pagerduty", "service", "PSERVICE1"),
    ]
    store.upsert_records(
        [
            ValueStream(source="obeya", external_id="pay", name="Payments"),
            *(
                Scope(
                    source="obeya",
                    external_id=f"pay-{tool}",
                    value_stream_id="obeya:pay",
                    tool=tool,
                    object_type=kind,
                    object_key=key,
                )
                for tool, kind, key in scopes
            ),
        ]
    )


def table_counts(store: Store) -> dict[str, int]:
    """The row count of every table of the common model."""
    return {kind: store.count(kind) for kind in TABLES}


def hub_signature(body: bytes, secret: str = SECRET) -> str:
    """``sha256=`` + the hex HMAC-SHA256 of the body (GitHub, Jira, Obeya's generic receiver)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def recorded(name: str, number: int | None = None) -> dict[str, Any]:
    """An item of a recorded GitHub REST answer (the first, or the one of pull request `number`)."""
    for line in (RECORDINGS / f"_raw_github_api_{name}.jsonl").read_text().splitlines():
        item: dict[str, Any] = json.loads(line)["data"]
        if (
            number is None
            or item.get("number") == number
            or str(item.get("pull_request_url", "")).endswith(f"/{number}")
        ):
            return item
    raise LookupError(f"no recorded {name} for {number}")


@dataclass(frozen=True)
class ToolCase:
    """How to talk to one receiver."""

    tool: str
    path: str
    secret_env: str
    body: Callable[[str], dict[str, Any]]  # event type → a valid payload
    headers: Callable[[bytes, str, str], dict[str, str]]  # body, event, delivery id → signed headers
    used_event: str
    unused_event: str
    missing_field: tuple[Any, str]  # a payload lacking an always-sent field, and its name


def _github_body(event: str) -> dict[str, Any]:
    if event == "pull_request":
        return {
            "action": "closed",
            "number": 41,
            "pull_request": {**recorded("pull_requests", 41), "merged": True},
            "repository": {"full_name": REPO},
            "sender": {"login": "panjf2000", "id": 7496278},
        }
    return {"zen": "Keep it logically awesome.", "hook_id": 1, "repository": {"full_name": REPO}}


def _github_headers(body: bytes, event: str, delivery: str) -> dict[str, str]:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": hub_signature(body),
    }


def _gitlab_body(event: str) -> dict[str, Any]:
    return {
        "object_kind": event,
        "event_type": event,
        "project": {"id": 7, "path_with_namespace": "acme/shop"},
        "object_attributes": {"iid": 3, "state": "merged", "action": "merge"},
    }


def _gitlab_headers(body: bytes, event: str, delivery: str) -> dict[str, str]:
    return {"X-Gitlab-Token": SECRET, "X-Gitlab-Event": "Merge Request Hook", "Idempotency-Key": delivery}


def _jira_body(event: str) -> dict[str, Any]:
    return {
        "timestamp": 1735689600000,
        "webhookEvent": event,
        "issue": {
            "id": "10001",
            "key": "PAY-1",
            "fields": {"project": {"key": "PAY"}, "status": {"name": "Done"}},
        },
        "changelog": {"items": [{"field": "status", "fromString": "In Progress", "toString": "Done"}]},
    }


def _jira_headers(body: bytes, event: str, delivery: str) -> dict[str, str]:
    return {"X-Hub-Signature": hub_signature(body), "X-Atlassian-Webhook-Identifier": delivery}


def _pagerduty_body(event: str) -> dict[str, Any]:
    return {
        "event": {
            "id": f"01{uuid.uuid4().hex[:24].upper()}",
            "event_type": event,
            "resource_type": "incident",
            "occurred_at": "2025-01-01T10:00:00.000Z",
            "data": {
                "id": "PINC1",
                "type": "incident",
                "status": "triggered",
                "title": "Checkout is down",
                "service": {"id": "PSERVICE1", "summary": "checkout"},
            },
        }
    }


def _pagerduty_headers(body: bytes, event: str, delivery: str) -> dict[str, str]:
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"X-PagerDuty-Signature": f"v1={'0' * 64},v1={signature}"}  # an old key while rotating, then ours


def _generic_headers(body: bytes, event: str, delivery: str) -> dict[str, str]:
    return {"X-Obeya-Signature": hub_signature(body), "X-Obeya-Delivery": delivery, "X-Obeya-Event": event}


CASES = [
    ToolCase(
        "github",
        "/api/v1/webhooks/github",
        "OBEYA_WEBHOOK_SECRET_GITHUB",
        _github_body,
        _github_headers,
        "pull_request",
        "ping",
        ({"action": "closed", "number": 1, "repository": {"full_name": REPO}}, "body.pull_request"),
    ),
    ToolCase(
        "gitlab",
        "/api/v1/webhooks/gitlab",
        "OBEYA_WEBHOOK_SECRET_GITLAB",
        _gitlab_body,
        _gitlab_headers,
        "merge_request",
        "wiki_page",
        ({"event_type": "merge_request"}, "body.object_kind"),
    ),
    ToolCase(
        "jira",
        "/api/v1/webhooks/jira",
        "OBEYA_WEBHOOK_SECRET_JIRA",
        _jira_body,
        _jira_headers,
        "jira:issue_updated",
        "comment_created",
        ({"webhookEvent": "jira:issue_updated", "issue": {"key": "PAY-1"}}, "body.timestamp"),
    ),
    ToolCase(
        "pagerduty",
        "/api/v1/webhooks/pagerduty",
        "OBEYA_WEBHOOK_SECRET_PAGERDUTY",
        _pagerduty_body,
        _pagerduty_headers,
        "incident.triggered",
        "pagey.ping",
        (
            {"event": {"event_type": "incident.triggered", "occurred_at": "2025-01-01T00:00:00Z"}},
            "body.event.id",
        ),
    ),
    ToolCase(
        "argocd",
        "/api/v1/webhooks/generic/argocd",
        "OBEYA_WEBHOOK_SECRET_GENERIC",
        lambda event: {"app": "checkout", "revision": "abc123", "phase": "Succeeded"},
        _generic_headers,
        "sync.succeeded",
        "",  # the generic receiver keeps every event type raw: none is "ignored"
        ([], "expected an object"),
    ),
]


def delivery_id_of(case: ToolCase, payload: dict[str, Any], delivery: str) -> str:
    """The delivery id the receiver will use (PagerDuty's is in the body)."""
    return str(payload["event"]["id"]) if case.tool == "pagerduty" else delivery


def post(
    client: TestClient, case: ToolCase, payload: Any, event: str, delivery: str | None = None
) -> tuple[Any, str]:
    """Post a signed delivery and let the worker settle it; the response and the delivery id sent."""
    delivery = delivery or str(uuid.uuid4())
    body = json.dumps(payload).encode()
    response = client.post(case.path, content=body, headers=case.headers(body, event, delivery))
    receiver = getattr(client.app.state, "webhook_receiver", None)  # type: ignore[attr-defined]
    if receiver is not None:
        assert receiver.wait_idle(timeout=30), "the webhook worker did not settle within 30 s"
    return response, delivery
