"""Azure DevOps service hooks become the records a sync makes from the same objects.

Payloads: the envelope of the documented service hook samples (``id``, ``eventType``, ``publisherId``,
``resource``, ``resourceContainers``, ``createdDate``) around the recorded REST objects of
shared/fixtures/api-recordings/azuredevops_go (pull request 1, build 12), and work items in the
documented shapes (``workitem.created``: the work item; ``workitem.updated``: ``fields`` with
``oldValue``/``newValue`` and the whole ``revision``).
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from obeya.connectors.azuredevops.normalizer import normalize
from obeya.connectors.raw import raw_event
from obeya.model import Scope, ValueStream
from obeya.model.records import (
    Change,
    ChangeCommit,
    Person,
    PipelineRun,
    Record,
    Review,
    StatusTransition,
    WorkItem,
)
from obeya.store import Store
from tests.api.webhooks.deliveries import client_for, settled, table_counts
from tests.shared_fixtures import API_RECORDINGS

SECRET = "azure-hook-password"
VARIABLE = "OBEYA_WEBHOOK_SECRET_AZUREDEVOPS"
PATH = "/api/v1/webhooks/azuredevops"
PROJECT = "test-project"
CONTAINERS = {
    "collection": {"id": "c12d0eb8-e382-443b-9f9c-c52cba5014c2"},
    "account": {"id": "f844ec47-a9db-4511-8281-8b63f4eaf94e"},
    "project": {"id": "7a3fd40e-2aed-4fac-bac9-511bf1a70206"},
}
JANE = {
    "id": "aa000000-0000-0000-0000-00000000000a",
    "displayName": "Jane Roe",
    "uniqueName": "jane@example.com",
}
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
WORK_ITEM_FIELDS = (
    "id",
    "key",
    "title",
    "project",
    "tool_type",
    "flow_item_type",
    "status",
    "flow_state",
    "stage",
    "assignee_id",
    "labels",
    "priority",
    "created_at",
    "started_at",
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


def _recorded(name: str) -> dict[str, Any]:
    path = API_RECORDINGS / "azuredevops_go" / f"_raw_azuredevops_go_api_{name}.jsonl"
    first: dict[str, Any] = json.loads(path.read_text().splitlines()[0])["data"]
    return first


def _envelope(
    event: str, resource: dict[str, Any], created: str = "2023-02-08T09:00:00.5Z"
) -> dict[str, Any]:
    return {
        "subscriptionId": "aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e",
        "notificationId": 4,
        "id": str(uuid.uuid4()),
        "eventType": event,
        "publisherId": "tfs",
        "message": {"text": f"{event} happened"},
        "detailedMessage": {"text": f"{event} happened"},
        "resource": resource,
        "resourceVersion": "1.0",
        "resourceContainers": CONTAINERS,
        "createdDate": created,
    }


def _basic(password: str, user: str = "obeya") -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _post(client: TestClient, payload: Any, headers: dict[str, str] | None = None) -> Any:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    response = client.post(PATH, content=body, headers=_basic(SECRET) if headers is None else headers)
    receiver = getattr(client.app.state, "webhook_receiver", None)  # type: ignore[attr-defined]
    if receiver is not None:
        assert receiver.wait_idle(timeout=30)
    return response


def _declare(store: Store) -> None:
    store.upsert_records(
        [
            ValueStream(source="obeya", external_id="pay", name="Payments"),
            Scope(
                source="obeya",
                external_id="pay-ado",
                value_stream_id="obeya:pay",
                tool="azuredevops",
                object_type="project",
                object_key=PROJECT,
            ),
        ]
    )


def _rest(kind: str, key: str, item: Any, *more: tuple[str, str, Any]) -> list[Record]:
    """What the sync's normalizer makes of the same objects, as the collector keeps them."""
    now = datetime.now(UTC)
    events = [raw_event("azuredevops", kind, key, item, connection=None, received_at=now)]
    events += [raw_event("azuredevops", k, key2, i, connection=None, received_at=now) for k, key2, i in more]
    return normalize(events).records


