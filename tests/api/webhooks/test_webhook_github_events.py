"""Every GitHub webhook Obeya normalizes, field by field, and a later REST sync of the same objects adds
nothing (same ids): workflow_run, workflow_job, deployment, deployment_status, issues, push, release.

Payloads follow GitHub's documented webhook payloads (the object under its event's key, ``action``,
``repository``, ``sender``) around objects from the recordings (runs, jobs, commits of panjf2000/ants) or
from GitHub's documented REST examples (deployment, issue, release) where nothing is recorded. The sync
runs against the loopback GitHub server (tests/connectors/github_server.py) serving the same objects.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from obeya.api import create_app
from obeya.config.model import ObeyaConfig
from obeya.connectors.config import GitHubConnectionConfig
from obeya.connectors.github.collector import github_client
from obeya.connectors.sync import sync
from obeya.model.records import Commit, Deployment, PipelineJob, PipelineRun, Release, StatusTransition
from obeya.model.vocabulary import EnvironmentClass, FlowState
from obeya.normalize.rules import DeploymentNameRule, MappingRules
from obeya.store import Store
from tests.api.webhooks.deliveries import (
    CASES,
    RECORDINGS,
    REPO,
    SECRET,
    client_for,
    declare_scopes,
    post,
    recorded,
)
from tests.connectors.github_server import TOKEN, FakeGitHub, Route, documented_releases, empty_routes
from tests.connectors.github_server import _run_of_jobs as run_of_jobs

GITHUB = CASES[0]
BASE = f"/repos/{REPO}"
REPOSITORY = {"full_name": REPO, "name": "ants", "owner": {"login": "panjf2000", "id": 7496278}}
OCTOCAT = {"login": "octocat", "id": 1, "type": "User", "site_admin": False}
NOW = datetime(2024, 5, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(GITHUB.secret_env, SECRET)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    """A loopback GitHub with panjf2000/ants' lists empty: each test serves the objects it hooked."""
    server = FakeGitHub()
    empty_routes(server, REPO)
    server.start()
    yield server
    server.stop()


def _sync(store: Store, github: FakeGitHub, rules: MappingRules | None = None) -> None:
    connection = GitHubConnectionConfig(name="gh", base_url=github.base_url, repositories=[REPO])
    client = github_client(connection)
    try:
        sync(store, connection, rules=rules or MappingRules(), client=client, clock=lambda: NOW)
    finally:
        client.close()


def _hook(store: Store, event: str, payload: dict[str, Any], config: ObeyaConfig | None = None) -> str:
    """Post one signed delivery; it must be normalized. Its raw event id."""
    client = client_for(store) if config is None else _client(store, config)
    response, delivery = post(client, GITHUB, {"repository": REPOSITORY, **payload}, event)
    assert response.status_code == 202, response.text
    outcome = client.get(response.json()["outcome_url"]).json()
    assert outcome["outcome"] == "normalized", outcome
    return f"github:{delivery}"


def _client(store: Store, config: ObeyaConfig) -> TestClient:
    return TestClient(create_app(store, config))


def _rows(store: Store, kind: str) -> dict[str, dict[str, Any]]:
    """The records of a kind by id, every field but the raw event they come from."""
    return {r.id: r.model_dump(exclude={"raw_event_id"}) for r in store.fetch_records(kind)}


# --- workflow_run, workflow_job -----------------------------------------------------------------------


def test_workflow_run_hook_makes_the_run_a_sync_makes(store: Store, github: FakeGitHub) -> None:
    declare_scopes(store)
    run = recorded("runs")
    delivery = _hook(
        store, "workflow_run", {"action": "completed", "workflow_run": run, "sender": run["actor"]}
    )

    (hooked,) = store.fetch_records("pipeline_run")
    assert hooked == PipelineRun(
        source="github",
        external_id=f"{REPO}/runs/2983238245",
        raw_event_id=delivery,
        pipeline="CodeQL",
        repo=REPO,
        commit_sha="06e6934c35c336b1a2bd3005fb21dc3914a45747",
        branch="master",
        trigger="schedule",
        result="success",
        attempt=1,
        created_at=datetime(2022, 9, 3, 5, 15, 9),
        started_at=datetime(2022, 9, 3, 5, 15, 9),
        finished_at=datetime(2022, 9, 3, 5, 16, 16),
        url="https://github.com/panjf2000/ants/actions/runs/2983238245",
    )
    before = _rows(store, "pipeline_run")
    github.routes[f"{BASE}/actions/runs"].items = [run]
    github.routes[f"{BASE}/actions/runs/{run['id']}/jobs"] = Route([], wrap="jobs")
    _sync(store, github)
    assert _rows(store, "pipeline_run") == before  # same id, same fields, not twice


