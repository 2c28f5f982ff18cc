"""Deliveries are answered once stored and normalized after: by a worker, in batches, never lost."""

from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from obeya.api.webhooks import WebhookReceiver, webhooks_router
from obeya.api.webhooks.deliveries import DeliveryLedger, note_id
from obeya.api.webhooks.intake import DeliveryIntake, Taken
from obeya.model.records import RawEvent
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
)

GITHUB = CASES[0]


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(GITHUB.secret_env, SECRET)


def _pull_request(number: int = 41) -> bytes:
    item = recorded("pull_requests", 41)
    payload = {
        "action": "closed",
        "number": number,
        "pull_request": {**item, "number": number, "merged": True},
        "repository": {"full_name": REPO},
    }
    return json.dumps(payload).encode()


def _headers(body: bytes, delivery: str) -> dict[str, str]:
    return {
        "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": hub_signature(body),
    }


def _webhooks_app(store: Store) -> FastAPI:
    """An app with only the webhook routes (and their lifespan), which leaves the store open."""
    app = FastAPI()
    app.state.store = store
    app.include_router(webhooks_router())
    return app


def _changes(store: Store) -> list[str]:
    return [str(r[0]) for r in store.query("SELECT id FROM changes ORDER BY id")]


def test_accepted_delivery_reaches_the_store_shortly_after_its_answer(store: Store) -> None:
    declare_scopes(store)
    body, delivery = _pull_request(), str(uuid.uuid4())
    with TestClient(_webhooks_app(store)) as client:
        response = client.post("/api/v1/webhooks/github", content=body, headers=_headers(body, delivery))
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "accepted"
        # the raw event is committed before the answer; the records follow, within a short while
        assert store.count("raw_event") >= 1
        deadline = time.monotonic() + 10
        while not _changes(store) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _changes(store) == [f"github:{REPO}#41"]
        outcome = client.get(f"/api/v1/webhooks/deliveries/github/{delivery}").json()
        deadline = time.monotonic() + 10
        while outcome["outcome"] == "pending" and time.monotonic() < deadline:
            time.sleep(0.01)
            outcome = client.get(f"/api/v1/webhooks/deliveries/github/{delivery}").json()
        assert (outcome["outcome"], outcome["records"]["change"]) == ("normalized", 1)


def test_delivery_stored_before_a_stop_is_settled_at_the_next_start(store: Store) -> None:
    declare_scopes(store)
    body, delivery = _pull_request(), str(uuid.uuid4())
    headers = {k.lower(): v for k, v in _headers(body, delivery).items()}
    # What the intake committed before the process stopped: the raw event, no records, no note.
    checked = WebhookReceiver(store).check("github", headers, body)
    assert DeliveryLedger(store).store_new([checked.raw]) == [True]
    assert (store.count("change"), store.count("raw_event")) == (0, 1)

    app = _webhooks_app(store)
    with TestClient(app) as client:  # starting the app settles it
        pending = client.get(f"/api/v1/webhooks/deliveries/github/{delivery}").json()["outcome"]
        assert pending in ("pending", "normalized")  # the worker may already be done
        assert app.state.webhook_receiver.wait_idle(timeout=30)
        outcome = client.get(f"/api/v1/webhooks/deliveries/github/{delivery}").json()
        status = client.get("/api/v1/webhooks/status").json()["sources"]["github"]
    assert (outcome["outcome"], outcome["records"]) == (
        "normalized",
        {"change": 1, "identity": 1, "person": 1},
    )
    assert _changes(store) == [f"github:{REPO}#41"]
    assert (status["received"], status["normalized"], status["pending"]) == (1, 1, 0)


def test_shutdown_settles_what_was_accepted(store: Store) -> None:
    declare_scopes(store)
    bodies = [_pull_request(number) for number in (41, 42, 43)]
    with TestClient(_webhooks_app(store)) as client:
        for body in bodies:
            response = client.post(
                "/api/v1/webhooks/github", content=body, headers=_headers(body, str(uuid.uuid4()))
            )
            assert response.status_code == 202
    # no waiting here: leaving the app's lifespan let the worker finish
    assert _changes(store) == [f"github:{REPO}#{n}" for n in (41, 42, 43)]