def _fields(record: Record, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(record, name) for name in names}


def _naive(moment: datetime | None) -> datetime | None:
    """As the store gives times back: naive UTC."""
    return None if moment is None else moment.astimezone(UTC).replace(tzinfo=None)


def _stored_fields(record: Record, names: tuple[str, ...]) -> dict[str, Any]:
    return {k: _naive(v) if isinstance(v, datetime) else v for k, v in _fields(record, names).items()}


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VARIABLE, SECRET)


def test_pull_request_created_then_merged_make_the_change_a_sync_makes(store: Store) -> None:
    _declare(store)
    client = client_for(store)
    pull_request = _recorded("pull_requests")
    assert pull_request["repository"]["project"]["name"] == PROJECT
    response = _post(client, _envelope("git.pullrequest.created", pull_request))
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "accepted"
    outcome = settled(client, response)
    assert outcome["outcome"] == "normalized", outcome
    assert outcome["records"]["change"] == 1

    merged = copy.deepcopy(pull_request)
    merged.update(status="completed", closedDate="2023-02-09T10:30:00.25Z")
    merged["commits"] = [{"commitId": "85ede91717145a1e6e2bdab4cab689ac8f2fa3a2", "url": "https://x"}]
    response = _post(client, _envelope("git.pullrequest.merged", merged))
    assert settled(client, response)["outcome"] == "normalized"

    (change,) = store.fetch_records("change")
    (expected,) = [
        r for r in _rest("pull_request", f"{PROJECT}/test-repo2!1", merged) if isinstance(r, Change)
    ]
    assert isinstance(change, Change)
    assert _fields(change, CHANGE_FIELDS) == _stored_fields(expected, CHANGE_FIELDS)
    assert change.id == "azuredevops:test-project/test-repo2!1"
    assert change.state == "merged"
    assert change.merge_commit_sha == "ebc6c7a2a5e3c155510d0ba44fd4385bf7ae6e22"
    assert change.raw_event_id == f"azuredevops:{json.loads(response.request.content)['id']}"
    (link,) = store.fetch_records("change_commit")
    assert isinstance(link, ChangeCommit)
    assert (link.change_id, link.commit_sha) == (change.id, "85ede91717145a1e6e2bdab4cab689ac8f2fa3a2")
    people = {p.id: p for p in store.fetch_records("person") if isinstance(p, Person)}
    assert people["azuredevops:user/bc538feb-9fdd-6cf8-80e1-7c56950d0289"].display_name == "JohnDoe"


def test_a_vote_on_an_update_is_timed_by_the_delivery_and_keeps_its_time(store: Store) -> None:
    _declare(store)
    client = client_for(store)
    pull_request = _recorded("pull_requests")
    pull_request["reviewers"] = [{**JANE, "vote": 10}]
    _post(client, _envelope("git.pullrequest.updated", pull_request, created="2023-02-08T09:15:00Z"))
    _post(client, _envelope("git.pullrequest.updated", pull_request, created="2023-02-09T12:00:00Z"))
    (review,) = store.fetch_records("review")
    assert isinstance(review, Review)
    assert review.id == f"azuredevops:{PROJECT}/test-repo2!1/reviewers/{JANE['id']}"
    assert (review.state, review.submitted_at) == ("approved", datetime(2023, 2, 8, 9, 15))
    pull_request["reviewers"] = [{**JANE, "vote": -10}]  # she changes her mind: a new verdict, a new time
    _post(client, _envelope("git.pullrequest.updated", pull_request, created="2023-02-10T08:00:00Z"))
    (review,) = store.fetch_records("review")
    assert isinstance(review, Review)
    assert (review.state, review.submitted_at) == ("changes_requested", datetime(2023, 2, 10, 8, 0))