def _run_of(job: dict[str, Any]) -> dict[str, Any]:
    return run_of_jobs(job["run_id"], [job])


def test_workflow_job_hook_makes_the_job_a_sync_makes(store: Store, github: FakeGitHub) -> None:
    declare_scopes(store)
    job = recorded("jobs")  # deployubuntu of run 577324554, cancelled after it started
    delivery = _hook(store, "workflow_job", {"action": "completed", "workflow_job": job})

    (hooked,) = store.fetch_records("pipeline_job")
    assert hooked == PipelineJob(
        source="github",
        external_id=f"{REPO}/jobs/1924918171",
        raw_event_id=delivery,
        run_id=f"github:{REPO}/runs/577324554",
        name="deployubuntu",
        result="canceled",
        attempt=1,
        started_at=datetime(2021, 2, 18, 6, 59, 13),
        finished_at=datetime(2021, 2, 18, 7, 1, 18),
    )
    assert store.count("deployment") == 0  # no name rule by default
    before = _rows(store, "pipeline_job")
    github.routes[f"{BASE}/actions/runs"].items = [_run_of(job)]
    github.routes[f"{BASE}/actions/runs/577324554/jobs"] = Route([job], wrap="jobs")
    _sync(store, github)
    assert _rows(store, "pipeline_job") == before


NAME_RULE = {"rules": {"deployments": {"job_patterns": ["^deployubuntu$"]}}}


def test_job_hooks_add_a_deployment_by_name_only_where_github_made_none(
    store: Store, github: FakeGitHub
) -> None:
    declare_scopes(store)
    config = ObeyaConfig.model_validate(NAME_RULE)
    jobs = {j["id"]: j for j in (recorded_job(i) for i in (1924918171, 1924932219, 1924932266))}
    # 1924918171 (run 577324554): no deployment anywhere → one by name.
    _hook(store, "workflow_job", {"action": "completed", "workflow_job": jobs[1924918171]}, config)
    # 1924932219 (run 577330056) targets an Environment: its hook carries GitHub's `deployment`.
    with_env = {**jobs[1924932219], "deployment": _documented_deployment()}
    _hook(store, "workflow_job", {"action": "completed", "workflow_job": with_env}, config)
    # 1924932266, same run, no `deployment` of its own: the stored deployment names its run.
    _hook(store, "deployment", {"action": "created", **_deployment_payload()}, config)
    _hook(store, "workflow_job", {"action": "completed", "workflow_job": jobs[1924932266]}, config)

    ids = sorted(d.id for d in store.fetch_records("deployment"))
    assert ids == [f"github:{REPO}/deployments/7", f"github:{REPO}/jobs/1924918171/deployment-by-name"]


def recorded_job(job_id: int) -> dict[str, Any]:
    """A recorded workflow job of panjf2000/ants by id."""
    for line in (RECORDINGS / "_raw_github_api_jobs.jsonl").read_text().splitlines():
        item: dict[str, Any] = json.loads(line)["data"]
        if item["id"] == job_id:
            return item
    raise LookupError(job_id)


# --- deployment, deployment_status --------------------------------------------------------------------


def _documented_deployment() -> dict[str, Any]:
    """GitHub's documented deployment example (id changed to 7), made by run 577330056 of the recordings."""
    return {
        "url": f"https://api.github.com/repos/{REPO}/deployments/7",
        "id": 7,
        "node_id": "MDEwOkRlcGxveW1lbnQx",
        "sha": "a84d88e7554fc1fa21bcbc4efae3c782a70d2b9d",
        "ref": "topic-branch",
        "task": "deploy",
        "payload": {},
        "original_environment": "staging",
        "environment": "production",
        "description": "Deploy request from hubot",
        "creator": OCTOCAT,
        "created_at": "2012-07-20T01:19:13Z",
        "updated_at": "2012-07-20T01:19:13Z",
        "statuses_url": f"https://api.github.com/repos/{REPO}/deployments/7/statuses",
        "repository_url": f"https://api.github.com/repos/{REPO}",
        "transient_environment": False,
        "production_environment": True,
    }


