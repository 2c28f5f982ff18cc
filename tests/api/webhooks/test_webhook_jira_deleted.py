"""A ``jira:issue_deleted`` webhook marks the work item removed: canceled as "Deleted", raw kept.

The payload is Jira's issue webhook shape (the issue as it was when deleted, the ``user`` who deleted it,
``timestamp``), with the PAY-7 issue of the other Jira webhook tests.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from obeya.api.webhooks.jira import DELETED_STATUS
from obeya.engine.flow import flow_load, flow_velocity
from obeya.engine.window import Window
from obeya.model.records import RawEvent, StatusTransition, WorkItem
from obeya.model.vocabulary import FlowState
from obeya.store import Store
from tests.api.webhooks.deliveries import CASES, SECRET, client_for, declare_scopes, post, settled
from tests.api.webhooks.test_webhook_jira import ALICE, _issue, _rest_records, _status

JIRA = next(c for c in CASES if c.tool == "jira")
DELETED_AT = datetime(2025, 1, 5, 8, 0, tzinfo=UTC)
JANUARY = Window(datetime(2025, 1, 1), datetime(2025, 2, 1))
BEFORE_DELETION = Window(datetime(2025, 1, 1), datetime(2025, 1, 4))


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(JIRA.secret_env, SECRET)


def _deleted(issue: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "timestamp": int(DELETED_AT.timestamp() * 1000),
        "webhookEvent": "jira:issue_deleted",
        "user": ALICE,
        "issue": issue or _issue(),
    }


def test_deleted_issue_is_canceled_as_deleted_and_drops_from_flow_figures(store: Store) -> None:
    declare_scopes(store)
    store.upsert_records(_rest_records())  # an earlier sync: PAY-7 done on 3 January
    assert flow_velocity(store, JANUARY).completed == 1
    client = client_for(store)
    payload = _deleted()
    response, delivery = post(client, JIRA, payload, "jira:issue_deleted")
    assert response.status_code == 202, response.text
    answer = settled(client, response)
    assert answer["outcome"] == "normalized"
    assert (answer["records"]["work_item"], answer["records"]["status_transition"]) == (1, 1)

    (item,) = store.fetch_records("work_item")
    assert isinstance(item, WorkItem)
    assert (item.id, item.status, item.flow_state, item.stage) == (
        "jira:PAY-7",
        DELETED_STATUS,
        FlowState.CANCELED,
        None,
    )
    deleted_at = DELETED_AT.replace(tzinfo=None)  # the store gives UTC times back naive
    assert (item.done_at, item.canceled_at, item.updated_at) == (None, deleted_at, deleted_at)
    assert item.raw_event_id == f"jira:{delivery}"
    (removal,) = store.fetch_records("status_transition", "external_id = ?", ["PAY-7/deleted"])
    assert removal == StatusTransition(
        source="jira",
        external_id="PAY-7/deleted",
        raw_event_id=f"jira:{delivery}",
        work_item_id="jira:PAY-7",
        at=deleted_at,
        from_status="Done",
        to_status=DELETED_STATUS,
        from_flow_state=FlowState.DONE,
        to_flow_state=FlowState.CANCELED,
        from_stage=_stored_stage_of_done(store),
        to_stage=None,
        author_id="jira:user/acc-alice",
    )
    # The sync's history stays; the deletion is its last transition.
    assert sorted(t.external_id for t in store.fetch_records("status_transition")) == [
        "PAY-7/100/0",
        "PAY-7/101/0",
        "PAY-7/created",
        "PAY-7/deleted",
    ]
    (raw,) = store.fetch_records("raw_event", "source = 'jira' AND delivery_id = ?", [delivery])
    assert isinstance(raw, RawEvent) and json.loads(raw.payload) == payload
    # Not done any more: January's velocity drops it; a window that ended before the deletion still
    # counts it, as it stood then.
    assert flow_velocity(store, JANUARY).completed == 0
    assert flow_velocity(store, BEFORE_DELETION).completed == 1


def _stored_stage_of_done(store: Store) -> str | None:
    (done,) = store.fetch_records("status_transition", "external_id = ?", ["PAY-7/101/0"])
    assert isinstance(done, StatusTransition)
    return done.to_stage


def test_deleted_issue_in_progress_leaves_the_flow_load(store: Store) -> None:
    declare_scopes(store)
    issue = _issue()
    issue["fields"]["status"] = _status("10001", "In Progress", "indeterminate")
    del issue["fields"]["resolutiondate"]
    client = client_for(store)
    updated: dict[str, Any] = {"timestamp": 1735808400000, "webhookEvent": "jira:issue_updated"}
    updated |= {"user": ALICE, "issue": issue}
    updated["changelog"] = {
        "id": "100",
        "items": [
            {"field": "status", "fieldId": "status", "from": "10000", "fromString": "To Do", "to": "10001"}
            | {"toString": "In Progress", "fieldtype": "jira"}
        ],
    }
    response, _ = post(client, JIRA, updated, "jira:issue_updated")  # 2 January: In Progress
    assert settled(client, response)["outcome"] == "normalized"
    assert flow_load(store, BEFORE_DELETION).at_end == 1
    response, _ = post(client, JIRA, _deleted(issue), "jira:issue_deleted")
    assert settled(client, response)["outcome"] == "normalized"
    assert flow_load(store, JANUARY).at_end == 0
    (removal,) = store.fetch_records("status_transition", "external_id = ?", ["PAY-7/deleted"])
    assert (removal.from_status, removal.from_flow_state) == ("In Progress", FlowState.ACTIVE)


def test_deleted_issue_without_a_sync_is_still_marked_from_its_own_fields(store: Store) -> None:
    declare_scopes(store)
    client = client_for(store)
    response, _ = post(client, JIRA, _deleted(), "jira:issue_deleted")
    assert settled(client, response)["outcome"] == "normalized"
    (item,) = store.fetch_records("work_item")
    assert isinstance(item, WorkItem)
    assert (item.status, item.flow_state) == (DELETED_STATUS, FlowState.CANCELED)
    (removal,) = store.fetch_records("status_transition")
    assert isinstance(removal, StatusTransition)
    assert (removal.external_id, removal.from_status, removal.to_status) == (
        "PAY-7/deleted",
        "Done",
        "Deleted",
    )


def test_deletion_without_the_issue_is_stored_raw_with_the_reason(store: Store) -> None:
    declare_scopes(store)
    client = client_for(store)
    payload = {**_deleted(), "issue": {"id": "10007", "key": "PAY-7"}}  # no fields to mark
    response, delivery = post(client, JIRA, payload, "jira:issue_deleted")
    answer = settled(client, response)
    assert answer["outcome"] == "stored" and "body.issue" in answer["reason"]
    assert store.count("work_item") == 0
    (raw,) = store.fetch_records("raw_event", "source = 'jira' AND delivery_id = ?", [delivery])
    assert json.loads(raw.payload) == payload