def test_build_complete_makes_the_pipeline_run_a_sync_makes(store: Store) -> None:
    _declare(store)
    client = client_for(store)
    build = _recorded("builds")
    build["project"] = {**build["project"], "name": PROJECT}  # the project as the connection names it
    response = _post(client, _envelope("build.complete", build))
    outcome = settled(client, response)
    assert (outcome["outcome"], outcome["records"]["pipeline_run"]) == ("normalized", 1)
    (run,) = store.fetch_records("pipeline_run")
    (expected,) = [r for r in _rest("build", f"{PROJECT}/builds/12", build) if isinstance(r, PipelineRun)]
    assert isinstance(run, PipelineRun)
    assert _fields(run, RUN_FIELDS) == _stored_fields(expected, RUN_FIELDS)
    assert (run.id, run.result, run.commit_sha) == (
        "azuredevops:test-project/builds/12",
        "success",
        "40c59264e73fc5e1a6cab192f1622d26b7bd5c2a",
    )


def test_the_older_build_shape_gives_its_result_and_commit(store: Store) -> None:
    _declare(store)
    client = client_for(store)
    documented = {  # the documented build.complete sample (resourceVersion 1.0), with its project's name
        "uri": "vstfs:///Build/Build/2",
        "id": 2,
        "buildNumber": "ConsumerAddressModule_20150407.1",
        "startTime": "2015-04-07T18:04:06.83Z",
        "finishTime": "2015-04-07T18:06:10.69Z",
        "reason": "manual",
        "status": "succeeded",
        "sourceGetVersion": "LG:refs/heads/master:600c52d2d5b655caa111abfd863e5a9bd304bb0e",
        "definition": {"id": 2, "name": "ConsumerAddressModule"},
        "requests": [{"id": 1, "requestedFor": JANE}],
        "project": {"id": "be9b3917-87e6-42a4-a549-2bc06a7a878f", "name": PROJECT},
    }
    _post(client, _envelope("build.complete", documented))
    (run,) = store.fetch_records("pipeline_run")
    assert isinstance(run, PipelineRun)
    assert (run.pipeline, run.result, run.commit_sha, run.branch) == (
        "ConsumerAddressModule",
        "success",
        "600c52d2d5b655caa111abfd863e5a9bd304bb0e",
        "master",
    )
    assert (run.created_at, run.finished_at) == (
        datetime(2015, 4, 7, 18, 4, 6, 830000),
        datetime(2015, 4, 7, 18, 6, 10, 690000),
    )
    assert {p.id for p in store.fetch_records("person")} == {f"azuredevops:user/{JANE['id']}"}

    nameless = {k: v for k, v in documented.items() if k != "project"} | {"id": 3}
    response = _post(client, _envelope("build.complete", nameless))
    outcome = settled(client, response)
    assert outcome["outcome"] == "stored"
    assert "body.resource.project.name is missing from the build.complete event" in outcome["reason"]
    assert store.count("pipeline_run") == 1


def _work_item(rev: int, state: str, changed: str, **more: Any) -> dict[str, Any]:
    return {
        "id": 5,
        "rev": rev,
        "fields": {
            "System.AreaPath": PROJECT,
            "System.TeamProject": PROJECT,
            "System.WorkItemType": "Bug",
            "System.State": state,
            "System.CreatedDate": "2014-07-15T17:42:44.663Z",
            "System.CreatedBy": JANE,
            "System.ChangedDate": changed,
            "System.ChangedBy": JANE,
            "System.Title": "Some great new idea!",
            "Microsoft.VSTS.Common.Priority": 2,
            **more,
        },
        "url": "https://dev.azure.com/fabrikam/_apis/wit/workItems/5",
    }