LOG_URL = f"https://github.com/{REPO}/actions/runs/577330056/job/1924932219"  # how Actions writes it


def _status(status_id: int, state: str, at: str) -> dict[str, Any]:
    """GitHub's documented deployment status shape."""
    return {
        "url": f"https://api.github.com/repos/{REPO}/deployments/7/statuses/{status_id}",
        "id": status_id,
        "state": state,
        "creator": OCTOCAT,
        "description": "Deployment finished successfully." if state == "success" else "",
        "environment": "production",
        "target_url": LOG_URL,
        "log_url": LOG_URL,
        "created_at": at,
        "updated_at": at,
        "environment_url": "https://test-branch.lab.acme.com",
    }


def _deployment_payload() -> dict[str, Any]:
    """A `deployment` webhook's objects: the deployment and the workflow run that made it."""
    return {
        "deployment": _documented_deployment(),
        "workflow_run": {"id": 577330056, "name": "Run go test", "head_sha": "fd8d670f"},
        "sender": OCTOCAT,
    }


def test_deployment_hooks_make_the_deployment_a_sync_makes(store: Store, github: FakeGitHub) -> None:
    declare_scopes(store)
    created = _hook(store, "deployment", {"action": "created", **_deployment_payload()})
    (running,) = store.fetch_records("deployment")
    assert running == Deployment(
        source="github",
        external_id=f"{REPO}/deployments/7",
        raw_event_id=created,
        service=REPO,
        environment="production",
        environment_class=EnvironmentClass.PRODUCTION,
        repo=REPO,
        commit_sha="a84d88e7554fc1fa21bcbc4efae3c782a70d2b9d",
        pipeline_run_id=f"github:{REPO}/runs/577330056",  # the hook's workflow_run
        result="running",
        started_at=datetime(2012, 7, 20, 1, 19, 13),
    )
    success = _status(71, "success", "2012-07-20T01:25:00Z")
    done = _hook(
        store,
        "deployment_status",
        {"action": "created", "deployment": _documented_deployment(), "deployment_status": success},
    )
    (finished,) = store.fetch_records("deployment")
    assert finished == running.model_copy(
        update={
            "raw_event_id": done,
            "result": "success",
            "finished_at": datetime(2012, 7, 20, 1, 25),
            "url": LOG_URL,
        }
    )
    before = _rows(store, "deployment")
    github.routes[f"{BASE}/deployments"].items = [_documented_deployment()]
    statuses = [success, _status(70, "in_progress", "2012-07-20T01:19:14Z")]  # newest first
    github.routes[f"{BASE}/deployments/7/statuses"] = Route(statuses)
    _sync(store, github)
    # The sync reads the run from the statuses' log_url: the same record under the same id.
    assert _rows(store, "deployment") == before


# --- issues -------------------------------------------------------------------------------------------


def _issue(**changes: Any) -> dict[str, Any]:
    """GitHub's documented issue example (#1347 "Found a bug" by octocat), placed in panjf2000/ants."""
    return {
        "id": 1,
        "node_id": "MDU6SXNzdWUx",
        "url": f"https://api.github.com/repos/{REPO}/issues/1347",
        "html_url": f"https://github.com/{REPO}/issues/1347",
        "number": 1347,
        "state": "open",
        "state_reason": None,
        "title": "Found a bug",
        "body": "I'm having a problem with this.",
        "user": OCTOCAT,
        "labels": [{"id": 208045946, "name": "bug", "color": "f29513", "default": True}],
        "assignee": OCTOCAT,
        "locked": False,
        "comments": 0,
        "closed_at": None,
        "created_at": "2011-04-22T13:33:48Z",
        "updated_at": "2011-04-22T13:33:48Z",
        "closed_by": None,
        "author_association": "COLLABORATOR",
        **changes,
    }


MAINTAINER = {"login": "panjf2000", "id": 7496278, "type": "User"}
CLOSED_AT, REOPENED_AT = "2011-04-23T09:00:00Z", "2011-04-24T10:30:00Z"


