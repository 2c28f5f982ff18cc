"""GitLab Issue, Note, Job, Deployment and Push hooks become the records a sync makes of the same objects.

The payloads are GitLab's documented examples (docs.gitlab.com, "Webhook events": issue, comment on a merge
request, job, deployment and push events), trimmed to the fields Obeya reads and moved to the project
``acme/shop``. Each test posts them to ``/api/v1/webhooks/gitlab`` (or, for the field-by-field comparisons
of notes, gives them to the adapter directly) and compares what is stored with what the REST normalizer
makes of the REST API's answer for the same object.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from obeya.api.webhooks.gitlab import normalize_webhook
from obeya.connectors.gitlab.normalizer import normalize
from obeya.connectors.raw import raw_event
from obeya.model.records import (
    ChangeComment,
    Commit,
    Deployment,
    Person,
    PipelineJob,
    Record,
    Review,
    StatusTransition,
    WorkItem,
)
from obeya.model.vocabulary import EnvironmentClass, FlowState
from obeya.normalize.rules import MappingRules
from obeya.store import Store
from tests.api.webhooks.deliveries import CASES, SECRET, client_for, declare_scopes

GITLAB = next(c for c in CASES if c.tool == "gitlab")
PROJECT = {
    "id": 7,
    "name": "shop",
    "path_with_namespace": "acme/shop",
    "web_url": "https://gitlab.example/acme/shop",
}
ROOT = {"id": 1, "name": "Administrator", "username": "root", "email": "admin@example.com"}
ISSUE_FIELDS = (
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
    "created_at",
    "done_at",
    "canceled_at",
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


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(GITLAB.secret_env, SECRET)


def _deliver(client: TestClient, payload: dict[str, Any], hook: str) -> str:
    """Post a delivery as GitLab does and wait until the receiver has settled it; its delivery id."""
    delivery = str(uuid.uuid4())
    headers = {"X-Gitlab-Token": SECRET, "X-Gitlab-Event": hook, "X-Gitlab-Event-UUID": delivery}
    response = client.post(GITLAB.path, content=json.dumps(payload).encode(), headers=headers)
    assert (response.status_code, response.json()["status"]) == (202, "accepted"), response.text
    receiver = getattr(client.app.state, "webhook_receiver", None)  # type: ignore[attr-defined]
    wait_idle = getattr(receiver, "wait_idle", None)
    if wait_idle is not None:  # a receiver that normalizes after answering
        assert wait_idle(timeout=30)
    return delivery


def _rest(*events: tuple[str, str, Any]) -> list[Record]:
    """What the REST normalizer makes of REST answers (event type, key, item)."""
    now = datetime.now(UTC)
    raw = [
        raw_event("gitlab", kind, key, item, connection=None, received_at=now) for kind, key, item in events
    ]
    return normalize(raw).records


def _fields(record: Record, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(record, name) for name in names}


def _transitions(store: Store, item_id: str) -> list[StatusTransition]:
    found = store.fetch_records("status_transition", "work_item_id = ?", [item_id])
    return sorted((t for t in found if isinstance(t, StatusTransition)), key=lambda t: t.at)


# --- Issue Hook -----------------------------------------------------------------------------------------


def _issue_hook(action: str, state: str, updated_at: str, closed_at: str | None) -> dict[str, Any]:
    label = {"id": 206, "title": "API", "color": "#ffffff", "project_id": 7, "type": "ProjectLabel"}
    return {
        "object_kind": "issue",
        "event_type": "issue",
        "user": ROOT,
        "project": PROJECT,
        "object_attributes": {
            "id": 301,
            "iid": 23,
            "title": "New API: create/update/delete file",
            "assignee_ids": [51],
            "assignee_id": 51,
            "author_id": 51,
            "project_id": 7,
            "created_at": "2013-12-03T17:15:43Z",
            "updated_at": updated_at,
            "closed_at": closed_at,
            "state_id": 2 if state == "closed" else 1,
            "description": "Create new API for manipulations with repository",
            "type": "Issue",
            "url": "https://gitlab.example/acme/shop/-/issues/23",
            "state": state,
            "action": action,
            "labels": [label],
        },
        "assignees": [{"id": 51, "name": "User1", "username": "user1"}],
        "labels": [label],
    }


def test_issue_closed_and_reopened_by_hooks_keeps_every_transition(store: Store) -> None:
    declare_scopes(store)
    client = client_for(store)
    opened = _deliver(client, _issue_hook("open", "opened", "2013-12-03T17:15:43Z", None), "Issue Hook")
    closed = _deliver(
        client,
        _issue_hook("close", "closed", "2013-12-04 09:00:00 UTC", "2013-12-04 09:00:00 UTC"),
        "Issue Hook",
    )
    item = store.fetch_records("work_item", "id = ?", ["gitlab:acme/shop#23"])[0]
    assert isinstance(item, WorkItem)
    assert (item.status, item.flow_state, item.done_at, item.labels, item.assignee_id) == (
        "closed",
        FlowState.DONE,
        datetime(2013, 12, 4, 9),
        ["API"],
        "gitlab:user/51",
    )
    assert item.raw_event_id == f"gitlab:{closed}"

    # The same issue and its close as the REST API answers them (issues, resource_state_events).
    rest_issue = {
        "id": 301,
        "iid": 23,
        "title": "New API: create/update/delete file",
        "state": "closed",
        "issue_type": "issue",
        "labels": ["API"],
        "author": {"id": 51, "username": "user1"},
        "assignees": [{"id": 51, "username": "user1"}],
        "created_at": "2013-12-03T17:15:43.000Z",
        "updated_at": "2013-12-04T09:00:00.000Z",
        "closed_at": "2013-12-04T09:00:00.000Z",
        "closed_by": ROOT,
    }
    close_event = {"id": 142, "user": ROOT, "created_at": "2013-12-04T09:00:00.077Z", "state": "closed"}
    synced = _rest(
        ("issue", "acme/shop#23", rest_issue), ("issue_state_events", "acme/shop#23", [close_event])
    )
    (expected_item,) = [r for r in synced if isinstance(r, WorkItem)]
    assert _fields(item, ISSUE_FIELDS) == _fields(expected_item, ISSUE_FIELDS)
    expected = sorted((r for r in synced if isinstance(r, StatusTransition)), key=lambda t: t.at)
    hooked = _transitions(store, item.id)
    assert (
        [t.id for t in hooked]
        == [t.id for t in expected]
        == [
            "gitlab:acme/shop#23/created",
            "gitlab:acme/shop#23/closed@2013-12-04T09:00:00Z",
        ]
    )
    # Field by field; the sync's event is 77 ms later than the hook's second, so only `at` differs by that.
    assert [_fields(t, TRANSITION_FIELDS[:2] + TRANSITION_FIELDS[3:]) for t in hooked] == [
        _fields(t, TRANSITION_FIELDS[:2] + TRANSITION_FIELDS[3:]) for t in expected
    ]
    assert opened != closed and {t.raw_event_id for t in hooked} == {f"gitlab:{closed}"}  # each hook restates
    assert (hooked[1].at, hooked[1].from_status, hooked[1].to_status, hooked[1].author_id) == (
        datetime(2013, 12, 4, 9),
        "open",
        "closed",
        "gitlab:user/1",
    )

    reopened = _deliver(client, _issue_hook("reopen", "opened", "2013-12-05T10:00:00Z", None), "Issue Hook")
    item = store.fetch_records("work_item", "id = ?", ["gitlab:acme/shop#23"])[0]
    assert (item.status, item.flow_state, item.done_at) == ("open", FlowState.WAITING, None)
    hooked = _transitions(store, item.id)
    assert [(t.id, t.from_status, t.to_status, t.at) for t in hooked] == [
        ("gitlab:acme/shop#23/created", None, "open", datetime(2013, 12, 3, 17, 15, 43)),
        ("gitlab:acme/shop#23/closed@2013-12-04T09:00:00Z", "open", "closed", datetime(2013, 12, 4, 9)),
        ("gitlab:acme/shop#23/reopened@2013-12-05T10:00:00Z", "closed", "open", datetime(2013, 12, 5, 10)),
    ]
    assert (hooked[2].from_flow_state, hooked[2].to_flow_state) == (FlowState.DONE, FlowState.WAITING)
    assert hooked[2].raw_event_id == f"gitlab:{reopened}"
    current = store.query("SELECT current_state, last_done_at FROM flow_items WHERE item_id = ?", [item.id])
    assert current == [("waiting", datetime(2013, 12, 4, 9))]  # open again: the close is history


def test_later_hook_of_a_closed_issue_restates_its_close_without_adding_one(store: Store) -> None:
    declare_scopes(store)
    client = client_for(store)
    close = _issue_hook("close", "closed", "2013-12-04 09:00:00 UTC", "2013-12-04 09:00:00 UTC")
    _deliver(client, close, "Issue Hook")
    relabelled = _issue_hook("update", "closed", "2013-12-06 08:00:00 UTC", "2013-12-04 09:00:00 UTC")
    relabelled["object_attributes"]["title"] = "New API: files"
    _deliver(client, relabelled, "Issue Hook")
    item = store.fetch_records("work_item", "id = ?", ["gitlab:acme/shop#23"])[0]
    assert (item.title, item.status, item.done_at) == ("New API: files", "closed", datetime(2013, 12, 4, 9))
    assert [(t.id, t.at) for t in _transitions(store, item.id)] == [
        ("gitlab:acme/shop#23/created", datetime(2013, 12, 3, 17, 15, 43)),
        ("gitlab:acme/shop#23/closed@2013-12-04T09:00:00Z", datetime(2013, 12, 4, 9)),
    ]  # no second close, and no `/closed` beside it


def test_later_hook_of_a_closed_issue_keeps_who_closed_it(store: Store) -> None:
    declare_scopes(store)
    client = client_for(store)
    close = _issue_hook("close", "closed", "2013-12-04 09:00:00 UTC", "2013-12-04 09:00:00 UTC")
    _deliver(client, close, "Issue Hook")  # closed by the hook's user, root (gitlab:user/1)
    relabelled = _issue_hook("update", "closed", "2013-12-06 08:00:00 UTC", "2013-12-04 09:00:00 UTC")
    relabelled["user"] = {"id": 51, "name": "User1", "username": "user1", "email": "user1@example.com"}
    _deliver(client, relabelled, "Issue Hook")  # updated later by someone else
    closes = [t for t in _transitions(store, "gitlab:acme/shop#23") if t.to_status == "closed"]
    assert [(t.id, t.author_id) for t in closes] == [
        ("gitlab:acme/shop#23/closed@2013-12-04T09:00:00Z", "gitlab:user/1")
    ]


# --- Note Hook ------------------------------------------------------------------------------------------


def _note_hook(note: str, system: bool = False, noteable: str = "MergeRequest") -> dict[str, Any]:
    return {
        "object_kind": "note",
        "event_type": "note",
        "user": ROOT,
        "project_id": 7,
        "project": PROJECT,
        "object_attributes": {
            "id": 1244,
            "note": note,
            "noteable_type": noteable,
            "author_id": 1,
            "created_at": "2015-05-17 18:21:36 UTC",
            "updated_at": "2015-05-17 18:21:36 UTC",
            "project_id": 7,
            "attachment": None,
            "line_code": None,
            "commit_id": "",
            "noteable_id": 7,
            "system": system,
            "st_diff": None,
            "url": "https://gitlab.example/acme/shop/-/merge_requests/1#note_1244",
        },
        "merge_request": {
            "id": 7,
            "iid": 1,
            "target_branch": "markdown",
            "source_branch": "master",
            "title": "Tempora et eos debitis quae laborum et.",
            "created_at": "2015-03-01 20:12:53 UTC",
            "updated_at": "2015-03-21 18:27:27 UTC",
            "state": "opened",
        },
    }


def _normalize_hook(payload: dict[str, Any]) -> tuple[str, Any]:
    delivery = raw_event(
        "gitlab", "note", str(uuid.uuid4()), payload, connection=None, received_at=datetime.now(UTC)
    )
    return delivery.id, normalize_webhook(delivery, payload, MappingRules())


def test_merge_request_comment_hook_is_stored_as_the_change_comment(store: Store) -> None:
    declare_scopes(store)
    client = client_for(store)
    delivery = _deliver(client, _note_hook("This MR needs work."), "Note Hook")  # answered 202 accepted
    comments = store.fetch_records("change_comment")
    assert [(c.id, c.change_id, c.author_id, c.body, c.raw_event_id) for c in comments] == [
        (
            "gitlab:acme/shop!1/notes/1244",
            "gitlab:acme/shop!1",
            "gitlab:user/1",
            "This MR needs work.",
            f"gitlab:{delivery}",
        )
    ]
    outcome = client.get(f"/api/v1/webhooks/deliveries/gitlab/{delivery}").json()
    assert (outcome["outcome"], outcome["records"]["change_comment"]) == ("normalized", 1)


def test_merge_request_comment_hook_makes_the_comment_a_sync_makes() -> None:
    delivery, result = _normalize_hook(_note_hook("This MR needs work."))
    assert result.failures == [] and result.skipped == []
    (comment,) = [r for r in result.records if isinstance(r, ChangeComment)]
    rest_note = {
        "id": 1244,
        "body": "This MR needs work.",
        "author": ROOT,
        "created_at": "2015-05-17T18:21:36.000Z",
        "system": False,
    }
    (expected,) = _rest(("merge_request_note", "acme/shop!1/notes/1244", rest_note))
    names = ("id", "change_id", "author_id", "created_at", "body", "path")
    assert _fields(comment, names) == _fields(expected, names)
    assert _fields(comment, names) == {
        "id": "gitlab:acme/shop!1/notes/1244",
        "change_id": "gitlab:acme/shop!1",
        "author_id": "gitlab:user/1",
        "created_at": datetime(2015, 5, 17, 18, 21, 36),
        "body": "This MR needs work.",
        "path": None,
    }
    assert comment.raw_event_id == delivery
    assert [r.id for r in result.records if isinstance(r, Person)] == ["gitlab:user/1"]


def test_approval_note_hook_is_a_review() -> None:
    _, result = _normalize_hook(_note_hook("approved this merge request", system=True))
    (review,) = [r for r in result.records if isinstance(r, Review)]
    assert (review.id, review.change_id, review.reviewer_id, review.state, review.submitted_at) == (
        "gitlab:acme/shop!1/notes/1244",
        "gitlab:acme/shop!1",
        "gitlab:user/1",
        "approved",
        datetime(2015, 5, 17, 18, 21, 36),
    )


def test_comment_on_an_issue_is_kept_raw_with_the_reason() -> None:
    payload = _note_hook("Hello world", noteable="Issue")
    with pytest.raises(ValueError, match="notes on a Issue are not normalized"):
        _normalize_hook(payload)


# --- Job Hook -------------------------------------------------------------------------------------------


def _job_hook(status: str, environment: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "object_kind": "build",
        "type": "Build",
        "ref": "main",
        "tag": False,
        "before_sha": "2293ada6b400935a1378653304eaf6221e0fdb8f",
        "sha": "2293ada6b400935a1378653304eaf6221e0fdb8f",
        "retries_count": 0,
        "build_id": 1977,
        "build_name": "deploy",
        "build_stage": "deploy",
        "build_status": status,
        "build_created_at": "2021-02-23T02:41:37.886Z",
        "build_started_at": "2021-02-23T02:42:00.000Z",
        "build_finished_at": "2021-02-23T02:45:30.500Z" if status == "success" else None,
        "build_duration": 210.5 if status == "success" else None,
        "build_allow_failure": False,
        "pipeline_id": 2366,
        "project_id": 7,
        "project_name": "acme / shop",
        "user": {"id": 3, "name": "User", "email": "user@gitlab.com"},
        "commit": {"id": 2366, "name": "Build pipeline", "sha": "2293ada6b400935a1378653304eaf6221e0fdb8f"},
        "project": PROJECT,
        "environment": environment,
    }


def test_job_hook_makes_the_job_a_sync_makes(store: Store) -> None:
    declare_scopes(store)
    client = client_for(store)
    environment = {"name": "production", "action": "start", "deployment_tier": "production"}
    delivery = _deliver(client, _job_hook("success", environment), "Job Hook")
    (job,) = store.fetch_records("pipeline_job")
    assert isinstance(job, PipelineJob)
    rest_job = {
        "id": 1977,
        "name": "deploy",
        "stage": "deploy",
        "status": "success",
        "environment": {"name": "production"},
        "started_at": "2021-02-23T02:42:00.000Z",
        "finished_at": "2021-02-23T02:45:30.500Z",
        "pipeline": {"id": 2366},
    }
    (expected,) = _rest(("job", "acme/shop/jobs/1977", rest_job))
    names = ("id", "run_id", "name", "stage", "result", "environment", "started_at", "finished_at")
    assert _fields(job, names) == _fields(expected, names)
    assert _fields(job, names) == {
        "id": "gitlab:acme/shop/jobs/1977",
        "run_id": "gitlab:acme/shop/pipelines/2366",
        "name": "deploy",
        "stage": "deploy",
        "result": "success",
        "environment": "production",
        "started_at": datetime(2021, 2, 23, 2, 42),
        "finished_at": datetime(2021, 2, 23, 2, 45, 30, 500000),
    }
    assert job.raw_event_id == f"gitlab:{delivery}"

    _deliver(client, {**_job_hook("running"), "build_id": 1978}, "Job Hook")
    running = store.fetch_records("pipeline_job", "id = ?", ["gitlab:acme/shop/jobs/1978"])[0]
    assert (running.result, running.finished_at, running.environment) == ("running", None, None)


# --- Deployment Hook ------------------------------------------------------------------------------------

SHA = "279484c09fbe69ededfced8c1bb6e6d24616b468"


def _deployment_hook(status: str, environment: str, changed_at: str) -> dict[str, Any]:
    return {
        "object_kind": "deployment",
        "status": status,
        "status_changed_at": changed_at,
        "deployment_id": 15,
        "deployable_id": 796,
        "deployable_url": "https://gitlab.example/acme/shop/-/jobs/796",
        "environment": environment,
        "environment_tier": environment,
        "environment_slug": environment,
        "environment_external_url": f"https://{environment}.example.com",
        "project": PROJECT,
        "short_sha": SHA[:8],
        "user": ROOT,
        "user_url": "https://gitlab.example/root",
        "commit_url": f"https://gitlab.example/acme/shop/-/commit/{SHA}",
        "commit_title": "Add new file",
    }


def test_deployment_hooks_make_the_deployment_running_then_finished(store: Store) -> None:
    declare_scopes(store)
    client = client_for(store)
    _deliver(
        client, _deployment_hook("running", "production", "2021-04-28 21:45:00 +0200"), "Deployment Hook"
    )
    (running,) = store.fetch_records("deployment")
    assert isinstance(running, Deployment)
    assert (running.result, running.started_at, running.finished_at) == (
        "running",
        datetime(2021, 4, 28, 19, 45),
        None,
    )
    delivery = _deliver(
        client, _deployment_hook("success", "production", "2021-04-28 21:50:00 +0200"), "Deployment Hook"
    )
    (deployment,) = store.fetch_records("deployment")
    assert isinstance(deployment, Deployment)
    assert _fields(
        deployment,
        (
            "id",
            "service",
            "environment",
            "environment_class",
            "repo",
            "commit_sha",
            "result",
            "finished_at",
            "url",
        ),
    ) == {
        "id": "gitlab:acme/shop/deployments/15",
        "service": "acme/shop",
        "environment": "production",
        "environment_class": EnvironmentClass.PRODUCTION,
        "repo": "acme/shop",
        "commit_sha": SHA,  # from commit_url: the hook names only the short sha
        "result": "success",
        "finished_at": datetime(2021, 4, 28, 19, 50),
        "url": "https://gitlab.example/acme/shop/-/jobs/796",
    }
    assert deployment.raw_event_id == f"gitlab:{delivery}"


def test_finished_deployment_hook_keeps_the_start_a_running_hook_gave(store: Store) -> None:
    declare_scopes(store)
    client = client_for(store)
    _deliver(
        client, _deployment_hook("running", "production", "2021-04-28 21:45:00 +0200"), "Deployment Hook"
    )
    _deliver(
        client, _deployment_hook("success", "production", "2021-04-28 21:50:00 +0200"), "Deployment Hook"
    )
    (deployment,) = store.fetch_records("deployment")
    assert isinstance(deployment, Deployment)
    assert (deployment.result, deployment.started_at, deployment.finished_at) == (
        "success",
        datetime(2021, 4, 28, 19, 45),
        datetime(2021, 4, 28, 19, 50),
    )


def test_finished_deployment_hook_keeps_the_start_and_pipeline_of_the_sync(store: Store) -> None:
    declare_scopes(store)
    rest_deployment = {  # GET /projects/:id/deployments while it runs (docs.gitlab.com, Deployments API)
        "id": 15,
        "iid": 2,
        "ref": "main",
        "sha": SHA,
        "created_at": "2021-04-28T19:44:10.000Z",
        "updated_at": "2021-04-28T19:44:10.000Z",
        "status": "running",
        "environment": {"id": 9, "name": "production", "tier": "production"},
        "deployable": {
            "id": 796,
            "status": "running",
            "started_at": "2021-04-28T19:44:30.000Z",
            "finished_at": None,
            "web_url": "https://gitlab.example/acme/shop/-/jobs/796",
            "pipeline": {"id": 31, "sha": SHA, "ref": "main", "status": "running"},
        },
    }
    store.upsert_records(_rest(("deployment", "acme/shop/deployments/15", rest_deployment)))
    client = client_for(store)
    _deliver(
        client, _deployment_hook("success", "production", "2021-04-28 21:50:00 +0200"), "Deployment Hook"
    )
    (deployment,) = store.fetch_records("deployment")
    assert isinstance(deployment, Deployment)
    assert (
        deployment.result,
        deployment.started_at,
        deployment.finished_at,
        deployment.pipeline_run_id,
        deployment.commit_sha,
    ) == (
        "success",
        datetime(2021, 4, 28, 19, 44, 30),  # the job's start, as the sync stored it
        datetime(2021, 4, 28, 19, 50),
        "gitlab:acme/shop/pipelines/31",
        SHA,
    )


def test_deployment_hook_to_staging_takes_its_class_by_name(store: Store) -> None:
    declare_scopes(store)
    _deliver(
        client_for(store),
        _deployment_hook("failed", "staging", "2021-04-28 21:50:00 +0200"),
        "Deployment Hook",
    )
    (deployment,) = store.fetch_records("deployment")
    assert (deployment.environment_class, deployment.result) == (EnvironmentClass.STAGING, "failure")


def test_deployment_hook_tier_classes_an_environment_no_name_rule_knows(store: Store) -> None:
    declare_scopes(store)
    hook = _deployment_hook("success", "k8s-eu-main", "2021-04-28 21:50:00 +0200")
    hook["environment_tier"] = "production"
    _deliver(client_for(store), hook, "Deployment Hook")
    (deployment,) = store.fetch_records("deployment")
    assert (deployment.environment, deployment.environment_class) == (
        "k8s-eu-main",
        EnvironmentClass.PRODUCTION,
    )


# --- Push Hook ------------------------------------------------------------------------------------------


def test_push_hook_makes_the_commits_a_sync_makes(store: Store) -> None:
    declare_scopes(store)
    first, second = "b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327", "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"
    payload = {
        "object_kind": "push",
        "event_name": "push",
        "before": "95790bf891e76fee5e1747ab589903a6a1f80f22",
        "after": second,
        "ref": "refs/heads/main",
        "checkout_sha": second,
        "user_id": 4,
        "user_name": "John Smith",
        "user_username": "jsmith",
        "user_email": "john@example.com",
        "project_id": 7,
        "project": PROJECT,
        "commits": [
            {
                "id": first,
                "message": "Update Catalan translation to e38cb41.\n\nSee https://gitlab.com/gitlab-org/gitlab",
                "title": "Update Catalan translation to e38cb41.",
                "timestamp": "2011-12-12T14:27:31+02:00",
                "url": f"https://gitlab.example/acme/shop/-/commit/{first}",
                "author": {"name": "Jordi Mallach", "email": "jordi@softcatala.org"},
                "added": ["CHANGELOG"],
                "modified": ["app/controller/application.rb"],
                "removed": [],
            },
            {
                "id": second,
                "message": "fixed readme",
                "title": "fixed readme",
                "timestamp": "2012-01-03T23:36:29+02:00",
                "url": f"https://gitlab.example/acme/shop/-/commit/{second}",
                "author": {"name": "GitLab dev user", "email": "gitlabdev@dv6700.(none)"},
                "added": [],
                "modified": [],
                "removed": [],
            },
        ],
        "total_commits_count": 2,
    }
    delivery = _deliver(client_for(store), payload, "Push Hook")
    commits = {c.sha: c for c in store.fetch_records("commit") if isinstance(c, Commit)}
    assert sorted(commits) == sorted([first, second])
    rest_commit = {
        "id": first,
        "title": "Update Catalan translation to e38cb41.",
        "message": "Update Catalan translation to e38cb41.\n\nSee https://gitlab.com/gitlab-org/gitlab",
        "author_name": "Jordi Mallach",
        "author_email": "jordi@softcatala.org",
        "authored_date": "2011-12-12T14:27:31.000+02:00",
    }
    expected = next(
        r
        for r in _rest(("merge_request_commit", f"acme/shop!5@{first}", rest_commit))
        if isinstance(r, Commit)
    )
    names = ("id", "repo", "sha", "message", "author_id", "authored_at")
    assert _fields(commits[first], names) == _fields(expected, names)
    assert _fields(commits[first], names) == {
        "id": f"gitlab:acme/shop@{first}",
        "repo": "acme/shop",
        "sha": first,
        "message": "Update Catalan translation to e38cb41.\n\nSee https://gitlab.com/gitlab-org/gitlab",
        "author_id": "gitlab:git/jordi@softcatala.org",
        "authored_at": datetime(2011, 12, 12, 12, 27, 31),
    }
    assert commits[first].raw_event_id == f"gitlab:{delivery}"
    people = {p.id: p for p in store.fetch_records("person") if isinstance(p, Person)}
    assert people["gitlab:git/jordi@softcatala.org"].display_name == "Jordi Mallach"
    assert (people["gitlab:user/4"].display_name, people["gitlab:user/4"].email) == (
        "John Smith",
        "john@example.com",
    )
