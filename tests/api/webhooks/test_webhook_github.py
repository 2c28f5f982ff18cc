"""GitHub webhooks become the records a sync makes from the same pull request; failures keep the raw event."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import uvicorn

from obeya.api import create_app
from obeya.connectors.github.normalizer import normalize
from obeya.connectors.raw import raw_event
from obeya.model.records import Change, RawEvent, Record, Review
from obeya.store import Store
from tests.api.webhooks.deliveries import (
    CASES,
    REPO,
    SECRET,
    client_for,
    declare_scopes,
    hub_signature,
    post,
    recorded,
    settled,
)

GITHUB = CASES[0]
CHANGE_FIELDS = (
    "id",
    "repo",
    "number",
    "title",
    "branch",
    "base_branch",
    "author_id",
    "state",
    "created_at",
    "merged_at",
    "closed_at",
    "merge_commit_sha",
    "head_sha",
)
REVIEW_FIELDS = ("id", "change_id", "reviewer_id", "state", "submitted_at")


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(GITHUB.secret_env, SECRET)


def _rest_records(event_type: str, key: str, item: dict[str, Any]) -> list[Record]:
    """What the REST normalizer makes of the same item, as a sync would store it."""
    event = raw_event("github", event_type, key, item, connection=None, received_at=datetime.now(UTC))
    return normalize([event]).records


def _fields(record: Record, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(record, name) for name in names}


def test_merged_pull_request_webhook_makes_the_change_a_sync_makes(store: Store) -> None:
    declare_scopes(store)
    item = recorded("pull_requests", 41)
    payload = {
        "action": "closed",
        "number": 41,
        "pull_request": {**item, "merged": True, "additions": 12, "deletions": 3},
        "repository": {"full_name": REPO, "name": "ants", "owner": {"login": "panjf2000"}},
        "sender": item["user"],
    }
    client = client_for(store)
    response, delivery = post(client, GITHUB, payload, "pull_request")
    assert response.status_code == 202, response.text
    assert settled(client, response)["outcome"] == "normalized"
    assert settled(client, response)["records"]["change"] == 1
    (change,) = store.fetch_records("change")
    assert isinstance(change, Change)
    (expected,) = [r for r in _rest_records("pull_request", f"{REPO}/41", item) if isinstance(r, Change)]
    assert _fields(change, CHANGE_FIELDS) == _fields(expected, CHANGE_FIELDS)
    assert change.state == "merged"
    assert (change.additions, change.deletions) == (12, 3)  # the webhook's full pull request has them
    assert change.raw_event_id == f"github:{delivery}"
    (author,) = store.fetch_records("person", "id = ?", [expected.author_id])
    assert author.raw_event_id == f"github:{delivery}"


def test_review_webhook_makes_the_review_a_sync_makes(store: Store) -> None:
    declare_scopes(store)
    item = recorded("pull_request_reviews", 41)
    review = {**item, "state": str(item["state"]).lower()}  # webhooks send the state in lowercase
    payload = {
        "action": "submitted",
        "review": review,
        "pull_request": {"number": 41, "url": f"https://api.github.com/repos/{REPO}/pulls/41"},
        "repository": {"full_name": REPO},
    }
    client = client_for(store)
    response, _ = post(client, GITHUB, payload, "pull_request_review")
    assert response.status_code == 202, response.text
    assert settled(client, response)["outcome"] == "normalized"
    (stored,) = store.fetch_records("review")
    (expected,) = [
        r for r in _rest_records("review", f"{REPO}/41/{item['id']}", item) if isinstance(r, Review)
    ]
    assert _fields(stored, REVIEW_FIELDS) == _fields(expected, REVIEW_FIELDS)


def test_normalization_failure_keeps_the_raw_event_and_is_counted(store: Store) -> None:
    declare_scopes(store)
    client = client_for(store)
    item = {**recorded("pull_requests", 41), "created_at": None}
    payload = {"action": "edited", "number": 41, "pull_request": item, "repository": {"full_name": REPO}}
    response, delivery = post(client, GITHUB, payload, "pull_request")
    assert response.status_code == 202
    answer = settled(client, response)
    assert answer["outcome"] == "failed"
    assert "created_at" in answer["error"]
    assert store.count("change") == 0
    (event,) = store.fetch_records("raw_event", "source = 'github' AND delivery_id = ?", [delivery])
    assert isinstance(event, RawEvent) and json.loads(event.payload) == payload
    (note,) = store.fetch_records("raw_event", "raw_event_id = ?", [event.id])
    assert isinstance(note, RawEvent) and note.event_type == "webhook.failed"
    status = client.get("/api/v1/webhooks/status").json()["sources"]["github"]
    assert (status["received"], status["normalization_failures"], status["pending"]) == (1, 1, 0)


def test_repository_outside_every_scope_is_kept_raw_and_reported(store: Store) -> None:
    payload = {
        "action": "closed",
        "number": 41,
        "pull_request": recorded("pull_requests", 41),
        "repository": {"full_name": "someone/else"},
    }
    client = client_for(store)
    response, delivery = post(client, GITHUB, payload, "pull_request")
    assert response.status_code == 202
    outcome = settled(client, response)
    assert (outcome["outcome"], outcome["unknown_scope"]) == ("unknown_scope", "someone/else")
    assert store.count("change") == 0
    assert store.fetch_records("raw_event", "source = 'github' AND delivery_id = ?", [delivery])


def test_status_counts_every_outcome(store: Store) -> None:
    declare_scopes(store)
    client = client_for(store)
    pr: dict[str, Any] = {"action": "closed", "number": 41, "pull_request": recorded("pull_requests", 41)}
    post(client, GITHUB, {**pr, "repository": {"full_name": REPO}}, "pull_request")
    _, twice = post(client, GITHUB, {**pr, "repository": {"full_name": REPO}}, "pull_request")
    post(client, GITHUB, {**pr, "repository": {"full_name": REPO}}, "pull_request", twice)
    post(client, GITHUB, {**pr, "repository": {"full_name": REPO}}, "pull_request", twice)
    post(client, GITHUB, {"zen": "hi", "repository": {"full_name": REPO}}, "ping")
    post(client, GITHUB, {**pr, "repository": {"full_name": "someone/else"}}, "pull_request")
    broken = {**pr, "pull_request": {**pr["pull_request"], "created_at": "never"}}
    post(client, GITHUB, {**broken, "repository": {"full_name": REPO}}, "pull_request")
    sources = client.get("/api/v1/webhooks/status").json()["sources"]
    github = sources["github"]
    assert {k: v for k, v in github.items() if k != "last_received_at"} == {
        "received": 5,
        "duplicates": 2,
        "normalized": 2,
        "stored_raw_only": 0,
        "ignored": 1,
        "unknown_scope": 1,
        "normalization_failures": 1,
        "pending": 0,
    }
    assert github["last_received_at"] is not None
    assert sources["gitlab"]["received"] == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_delivery_over_a_real_server_is_stored_once(store: Store) -> None:
    declare_scopes(store)
    app = create_app(store)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.started
        item = recorded("pull_requests", 41)
        body = json.dumps(
            {"action": "opened", "number": 41, "pull_request": item, "repository": {"full_name": REPO}}
        )
        delivery = str(uuid.uuid4())
        headers = {
            "X-GitHub-Event": "pull_request",
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": hub_signature(body.encode()),
            "Content-Type": "application/json",
        }
        url = f"http://127.0.0.1:{port}/api/v1/webhooks/github"
        with httpx.Client(timeout=10) as http:
            first = http.post(url, content=body, headers=headers)
            again = http.post(url, content=body, headers=headers)
        assert first.status_code == 202, first.text
        assert again.json()["status"] == "duplicate"
        assert app.state.webhook_receiver.wait_idle(timeout=30)
        assert store.query("SELECT count(*) FROM raw_events WHERE source = 'github'")[0][0] == 1
        assert store.count("change") == 1
    finally:
        server.should_exit = True
        thread.join(timeout=10)
