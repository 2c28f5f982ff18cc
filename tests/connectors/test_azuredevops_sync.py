"""Azure DevOps sync against the recorded REST API on a local server, on DuckDB and PostgreSQL."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from azuredevops_server import (
    ANN,
    ANN_COMMENTED_AT,
    BUILD_STAGE,
    DEPLOY_STAGE,
    JANE,
    JANE_VOTED_AT,
    MARK,
    ORG,
    OWNER_REPLIED_AT,
    PR2_CLOSED,
    PROJECT,
    RELEASE_DEFINITION,
    REPO,
    SKIPPED_STAGE,
    STAGE_PHASE,
    TOKEN,
    FakeAzureDevOps,
    _revision,
    load,
)
from github_server import FakeClock
from loopback import Fault

from obeya.config.loader import parse_config
from obeya.connectors.azuredevops.collector import azure_client
from obeya.connectors.azuredevops.config import AzureDevOpsConnectionConfig
from obeya.connectors.azuredevops.normalizer import is_deployment
from obeya.connectors.errors import AuthenticationError
from obeya.connectors.http import HttpClient, RetryPolicy
from obeya.connectors.sync import load_cursor, replay, sync
from obeya.connectors.times import required_time
from obeya.model.records import (
    RECORD_BY_KIND,
    Change,
    ChangeComment,
    ChangeCommit,
    Commit,
    Deployment,
    PipelineJob,
    PipelineRun,
    Review,
    WorkItem,
)
from obeya.model.vocabulary import EnvironmentClass, FlowItemType, FlowState
from obeya.normalize.rules import DeploymentNameRule, EnvironmentRule, MappingRules
from obeya.store import Store

NOW = datetime(2024, 5, 1, tzinfo=UTC)
RULES = MappingRules()
NORMALIZED_KINDS = (
    "person",
    "identity",
    "work_item",
    "status_transition",
    "commit",
    "change",
    "change_commit",
    "review",
    "change_comment",
    "pipeline_run",
    "pipeline_job",
    "deployment",
)
REPO_KEY = f"{PROJECT}/{REPO}"
COMMIT_SHA = "85ede91717145a1e6e2bdab4cab689ac8f2fa3a2"


@pytest.fixture
def azure(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAzureDevOps]:
    """The recorded API in pages of 3, with a valid PAT in $AZURE_DEVOPS_TOKEN."""
    monkeypatch.setenv("AZURE_DEVOPS_TOKEN", TOKEN)
    server = FakeAzureDevOps(page_size=3).start()
    yield server
    server.stop()


@pytest.fixture
def connection(azure: FakeAzureDevOps) -> AzureDevOpsConnectionConfig:
    return AzureDevOpsConnectionConfig(
        name="ado", base_url=azure.base_url, organization=ORG, projects=[PROJECT]
    )


@pytest.fixture
def client(connection: AzureDevOpsConnectionConfig) -> Iterator[HttpClient]:
    clock = FakeClock()
    http = azure_client(
        connection,
        sleep=clock.sleep,
        clock=clock.time,
        jitter=lambda: 0.0,
        timeout=2.0,
        retry=RetryPolicy(max_attempts=2),
    )
    yield http
    http.close()


def _sync(store: Store, connection: AzureDevOpsConnectionConfig, client: HttpClient, **options: Any) -> Any:
    return sync(store, connection, rules=RULES, client=client, clock=lambda: NOW, **options)


def _records(store: Store, kind: str, where: str = "", params: Sequence[Any] = ()) -> list[Any]:
    return list(store.fetch_records(kind, where, params))


def _one(store: Store, kind: str, record_id: str) -> Any:
    found = store.fetch_records(kind, "id = ?", [record_id])
    assert len(found) == 1, f"{kind} {record_id}: {len(found)} found"
    return found[0]


def _utc(value: str) -> datetime:
    return required_time(value).astimezone(UTC).replace(tzinfo=None)


def snapshot(store: Store) -> dict[str, dict[str, dict[str, Any]]]:
    return {kind: {r.id: r.model_dump() for r in store.fetch_records(kind)} for kind in NORMALIZED_KINDS}


def test_config_is_part_of_the_connections_union(tmp_path: Any) -> None:
    path = tmp_path / "obeya.yaml"
    path.write_text(
        "connections:\n  - name: ado\n    tool: azuredevops\n    organization: johndoe\n"
        "    projects: [test-project]\n"
    )
    (loaded,) = parse_config(path.read_text(), path).connections
    assert isinstance(loaded, AzureDevOpsConnectionConfig)
    assert (loaded.base_url, loaded.token_env, loaded.repositories) == (
        "https://dev.azure.com",
        "AZURE_DEVOPS_TOKEN",
        [],
    )


def test_pull_request_with_votes_commits_and_reviews(
    store: Store, connection: AzureDevOpsConnectionConfig, client: HttpClient, azure: FakeAzureDevOps
) -> None:
    report = _sync(store, connection, client)
    assert report.resources[f"{PROJECT}/pull_requests"].complete
    expected = "Basic " + base64.b64encode(f":{TOKEN}".encode()).decode()
    assert {r.headers["Authorization"] for r in azure.requests} == {expected}
    (listing, *_) = azure.received("/_apis/git/pullrequests")
    assert listing.query["searchCriteria.status"] == "all"
    assert all(r.query["api-version"] == "7.1" for r in azure.requests)

    recorded = load("pull_requests")[0]
    active = _one(store, "change", f"azuredevops:{REPO_KEY}!1")
    assert active == Change(
        source="azuredevops",
        external_id=f"{REPO_KEY}!1",
        raw_event_id=f"azuredevops:pull_request:{REPO_KEY}!1",
        repo=REPO_KEY,
        number=1,
        title=recorded["title"],
        branch="ticket-2",
        base_branch="main",
        author_id=f"azuredevops:user/{recorded['createdBy']['id']}",
        state="open",
        created_at=datetime(2023, 2, 7, 4, 41, 26, 642431),
        head_sha=COMMIT_SHA,
    )
    assert _records(store, "review", "change_id = ?", [active.id]) == []  # vote 0: no review yet

    merged = _one(store, "change", f"azuredevops:{REPO_KEY}!2")
    assert (
        merged.state,
        merged.merged_at,
        merged.closed_at,
        merged.merge_method,
        merged.merge_commit_sha,
    ) == (
        "merged",
        _utc(PR2_CLOSED),
        _utc(PR2_CLOSED),
        "squash",
        recorded["lastMergeCommit"]["commitId"],
    )
    reviews = {r.reviewer_id: r for r in _records(store, "review", "change_id = ?", [merged.id])}
    owner = recorded["createdBy"]["id"]
    assert {k: v.state for k, v in reviews.items()} == {
        f"azuredevops:user/{owner}": "approved",  # 10
        f"azuredevops:user/{JANE['id']}": "approved",  # 5: approved with suggestions
        f"azuredevops:user/{MARK['id']}": "changes_requested",  # -5: waiting for the author
        f"azuredevops:user/{ANN['id']}": "changes_requested",  # -10: rejected
    }  # the team (a container) gave no review of its own
    jane = reviews[f"azuredevops:user/{JANE['id']}"]
    assert jane == Review(
        source="azuredevops",
        external_id=f"{REPO_KEY}!2/reviewers/{JANE['id']}",
        raw_event_id=f"azuredevops:pull_request:{REPO_KEY}!2",
        change_id=merged.id,
        reviewer_id=f"azuredevops:user/{JANE['id']}",
        state="approved",
        submitted_at=_utc(JANE_VOTED_AT),  # from her VoteUpdate thread
    )
    assert reviews[f"azuredevops:user/{ANN['id']}"].submitted_at == _utc(PR2_CLOSED)  # no thread: closed

    assert _records(store, "change_commit", "change_id = ?", [active.id]) == [
        ChangeCommit(
            source="azuredevops",
            external_id=f"{REPO_KEY}!1@{COMMIT_SHA}",
            raw_event_id=f"azuredevops:pull_request_commit:{REPO_KEY}!1@{COMMIT_SHA}",
            change_id=active.id,
            commit_sha=COMMIT_SHA,
        )
    ]
    # The commit is in both pull requests: one `commit` raw event per repository and sha.
    assert _one(store, "commit", f"azuredevops:{REPO_KEY}@{COMMIT_SHA}") == Commit(
        source="azuredevops",
        external_id=f"{REPO_KEY}@{COMMIT_SHA}",
        raw_event_id=f"azuredevops:commit:{REPO_KEY}@{COMMIT_SHA}",
        repo=REPO_KEY,
        sha=COMMIT_SHA,
        message="Fixedmain.java",
        author_id="azuredevops:git/john.doe@merico.dev",
        authored_at=datetime(2023, 2, 7, 4, 49, 28),
        committed_at=datetime(2023, 2, 7, 4, 49, 28),
    )
    person = _one(store, "person", f"azuredevops:user/{owner}")
    # The recorded builds name the same account john.dow@...: the account's latest answer wins.
    assert (person.display_name, person.email) == ("JohnDoe", "john.dow@merico.dev")


def test_build_with_its_timeline_and_deployments(
    store: Store, connection: AzureDevOpsConnectionConfig, client: HttpClient, azure: FakeAzureDevOps
) -> None:
    report = _sync(store, connection, client)
    builds = report.resources[f"{PROJECT}/builds"]
    assert builds.pages == 3 and builds.fetched == 7  # 7 builds, pages of 3 by continuation token
    tokens = [
        r.query.get("continuationToken")
        for r in azure.received("/_apis/build/builds")
        if "timeline" not in r.path
    ]
    assert tokens == [None, "3", "6"]

    run = _one(store, "pipeline_run", f"azuredevops:{PROJECT}/builds/12")
    assert run == PipelineRun(
        source="azuredevops",
        external_id=f"{PROJECT}/builds/12",
        raw_event_id=f"azuredevops:build:{PROJECT}/builds/12",
        pipeline="deploy_to_prod",
        repo="johndoe/test-repo",
        commit_sha="40c59264e73fc5e1a6cab192f1622d26b7bd5c2a",
        branch="main",
        trigger="manual",
        result="success",
        created_at=datetime(2023, 2, 25, 6, 22, 21, 223762),
        started_at=datetime(2023, 2, 25, 6, 22, 32, 809778),
        finished_at=datetime(2023, 2, 25, 6, 23, 4, 6188),
        url=load("builds")[0]["url"],  # no `_links.web` recorded: the API URL
    )
    results = {r.external_id.rsplit("/", 1)[1]: r.result for r in _records(store, "pipeline_run")}
    assert results == {
        "12": "success",
        "13": "success",
        "14": "success",
        "15": "success",
        "16": "running",
        "17": "running",
        "18": "canceled",
    }

    jobs = {j.name: j for j in _records(store, "pipeline_job", "run_id = ?", [run.id])}
    assert set(jobs) == {"Build", "Deploy production", "deploy production"}  # the phase is not a job
    recorded_job = load("timeline_records")[0]
    assert jobs["deploy production"] == PipelineJob(
        source="azuredevops",
        external_id=f"{PROJECT}/builds/12/{recorded_job['id']}",
        raw_event_id=f"azuredevops:timeline_record:{PROJECT}/builds/12/{recorded_job['id']}",
        run_id=run.id,
        name="deploy production",
        stage="Deploy production",  # job → phase → stage
        result="success",
        attempt=1,
        started_at=datetime(2023, 2, 25, 6, 22, 36, 806666),
        finished_at=datetime(2023, 2, 25, 6, 22, 43, 233333),
    )
    assert jobs["Deploy production"].stage == "Deploy production"
    assert _records(store, "pipeline_job", "external_id = ?", [f"{PROJECT}/builds/12/{STAGE_PHASE}"]) == []

    (deployment,) = _records(store, "deployment", "external_id LIKE ?", [f"{PROJECT}/builds/%"])
    assert deployment.id == f"azuredevops:{PROJECT}/builds/12/{DEPLOY_STAGE}"
    assert (
        deployment.service,
        deployment.environment,
        deployment.environment_class,
        deployment.result,
        deployment.pipeline_run_id,
        deployment.commit_sha,
        deployment.started_at,
        deployment.finished_at,
    ) == (
        "deploy_to_prod",
        "Deploy production",
        EnvironmentClass.PRODUCTION,
        "success",
        run.id,
        "40c59264e73fc5e1a6cab192f1622d26b7bd5c2a",
        datetime(2023, 2, 25, 6, 22, 36, 500000),
        datetime(2023, 2, 25, 6, 22, 43, 500000),
    )
    # Build 13's "Deploy staging" stage was skipped: a job record, no deployment.
    skipped = _one(store, "pipeline_job", f"azuredevops:{PROJECT}/builds/13/{SKIPPED_STAGE}")
    assert skipped.result == "skipped"
    assert _records(store, "deployment", "pipeline_run_id = ?", [f"azuredevops:{PROJECT}/builds/13"]) == []


def test_work_item_transitions_from_its_revisions(
    store: Store, connection: AzureDevOpsConnectionConfig, client: HttpClient, azure: FakeAzureDevOps
) -> None:
    report = _sync(store, connection, client)
    assert report.resources[f"{PROJECT}/work_items"].pages == 3  # 7 revisions in pages of 3
    bug = _one(store, "work_item", f"azuredevops:{PROJECT}/1")
    assert bug == WorkItem(
        source="azuredevops",
        external_id=f"{PROJECT}/1",
        raw_event_id=f"azuredevops:work_item:{PROJECT}/1",
        key="1",
        title="Some great new idea!",
        project=PROJECT,
        tool_type="Bug",
        flow_item_type=FlowItemType.DEFECT,
        status="Closed",
        flow_state=FlowState.DONE,
        stage="observation",
        priority="2",
        created_at=datetime(2017, 9, 4, 2, 8, 16, 600000),
        started_at=datetime(2017, 9, 5, 8, 0, 0, 250000),
        done_at=datetime(2017, 9, 7, 16, 45, 10, 500000),
        updated_at=datetime(2017, 9, 7, 16, 45, 10, 500000),
    )
    transitions = sorted(
        _records(store, "status_transition", "work_item_id = ?", [bug.id]), key=lambda t: t.at
    )
    assert [(t.external_id, t.from_status, t.to_status, t.to_flow_state) for t in transitions] == [
        (f"{PROJECT}/1/rev/1", None, "New", FlowState.NEW),
        (f"{PROJECT}/1/rev/2", "New", "Active", FlowState.ACTIVE),  # rev 3 only renamed it
        (f"{PROJECT}/1/rev/4", "Active", "Resolved", FlowState.DONE),
        (f"{PROJECT}/1/rev/5", "Resolved", "Closed", FlowState.DONE),
    ]
    assert transitions[1].author_id == f"azuredevops:user/{MARK['id']}"
    assert transitions[1].at == datetime(2017, 9, 5, 8, 0, 0, 250000)
    story = _one(store, "work_item", f"azuredevops:{PROJECT}/2")
    assert (story.flow_item_type, story.labels, story.story_points, story.flow_state) == (
        FlowItemType.RISK,  # the "security" tag outranks the type
        ["security", "login"],
        3.0,
        FlowState.ACTIVE,
    )


def test_second_sync_is_incremental(
    store: Store, connection: AzureDevOpsConnectionConfig, client: HttpClient, azure: FakeAzureDevOps
) -> None:
    _sync(store, connection, client)
    builds_cursor = load_cursor(store, "ado", f"{PROJECT}/builds")
    assert builds_cursor is not None and builds_cursor.status == "complete"
    assert '"mark": "2023-02-25T06:22:21.2237625Z"' in (builds_cursor.cursor or "")  # held by build 16
    azure.requests.clear()

    # Between the syncs: build 16 finishes, the story moves to Resolved, pull request 1 is abandoned.
    azure.builds[4] = {
        **azure.builds[4],
        "status": "completed",
        "result": "failed",
        "finishTime": "2023-02-25T07:00:00Z",
    }
    story = azure.revisions[2]
    story.append(
        _revision(
            2,
            3,
            "User Story",
            "Resolved",
            "2017-09-09T09:00:00Z",
            "2017-09-05T10:00:00Z",
            title="Secure the login",
        )
    )
    azure.pull_requests[1] = {
        **azure.pull_requests[1],
        "status": "abandoned",
        "closedDate": "2023-03-01T00:00:00Z",
    }
    report = _sync(store, connection, client)

    listings = [r.query for r in azure.received("/_apis/git/pullrequests")]
    assert [q["searchCriteria.status"] for q in listings if q["$skip"] == "0"] == ["active", "all"]
    closed_since = next(q for q in listings if q["searchCriteria.status"] == "all")
    assert (closed_since["searchCriteria.queryTimeRangeType"], closed_since["searchCriteria.minTime"]) == (
        "closed",
        PR2_CLOSED,
    )
    assert _one(store, "change", f"azuredevops:{REPO_KEY}!1").state == "closed"
    assert all(
        r.query.get("minTime") == "2023-02-25T06:22:21.2237625Z"
        for r in azure.received("/build/builds")
        if "timeline" not in r.path
    )
    assert _one(store, "pipeline_run", f"azuredevops:{PROJECT}/builds/16").result == "failure"
    # Work items: only what happened after the stored watermark.
    (revisions,) = azure.received("/wit/reporting/workitemrevisions")
    assert revisions.query["continuationToken"] == "7"
    assert report.resources[f"{PROJECT}/work_items"].fetched == 1
    assert azure.received("/wit/workItems/1/") == []
    resolved = _one(store, "work_item", f"azuredevops:{PROJECT}/2")
    assert (resolved.status, resolved.flow_state, resolved.done_at) == (
        "Resolved",
        FlowState.DONE,
        datetime(2017, 9, 9, 9),
    )
    assert len(_records(store, "status_transition", "work_item_id = ?", [resolved.id])) == 3


def test_pull_request_comments_become_change_comments(
    store: Store, connection: AzureDevOpsConnectionConfig, client: HttpClient, azure: FakeAzureDevOps
) -> None:
    _sync(store, connection, client)
    merged = f"azuredevops:{REPO_KEY}!2"
    owner = load("pull_requests")[0]["createdBy"]["id"]
    comments = sorted(
        _records(store, "change_comment", "change_id = ?", [merged]), key=lambda c: c.created_at
    )
    assert comments == [
        ChangeComment(
            source="azuredevops",
            external_id=f"{REPO_KEY}!2/threads/13/comments/1",
            raw_event_id=f"azuredevops:pull_request_thread:{REPO_KEY}!2/threads/13",
            change_id=merged,
            author_id=f"azuredevops:user/{ANN['id']}",
            created_at=_utc(ANN_COMMENTED_AT),
            body="Should we add a comment about what this value means?",
            path="src/main.java",
        ),
        ChangeComment(
            source="azuredevops",
            external_id=f"{REPO_KEY}!2/threads/13/comments/2",
            raw_event_id=f"azuredevops:pull_request_thread:{REPO_KEY}!2/threads/13",
            change_id=merged,
            author_id=f"azuredevops:user/{owner}",
            created_at=_utc(OWNER_REPLIED_AT),
            body="Done, see the new commit.",
            path="src/main.java",
        ),
    ]  # not the deleted comment, not the deleted thread, not the vote threads' system comments
    (own,) = _records(store, "change_comment", "change_id = ?", [f"azuredevops:{REPO_KEY}!1"])
    assert (own.author_id, own.body, own.path) == (f"azuredevops:user/{owner}", "Ready for review", None)
    ann = _one(store, "person", f"azuredevops:user/{ANN['id']}")  # a commenter is a person too
    assert ann.display_name == "Ann Lee"


def test_classic_release_deployments(
    store: Store, connection: AzureDevOpsConnectionConfig, client: HttpClient, azure: FakeAzureDevOps
) -> None:
    report = _sync(store, connection, client)
    assert report.resources[f"{PROJECT}/releases"].complete
    (first, *_) = azure.received("/_apis/release/deployments")
    assert (first.query["queryOrder"], first.query["api-version"]) == ("ascending", "7.1")
    assert "minModifiedTime" not in first.query
    found = {d.external_id: d for d in _records(store, "deployment", "service = ?", [RELEASE_DEFINITION])}
    key = f"{PROJECT}/release-deployments"
    assert sorted(found) == [f"{key}/31", f"{key}/32", f"{key}/33", f"{key}/34"]  # 35: not deployed
    assert found[f"{key}/33"] == Deployment(
        source="azuredevops",
        external_id=f"{key}/33",
        raw_event_id=f"azuredevops:release_deployment:{key}/33",
        service=RELEASE_DEFINITION,
        environment="Production",
        environment_class=EnvironmentClass.PRODUCTION,
        repo=REPO,
        commit_sha=COMMIT_SHA,
        pipeline_run_id=f"azuredevops:{PROJECT}/builds/12",
        result="success",
        started_at=datetime(2023, 2, 24, 12, 0, 3),
        finished_at=datetime(2023, 2, 24, 12, 5, 30, 250000),
        url=f"https://dev.azure.com/{ORG}/{PROJECT}/_release?releaseId=7",
    )
    assert [(found[k].environment, found[k].environment_class, found[k].result) for k in sorted(found)] == [
        ("QA", EnvironmentClass.TESTING, "success"),
        ("Production", EnvironmentClass.PRODUCTION, "failure"),
        ("Production", EnvironmentClass.PRODUCTION, "success"),
        ("Production", EnvironmentClass.PRODUCTION, "running"),
    ]
    assert found[f"{key}/34"].finished_at is None
    assert (
        report.resources[f"{PROJECT}/releases"].skipped[
            "deployment status 'notDeployed': nothing was deployed"
        ]
        == 1
    )

    # The next sync asks from the newest lastModifiedOn stored; the one in progress finishes meanwhile.
    azure.requests.clear()
    azure.release_deployments[3] = {
        **azure.release_deployments[3],
        "deploymentStatus": "succeeded",
        "completedOn": "2023-02-25T11:00:00Z",
        "lastModifiedOn": "2023-02-25T11:00:00Z",
    }
    _sync(store, connection, client)
    (again,) = azure.received("/_apis/release/deployments")
    assert again.query["minModifiedTime"] == "2023-02-25T10:00:00Z"  # 35's (queued, never deployed)
    finished = _one(store, "deployment", f"azuredevops:{key}/34")
    assert (finished.result, finished.finished_at) == ("success", datetime(2023, 2, 25, 11))


def test_classic_releases_not_readable_are_skipped_with_the_reason(
    store: Store, connection: AzureDevOpsConnectionConfig, client: HttpClient, azure: FakeAzureDevOps
) -> None:
    azure.faults["/_apis/release/deployments"] = Fault(
        403, {"message": "TF400813: The user is not authorized to access this resource."}
    )
    report = _sync(store, connection, client)
    releases = report.resources[f"{PROJECT}/releases"]
    assert releases.complete
    assert dict(releases.skipped) == {
        "classic releases not readable (403): give the token the Release (Read) scope to sync classic "
        "Release pipelines' deployments": 1
    }
    assert report.resources[f"{PROJECT}/builds"].complete  # the rest of the sync is unaffected
    assert _records(store, "deployment", "service = ?", [RELEASE_DEFINITION]) == []


def test_deployment_rule() -> None:
    rules = MappingRules()
    ran = {"type": "Stage", "state": "completed", "result": "succeeded", "startTime": "2024-01-01T00:00:00Z"}
    assert is_deployment({**ran, "name": "Deploy production"}, rules)
    assert is_deployment({**ran, "name": "UAT", "identifier": "uat"}, rules)  # a staging environment
    assert is_deployment({**ran, "name": "Release", "result": "failed"}, rules)  # ran, and failed
    assert not is_deployment({**ran, "name": "Stage 1", "identifier": "__default"}, rules)
    assert not is_deployment({**ran, "name": "Build"}, rules)
    assert not is_deployment({**ran, "name": "Deploy production", "result": "skipped"}, rules)
    pending = {"type": "Stage", "state": "pending", "result": None, "startTime": None}
    assert not is_deployment({**pending, "name": "Deploy production"}, rules)


def test_repositories_filter_lists_each_repository(
    store: Store, azure: FakeAzureDevOps, client: HttpClient
) -> None:
    only = AzureDevOpsConnectionConfig(
        name="ado", base_url=azure.base_url, organization=ORG, projects=[PROJECT], repositories=[REPO]
    )
    _sync(store, only, client)
    assert azure.received(f"/git/repositories/{REPO}/pullrequests")
    assert azure.received("/_apis/git/pullrequests") == []
    assert store.count("change") == 2


def test_rejected_token_is_a_clear_error(
    store: Store,
    connection: AzureDevOpsConnectionConfig,
    azure: FakeAzureDevOps,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AZURE_DEVOPS_TOKEN", "wrong")
    http = azure_client(connection, retry=RetryPolicy(max_attempts=1))
    with pytest.raises(AuthenticationError) as error:
        _sync(store, connection, http)
    http.close()
    message = str(error.value)
    assert "$AZURE_DEVOPS_TOKEN" in message and "Code (Read)" in message and "401" in message
    cursor = load_cursor(store, "ado", f"{PROJECT}/pull_requests")
    assert cursor is not None and cursor.status == "failed"


def test_replay_gives_the_records_a_sync_gives(
    store: Store, connection: AzureDevOpsConnectionConfig, client: HttpClient, azure: FakeAzureDevOps
) -> None:
    _sync(store, connection, client)
    synced = snapshot(store)
    assert all(synced[kind] for kind in NORMALIZED_KINDS)
    for kind in NORMALIZED_KINDS:
        store.execute(f"DELETE FROM {RECORD_BY_KIND[kind].table}")
    requests = len(azure.requests)
    report = replay(store, "ado", rules=RULES)
    assert len(azure.requests) == requests
    assert "build+timeline_record" in report.resources
    assert snapshot(store) == synced
    raw_ids = {r[0] for r in store.query("SELECT id FROM raw_events")}
    for kind in NORMALIZED_KINDS:
        assert all(r["raw_event_id"] in raw_ids for r in synced[kind].values()), kind


def test_configured_job_patterns_replace_the_stage_name_default() -> None:
    rules = MappingRules(deployment_names=DeploymentNameRule(("^ship",)))
    ran = {"type": "Stage", "state": "completed", "result": "succeeded", "startTime": "2024-01-01T00:00:00Z"}
    assert is_deployment({**ran, "name": "Ship it"}, rules)
    assert not is_deployment({**ran, "name": "Release"}, rules)  # the default deploy|release|rollout is off
    assert is_deployment({**ran, "name": "Deploy production"}, rules)  # it names a production environment
    assert not is_deployment({**ran, "name": "Ship it", "result": "skipped"}, rules)
    assert not is_deployment({**ran, "name": "Release"}, MappingRules(deployment_names=DeploymentNameRule()))


def test_replay_applies_a_changed_job_name_rule(
    store: Store, connection: AzureDevOpsConnectionConfig, client: HttpClient
) -> None:
    _sync(store, connection, client)
    build_stage = f"azuredevops:{PROJECT}/builds/12/{BUILD_STAGE}"
    assert _records(store, "deployment", "id = ?", [build_stage]) == []
    rules = MappingRules(deployment_names=DeploymentNameRule(("^build$",), EnvironmentClass.PRODUCTION))
    replay(store, "ado", rules=rules)
    (built,) = _records(store, "deployment", "id = ?", [build_stage])
    # "Build" names no environment class: the rule's job_environment gives it.
    assert (built.service, built.environment, built.environment_class, built.result) == (
        "deploy_to_prod",
        "Build",
        EnvironmentClass.PRODUCTION,
        "success",
    )
    assert (built.started_at, built.finished_at) == (
        datetime(2023, 2, 25, 6, 22, 32, 900000),
        datetime(2023, 2, 25, 6, 22, 35),
    )
    deployed = _one(store, "deployment", f"azuredevops:{PROJECT}/builds/12/{DEPLOY_STAGE}")
    assert deployed.environment_class is EnvironmentClass.PRODUCTION  # its name names production
    assert _records(store, "deployment", "pipeline_run_id = ?", [f"azuredevops:{PROJECT}/builds/13"]) == []


def test_replay_drops_a_stage_deployment_a_narrowed_rule_no_longer_makes(
    store: Store, connection: AzureDevOpsConnectionConfig, client: HttpClient
) -> None:
    _sync(store, connection, client)
    release = f"azuredevops:{PROJECT}/release-deployments/33"
    assert _one(store, "deployment", release).environment_class is EnvironmentClass.PRODUCTION
    # "Deploy production" (identifier deploy_prod) names production: a deployment whatever the patterns.
    replay(store, "ado", rules=MappingRules(deployment_names=DeploymentNameRule()))
    assert _one(store, "deployment", f"azuredevops:{PROJECT}/builds/12/{DEPLOY_STAGE}").environment == (
        "Deploy production"
    )
    # Without the environment class rule either (its name read as "other"), it is no deployment.
    other = MappingRules(
        environments=(EnvironmentRule("production", EnvironmentClass.OTHER),),
        deployment_names=DeploymentNameRule(),
    )
    replay(store, "ado", rules=other)
    assert _records(store, "deployment", "external_id LIKE ?", [f"{PROJECT}/builds/%"]) == []
    assert _records(store, "deployment", "id = ?", [release])  # classic release deployments stay
