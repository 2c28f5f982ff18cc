"""GitLab hooks become the change and pipeline runs a sync makes from the same objects."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from obeya.api.webhooks.gitlab import iso_time
from obeya.connectors.gitlab.normalizer import normalize
from obeya.connectors.raw import raw_event
from obeya.model.records import Change, PipelineJob, PipelineRun, RawEvent, Record
from obeya.store import Store
from tests.api.webhooks.deliveries import CASES, SECRET, client_for, declare_scopes, post, settled

GITLAB = next(c for c in CASES if c.tool == "gitlab")
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
    "merge_method",
)
RUN_FIELDS = (
    "id",
    "pipeline",
    "repo",
    "commit_sha",
    "branch",
    "trigger",
    "result",
    "created_at",
    "started_at",
    "finished_at",
    "url",
)
PROJECT = {
    "id": 7,
    "name": "shop",
    "path_with_namespace": "acme/shop",
    "web_url": "https://gitlab.example/acme/shop",
}
ALICE = {"id": 51, "name": "Alice", "username": "alice", "email": "alice@example.com"}
HEAD = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"
MERGE = "8b9e3a7c0f1d2e3a4b5c6d7e8f9a0b1c2d3e4f5a"


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(GITLAB.secret_env, SECRET)


def _rest(event_type: str, key: str, item: dict[str, Any]) -> list[Record]:
    event = raw_event("gitlab", event_type, key, item, connection=None, received_at=datetime.now(UTC))
    return normalize([event]).records


def _fields(record: Record, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(record, name) for name in names}


def _merge_request_hook(**changes: Any) -> dict[str, Any]:
    attributes = {
        "id": 99,
        "iid": 3,
        "title": "Pay by link",
        "description": "",
        "state": "merged",
        "action": "merge",
        "source_branch": "pay-by-link",
        "target_branch": "main",
        "author_id": 51,
        "created_at": "2025-01-01 09:00:00 UTC",
        "updated_at": "2025-01-02 10:00:00 UTC",
        "merge_commit_sha": MERGE,
        "last_commit": {"id": HEAD, "message": "Pay by link", "timestamp": "2025-01-01T12:00:00+00:00"},
        "url": "https://gitlab.example/acme/shop/-/merge_requests/3",
        **changes,
    }
    return {
        "object_kind": "merge_request",
        "event_type": "merge_request",
        "user": ALICE,
        "project": PROJECT,
        "object_attributes": attributes,
    }


def test_time_formats_of_hooks_become_iso() -> None:
    assert iso_time("2016-08-12 15:23:28 UTC") == "2016-08-12T15:23:28+00:00"
    assert iso_time("2016-08-12 15:23:28 +0200") == "2016-08-12T15:23:28+02:00"
    assert iso_time("2025-01-01T09:00:00Z") == "2025-01-01T09:00:00Z"
    assert iso_time(None) is None


def test_merged_merge_request_hook_makes_the_change_a_sync_makes(store: Store) -> None:
    declare_scopes(store)
    client = client_for(store)
    response, delivery = post(client, GITLAB, _merge_request_hook(), "merge_request")
    assert response.status_code == 202, response.text
    assert settled(client, response)["outcome"] == "normalized"
    assert settled(client, response)["records"]["change"] == 1
    (change,) = store.fetch_records("change")
    rest_item = {
        "iid": 3,
        "title": "Pay by link",
        "state": "merged",
        "source_branch": "pay-by-link",
        "target_branch": "main",
        "author": ALICE,
        "created_at": "2025-01-01T09:00:00.000Z",
        "merged_at": "2025-01-02T10:00:00.000Z",
        "closed_at": None,
        "merge_commit_sha": MERGE,
        "squash_commit_sha": None,
        "sha": HEAD,
    }
    (expected,) = [r for r in _rest("merge_request", "acme/shop!3", rest_item) if isinstance(r, Change)]
    assert isinstance(change, Change)
    assert _fields(change, CHANGE_FIELDS) == _fields(expected, CHANGE_FIELDS)
    assert (change.state, change.merge_method) == ("merged", "merge")
    assert change.raw_event_id == f"gitlab:{delivery}"
    (person,) = store.fetch_records("person", "id = ?", ["gitlab:user/51"])
    assert person.raw_event_id == f"gitlab:{delivery}"


def test_later_update_of_a_merged_request_keeps_when_it_was_merged(store: Store) -> None:
    declare_scopes(store)
    client = client_for(store)
    post(client, GITLAB, _merge_request_hook(), "merge_request")
    later = _merge_request_hook(action="update", updated_at="2025-01-05 08:00:00 UTC", title="Pay by link!")
    response, _ = post(client, GITLAB, later, "merge_request")
    assert response.status_code == 202, response.text
    assert settled(client, response)["outcome"] == "normalized"
    (change,) = store.fetch_records("change")
    assert isinstance(change, Change)
    assert (change.title, change.merged_at) == ("Pay by link!", datetime(2025, 1, 2, 10, 0))


def test_pipeline_hook_makes_the_run_and_its_jobs(store: Store) -> None:
    declare_scopes(store)
    payload = {
        "object_kind": "pipeline",
        "object_attributes": {
            "id": 31,
            "iid": 3,
            "name": None,
            "ref": "main",
            "tag": False,
            "sha": HEAD,
            "source": "push",
            "status": "success",
            "created_at": "2025-01-02 10:01:00 UTC",
            "finished_at": "2025-01-02 10:09:00 UTC",
            "duration": 480,
            "url": "https://gitlab.example/acme/shop/-/pipelines/31",
        },
        "user": ALICE,
        "project": PROJECT,
        "builds": [
            {
                "id": 380,
                "stage": "test",
                "name": "unit",
                "status": "success",
                "created_at": "2025-01-02 10:01:00 UTC",
                "started_at": "2025-01-02 10:02:00 UTC",
                "finished_at": "2025-01-02 10:08:00 UTC",
                "environment": None,
            }
        ],
    }
    client = client_for(store)
    response, delivery = post(client, GITLAB, payload, "pipeline")
    assert response.status_code == 202, response.text
    assert settled(client, response)["outcome"] == "normalized"
    (run,) = store.fetch_records("pipeline_run")
    rest_item = {
        "id": 31,
        "ref": "main",
        "sha": HEAD,
        "source": "push",
        "status": "success",
        "created_at": "2025-01-02T10:01:00Z",
        "finished_at": "2025-01-02T10:09:00Z",
        "web_url": "https://gitlab.example/acme/shop/-/pipelines/31",
    }
    (expected,) = [
        r for r in _rest("pipeline", "acme/shop/pipelines/31", rest_item) if isinstance(r, PipelineRun)
    ]
    assert _fields(run, RUN_FIELDS) == _fields(expected, RUN_FIELDS)
    assert run.raw_event_id == f"gitlab:{delivery}"
    (job,) = store.fetch_records("pipeline_job")
    assert isinstance(job, PipelineJob)
    assert (job.id, job.run_id, job.name, job.result) == (
        "gitlab:acme/shop/jobs/380",
        run.id,
        "unit",
        "success",
    )


def test_malformed_object_attributes_are_stored_raw_with_the_reason(store: Store) -> None:
    declare_scopes(store)
    client = client_for(store)
    payload = {**_merge_request_hook(), "object_attributes": ["not", "an", "object"]}
    response, delivery = post(client, GITLAB, payload, "merge_request")
    assert response.status_code == 202, response.text
    answer = settled(client, response)
    assert answer["outcome"] == "stored"
    assert "body.object_attributes" in answer["reason"]
    assert store.count("change") == 0
    (event,) = store.fetch_records("raw_event", "source = 'gitlab' AND delivery_id = ?", [delivery])
    assert isinstance(event, RawEvent) and json.loads(event.payload) == payload
    status = client.get("/api/v1/webhooks/status").json()["sources"]["gitlab"]
    assert (status["received"], status["stored_raw_only"], status["pending"]) == (1, 1, 0)


def test_kind_without_an_adapter_is_stored_raw_with_the_reason(store: Store) -> None:
    declare_scopes(store)
    payload = {"object_kind": "release", "project": PROJECT, "tag": "v1.0.0"}
    client = client_for(store)
    response, _ = post(client, GITLAB, payload, "release")
    assert response.status_code == 202, response.text
    assert "release" in settled(client, response)["reason"]