def _issue_event(event_id: int, event: str, at: str, **extra: Any) -> dict[str, Any]:
    """GitHub's documented issue event shape (``GET /issues/{n}/events``)."""
    return {
        "id": event_id,
        "node_id": f"MDEwOklzc3VlRXZlbnQ{event_id}",
        "url": f"https://api.github.com/repos/{REPO}/issues/events/{event_id}",
        "actor": MAINTAINER,
        "event": event,
        "commit_id": None,
        "commit_url": None,
        "created_at": at,
        **extra,
    }


def _transitions(store: Store) -> list[tuple[Any, ...]]:
    found = [t for t in store.fetch_records("status_transition") if isinstance(t, StatusTransition)]
    return sorted(
        (t.id, t.at, t.from_status, t.to_status, t.from_flow_state, t.to_flow_state, t.author_id)
        for t in found
    )


def test_issue_opened_closed_reopened_by_hooks_gives_the_transitions_of_the_sync(
    store: Store, github: FakeGitHub
) -> None:
    declare_scopes(store)
    _hook(store, "issues", {"action": "opened", "issue": _issue(), "sender": OCTOCAT})
    closed = _issue(state="closed", state_reason="completed", closed_at=CLOSED_AT, updated_at=CLOSED_AT)
    _hook(store, "issues", {"action": "closed", "issue": closed, "sender": MAINTAINER})
    reopened = _issue(state="open", state_reason="reopened", updated_at=REOPENED_AT)
    _hook(store, "issues", {"action": "reopened", "issue": reopened, "sender": MAINTAINER})

    key = f"github:{REPO}#1347"
    waiting, done = FlowState.WAITING, FlowState.DONE  # "open" and "closed" under the default rules
    expected = [
        (f"{key}/closed@2011-04-23T09:00:00Z", datetime(2011, 4, 23, 9), "open", "closed", waiting, done,
         "github:user/7496278"),
        (f"{key}/created", datetime(2011, 4, 22, 13, 33, 48), None, "open", None, waiting, "github:user/1"),
        (f"{key}/reopened@2011-04-24T10:30:00Z", datetime(2011, 4, 24, 10, 30), "closed", "open", done,
         waiting, "github:user/7496278"),
    ]  # fmt: skip
    assert _transitions(store) == expected
    (item,) = store.fetch_records("work_item")
    assert (item.id, item.status, item.flow_state, item.done_at, item.labels) == (
        key,
        "open",
        waiting,
        None,
        ["bug"],
    )
    hooked_item = _rows(store, "work_item")

    # The sync of the same issue and its events: the same transitions (ids by state and second).
    github.routes[f"{BASE}/issues"].items = [reopened]
    github.routes[f"{BASE}/issues/1347/events"] = Route(
        [
            _issue_event(11, "labeled", "2011-04-22T13:33:48Z", label={"name": "bug"}),
            _issue_event(12, "closed", CLOSED_AT, state_reason="completed"),
            _issue_event(13, "reopened", REOPENED_AT),
        ]
    )
    _sync(store, github)
    assert _transitions(store) == expected
    assert _rows(store, "work_item") == hooked_item


def test_close_hook_and_a_close_event_a_second_later_are_one_transition(
    store: Store, github: FakeGitHub
) -> None:
    # GitHub can date the close event a second after the issue's closed_at (recorded: ants#217).
    declare_scopes(store)
    closed = _issue(state="closed", state_reason="not_planned", closed_at=CLOSED_AT, updated_at=CLOSED_AT)
    _hook(store, "issues", {"action": "closed", "issue": closed, "sender": MAINTAINER})
    hooked = _transitions(store)
    assert hooked[0][:6] == (
        f"github:{REPO}#1347/closed@2011-04-23T09:00:00Z",
        datetime(2011, 4, 23, 9),
        "open",
        "closed",
        FlowState.WAITING,
        FlowState.CANCELED,  # not planned
    )
    github.routes[f"{BASE}/issues"].items = [closed]
    github.routes[f"{BASE}/issues/1347/events"] = Route(
        [_issue_event(12, "closed", "2011-04-23T09:00:01Z", state_reason="not_planned")]
    )
    _sync(store, github)
    assert _transitions(store) == hooked


# --- push, release ------------------------------------------------------------------------------------