def _updated(item: dict[str, Any], old_state: str | None) -> dict[str, Any]:
    fields: dict[str, Any] = {"System.Rev": {"oldValue": item["rev"] - 1, "newValue": item["rev"]}}
    if old_state is not None:
        fields["System.State"] = {"oldValue": old_state, "newValue": item["fields"]["System.State"]}
    return {
        "id": item["rev"] - 1,
        "workItemId": item["id"],
        "rev": item["rev"] - 1,
        "revisedBy": JANE,
        "revisedDate": "9999-01-01T00:00:00Z",
        "fields": fields,
        "revision": item,
        "url": "https://dev.azure.com/fabrikam/_apis/wit/workItems/5/updates/1",
    }


def test_work_item_created_and_updated_make_the_work_item_and_transitions_a_sync_makes(store: Store) -> None:
    _declare(store)
    client = client_for(store)
    revisions = [
        _work_item(1, "New", "2014-07-15T17:42:44.663Z"),
        _work_item(2, "Active", "2014-07-16T09:00:00Z", **{"System.AssignedTo": JANE}),
        _work_item(
            3, "Active", "2014-07-16T11:00:00Z", **{"System.AssignedTo": JANE, "System.Title": "Renamed"}
        ),
        _work_item(4, "Resolved", "2014-07-18T15:30:00.5Z", **{"System.AssignedTo": JANE}),
    ]
    assert (
        settled(client, _post(client, _envelope("workitem.created", revisions[0])))["outcome"] == "normalized"
    )
    for previous, item in itertools.pairwise(revisions):
        changed = previous["fields"]["System.State"] != item["fields"]["System.State"]
        response = _post(
            client,
            _envelope(
                "workitem.updated", _updated(item, previous["fields"]["System.State"] if changed else None)
            ),
        )
        assert settled(client, response)["outcome"] == "normalized"
    key = f"{PROJECT}/5"
    expected = _rest(
        "work_item", key, revisions[-1], *(("work_item_revision", f"{key}/{r['rev']}", r) for r in revisions)
    )
    (work_item,) = store.fetch_records("work_item")
    (rest_item,) = [r for r in expected if isinstance(r, WorkItem)]
    assert isinstance(work_item, WorkItem)
    assert _fields(work_item, WORK_ITEM_FIELDS) == _stored_fields(rest_item, WORK_ITEM_FIELDS)
    assert (work_item.status, work_item.started_at) == ("Resolved", datetime(2014, 7, 16, 9, 0))
    assert work_item.done_at == datetime(2014, 7, 18, 15, 30, 0, 500000)
    stored = sorted(
        (_fields(t, TRANSITION_FIELDS) for t in store.fetch_records("status_transition")),
        key=lambda f: f["id"],
    )
    rest = sorted(
        (_stored_fields(t, TRANSITION_FIELDS) for t in expected if isinstance(t, StatusTransition)),
        key=lambda f: f["id"],
    )
    assert stored == rest
    assert [t["id"] for t in stored] == [f"azuredevops:{key}/rev/{n}" for n in (1, 2, 4)]
    assert [(t["from_status"], t["to_status"]) for t in stored] == [
        (None, "New"),
        ("New", "Active"),
        ("Active", "Resolved"),
    ]


def test_a_comment_on_a_done_work_item_keeps_when_it_was_done(store: Store) -> None:
    _declare(store)
    client = client_for(store)
    done = _work_item(2, "Closed", "2014-07-20T10:00:00Z")
    _post(client, _envelope("workitem.updated", _updated(done, "New")))
    commented = _work_item(3, "Closed", "2014-07-25T08:00:00Z", **{"System.History": "Thanks!"})
    _post(client, _envelope("workitem.commented", commented))
    (work_item,) = store.fetch_records("work_item")
    assert isinstance(work_item, WorkItem)
    assert (work_item.done_at, work_item.updated_at) == (
        datetime(2014, 7, 20, 10, 0),
        datetime(2014, 7, 25, 8, 0),
    )