def test_two_copies_in_one_group_are_stored_once_and_the_second_is_a_redelivery(store: Store) -> None:
    receiver = WebhookReceiver(store)
    handed_on: list[list[Taken]] = []
    first_group = threading.Event()
    release = threading.Event()

    def then(taken: list[Taken]) -> None:
        handed_on.append(taken)
        first_group.set()
        assert release.wait(10)  # hold the writer so the next deliveries queue into one group

    intake = DeliveryIntake(receiver.ledger, then)
    checks = [
        receiver.check("github", {k.lower(): v for k, v in _headers(body, delivery).items()}, body)
        for body, delivery in [
            (_pull_request(40), "d-before"),
            (_pull_request(41), "d-twice"),
            (_pull_request(41), "d-twice"),
        ]
    ]
    before = intake.submit(checks[0].raw, checks[0].delivery)
    assert first_group.wait(10)
    copies: list[Future[Taken]] = [intake.submit(c.raw, c.delivery) for c in checks[1:]]
    release.set()
    first, second = (f.result(timeout=10) for f in copies)
    intake.close()
    assert before.result().new
    assert (first.new, second.new, second.outcome) == (True, False, "pending")
    assert [len(group) for group in handed_on] == [1, 2]  # the two copies shared one commit
    stored = store.query("SELECT count(*) FROM raw_events WHERE id = 'github:d-twice'")
    assert stored == [(1,)]


def test_redelivery_of_a_pending_delivery_is_counted_once_it_is_settled(store: Store) -> None:
    declare_scopes(store)
    receiver = WebhookReceiver(store)
    body = _pull_request()
    headers = {k.lower(): v for k, v in _headers(body, "d-pending").items()}
    checked = receiver.check("github", headers, body)
    assert receiver.ledger.store_new([checked.raw]) == [True]
    again = receiver.receive("github", headers, body)  # the first copy is stored, not settled yet
    assert (again.status_code, again.body["status"], again.body["outcome"]) == (200, "duplicate", "pending")
    assert receiver.wait_idle(timeout=30)
    assert receiver.start() == 1  # as at the next start: the first copy is still unsettled
    assert receiver.wait_idle(timeout=30)
    found = receiver.ledger.delivery("github", "d-pending")
    assert found is not None
    assert (found.outcome, found.note["redeliveries"]) == ("normalized", 1)
    assert store.count("change") == 1


def test_delivery_that_fails_is_noted_and_the_rest_of_its_batch_is_written(store: Store) -> None:
    declare_scopes(store)
    receiver = WebhookReceiver(store)
    ledger = receiver.ledger
    good = [
        receiver.check(
            "github",
            {k.lower(): v for k, v in _headers(_pull_request(n), f"d-{n}").items()},
            _pull_request(n),
        )
        for n in (41, 42)
    ]
    assert ledger.store_new([c.raw for c in good]) == [True, True]
    # a stored delivery that no longer reads as one (as if its payload had been damaged)
    broken = RawEvent(
        source="github",
        external_id="d-broken",
        delivery_id="d-broken",
        event_type="pull_request",
        received_at=datetime.now(UTC),
        payload_hash="0" * 64,
        payload="[not an object",
    )
    assert ledger.store_new([broken]) == [True]
    assert receiver.start() == 3
    assert receiver.wait_idle(timeout=30)
    outcomes = {d: ledger.delivery("github", d) for d in ("d-41", "d-42", "d-broken")}
    assert {d: o.outcome if o else None for d, o in outcomes.items()} == {
        "d-41": "normalized",
        "d-42": "normalized",
        "d-broken": "failed",
    }
    broken_outcome = outcomes["d-broken"]
    assert broken_outcome is not None and "body is not JSON" in broken_outcome.note["error"]
    assert store.count("change") == 2
    assert store.query("SELECT count(*) FROM raw_events WHERE id = ?", [note_id("github", "d-broken")]) == [
        (1,)
    ]


def test_figures_reflect_a_delivery_once_it_is_settled(store: Store) -> None:
    declare_scopes(store)
    client = client_for(store)

    def changes_traced() -> Any:
        everything = client.get("/api/v1/traceability").json()[-1]
        return {c["key"]: c["denominator"] for c in everything["coverage"]}

    before = changes_traced()
    version = store.data_version()
    response, _ = post(client, GITHUB, json.loads(_pull_request()), "pull_request")  # waits for the worker
    assert response.status_code == 202
    assert store.data_version() > version  # the worker's write bumps the figure cache's key
    after = changes_traced()
    assert after != before