def test_push_hook_makes_the_commit_a_sync_completes(store: Store, github: FakeGitHub) -> None:
    declare_scopes(store)
    item = recorded("pull_request_commits")  # 5bbc9e1 "feature: add PanicHandler" by Cholerae Hu
    detail = item["commit"]
    pushed = {
        "id": item["sha"],
        "tree_id": "f9d2a07e9488b91af2641b26b9407fe22a451433",
        "distinct": True,
        "message": detail["message"],
        "timestamp": detail["author"]["date"],
        "url": f"https://github.com/{REPO}/commit/{item['sha']}",
        "author": {**detail["author"], "username": "choleraehyq"},
        "committer": {**detail["committer"], "username": "choleraehyq"},
        "added": [],
        "removed": [],
        "modified": ["pool.go"],
    }
    payload = {
        "ref": "refs/heads/master",
        "before": item["parents"][0]["sha"],
        "after": item["sha"],
        "commits": [pushed],
        "head_commit": pushed,
        "pusher": {"name": "choleraehyq", "email": "choleraehyq@gmail.com"},
        "sender": MAINTAINER,
    }
    delivery = _hook(store, "push", payload)
    (hooked,) = store.fetch_records("commit")
    assert hooked == Commit(
        source="github",
        external_id=f"{REPO}@5bbc9e170bbee27c37bcc30da3da75b4531d1edb",
        raw_event_id=delivery,
        repo=REPO,
        sha="5bbc9e170bbee27c37bcc30da3da75b4531d1edb",
        message=detail["message"],
        author_id="github:git/choleraehyq@gmail.com",  # a push names no account
        authored_at=datetime(2019, 1, 21, 10, 57, 23),
        committed_at=datetime(2019, 1, 21, 10, 57, 23),  # a push gives one timestamp
    )
    github.routes[f"{BASE}/commits"].items = [item]
    _sync(store, github)
    (synced,) = store.fetch_records("commit")
    assert synced.id == hooked.id  # one commit, not two
    # The sync knows more and replaces what the push could not say: the account and the commit time.
    assert synced == hooked.model_copy(
        update={
            "raw_event_id": f"github:commit:{REPO}/{item['sha']}",
            "author_id": "github:user/8923413",
            "committed_at": datetime(2019, 1, 22, 5, 9, 19),
        }
    )


def test_release_hook_makes_the_release_a_sync_makes(store: Store, github: FakeGitHub) -> None:
    declare_scopes(store)
    published, _ = documented_releases(REPO)
    delivery = _hook(store, "release", {"action": "published", "release": published, "sender": OCTOCAT})
    (hooked,) = store.fetch_records("release")
    assert hooked == Release(
        source="github",
        external_id=f"{REPO}/releases/1",
        raw_event_id=delivery,
        name="v1.0.0",
        version="v1.0.0",
        status="released",
        released_at=datetime(2013, 2, 27, 19, 35, 32),
        description="Description of the release",
    )
    before = _rows(store, "release")
    github.routes[f"{BASE}/releases"].items = [published]
    _sync(store, github)
    assert _rows(store, "release") == before


def test_named_deployment_rule_in_the_sync_matches_the_hooks(store: Store, github: FakeGitHub) -> None:
    # The same three jobs and deployment synced: the same two deployments as the hooks gave.
    job_ids = (1924918171, 1924932219, 1924932266)
    jobs = [recorded_job(i) for i in job_ids]
    runs = {j["run_id"]: _run_of(j) for j in jobs}
    github.routes[f"{BASE}/actions/runs"].items = list(runs.values())
    for run_id in runs:
        github.routes[f"{BASE}/actions/runs/{run_id}/jobs"] = Route(
            [j for j in jobs if j["run_id"] == run_id], wrap="jobs"
        )
    github.routes[f"{BASE}/deployments"].items = [_documented_deployment()]
    github.routes[f"{BASE}/deployments/7/statuses"] = Route([_status(71, "success", "2012-07-20T01:25:00Z")])
    _sync(store, github, MappingRules(deployment_names=DeploymentNameRule(("^deployubuntu$",))))
    ids = sorted(d.id for d in store.fetch_records("deployment"))
    assert ids == [f"github:{REPO}/deployments/7", f"github:{REPO}/jobs/1924918171/deployment-by-name"]