def test_basic_auth_or_token_header_is_checked_and_a_refusal_stores_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    _declare(store)
    client = client_for(store)
    before = table_counts(store)
    payload = _envelope("build.complete", _recorded("builds"))
    for headers, detail in [
        ({}, "neither Authorization (basic authentication) nor X-Obeya-Token is sent"),
        (_basic("wrong"), "does not match"),
        ({"Authorization": "Basic not-base64!"}, "does not match"),
        ({"X-Obeya-Token": "wrong"}, "does not match"),
    ]:
        response = _post(client, payload, headers)
        assert response.status_code == 401, response.text
        assert detail in response.json()["detail"]
        assert f"${VARIABLE}" in response.json()["detail"]
    assert table_counts(store) == before
    assert _post(client, payload, {"X-Obeya-Token": SECRET}).status_code == 202
    again = _post(client, payload, _basic(SECRET, user="anyone"))
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")  # deduped by the event id
    assert len(store.fetch_records("raw_event", "source = ?", ["azuredevops"])) == 1

    monkeypatch.delenv(VARIABLE)
    refused = _post(client, _envelope("build.complete", _recorded("builds")))
    assert refused.status_code == 401
    assert refused.json()["detail"] == f"webhook secret not configured: set {VARIABLE}"


def test_a_malformed_body_is_refused_with_what_is_wrong(store: Store) -> None:
    client = client_for(store)
    before = table_counts(store)
    for body, detail in [
        (b'{"id": "x",', "body is not JSON"),
        ({"eventType": "build.complete", "resource": {}}, "body.id is missing from the Azure DevOps event"),
        ({"id": "a1", "resource": {}}, "body.eventType is missing from the Azure DevOps event"),
        (
            {"id": "a1", "eventType": "build.complete"},
            "body.resource is missing from the build.complete event",
        ),
        (
            {"id": "a1", "eventType": "build.complete", "resource": []},
            "body.resource of the build.complete event is a list",
        ),
    ]:
        response = _post(client, body)
        assert response.status_code == 400, response.text
        assert detail in response.json()["detail"]
    assert table_counts(store) == before


def test_events_kept_raw_ignored_or_out_of_scope(store: Store) -> None:
    _declare(store)
    client = client_for(store)
    deleted = _post(client, _envelope("workitem.deleted", _work_item(4, "New", "2014-07-15T17:42:44Z")))
    outcome = settled(client, deleted)
    assert outcome["outcome"] == "stored"
    assert "workitem.deleted events are kept raw only" in outcome["reason"]
    checkin = _post(client, _envelope("tfvc.checkin", {"changesetId": 18}))
    assert (checkin.status_code, checkin.json()["status"]) == (202, "ignored")
    other = _recorded("builds")
    other["project"] = {"id": "x", "name": "another-project"}
    elsewhere = settled(client, _post(client, _envelope("build.complete", other)))
    assert (elsewhere["outcome"], elsewhere["unknown_scope"]) == ("unknown_scope", "another-project")
    assert store.count("work_item") == store.count("pipeline_run") == 0
    status = client.get("/api/v1/webhooks/status").json()["sources"]["azuredevops"]
    assert (status["received"], status["stored_raw_only"], status["ignored"], status["unknown_scope"]) == (
        3,
        1,
        1,
        1,
    )


def test_the_project_is_spelled_as_the_connection_spells_it(store: Store) -> None:
    _declare(store)  # the scope says "test-project", as the connection's `projects:` do
    client = client_for(store)
    build = _recorded("builds")
    build["project"] = {**build["project"], "name": "Test-Project"}  # Azure's names ignore case
    assert settled(client, _post(client, _envelope("build.complete", build)))["outcome"] == "normalized"
    (run,) = store.fetch_records("pipeline_run")
    assert run.id == "azuredevops:test-project/builds/12"  # the id a sync of the connection gives


def test_the_generic_receiver_leaves_azuredevops_to_its_own(store: Store) -> None:
    client = client_for(store)
    response = client.post("/api/v1/webhooks/generic/azuredevops", content=b"{}")
    assert response.status_code == 404
    assert "POST to /api/v1/webhooks/azuredevops instead" in response.json()["detail"]
