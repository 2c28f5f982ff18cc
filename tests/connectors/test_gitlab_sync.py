"""GitLab sync against the recorded GitLab REST API on a local server, on DuckDB and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from github_server import FakeClock
from gitlab_server import (
    BRANCHES,
    MARTIN,
    PIP_TEST,
    RECORDINGS,
    SNOWFLAKE,
    TOKEN,
    FakeGitLab,
    load,
    recorded_commits,
    stamp,
)
from loopback import Fault

from obeya.config.loader import ConfigError, parse_config
from obeya.connectors.errors import AuthenticationError, RetriesExhaustedError
from obeya.connectors.gitlab.collector import asked_from, gitlab_client
from obeya.connectors.gitlab.config import GitLabConnectionConfig
from obeya.connectors.gitlab.normalizer import normalize
from obeya.connectors.http import HttpClient, RetryPolicy
from obeya.connectors.raw import raw_event
from obeya.connectors.sync import load_cursor, replay, sync
from obeya.linking.rules import LinkingRules
from obeya.linking.shipped import shipped_changes
from obeya.model.records import (
    RECORD_BY_KIND,
    Change,
    ChangeComment,
    ChangeCommit,
    Commit,
    CommitParent,
    Deployment,
    Person,
    PipelineJob,
    PipelineRun,
    Review,
    StatusTransition,
    WorkItem,
)
from obeya.model.vocabulary import EnvironmentClass, FlowState
from obeya.normalize.rules import DeploymentNameRule, EnvironmentRule, MappingRules
from obeya.store import Store

NOW = datetime(2024, 5, 1, tzinfo=UTC)
RULES = MappingRules(environments=(EnvironmentRule("^review/", EnvironmentClass.DEVELOPMENT),))
NORMALIZED_KINDS = (
    "person",
    "identity",
    "work_item",
    "status_transition",
    "commit",
    "commit_parent",
    "change",
    "change_commit",
    "review",
    "change_comment",
    "pipeline_run",
    "pipeline_job",
    "deployment",
)


@pytest.fixture
def gitlab(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitLab]:
    """The recorded GitLab API in pages of 5, with a valid token in $GITLAB_TOKEN."""
    monkeypatch.setenv("GITLAB_TOKEN", TOKEN)
    server = FakeGitLab(page_size=5).start()
    yield server
    server.stop()


@pytest.fixture
def connection(gitlab: FakeGitLab) -> GitLabConnectionConfig:
    """One project by path, one by numeric id."""
    return GitLabConnectionConfig(name="gl", base_url=gitlab.base_url, projects=[SNOWFLAKE, "44"])


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(connection: GitLabConnectionConfig, clock: FakeClock) -> Iterator[HttpClient]:
    http = gitlab_client(
        connection,
        sleep=clock.sleep,
        clock=clock.time,
        jitter=lambda: 0.0,
        timeout=2.0,
        retry=RetryPolicy(max_attempts=3),
    )
    yield http
    http.close()


def _sync(store: Store, connection: GitLabConnectionConfig, client: HttpClient, **options: Any) -> Any:
    return sync(store, connection, rules=RULES, client=client, clock=lambda: NOW, **options)


def _one(store: Store, kind: str, record_id: str) -> Any:
    found = store.fetch_records(kind, "id = ?", [record_id])
    assert len(found) == 1, f"{kind} {record_id}: {len(found)} found"
    return found[0]


def _utc(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC).replace(tzinfo=None)


def snapshot(store: Store) -> dict[str, dict[str, dict[str, Any]]]:
    """Every normalized record, by kind and id."""
    return {kind: {r.id: r.model_dump() for r in store.fetch_records(kind)} for kind in NORMALIZED_KINDS}


def test_merge_request_becomes_a_change_with_its_commits_notes_and_approvals(
    store: Store, connection: GitLabConnectionConfig, client: HttpClient, gitlab: FakeGitLab
) -> None:
    report = _sync(store, connection, client)
    mrs = report.resources[f"{SNOWFLAKE}/merge_requests"]
    assert mrs.pages > 4 and store.count("change") == 24
    assert {r.headers["Authorization"] for r in gitlab.requests} == {f"Bearer {TOKEN}"}
    assert all(r.query.get("per_page") == "100" for r in gitlab.received("/merge_requests/1/commits"))

    recorded = next(mr for mr in load("merge_requests") if mr["iid"] == 1)
    change = _one(store, "change", f"gitlab:{SNOWFLAKE}!1")
    assert change == Change(
        source="gitlab",
        external_id=f"{SNOWFLAKE}!1",
        raw_event_id=f"gitlab:merge_request:{SNOWFLAKE}!1",
        repo=SNOWFLAKE,
        number=1,
        title=recorded["title"],
        branch=recorded["source_branch"],
        base_branch="master",
        author_id="gitlab:user/2295562",
        state="merged",
        created_at=datetime(2019, 6, 28, 5, 21, 43, 743000),
        merged_at=datetime(2019, 6, 28, 14, 32, 6, 192000),
        closed_at=datetime(2019, 6, 28, 14, 32, 6, 192000),
        merge_commit_sha="da1d6dea48f5972ffc683da6cff30934e7d6c52c",
        head_sha="ad25fcda15e310a7eb34b3e38ff9b962b54f0e03",
        merge_method="squash",  # squash: true
    )
    squashed = _one(store, "change", f"gitlab:{SNOWFLAKE}!14")
    assert (squashed.merge_method, squashed.merge_commit_sha) == (
        "squash",
        "21840a7eadb58babe8aeae2960da851a3ed00ddc",
    )
    assert _one(store, "change", f"gitlab:{SNOWFLAKE}!3").merge_method == "merge"
    open_mr = _one(store, "change", f"gitlab:{SNOWFLAKE}!9")
    assert (open_mr.state, open_mr.merge_commit_sha, open_mr.merge_method) == ("open", None, None)
    assert _one(store, "change", f"gitlab:{SNOWFLAKE}!13").state == "closed"

    # Its five commits (a page of 5, then the empty X-Next-Page).
    sha = "ad25fcda15e310a7eb34b3e38ff9b962b54f0e03"
    links = store.fetch_records("change_commit", "change_id = ?", [change.id])
    assert len(links) == 5
    assert (
        ChangeCommit(
            source="gitlab",
            external_id=f"{SNOWFLAKE}!1@{sha}",
            raw_event_id=f"gitlab:merge_request_commit:{SNOWFLAKE}!1@{sha}",
            change_id=change.id,
            commit_sha=sha,
        )
        in links
    )
    commit = _one(store, "commit", f"gitlab:{SNOWFLAKE}@{sha}")
    assert isinstance(commit, Commit)
    assert (commit.message, commit.authored_at, commit.committed_at, commit.author_id) == (
        "add more info to readme\n",
        datetime(2019, 6, 28, 11, 3, 52),
        datetime(2019, 6, 28, 11, 3, 52),
        "gitlab:git/emilie.burke@gmail.com",
    )
    author = _one(store, "person", "gitlab:git/emilie.burke@gmail.com")
    assert (author.display_name, author.email) == ("emilie", "emilie.burke@gmail.com")
    # The merge request commits API gives no parent_ids: the graph comes from the repository commits.
    assert not store.fetch_records("commit_parent", "commit_sha = ?", [sha])

    # Notes: the one written comment is a ChangeComment; the ten system notes are not.
    comments = store.fetch_records("change_comment", "change_id = ?", [change.id])
    assert comments == [
        ChangeComment(
            source="gitlab",
            external_id=f"{SNOWFLAKE}!1/notes/{comments[0].external_id.rsplit('/', 1)[1]}",
            raw_event_id=f"gitlab:merge_request_note:{comments[0].external_id}",
            change_id=change.id,
            author_id="gitlab:user/2295562",
            created_at=comments[0].created_at,
            body=comments[0].body,
        )
    ]
    assert comments[0].body is not None and comments[0].body.startswith("@tayloramurphy Once this is merged")
    assert store.count("change_comment") == 4

    # Approvals: approve, unapprove, approve again on !37 (system notes); !3 from the approvals answer.
    reviews = sorted(
        (r for r in store.fetch_records("review", "change_id = ?", [f"gitlab:{SNOWFLAKE}!37"])),
        key=lambda r: r.submitted_at,
    )
    assert [(r.state, r.reviewer_id) for r in reviews] == [
        ("approved", reviews[0].reviewer_id),
        ("dismissed", reviews[0].reviewer_id),
        ("approved", reviews[0].reviewer_id),
    ]
    note = next(
        n
        for n in load("merge_request_notes")
        if n["noteable_iid"] == 37 and n["body"] == "approved this merge request"
    )
    assert reviews[0].reviewer_id == f"gitlab:user/{note['author']['id']}"
    assert _utc(note["created_at"]) in {r.submitted_at for r in reviews}
    assert store.fetch_records("review", "change_id = ?", [f"gitlab:{SNOWFLAKE}!3"]) == [
        Review(
            source="gitlab",
            external_id=f"{SNOWFLAKE}!3/approvals/{MARTIN['id']}",
            raw_event_id=f"gitlab:merge_request_approvals:{SNOWFLAKE}!3",
            change_id=f"gitlab:{SNOWFLAKE}!3",
            reviewer_id=f"gitlab:user/{MARTIN['id']}",
            state="approved",
            submitted_at=datetime(2019, 8, 26, 14, 10),
        )
    ]
    assert store.count("review") == 7  # !29, !30, !46 once, !37 three times, !3 once


def test_pipeline_and_its_jobs(store: Store, connection: GitLabConnectionConfig, client: HttpClient) -> None:
    _sync(store, connection, client)
    # merico/pip_test (by id 44): pipeline 16 and its 10 jobs, paged by Link headers only.
    run = _one(store, "pipeline_run", "gitlab:44/pipelines/16")
    assert isinstance(run, PipelineRun)
    assert (run.pipeline, run.repo, run.branch, run.result, run.trigger) == (
        "44",
        "44",
        "master",
        "failure",
        "push",
    )
    jobs = [
        j for j in store.fetch_records("pipeline_job", "run_id = ?", [run.id]) if isinstance(j, PipelineJob)
    ]
    recorded = [j for j in load("job") if j["pipeline"]["id"] == 16]
    assert len(jobs) == len(recorded) == 10
    job = next(j for j in jobs if j.external_id == f"44/jobs/{recorded[0]['id']}")
    assert (job.name, job.stage, job.environment) == (recorded[0]["name"], recorded[0]["stage"], None)
    assert job.finished_at == (_utc(recorded[0]["finished_at"]) if recorded[0]["finished_at"] else None)
    results = {r for (r,) in store.query("SELECT DISTINCT result FROM pipeline_jobs")}
    assert results == {"success", "failure", "canceled", "skipped", "running"}
    manual = next(j for j in load("job") if j["status"] == "manual")
    assert _one(store, "pipeline_job", f"gitlab:44/jobs/{manual['id']}").result == "skipped"

    # gitlab-data/snowflake_spend: recorded details of a merge request pipeline.
    detail = _one(store, "pipeline_run", f"gitlab:{SNOWFLAKE}/pipelines/1078343570")
    assert detail == PipelineRun(
        source="gitlab",
        external_id=f"{SNOWFLAKE}/pipelines/1078343570",
        raw_event_id=f"gitlab:pipeline:{SNOWFLAKE}/pipelines/1078343570",
        pipeline=SNOWFLAKE,
        repo=SNOWFLAKE,
        commit_sha="694ed6ede74c367f17c7fddb56de629354a27069",
        branch=None,
        change_id=f"gitlab:{SNOWFLAKE}!5394",  # refs/merge-requests/5394/head
        trigger="merge_request_event",
        result="success",
        created_at=datetime(2023, 11, 20, 7, 17, 8, 753000),
        started_at=datetime(2023, 11, 20, 7, 17, 10, 123000),
        finished_at=datetime(2023, 11, 21, 1, 54, 29, 748000),
        url="https://gitlab.com/merico-dev/ee/vdev.co/-/pipelines/1078343570",
    )
    still_running = _one(store, "pipeline_run", f"gitlab:{SNOWFLAKE}/pipelines/457474837")
    assert (still_running.result, still_running.finished_at) == ("running", None)


def test_deployment_takes_its_environment_class_and_result(
    store: Store, connection: GitLabConnectionConfig, client: HttpClient
) -> None:
    _sync(store, connection, client)
    deployment = _one(store, "deployment", f"gitlab:{SNOWFLAKE}/deployments/13426753")
    assert deployment == Deployment(
        source="gitlab",
        external_id=f"{SNOWFLAKE}/deployments/13426753",
        raw_event_id=f"gitlab:deployment:{SNOWFLAKE}/deployments/13426753",
        service=SNOWFLAKE,
        environment="staging",
        environment_class=EnvironmentClass.STAGING,
        repo=SNOWFLAKE,
        commit_sha="add237f6852e6108ee8e0246780a54ce909c6087",
        pipeline_run_id=f"gitlab:{SNOWFLAKE}/pipelines/51653436",
        result="success",
        started_at=deployment.started_at,
        finished_at=datetime(2019, 3, 13, 14, 17, 47, 640000),
        url="https://gitlab.com/merico-dev/ee/vdev.co/-/jobs/176919795",
    )
    by_status = {
        d["status"]: _one(store, "deployment", f"gitlab:{SNOWFLAKE}/deployments/{d['id']}")
        for d in load("deployments")
    }
    assert by_status["canceled"].environment_class is EnvironmentClass.PRODUCTION
    assert {status: d.result for status, d in by_status.items()} == {
        "success": "success",
        "completed": "running",
        "failed": "failure",
        "canceled": "canceled",
        "created": "running",
        "running": "running",
        "blocked": "running",
        "undeployed": "running",
    }
    assert by_status["running"].finished_at is None


def test_environment_tier_classes_what_no_name_rule_knows() -> None:
    # A recorded deployment, its environment renamed and given the `tier` newer GitLab answers with.
    recorded = load("deployments")[0]

    def klass(name: str, tier: str | None) -> EnvironmentClass:
        item = {**recorded, "environment": {**recorded["environment"], "name": name, "tier": tier}}
        event = raw_event(
            "gitlab",
            "deployment",
            f"{SNOWFLAKE}/deployments/{item['id']}",
            item,
            connection="gl",
            received_at=NOW,
        )
        (deployment,) = [r for r in normalize([event], RULES).records if isinstance(r, Deployment)]
        return deployment.environment_class

    assert klass("k8s-eu-main", "production") is EnvironmentClass.PRODUCTION  # no name rule: the tier
    assert klass("k8s-eu-main", None) is EnvironmentClass.OTHER
    assert klass("k8s-eu-main", "unknown-tier") is EnvironmentClass.OTHER
    assert klass("production", "staging") is EnvironmentClass.PRODUCTION  # a name rule first
    assert klass("review/feature-1", "production") is EnvironmentClass.DEVELOPMENT  # a configured rule first


def _transitions(store: Store, item_id: str) -> list[StatusTransition]:
    found = store.fetch_records("status_transition", "work_item_id = ?", [item_id])
    return sorted((t for t in found if isinstance(t, StatusTransition)), key=lambda t: t.at)


def test_issues_become_work_items_with_open_and_close_transitions(
    store: Store, connection: GitLabConnectionConfig, client: HttpClient
) -> None:
    _sync(store, connection, client)
    assert store.count("work_item") == 16
    item = _one(store, "work_item", f"gitlab:{SNOWFLAKE}#5")
    assert isinstance(item, WorkItem)
    assert (item.key, item.project, item.tool_type, item.status, item.flow_state) == (
        f"{SNOWFLAKE}#5",
        SNOWFLAKE,
        "issue",
        "closed",
        FlowState.DONE,
    )
    assert item.done_at == datetime(2019, 8, 26, 14, 15, 27, 808000)
    transitions = _transitions(store, item.id)
    assert [(t.external_id, t.from_status, t.to_status) for t in transitions] == [
        (f"{SNOWFLAKE}#5/created", None, "open"),
        (f"{SNOWFLAKE}#5/closed@2019-08-26T14:15:27Z", "open", "closed"),
    ]
    assert transitions[1].at == item.done_at
    assert transitions[1].author_id == "gitlab:user/2295562"  # emilie closed it (its state event says)
    still_open = _one(store, "work_item", f"gitlab:{SNOWFLAKE}#3")
    assert (still_open.status, still_open.flow_state, still_open.done_at) == ("open", FlowState.WAITING, None)
    assert [t.to_status for t in _transitions(store, still_open.id)] == ["open"]


def test_issue_closed_before_state_events_keeps_its_last_close(
    store: Store, connection: GitLabConnectionConfig, client: HttpClient
) -> None:
    _sync(store, connection, client)
    item = _one(store, "work_item", f"gitlab:{SNOWFLAKE}#1")  # its state events list is empty
    transitions = _transitions(store, item.id)
    assert [(t.external_id, t.from_status, t.to_status) for t in transitions] == [
        (f"{SNOWFLAKE}#1/created", None, "open"),
        (f"{SNOWFLAKE}#1/closed", "open", "closed"),
    ]
    assert transitions[1].at == datetime(2019, 6, 28, 14, 32, 5, 376000)
    assert transitions[1].author_id == "gitlab:user/1942272"  # closed_by: tayloramurphy


def test_issue_closed_reopened_and_closed_again_keeps_every_transition(
    store: Store, connection: GitLabConnectionConfig, client: HttpClient
) -> None:
    _sync(store, connection, client)
    item = _one(store, "work_item", f"gitlab:{SNOWFLAKE}#4")
    assert (item.status, item.flow_state, item.done_at) == (
        "closed",
        FlowState.DONE,
        datetime(2019, 8, 26, 15, 37, 49, 678000),
    )
    transitions = _transitions(store, item.id)
    assert len(transitions) == 4
    created, closed, reopened, closed_again = transitions
    key = f"{SNOWFLAKE}#4"
    assert (created.external_id, created.at, created.to_status) == (
        f"{key}/created",
        datetime(2019, 8, 15, 15, 54, 17, 378000),
        "open",
    )
    assert closed.external_id == f"{key}/closed@2019-08-20T10:00:00Z"
    assert (closed.at, closed.from_status, closed.to_status) == (datetime(2019, 8, 20, 10), "open", "closed")
    assert (closed.from_flow_state, closed.to_flow_state) == (FlowState.WAITING, FlowState.DONE)
    assert closed.author_id == "gitlab:user/2295562"  # emilie
    assert closed.work_item_id == item.id
    assert reopened.external_id == f"{key}/reopened@2019-08-21T09:30:00Z"
    assert (reopened.at, reopened.from_status, reopened.to_status) == (
        datetime(2019, 8, 21, 9, 30, 0, 500000),
        "closed",
        "open",
    )
    assert (reopened.from_flow_state, reopened.to_flow_state) == (FlowState.DONE, FlowState.WAITING)
    assert reopened.author_id == "gitlab:user/1942272"  # tayloramurphy
    assert closed_again.external_id == f"{key}/closed@2019-08-26T15:37:49Z"
    assert (closed_again.at, closed_again.from_status, closed_again.to_status) == (
        item.done_at,
        "open",
        "closed",
    )
    assert (closed_again.from_flow_state, closed_again.to_flow_state) == (FlowState.WAITING, FlowState.DONE)
    # Work complete is the last entry into done: the second close, not the first.
    last_done = store.query("SELECT last_done_at FROM flow_items WHERE item_id = ?", [item.id])
    assert last_done[0][0] == datetime(2019, 8, 26, 15, 37, 49, 678000)


def test_issue_reopened_and_open_now_is_not_done(
    store: Store, connection: GitLabConnectionConfig, client: HttpClient
) -> None:
    _sync(store, connection, client)
    item = _one(store, "work_item", f"gitlab:{SNOWFLAKE}#13")
    assert (item.status, item.flow_state, item.done_at) == ("open", FlowState.WAITING, None)
    transitions = _transitions(store, item.id)
    assert [(t.from_status, t.to_status, t.at) for t in transitions] == [
        (None, "open", datetime(2021, 6, 21, 19, 30, 40, 87000)),
        ("open", "closed", datetime(2021, 7, 1, 12)),
        ("closed", "open", datetime(2021, 7, 2, 8)),
    ]
    current = store.query("SELECT current_state FROM flow_items WHERE item_id = ?", [item.id])
    assert current[0][0] == "waiting"


def test_accounts_become_people_and_bots_are_told_apart(
    store: Store, connection: GitLabConnectionConfig, client: HttpClient
) -> None:
    _sync(store, connection, client)
    member = _one(store, "person", "gitlab:user/4646117")
    assert (member.display_name, member.is_bot) == ("abcxx3", False)
    identity = _one(store, "identity", "gitlab:user/4646117")
    assert (identity.tool, identity.username, identity.person_id) == ("gitlab", "abc4", member.id)

    users = load("users_direct_api")
    bots = [
        {**users[0], "id": 1, "bot": True, "username": "deploy-helper"},
        {**users[0], "id": 2, "bot": None, "username": "renovate", "name": "renovate[bot]"},
        {**users[0], "id": 3, "bot": None, "username": "project_278964_bot_3c1b", "name": "token"},
    ]
    events = [
        raw_event("gitlab", "user", str(u["id"]), u, connection="gl", received_at=NOW)
        for u in (*users, *bots)
    ]
    people = {p.external_id: p for p in normalize(events).records if isinstance(p, Person)}
    assert people["user/2994198"].email == "abc1@dev.com" and not people["user/2994198"].is_bot
    assert [people[f"user/{n}"].is_bot for n in (1, 2, 3)] == [True, True, True]


def test_second_sync_asks_only_for_what_changed(
    store: Store, connection: GitLabConnectionConfig, client: HttpClient, gitlab: FakeGitLab
) -> None:
    _sync(store, connection, client)
    served = gitlab.projects[12345678].merge_requests
    newest = max(served, key=lambda mr: mr["updated_at"])
    cursor = load_cursor(store, "gl", f"{SNOWFLAKE}/merge_requests")
    assert cursor is not None and cursor.status == "complete"
    assert json.loads(cursor.cursor or "") == {
        "updated_after": newest["updated_at"],
        # every merge request stamped at the mark (!18 and !29 are the same one under two iids)
        "seen": sorted(str(mr["id"]) for mr in served if mr["updated_at"] == newest["updated_at"]),
        "page": 1,
        "running": False,
    }
    first = len(gitlab.requests)

    # One merge request changes on the server: only it (and its children) are fetched again.
    changed = next(mr for mr in gitlab.projects[12345678].merge_requests if mr["iid"] == 9)
    changed.update(title="Renamed", updated_at="2023-01-01T00:00:00.000Z")
    report = _sync(store, connection, client)
    asked = [r.query for r in gitlab.requests[first:] if r.path.endswith(f"{SNOWFLAKE}/merge_requests")]
    assert (
        [q["updated_after"] for q in asked] == [asked_from(newest["updated_at"])] == ["2022-06-30T21:41:48Z"]
    )
    assert (asked[0]["order_by"], asked[0]["sort"]) == ("updated_at", "asc")
    assert report.resources[f"{SNOWFLAKE}/merge_requests"].raw_events > 0
    assert gitlab.received(f"{SNOWFLAKE}/merge_requests/9/commits")[-1] in gitlab.requests[first:]
    assert not [r for r in gitlab.requests[first:] if "/merge_requests/1/" in r.path]
    assert _one(store, "change", f"gitlab:{SNOWFLAKE}!9").title == "Renamed"
    assert store.count("change") == 24
    for resource in ("issues", "pipelines", "deployments"):
        assert report.resources[f"{SNOWFLAKE}/{resource}"].raw_events == 0, resource
    newest_issue = max(load("issues"), key=stamp)
    asked_issues = gitlab.received(f"{SNOWFLAKE}/issues")[-1].query
    assert asked_issues["updated_after"] == asked_from(newest_issue["updated_at"])


def test_rate_limit_headers_and_429_are_waited_out(
    store: Store, connection: GitLabConnectionConfig, client: HttpClient, gitlab: FakeGitLab, clock: FakeClock
) -> None:
    gitlab.rate_limit_exhausted_at = {3}
    gitlab.rate_limit_reset = int(clock.now) + 30
    # The snowflake project's issues only: project 44's (empty) issues list may be asked for before the
    # third answer, as the two projects are walked side by side.
    gitlab.too_many_requests = {f"{SNOWFLAKE}/issues": 1}
    _sync(store, connection, client)
    assert clock.sleeps[:2] == [31.0, 7.0]  # until RateLimit-Reset (+1 s), then Retry-After
    assert store.count("work_item") == 16


def test_rejected_token_stops_with_a_clear_error(
    store: Store, connection: GitLabConnectionConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITLAB_TOKEN", "wrong")
    with pytest.raises(
        AuthenticationError, match=r"GitLab rejected the token in \$GITLAB_TOKEN \(401\)"
    ) as error:
        sync(store, connection, clock=lambda: NOW)
    assert "read_api" in str(error.value) and "401 Unauthorized" in str(error.value)
    cursor = load_cursor(store, "gl", f"{SNOWFLAKE}/merge_requests")
    assert cursor is not None and cursor.status == "failed"


def test_interrupted_sync_resumes_with_nothing_missing_or_twice(
    store: Store, connection: GitLabConnectionConfig, client: HttpClient, gitlab: FakeGitLab
) -> None:
    gitlab.too_many_requests = {}
    original = gitlab.answer
    calls = {"issues": 0}

    def failing(path: str, query: dict[str, str]) -> tuple[int, Any, bool]:
        if path.endswith("/issues"):
            calls["issues"] += 1
            if calls["issues"] >= 3:  # the third page of issues fails on every retry
                return 500, {"message": "500 Internal Server Error"}, False
        return original(path, query)

    gitlab.answer = failing  # type: ignore[method-assign]
    with pytest.raises(RetriesExhaustedError, match="500"):
        _sync(store, connection, client)
    cursor = load_cursor(store, "gl", f"{SNOWFLAKE}/issues")
    assert cursor is not None and cursor.status == "failed" and json.loads(cursor.cursor or "")["running"]
    partial = store.count("work_item")
    assert 0 < partial < 16
    gitlab.answer = original  # type: ignore[method-assign]
    _sync(store, connection, client)
    assert store.count("work_item") == 16


def test_replay_gives_the_records_a_sync_gave(
    store: Store, connection: GitLabConnectionConfig, client: HttpClient, gitlab: FakeGitLab
) -> None:
    _sync(store, connection, client)
    synced = snapshot(store)
    assert all(synced[kind] for kind in NORMALIZED_KINDS if kind != "commit_parent")
    for kind in NORMALIZED_KINDS:
        store.execute(f"DELETE FROM {RECORD_BY_KIND[kind].table}")
    requests = len(gitlab.requests)
    report = replay(store, "gl", rules=RULES)
    assert len(gitlab.requests) == requests
    assert "merge_request_note+merge_request_approvals" in report.resources
    assert snapshot(store) == synced
    raw_ids = {r[0] for r in store.query("SELECT id FROM raw_events")}
    for kind in NORMALIZED_KINDS:
        assert all(r["raw_event_id"] in raw_ids for r in synced[kind].values()), kind


def test_gitlab_connection_with_a_wrong_key_is_named_with_its_line(tmp_path: Path) -> None:
    text = (
        "connections:\n"
        "  - name: gl\n"
        "    tool: gitlab\n"
        "    projects: [gitlab-data/snowflake_spend, '44']\n"
        "    repositories: [a/b]\n"
    )
    with pytest.raises(ConfigError) as error:
        parse_config(text, tmp_path / "obeya.yaml")
    assert f"{tmp_path / 'obeya.yaml'}:5: connections[0].repositories: unknown key" in str(error.value)
    with pytest.raises(ConfigError, match=r"obeya.yaml:4: connections\[0\].projects.*not a GitLab project"):
        parse_config(
            "connections:\n  - name: g\n    tool: gitlab\n    projects: ['no project']\n",
            tmp_path / "obeya.yaml",
        )
    config = parse_config(
        "connections:\n  - name: g\n    tool: gitlab\n    projects: [group/sub/project, '278964']\n",
        tmp_path / "obeya.yaml",
    )
    gitlab = config.connection("g")
    assert isinstance(gitlab, GitLabConnectionConfig)
    assert (gitlab.base_url, gitlab.token_env, gitlab.projects, gitlab.value_stream) == (
        "https://gitlab.com",
        "GITLAB_TOKEN",
        ["group/sub/project", "278964"],
        None,
    )


def test_recordings_are_where_the_server_reads_them() -> None:
    assert (RECORDINGS / "_raw_gitlab_api_merge_requests.jsonl").exists() and PIP_TEST


def _named(store: Store) -> dict[str, Deployment]:
    found = store.fetch_records("deployment", "external_id LIKE ?", ["%/deployment-by-name"])
    return {d.external_id: d for d in found if isinstance(d, Deployment)}


def test_job_name_rule_makes_deployments_of_jobs_without_environment(
    store: Store, connection: GitLabConnectionConfig, client: HttpClient, gitlab: FakeGitLab
) -> None:
    # Recorded merico/pip_test jobs: "compile" 109 (success), 105 (failed), 100 (success); "format" 60,
    # 63, 65, 67 are created, pending, manual, skipped (never ran). Job 100 gets an environment here.
    (job_100,) = [j for j in gitlab.projects[44].jobs[24] if j["id"] == 100]
    job_100["environment"] = {"name": "production"}
    rules = MappingRules(
        environments=RULES.environments,
        deployment_names=DeploymentNameRule(("^compile$", "^format$"), EnvironmentClass.PRODUCTION),
    )
    sync(store, connection, rules=rules, client=client, clock=lambda: NOW)
    named = _named(store)
    assert named["44/jobs/109/deployment-by-name"] == Deployment(
        source="gitlab",
        external_id="44/jobs/109/deployment-by-name",
        raw_event_id="gitlab:job:44/jobs/109",
        service="44",
        environment="compile",
        environment_class=EnvironmentClass.PRODUCTION,  # the name says no class: job_environment
        repo="44",
        commit_sha="ca3b963241befa73a2cce59bae3bbb82c26a89e0",
        pipeline_run_id="gitlab:44/pipelines/31",
        result="success",
        started_at=datetime(2022, 7, 25, 15, 35, 14, 724000),
        finished_at=datetime(2022, 7, 25, 15, 35, 17, 828000),
        url="https://gitlab.nddtf.com/merico/pip_test/-/jobs/109",
    )
    assert named["44/jobs/105/deployment-by-name"].result == "failure"
    assert "44/jobs/100/deployment-by-name" not in named  # it has an environment: GitLab's deployment
    for never_ran in (60, 63, 65, 67):
        assert f"44/jobs/{never_ran}/deployment-by-name" not in named
    assert {d.environment for d in named.values()} <= {"compile", "format"}


def test_job_name_rule_unset_or_not_matching_makes_no_deployment(
    store: Store, connection: GitLabConnectionConfig, client: HttpClient
) -> None:
    _sync(store, connection, client)
    assert _named(store) == {}
    replay(store, "gl", rules=MappingRules(deployment_names=DeploymentNameRule(("deploy",))))
    assert _named(store) == {}  # no recorded job is named deploy


def test_replay_applies_a_changed_job_name_rule(
    store: Store, connection: GitLabConnectionConfig, client: HttpClient, gitlab: FakeGitLab
) -> None:
    _sync(store, connection, client)
    requests = len(gitlab.requests)
    rules = MappingRules(deployment_names=DeploymentNameRule(("compile",)))
    replay(store, "gl", rules=rules)
    assert len(gitlab.requests) == requests
    named = _named(store)
    assert sorted(named) == [f"44/jobs/{n}/deployment-by-name" for n in (100, 105, 109)]
    # "compile" names no environment class and job_environment is left at its default.
    assert {d.environment_class for d in named.values()} == {EnvironmentClass.OTHER}

    replay(store, "gl", rules=MappingRules(deployment_names=DeploymentNameRule(("^compile$",))))
    assert sorted(_named(store)) == sorted(named)  # the same pattern in other words: the same deployments
    replay(store, "gl", rules=RULES)  # the pattern removed: they are gone, GitLab's own deployments stay
    assert _named(store) == {}
    assert _one(store, "deployment", f"gitlab:{SNOWFLAKE}/deployments/13426753").environment == "staging"


# --- repository commits: the git graph ---------------------------------------------------------------

MERGE_176 = "35c3a3d82586fa0bcdb2a73b812081ece4e83429"  # a recorded merge commit with two parents
HEAD = BRANCHES["master"]


def test_repository_commits_give_commits_and_their_parents(
    store: Store, connection: GitLabConnectionConfig, client: HttpClient, gitlab: FakeGitLab
) -> None:
    report = _sync(store, connection, client)
    asked = gitlab.received(f"{SNOWFLAKE}/repository/commits")
    assert [(q.query.get("ref_name"), q.query.get("since")) for q in asked] == [(None, None)]
    assert report.resources[f"{SNOWFLAKE}/commits"].fetched == 5
    commit = _one(store, "commit", f"gitlab:{SNOWFLAKE}@{MERGE_176}")
    assert commit == Commit(
        source="gitlab",
        external_id=f"{SNOWFLAKE}@{MERGE_176}",
        raw_event_id=f"gitlab:commit:{SNOWFLAKE}@{MERGE_176}",
        repo=SNOWFLAKE,
        sha=MERGE_176,
        message="Merge branch '117-change-language-in-intercom' into 'master'\n\nMake Intercom support "
        "Chinese\n\nCloses #117\n\nSee merge request meri.co/vdev.co!176",
        author_id="gitlab:git/13381258258@163.com",
        authored_at=datetime(2019, 3, 13, 14, 55, 17),
        committed_at=datetime(2019, 3, 13, 14, 55, 17),
    )
    parents = sorted(store.fetch_records("commit_parent", "commit_sha = ?", [MERGE_176]), key=lambda p: p.id)
    assert parents == [
        CommitParent(
            source="gitlab",
            external_id=f"{SNOWFLAKE}@{MERGE_176}^{position}",
            raw_event_id=f"gitlab:commit:{SNOWFLAKE}@{MERGE_176}",
            repo=SNOWFLAKE,
            commit_sha=MERGE_176,
            parent_sha=parent,
            position=position,
        )
        for position, parent in enumerate(
            ["8373d207f0f2cc4414c4b1ad359b5af56e979d59", "7a8bf66962a5d4c21b923362986216ab0d7e7633"]
        )
    ]
    # +08:00 in the answer, UTC in the store
    head = _one(store, "commit", f"gitlab:{SNOWFLAKE}@{HEAD}")
    assert (head.authored_at, head.committed_at) == (datetime(2019, 3, 13, 15, 24, 52),) * 2
    # five commits: two merges (two parents each) and three with one parent
    assert store.count("commit_parent") == 7
    author = _one(store, "person", "gitlab:git/13381258258@163.com")
    assert (author.display_name, author.email) == ("Runjin Zheng", "13381258258@163.com")


def test_commits_of_a_configured_ref(store: Store, gitlab: FakeGitLab, clock: FakeClock) -> None:
    gitlab.projects[12345678].branches["deploy"] = MERGE_176
    connection = GitLabConnectionConfig(
        name="gl", base_url=gitlab.base_url, projects=[SNOWFLAKE], commit_ref="deploy"
    )
    http = gitlab_client(connection, sleep=clock.sleep, clock=clock.time, jitter=lambda: 0.0)
    _sync(store, connection, http)
    http.close()
    assert gitlab.received(f"{SNOWFLAKE}/repository/commits")[0].query["ref_name"] == "deploy"
    assert {
        c.sha[:7]
        for c in store.fetch_records(
            "commit", "repo = ? AND raw_event_id LIKE ?", [SNOWFLAKE, "gitlab:commit:%"]
        )
    } == {"35c3a3d", "8373d20", "add237f"}


def test_second_commits_sync_asks_since_the_newest_commit_and_skips_it(
    store: Store, connection: GitLabConnectionConfig, client: HttpClient, gitlab: FakeGitLab
) -> None:
    _sync(store, connection, client)
    cursor = load_cursor(store, "gl", f"{SNOWFLAKE}/commits")
    assert cursor is not None and json.loads(cursor.cursor or "") == {
        "updated_after": "2019-03-13T23:24:52.000+08:00",  # HEAD's committed_date, as answered
        "seen": [HEAD],
        "page": 1,
        "running": False,
    }
    pushed = {
        **next(c for c in recorded_commits() if c["id"] == HEAD),
        "id": "e" * 40,
        "short_id": "eeeeeeee",
        "committed_date": "2019-03-14T09:00:00.000+00:00",
        "parent_ids": [HEAD],
    }
    gitlab.projects[12345678].commits.append(pushed)
    gitlab.projects[12345678].branches["master"] = pushed["id"]
    first = len(gitlab.requests)
    report = _sync(store, connection, client)
    asked = [r.query for r in gitlab.requests[first:] if r.path.endswith(f"{SNOWFLAKE}/repository/commits")]
    assert [q.get("since") for q in asked] == ["2019-03-13T15:24:52Z"]
    commits = report.resources[f"{SNOWFLAKE}/commits"]
    assert (commits.fetched, dict(commits.skipped)) == (2, {"unchanged since the last sync": 1})
    assert _one(store, "commit_parent", f"gitlab:{SNOWFLAKE}@{'e' * 40}^0").parent_sha == HEAD
    assert store.count("commit_parent") == 8


def test_interrupted_commits_walk_resumes_on_the_commit_it_started_from(
    store: Store, gitlab: FakeGitLab, clock: FakeClock
) -> None:
    connection = GitLabConnectionConfig(name="gl", base_url=gitlab.base_url, projects=[SNOWFLAKE])
    gitlab.page_size = 2
    original = gitlab.answer
    broken = {"on": True}

    def failing(path: str, query: dict[str, str]) -> tuple[int, Any, bool]:
        if broken["on"] and path.endswith("/repository/commits") and query.get("page") == "2":
            return 500, {"message": "500 Internal Server Error"}, False
        return original(path, query)

    gitlab.answer = failing  # type: ignore[method-assign]
    http = gitlab_client(
        connection, sleep=clock.sleep, clock=clock.time, jitter=lambda: 0.0, retry=RetryPolicy(max_attempts=2)
    )
    with pytest.raises(RetriesExhaustedError):
        _sync(store, connection, http)
    cursor = json.loads(load_cursor(store, "gl", f"{SNOWFLAKE}/commits").cursor or "")  # type: ignore[union-attr]
    assert (cursor["page"], cursor["running"], cursor["walk_head"]) == (2, True, HEAD)
    assert store.count("commit_parent") == 2  # d8e7440 and fc449af, one parent each

    # A push while the sync was down puts a newer commit on top of the branch: the resumed walk still
    # reads the history of the commit it started from, page 2 of it, and loses nothing.
    pushed = {**recorded_commits()[0], "id": "f" * 40, "committed_date": "2019-03-14T09:00:00Z"}
    pushed["parent_ids"] = [HEAD]
    gitlab.projects[12345678].commits.append(pushed)
    gitlab.projects[12345678].branches["master"] = pushed["id"]
    broken["on"] = False
    first = len(gitlab.requests)
    _sync(store, connection, http)
    asked = [r.query for r in gitlab.requests[first:] if r.path.endswith("/repository/commits")]
    assert [(q.get("ref_name"), q["page"]) for q in asked] == [(HEAD, "2"), (HEAD, "3")]
    assert store.count("commit_parent") == 7
    # the next sync takes the pushed commit
    _sync(store, connection, http)
    http.close()
    assert store.count("commit_parent") == 8


def test_deployments_ship_changes_by_the_gitlab_git_graph(
    store: Store, connection: GitLabConnectionConfig, client: HttpClient, gitlab: FakeGitLab
) -> None:
    project = gitlab.projects[12345678]
    # Test data on top of the recording: three staging deployments succeed, and the merge request the
    # recorded merge commit 35c3a3d names (!176) is served, merged by that commit.
    for deployment in project.deployments:
        if deployment["id"] in (13432654, 13436915):
            deployment["status"] = "success"  # both have their job's finish recorded
    merged = {**project.merge_requests[0], "id": 176176, "iid": 176, "merge_commit_sha": MERGE_176}
    merged.update(squash=False, squash_commit_sha=None, state="merged", merged_at="2019-03-13T14:55:18Z")
    project.merge_requests.append(merged)
    _sync(store, connection, client)
    table, report = shipped_changes(store, LinkingRules())
    # staging: add237f (first, no base) → 8373d20 → d8e7440; both later ones by the graph
    assert (report.by_graph, report.by_time_window, report.without_base) == (2, 0, 1)
    shipped = {(row["from_id"], row["to_id"]) for row in table.to_pylist()}
    assert shipped == {(f"gitlab:{SNOWFLAKE}/deployments/13436915", f"gitlab:{SNOWFLAKE}!176")}


# --- environments: their tier classes deployments ------------------------------------------------------


def test_environment_tier_classes_a_deployment_whose_answer_names_no_tier(
    store: Store, connection: GitLabConnectionConfig, client: HttpClient, gitlab: FakeGitLab
) -> None:
    project = gitlab.projects[12345678]
    # Test data: production is renamed "meri-co", a name no environment rule knows; the deployments
    # embed it without a tier (as the recorded ones do), the environments list says tier production.
    for deployment in project.deployments:
        if deployment["environment"]["name"] == "production":
            deployment["environment"] = {**deployment["environment"], "name": "meri-co"}
    for environment in project.environments:
        if environment["name"] == "production":
            environment["name"] = "meri-co"
    report = _sync(store, connection, client)
    assert report.resources[f"{SNOWFLAKE}/environments"].fetched == 3
    deployed = _one(store, "deployment", f"gitlab:{SNOWFLAKE}/deployments/13436986")
    assert (deployed.environment, deployed.environment_class) == ("meri-co", EnvironmentClass.PRODUCTION)
    # staging's tier agrees with its name; the documented review/fix-foo, never deployed to, makes no record
    staging = _one(store, "deployment", f"gitlab:{SNOWFLAKE}/deployments/13426753")
    assert staging.environment_class is EnvironmentClass.STAGING
    assert store.count("deployment") == 8
    stored = store.query("SELECT id FROM raw_events WHERE event_type = 'environment' ORDER BY id")
    assert [r[0] for r in stored] == [
        f"gitlab:environment:{SNOWFLAKE}/environments/{n}" for n in ("1", "585636", "585637")
    ]


def test_without_the_environments_list_a_nameless_tier_is_other(
    store: Store, connection: GitLabConnectionConfig, client: HttpClient, gitlab: FakeGitLab
) -> None:
    project = gitlab.projects[12345678]
    for deployment in project.deployments:
        if deployment["environment"]["name"] == "production":
            deployment["environment"] = {**deployment["environment"], "name": "meri-co"}
    project.environments = []
    _sync(store, connection, client)
    deployed = _one(store, "deployment", f"gitlab:{SNOWFLAKE}/deployments/13436986")
    assert deployed.environment_class is EnvironmentClass.OTHER


def test_resumed_commits_walk_whose_start_commit_is_gone_walks_the_branch_again(
    store: Store, gitlab: FakeGitLab, clock: FakeClock
) -> None:
    connection = GitLabConnectionConfig(name="gl", base_url=gitlab.base_url, projects=[SNOWFLAKE])
    gitlab.page_size = 2
    gitlab.faults["/repository/commits"] = Fault(500, {"message": "500 Internal Server Error"}, after=1)
    http = gitlab_client(
        connection, sleep=clock.sleep, clock=clock.time, jitter=lambda: 0.0, retry=RetryPolicy(max_attempts=2)
    )
    with pytest.raises(RetriesExhaustedError):
        _sync(store, connection, http)
    del gitlab.faults["/repository/commits"]
    # A force push replaced the head with a new commit on the same parent, and the old head is gone.
    project = gitlab.projects[12345678]
    old_head = next(c for c in project.commits if c["id"] == HEAD)
    project.commits.remove(old_head)
    replaced = {**old_head, "id": "a" * 40, "committed_date": "2019-03-13T15:30:00.000+00:00"}
    project.commits.append(replaced)
    project.branches["master"] = replaced["id"]
    first = len(gitlab.requests)
    _sync(store, connection, http)
    http.close()
    asked = [r.query for r in gitlab.requests[first:] if r.path.endswith("/repository/commits")]
    assert [(q.get("ref_name"), q["page"]) for q in asked] == [
        (HEAD, "2"),  # 404: the commit is gone
        (None, "1"),  # the branch again, then its own head's history
        ("a" * 40, "2"),
        ("a" * 40, "3"),
    ]
    shas = {c.sha for c in store.fetch_records("commit", "raw_event_id LIKE ?", ["gitlab:commit:%"])}
    assert "a" * 40 in shas and len(shas) == 6  # the five recorded (the old head stays stored) + the new
    cursor = json.loads(load_cursor(store, "gl", f"{SNOWFLAKE}/commits").cursor or "")  # type: ignore[union-attr]
    assert (cursor["updated_after"], cursor["running"]) == ("2019-03-13T15:30:00.000+00:00", False)
