"""Every receiver: signed deliveries are stored first; bad ones are refused with nothing stored."""

from __future__ import annotations

import json

import pytest

from obeya.model.records import RawEvent
from obeya.store import Store
from tests.api.webhooks.deliveries import (
    CASES,
    SECRET,
    ToolCase,
    client_for,
    declare_scopes,
    delivery_id_of,
    post,
    receiver_of,
    table_counts,
)


def _configured(tool_case: ToolCase, monkeypatch: pytest.MonkeyPatch) -> ToolCase:
    monkeypatch.setenv(tool_case.secret_env, SECRET)
    return tool_case


@pytest.fixture(params=CASES, ids=[c.tool for c in CASES])
def case(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> ToolCase:
    """Each receiver in turn, with its secret set."""
    return _configured(request.param, monkeypatch)


def _stored(store: Store, source: str, delivery_id: str) -> list[RawEvent]:
    found = store.fetch_records("raw_event", "source = ? AND delivery_id = ?", [source, delivery_id])
    return [e for e in found if isinstance(e, RawEvent)]


def test_signed_delivery_is_stored_as_a_raw_event_before_the_answer(store: Store, case: ToolCase) -> None:
    declare_scopes(store)
    payload = case.body(case.used_event)
    response, delivery = post(client_for(store), case, payload, case.used_event)
    assert response.status_code == 202, response.text
    delivery_id = delivery_id_of(case, payload, delivery)
    (event,) = _stored(store, case.tool, delivery_id)
    assert event.external_id == delivery_id
    assert event.event_type == case.used_event
    assert json.loads(event.payload) == payload
    assert response.json()["raw_event_id"] == event.id


def test_connection_from_the_query_is_kept_on_the_raw_event(store: Store, case: ToolCase) -> None:
    payload = case.body(case.used_event)
    body = json.dumps(payload).encode()
    delivery = "d-connection-1"
    client = client_for(store)
    response = client.post(
        case.path + "?connection=prod-hooks",
        content=body,
        headers=case.headers(body, case.used_event, delivery),
    )
    assert response.status_code == 202, response.text
    assert receiver_of(client).wait_idle(timeout=30)
    (event,) = _stored(store, case.tool, delivery_id_of(case, payload, delivery))
    assert event.connection == "prod-hooks"


@pytest.mark.parametrize("signature", ["wrong", "missing"])
def test_bad_or_missing_signature_is_refused_and_nothing_is_stored(
    store: Store, case: ToolCase, signature: str
) -> None:
    before = table_counts(store)
    payload = case.body(case.used_event)
    body = json.dumps(payload).encode()
    headers = case.headers(body, case.used_event, "d-1")
    name = next(
        h
        for h in headers
        if h.lower()
        in {
            "x-hub-signature-256",
            "x-hub-signature",
            "x-gitlab-token",
            "x-pagerduty-signature",
            "x-obeya-signature",
        }
    )
    if signature == "wrong":
        headers[name] = headers[name][:-4] + "0000" if case.tool != "gitlab" else "not the token"
    else:
        del headers[name]
    response = client_for(store).post(case.path, content=body, headers=headers)
    assert response.status_code == 401
    assert name.lower() in response.json()["detail"].lower()
    assert table_counts(store) == before


def test_unset_secret_refuses_every_delivery_and_names_the_variable(
    store: Store, case: ToolCase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(case.secret_env)
    response, _ = post(client_for(store), case, case.body(case.used_event), case.used_event)
    assert response.status_code == 401
    assert response.json()["detail"] == f"webhook secret not configured: set {case.secret_env}"
    assert store.count("raw_event") == 0


def test_body_that_is_not_json_is_refused_with_where_it_broke(store: Store, case: ToolCase) -> None:
    body = b'{"action": "closed",'
    response = client_for(store).post(
        case.path, content=body, headers=case.headers(body, case.used_event, "d-2")
    )
    assert response.status_code == 400
    assert "body is not JSON" in response.json()["detail"]
    assert "line 1" in response.json()["detail"]
    assert store.count("raw_event") == 0


def test_body_missing_a_field_the_tool_always_sends_is_refused_naming_it(
    store: Store, case: ToolCase
) -> None:
    before = table_counts(store)
    payload, field = case.missing_field
    response, _ = post(client_for(store), case, payload, case.used_event)
    assert response.status_code == 400
    assert field in response.json()["detail"]
    assert table_counts(store) == before


def test_redelivery_answers_duplicate_and_writes_nothing_again(store: Store, case: ToolCase) -> None:
    declare_scopes(store)
    client = client_for(store)
    payload = case.body(case.used_event)
    first, delivery = post(client, case, payload, case.used_event)
    assert first.status_code in (200, 202)
    (stored,) = _stored(store, case.tool, delivery_id_of(case, payload, delivery))
    counts = table_counts(store)
    again, _ = post(client, case, payload, case.used_event, delivery)
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert table_counts(store) == counts
    assert _stored(store, case.tool, delivery_id_of(case, payload, delivery)) == [stored]
    status = client.get("/api/v1/webhooks/status").json()["sources"][case.tool]
    assert (status["received"], status["duplicates"]) == (1, 1)


@pytest.mark.parametrize(
    "tool_case", [c for c in CASES if c.unused_event], ids=[c.tool for c in CASES if c.unused_event]
)
def test_event_obeya_does_not_use_is_stored_and_answered_ignored(
    store: Store, tool_case: ToolCase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(The generic receiver keeps every event type, so it has no case here.)"""
    case = _configured(tool_case, monkeypatch)
    payload = case.body(case.unused_event)
    response, delivery = post(client_for(store), case, payload, case.unused_event)
    assert response.status_code == 202
    assert response.json()["status"] == "ignored"
    (event,) = _stored(store, case.tool, delivery_id_of(case, payload, delivery))
    assert event.event_type == case.unused_event


def test_generic_receiver_refuses_a_tool_name_of_its_own(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OBEYA_WEBHOOK_SECRET_GENERIC", SECRET)
    response = client_for(store).post("/api/v1/webhooks/generic/github", content=b"{}")
    assert response.status_code == 404
    assert "/api/v1/webhooks/github" in response.json()["detail"]
