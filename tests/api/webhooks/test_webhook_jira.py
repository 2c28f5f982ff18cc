"""Jira webhooks become the work item and transitions a sync makes from the same issue."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from obeya.connectors.jira.normalizer import normalize
from obeya.connectors.raw import raw_event
from obeya.model.records import RawEvent, Record, StatusTransition, WorkItem
from obeya.model.vocabulary import FlowState
from obeya.store import Store
from tests.api.webhooks.deliveries import CASES, SECRET, client_for, declare_scopes, post, settled

JIRA = next(c for c in CASES if c.tool == "jira")
WORK_ITEM_FIELDS = (
    "id",
    "key",
    "title",
    "project",
    "tool_type",
    "flow_item_type",
    "status",
    "flow_state",
    "assignee_id",
    "labels",
    "priority",
    "created_at",
    "done_at",
    "canceled_at",
    "updated_at",
)
TRANSITION_FIELDS = (
    "id",
    "work_item_id",
    "at",
    "from_status",
    "to_status",
    "from_flow_state",
    "to_flow_state",
    "author_id",
)
ALICE = {"accountId": "acc-alice", "displayName": "Alice", "accountType": "atlassian"}
BOB = {"accountId": "acc-bob", "displayName": "Bob", "accountType": "atlassian"}
DONE_AT = datetime(2025, 1, 3, 12, 0, tzinfo=UTC)
STORED_DONE_AT = datetime(2025, 1, 3, 12, 0)  # the store gives UTC times back naive


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(JIRA.secret_env, SECRET)


def _status(status_id: str, name: str, category: str) -> dict[str, Any]:
    return {"id": status_id, "name": name, "statusCategory": {"key": category}}


def _history(
    history_id: str, at: str, author: dict[str, Any], before: tuple[str, str], after: tuple[str, str]
) -> dict[str, Any]:
    return {
        "id": history_id,
        "created": at,
        "author": author,
        "items": [
            {
                "field": "status",
                "fieldtype": "jira",
                "fieldId": "status",
                "from": before[0],
                "fromString": before[1],
                "to": after[0],
                "toString": after[1],
            }
        ],
    }


def _issue() -> dict[str, Any]:
    """PAY-7 as the REST search answers it (``fields=*all``), without its changelog."""
    return {
        "id": "10007",
        "key": "PAY-7",
        "fields": {
            "summary": "Refunds in one click",
            "project": {"key": "PAY", "name": "Payments"},
            "issuetype": {"id": "10001", "name": "Story"},
            "status": _status("10002", "Done", "done"),
            "labels": ["refunds"],
            "priority": {"name": "High"},
            "assignee": ALICE,
            "reporter": ALICE,
            "creator": ALICE,
            "created": "2025-01-01T09:00:00.000+0000",
            "updated": "2025-01-03T12:00:00.000+0000",
            "resolutiondate": "2025-01-03T12:00:00.000+0000",
        },
    }


HISTORIES = [
    _history("100", "2025-01-02T10:00:00.000+0000", ALICE, ("10000", "To Do"), ("10001", "In Progress")),
    _history("101", "2025-01-03T12:00:00.000+0000", BOB, ("10001", "In Progress"), ("10002", "Done")),
]


def _rest_records() -> list[Record]:
    """What a sync makes of PAY-7 with its whole changelog."""
    item = {**_issue(), "changelog": {"histories": HISTORIES, "total": len(HISTORIES)}}
    event = raw_event("jira", "issue", "10007", item, connection=None, received_at=datetime.now(UTC))
    return normalize([event]).records


def _updated_payload() -> dict[str, Any]:
    """The ``jira:issue_updated`` webhook of history 101 (In Progress → Done, by Bob)."""
    return {
        "timestamp": int(DONE_AT.timestamp() * 1000),
        "webhookEvent": "jira:issue_updated",
        "issue_event_type_name": "issue_generic",
        "user": BOB,
        "issue": _issue(),
        "changelog": {"id": "101", "items": HISTORIES[1]["items"]},
    }


def _fields(record: Record, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(record, name) for name in names}


def _one(records: list[Record], kind: type[Record], external_id: str) -> Record:
    (found,) = [r for r in records if isinstance(r, kind) and r.external_id == external_id]
    return found


def test_status_change_webhook_makes_the_work_item_and_transition_a_sync_makes(store: Store) -> None:
    declare_scopes(store)
    rest = _rest_records()
    store.upsert_records(rest)  # an earlier sync
    client = client_for(store)
    response, delivery = post(client, JIRA, _updated_payload(), "jira:issue_updated")
    assert response.status_code == 202, response.text
    assert settled(client, response)["outcome"] == "normalized"
    assert settled(client, response)["records"]["work_item"] == 1
    assert settled(client, response)["records"]["status_transition"] == 1  # PAY-7/created is left to the sync

    (item,) = store.fetch_records("work_item")
    expected = _one(rest, WorkItem, "PAY-7")
    assert isinstance(item, WorkItem) and isinstance(expected, WorkItem)
    assert _fields(item, WORK_ITEM_FIELDS) == _fields(expected, WORK_ITEM_FIELDS)
    assert item.flow_state is FlowState.DONE and item.done_at == STORED_DONE_AT
    assert item.started_at == expected.started_at  # kept from the stored work item
    assert item.raw_event_id == f"jira:{delivery}"

    (transition,) = store.fetch_records("status_transition", "external_id = ?", ["PAY-7/101/0"])
    assert _fields(transition, TRANSITION_FIELDS) == _fields(
        _one(rest, StatusTransition, "PAY-7/101/0"), TRANSITION_FIELDS
    )
    assert transition.raw_event_id == f"jira:{delivery}"
    (created,) = store.fetch_records("status_transition", "external_id = ?", ["PAY-7/created"])
    assert created.raw_event_id != f"jira:{delivery}"  # the sync's, not rewritten from a partial history
    (author,) = store.fetch_records("person", "id = ?", ["jira:user/acc-bob"])
    assert author.raw_event_id == f"jira:{delivery}"


def test_status_change_webhook_without_a_sync_writes_what_it_knows(store: Store) -> None:
    declare_scopes(store)
    client = client_for(store)
    response, _ = post(client, JIRA, _updated_payload(), "jira:issue_updated")
    assert response.status_code == 202, response.text
    assert settled(client, response)["outcome"] == "normalized"
    (item,) = store.fetch_records("work_item")
    assert isinstance(item, WorkItem)
    assert (item.status, item.done_at, item.started_at) == ("Done", STORED_DONE_AT, None)
    transitions = store.fetch_records("status_transition")
    assert [t.external_id for t in transitions] == ["PAY-7/101/0"]


def test_created_webhook_makes_the_created_transition(store: Store) -> None:
    declare_scopes(store)
    issue = _issue()
    issue["fields"]["status"] = _status("10000", "To Do", "new")
    payload = {
        "timestamp": 1735722000000,
        "webhookEvent": "jira:issue_created",
        "user": ALICE,
        "issue": issue,
    }
    client = client_for(store)
    response, _ = post(client, JIRA, payload, "jira:issue_created")
    assert response.status_code == 202, response.text
    assert settled(client, response)["outcome"] == "normalized"
    (transition,) = store.fetch_records("status_transition")
    assert isinstance(transition, StatusTransition)
    assert (transition.external_id, transition.to_status, transition.to_flow_state) == (
        "PAY-7/created",
        "To Do",
        FlowState.NEW,
    )


def test_sprint_webhook_makes_the_plan(store: Store) -> None:
    declare_scopes(store)
    sprint = {
        "id": 12,
        "name": "Sprint 12",
        "state": "active",
        "startDate": "2025-01-06T09:00:00.000Z",
        "endDate": "2025-01-20T09:00:00.000Z",
    }
    payload = {"timestamp": 1736154000000, "webhookEvent": "sprint_started", "sprint": sprint}
    client = client_for(store)
    response, delivery = post(client, JIRA, payload, "sprint_started")
    assert response.status_code == 202, response.text
    assert settled(client, response)["outcome"] == "normalized"
    (plan,) = store.fetch_records("plan")
    assert (plan.id, plan.raw_event_id) == ("jira:sprint/12", f"jira:{delivery}")


def test_malformed_issue_is_stored_raw_with_the_reason(store: Store) -> None:
    declare_scopes(store)
    client = client_for(store)
    payload = {**_updated_payload(), "issue": {"id": "10007", "key": "PAY-7", "fields": "not an object"}}
    response, delivery = post(client, JIRA, payload, "jira:issue_updated")
    assert response.status_code == 202, response.text
    answer = settled(client, response)
    assert answer["outcome"] == "stored"
    assert "body.issue" in answer["reason"]
    assert store.count("work_item") == 0
    (event,) = store.fetch_records("raw_event", "source = 'jira' AND delivery_id = ?", [delivery])
    assert isinstance(event, RawEvent) and json.loads(event.payload) == payload
    status = client.get("/api/v1/webhooks/status").json()["sources"]["jira"]
    assert (status["received"], status["stored_raw_only"], status["pending"]) == (1, 1, 0)


def test_issue_the_normalizer_cannot_read_is_stored_with_the_error(store: Store) -> None:
    declare_scopes(store)
    issue = _issue()
    del issue["fields"]["created"]
    client = client_for(store)
    response, _ = post(client, JIRA, {**_updated_payload(), "issue": issue}, "jira:issue_updated")
    assert response.status_code == 202, response.text
    answer = settled(client, response)
    assert answer["outcome"] == "failed"
    assert "created" in answer["error"]
    assert store.count("work_item") == 0
