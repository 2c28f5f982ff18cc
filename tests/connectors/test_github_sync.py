"""GitHub sync against the recorded API on a local server, on DuckDB and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from github_server import ANTS, OPENBIC, RECORDINGS, FakeGitHub, Route

from obeya.connectors import sync as sync_module
from obeya.connectors.config import GitHubConnectionConfig
from obeya.connectors.errors import MalformedResponseError
from obeya.connectors.github.normalizer import normalize
from obeya.connectors.http import HttpClient
from obeya.connectors.raw import raw_event
from obeya.connectors.sync import load_cursor, replay, sync
from obeya.model.records import (
    Change,
    ChangeCommit,
    Commit,
    CommitParent,
    Deployment,
    Person,
    PipelineJob,
    PipelineRun,
    RawEvent,
    Release,
    Review,
)
from obeya.model.schema import TABLES
from obeya.model.vocabulary import EnvironmentClass
from obeya.normalize.rules import DeploymentNameRule, EnvironmentRule, MappingRules
from obeya.store import Store

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
    "release",
)
RULES = MappingRules(environments=(EnvironmentRule("^github-pages$", EnvironmentClass.PRODUCTION),))
NOW = datetime(2024, 5, 1, tzinfo=UTC)


def _sync(store: Store, connection: GitHubConnectionConfig, client: HttpClient, **options: Any) -> Any:
    return sync(store, connection, rules=RULES, client=client, clock=lambda: NOW, **options)


def _one(store: Store, kind: str, record_id: str) -> Any:
    found = store.fetch_records(kind, "id = ?", [record_id])
    assert len(found) == 1, f"{kind} {record_id}: {len(found)} found"
    return found[0]


def snapshot(store: Store) -> dict[str, dict[str, dict[str, Any]]]:
    """Every normalized record, by kind and id."""
    return {kind: {r.id: r.model_dump() for r in store.fetch_records(kind)} for kind in NORMALIZED_KINDS}


def test_pull_request_becomes_a_change_with_its_commits_and_reviews(
    store: Store, connection: GitHubConnectionConfig, client: HttpClient
) -> None:
    report = _sync(store, connection, client)

    assert report.resources[f"{ANTS}/pull_requests"].fetched == 49
    assert store.count("change") == 49
    change = _one(store, "change", "github:panjf2000/ants#41")
    assert change == Change(
        source="github",
        external_id="panjf2000/ants#41",
        raw_event_id="github:pull_request:panjf2000/ants/41",
        repo="panjf2000/ants",
        number=41,
        title="support nonblocking submit and max blocking limit setting",
        branch="nonblocking",
        base_branch="master",
        author_id="github:user/8923413",
        state="merged",
        created_at=datetime(2019, 8, 20, 3, 24, 27),
        merged_at=datetime(2019, 8, 20, 10, 55, 19),
        closed_at=datetime(2019, 8, 20, 10, 55, 19),
        merge_commit_sha="faef79b7d8a4876da8a215d7794cce20c710aaa2",
        head_sha="58466b12b03a603d9f0331bbcc64a7557b27865d",
    )
    sha = "58466b12b03a603d9f0331bbcc64a7557b27865d"
    assert store.fetch_records("change_commit", "change_id = ?", [change.id]) == [
        ChangeCommit(
            source="github",
            external_id=f"panjf2000/ants#41@{sha}",
            raw_event_id=f"github:pull_request_commit:panjf2000/ants/41/{sha}",
            change_id=change.id,
            commit_sha=sha,
        )
    ]
    commit = _one(store, "commit", f"github:panjf2000/ants@{sha}")
    assert isinstance(commit, Commit)
    assert (commit.author_id, commit.authored_at, commit.committed_at) == (
        "github:user/8923413",
        datetime(2019, 8, 20, 3, 22),
        datetime(2019, 8, 20, 10, 31, 45),
    )
    assert commit.message.startswith("support nonblocking submit and max blocking limit setting\n")
    assert store.fetch_records("commit_parent", "commit_sha = ?", [sha]) == [
        CommitParent(
            source="github",
            external_id=f"panjf2000/ants@{sha}^0",
            raw_event_id=f"github:commit:panjf2000/ants/{sha}",
            repo="panjf2000/ants",
            commit_sha=sha,
            parent_sha="dc8169d5c2645bfc507d6993b7d215326300f31b",
            position=0,
        )
    ]
    reviews = store.fetch_records("review", "change_id = ?", [change.id])
    assert len(reviews) == 12
    assert _one(store, "review", "github:panjf2000/ants#41/reviews/277027723") == Review(
        source="github",
        external_id="panjf2000/ants#41/reviews/277027723",
        raw_event_id="github:review:panjf2000/ants/41/277027723",
        change_id=change.id,
        reviewer_id="github:user/8923413",
        state="commented",
        submitted_at=datetime(2019, 8, 20, 9, 5, 2),
    )
    author = _one(store, "person", "github:user/8923413")
    assert (author.display_name, author.is_bot) == ("choleraehyq", False)
    assert _one(store, "identity", "github:user/8923413").username == "choleraehyq"
    comment = _one(store, "change_comment", "github:panjf2000/ants#41/comments/315493235")
    assert (comment.change_id, comment.path, comment.created_at) == (
        change.id,
        "ants_test.go",
        datetime(2019, 8, 20, 3, 25, 26),
    )


def test_bot_reviewer_is_a_bot_person() -> None:
    lines = (RECORDINGS / "github" / "_raw_github_api_pr_reviews_bot_filter.jsonl").read_text().splitlines()
    events = []
    for line in lines:
        review = json.loads(line)["data"]
        events.append(
            raw_event(
                "github", "review", f"test/repo/1/{review['id']}", review, connection="gh", received_at=NOW
            )
        )
        events.append(
            raw_event(
                "github", "user", str(review["user"]["id"]), review["user"], connection="gh", received_at=NOW
            )
        )

    records = normalize(events).records

    people = {r.display_name: r for r in records if isinstance(r, Person)}
    assert people["renovate[bot]"].is_bot is True
    assert people["human-reviewer"].is_bot is False
    bot_review = next(r for r in records if isinstance(r, Review) and r.external_id.endswith("/5001"))
    assert (bot_review.reviewer_id, bot_review.state, bot_review.change_id) == (
        "github:user/29139614",
        "approved",
        "github:test/repo#1",
    )


def test_workflow_run_and_its_jobs(
    store: Store, connection: GitHubConnectionConfig, client: HttpClient
) -> None:
    _sync(store, connection, client)

    assert _one(store, "pipeline_run", "github:panjf2000/ants/runs/2983238245") == PipelineRun(
        source="github",
        external_id="panjf2000/ants/runs/2983238245",
        raw_event_id="github:workflow_run:panjf2000/ants/2983238245",
        pipeline="CodeQL",
        repo="panjf2000/ants",
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
    jobs = store.fetch_records("pipeline_job", "run_id = ?", ["github:panjf2000/ants/runs/577324554"])
    assert [(j.name, j.result) for j in jobs] == [
        ("deployubuntu", "canceled"),
        ("deploymacos", "canceled"),
        ("deploywindows", "canceled"),
        ("deployubuntu", "canceled"),
        ("deploymacos", "canceled"),
        ("deploywindows", "canceled"),
    ]
    assert jobs[0] == PipelineJob(
        source="github",
        external_id="panjf2000/ants/jobs/1924918171",
        raw_event_id="github:workflow_job:panjf2000/ants/1924918171",
        run_id="github:panjf2000/ants/runs/577324554",
        name="deployubuntu",
        result="canceled",
        attempt=1,
        started_at=datetime(2021, 2, 18, 6, 59, 13),
        finished_at=datetime(2021, 2, 18, 7, 1, 18),
    )
    running = [r for r in store.fetch_records("pipeline_run") if r.result == "running"]
    assert running and all(r.finished_at is None for r in running)


def test_deployment_takes_its_result_from_the_latest_status(
    store: Store, connection: GitHubConnectionConfig, client: HttpClient
) -> None:
    _sync(store, connection, client)

    assert store.count("deployment") == 7
    assert _one(store, "deployment", "github:facebook/OpenBIC/deployments/3881429895") == Deployment(
        source="github",
        external_id="facebook/OpenBIC/deployments/3881429895",
        raw_event_id="github:deployment:facebook/OpenBIC/3881429895",
        service="facebook/OpenBIC",
        environment="github-pages",
        environment_class=EnvironmentClass.PRODUCTION,
        repo="facebook/OpenBIC",
        commit_sha="0916a0afdfa825779c892a8951bde706a054d352",
        result="success",
        started_at=datetime(2026, 2, 20, 0, 30, 37),
        finished_at=datetime(2026, 2, 20, 0, 30, 59),
    )
    # Superseded (latest status "inactive") after succeeding: it ended when it succeeded.
    superseded = _one(store, "deployment", "github:facebook/OpenBIC/deployments/3839563910")
    assert (superseded.result, superseded.finished_at) == ("success", datetime(2026, 2, 14, 0, 32, 36))
    bot = _one(store, "person", "github:user/41898282")
    assert bot.is_bot is True


def test_issues_become_work_items_and_close_events_transitions(
    store: Store, connection: GitHubConnectionConfig, client: HttpClient
) -> None:
    report = _sync(store, connection, client)

    issues = report.resources[f"{ANTS}/issues"]
    # 15 in the recorded issue list, 3 more among the issues the recorded events embed
    assert issues.skipped["pull request listed as an issue (collected as a change)"] == 18
    item = _one(store, "work_item", "github:panjf2000/ants#228")
    assert (item.status, item.flow_state, item.labels, item.assignee_id) == (
        "closed",
        "done",
        ["help wanted", "question"],
        "github:user/7496278",
    )
    assert item.done_at == datetime(2022, 6, 9, 1, 42, 11)
    # Ids by state and second (what an `issues` webhook can give too), not by issue-event id.
    transitions = store.fetch_records("status_transition", "work_item_id = ?", ["github:panjf2000/ants#226"])
    assert sorted(
        (t.id, t.at, t.from_status, t.to_status, t.to_flow_state, t.author_id) for t in transitions
    ) == [
        (
            "github:panjf2000/ants#226/closed@2022-05-22T10:46:11Z",
            datetime(2022, 5, 22, 10, 46, 11),
            "open",
            "closed",
            "canceled",  # state_reason not_planned
            "github:user/4979407",
        ),
        (
            "github:panjf2000/ants#226/created",
            datetime(2022, 5, 21, 16, 39, 29),
            None,
            "open",
            "waiting",
            "github:user/4979407",
        ),
    ]
    # #217's close event is dated 14:45:36, the issue's closed_at 14:45:35: the last close takes the
    # issue's second, the one an `issues` webhook "closed" sees.
    (closed,) = store.fetch_records(
        "status_transition", "work_item_id = ? AND to_status = 'closed'", ["github:panjf2000/ants#217"]
    )
    assert (closed.id, closed.at, closed.author_id) == (
        "github:panjf2000/ants#217/closed@2022-05-07T14:45:35Z",
        datetime(2022, 5, 7, 14, 45, 35),
        "github:user/7496278",
    )


def test_every_record_points_at_a_stored_raw_event(
    store: Store, connection: GitHubConnectionConfig, client: HttpClient
) -> None:
    _sync(store, connection, client)

    raw_ids = {r.id for r in store.fetch_records("raw_event")}
    for kind in NORMALIZED_KINDS:
        for record in store.fetch_records(kind):
            assert record.raw_event_id in raw_ids, (kind, record.id)


def test_second_sync_fetches_only_what_changed(
    store: Store, connection: GitHubConnectionConfig, client: HttpClient, github: FakeGitHub
) -> None:
    _sync(store, connection, client)
    pulls = github.routes[f"/repos/{ANTS}/pulls"].items
    updated = next(p for p in pulls if p["number"] == 41)
    updated["title"] = "support nonblocking submit (edited)"
    updated["updated_at"] = "2023-01-01T00:00:00Z"
    issues_high_water = max(i["updated_at"] for i in github.routes[f"/repos/{ANTS}/issues"].items)
    github.requests.clear()

    report = _sync(store, connection, client)

    # #41 changed; #210 holds the old high-water mark, and items at the mark are fetched again so two
    # updated in the same second are never lost. The other 47 are not asked for.
    pull_requests = [r for r in github.requests if r.path.startswith(f"/repos/{ANTS}/pulls")]
    assert [r.path for r in pull_requests if r.path.endswith("/pulls")] == [f"/repos/{ANTS}/pulls"]
    assert {r.path for r in pull_requests if not r.path.endswith("/pulls")} == {
        f"/repos/{ANTS}/pulls/{n}/{child}" for n in (41, 210) for child in ("commits", "reviews", "comments")
    }
    assert report.resources[f"{ANTS}/pull_requests"].skipped["unchanged since the last sync"] == 8
    assert _one(store, "change", "github:panjf2000/ants#41").title == "support nonblocking submit (edited)"
    assert store.count("change") == 49
    [issues_request] = [r for r in github.requests if r.path == f"/repos/{ANTS}/issues"]
    assert issues_request.query["since"] == issues_high_water
    # `since` is inclusive: only #228, updated exactly at the mark, comes back (and its events).
    assert [r.path for r in github.requested("/issues/")] == [f"/repos/{ANTS}/issues/228/events"]


def test_malformed_page_stores_nothing_of_it_and_the_next_sync_resumes_there(
    store: Store,
    connection: GitHubConnectionConfig,
    client: HttpClient,
    github: FakeGitHub,
    open_store: Callable[[str], Store],
    engine: str,
) -> None:
    github.fail(f"/repos/{ANTS}/pulls", status=200, page=2, body="<html>Bad gateway</html>")

    with pytest.raises(MalformedResponseError, match=r"/repos/panjf2000/ants/pulls\?.*page=2"):
        _sync(store, connection, client)

    pulls = sorted(github.routes[f"/repos/{ANTS}/pulls"].items, key=lambda p: p["updated_at"], reverse=True)
    stored = {c.number for c in store.fetch_records("change")}
    assert stored == {p["number"] for p in pulls[:10]}
    cursor = load_cursor(store, "gh", f"{ANTS}/pull_requests")
    assert cursor is not None and cursor.status == "failed" and "not JSON" in (cursor.message or "")
    assert "page=2" in json.loads(cursor.cursor or "{}")["next_url"]

    github.requests.clear()
    _sync(store, connection, client)

    first_pulls_request = next(r for r in github.requests if r.path == f"/repos/{ANTS}/pulls")
    assert first_pulls_request.query["page"] == "2"
    _assert_same_as_a_clean_sync(store, connection, client, open_store, engine)


def test_interrupted_sync_resumes_with_nothing_missing_or_twice(
    store: Store,
    connection: GitHubConnectionConfig,
    client: HttpClient,
    github: FakeGitHub,
    open_store: Callable[[str], Store],
    engine: str,
) -> None:
    pages: list[str] = []

    def interrupt_on_the_eighth_page(resource: str, items: int) -> None:
        pages.append(resource)
        if len(pages) == 8:  # 5 pull request pages, then 3 of the 6 issue pages
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _sync(store, connection, client, progress=interrupt_on_the_eighth_page)

    assert load_cursor(store, "gh", f"{ANTS}/pull_requests").status == "complete"  # type: ignore[union-attr]
    # A hard stop (a crash, Ctrl-C) leaves the cursor as it was after the last stored page.
    assert load_cursor(store, "gh", f"{ANTS}/issues").status == "running"  # type: ignore[union-attr]
    github.requests.clear()

    _sync(store, connection, client)

    # Pull requests had finished: one page, and only #210 (at the high-water mark) again.
    assert {r.path for r in github.requested(f"/repos/{ANTS}/pulls/")} == {
        f"/repos/{ANTS}/pulls/210/{child}" for child in ("commits", "reviews", "comments")
    }
    issues_requests = [r for r in github.requests if r.path == f"/repos/{ANTS}/issues"]
    assert [r.query["page"] for r in issues_requests] == ["4", "5", "6"]
    _assert_same_as_a_clean_sync(store, connection, client, open_store, engine)


def _assert_same_as_a_clean_sync(
    store: Store,
    connection: GitHubConnectionConfig,
    client: HttpClient,
    open_store: Callable[[str], Store],
    engine: str,
) -> None:
    clean = open_store(engine)
    clean.migrate()
    _sync(clean, connection, client)
    for kind in NORMALIZED_KINDS:
        assert store.count(kind) == clean.count(kind), kind
    assert snapshot(store) == snapshot(clean)
    assert {r.id for r in store.fetch_records("raw_event")} == {
        r.id for r in clean.fetch_records("raw_event")
    }


def test_replay_gives_the_records_a_sync_gave(
    store: Store, connection: GitHubConnectionConfig, client: HttpClient, github: FakeGitHub
) -> None:
    _sync(store, connection, client)
    synced = snapshot(store)
    for kind in NORMALIZED_KINDS:
        store.execute(f'DELETE FROM "{store_table(kind)}"')
    requests_before = len(github.requests)

    report = replay(store, connection, rules=RULES)

    assert len(github.requests) == requests_before
    assert report.normalized > 0
    assert snapshot(store) == synced


def test_replay_applies_changed_mapping_rules(
    store: Store, connection: GitHubConnectionConfig, client: HttpClient
) -> None:
    _sync(store, connection, client)

    replay(store, "gh", rules=MappingRules())

    deployment = _one(store, "deployment", "github:facebook/OpenBIC/deployments/3881429895")
    assert deployment.environment_class == EnvironmentClass.OTHER


def store_table(kind: str) -> str:
    return TABLES[kind].name


def _named(store: Store) -> dict[str, Deployment]:
    found = store.fetch_records("deployment", "external_id LIKE ?", ["%/deployment-by-name"])
    return {d.external_id: d for d in found if isinstance(d, Deployment)}


def test_recorded_test_jobs_named_deploy_are_no_deployment_by_default(
    store: Store, connection: GitHubConnectionConfig, client: HttpClient
) -> None:
    # panjf2000/ants' test matrix jobs are named deployubuntu, deploymacos, deploywindows (12 recorded):
    # a default pattern such as deploy|release|rollout would count them, so job_patterns defaults to none.
    _sync(store, connection, client)
    names = {j.name for j in store.fetch_records("pipeline_job") if isinstance(j, PipelineJob)}
    assert {"deployubuntu", "deploymacos", "deploywindows"} <= names
    assert _named(store) == {}


def test_job_name_rule_makes_deployments_of_jobs_that_ran(
    store: Store, connection: GitHubConnectionConfig, client: HttpClient
) -> None:
    rules = MappingRules(
        environments=RULES.environments,
        deployment_names=DeploymentNameRule(("^deployubuntu$", "^deploymacos$"), EnvironmentClass.PRODUCTION),
    )
    sync(store, connection, rules=rules, client=client, clock=lambda: NOW)
    named = _named(store)
    key = f"{ANTS}/jobs/1924932219/deployment-by-name"
    assert named[key] == Deployment(
        source="github",
        external_id=key,
        raw_event_id=f"github:workflow_job:{ANTS}/1924932219",  # the job as collected
        service=ANTS,
        environment="deployubuntu",
        environment_class=EnvironmentClass.PRODUCTION,
        repo=ANTS,
        commit_sha="fd8d670fd09489e6ea7693c0a382ba85d2694f16",
        pipeline_run_id=f"github:{ANTS}/runs/577330056",
        result="success",
        started_at=datetime(2021, 2, 18, 7, 2, 3),
        finished_at=datetime(2021, 2, 18, 7, 5, 3),
        url="https://github.com/panjf2000/ants/runs/1924932219?check_suite_focus=true",
    )
    assert named[f"{ANTS}/jobs/1924918171/deployment-by-name"].result == "canceled"
    still = named[f"{ANTS}/jobs/1924932237/deployment-by-name"]  # deploymacos, in_progress
    assert (still.result, still.finished_at) == ("running", None)
    assert len(named) == 8  # 4 deployubuntu + 4 deploymacos; deploywindows, Analyze, Golangci-Lint: none


def test_replay_applies_a_changed_job_name_rule(
    store: Store, connection: GitHubConnectionConfig, client: HttpClient
) -> None:
    _sync(store, connection, client)
    assert _named(store) == {}
    replay(store, "gh", rules=MappingRules(deployment_names=DeploymentNameRule(("^deploywindows$",))))
    named = _named(store)
    assert len(named) == 4
    assert {d.environment_class for d in named.values()} == {EnvironmentClass.OTHER}  # the name says none


def test_releases_from_the_documented_example_field_by_field(
    store: Store, connection: GitHubConnectionConfig, client: HttpClient
) -> None:
    # No release is recorded: the server answers GitHub's documented "List releases" example.
    report = _sync(store, connection, client)

    assert report.resources[f"{ANTS}/releases"].complete
    assert _one(store, "release", f"github:{ANTS}/releases/1") == Release(
        source="github",
        external_id=f"{ANTS}/releases/1",
        raw_event_id=f"github:release:{ANTS}/1",
        name="v1.0.0",
        version="v1.0.0",
        status="released",
        released_at=datetime(2013, 2, 27, 19, 35, 32),
        description="Description of the release",
    )
    draft = _one(store, "release", f"github:{ANTS}/releases/2")
    assert (draft.name, draft.version, draft.status, draft.released_at, draft.description) == (
        "v1.1.0",  # no name: the tag names it
        "v1.1.0",
        "planned",
        None,
        None,
    )
    octocat = _one(store, "person", "github:user/1")
    assert (octocat.display_name, octocat.is_bot) == ("octocat", False)


def _deployment_by_run(run_id: int, job_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A GitHub deployment made by a job of run `run_id`: GitHub's documented deployment shape, its status
    linking to the job the way GitHub Actions writes ``log_url``."""
    deployment = {
        "id": 42,
        "sha": "fd8d670fd09489e6ea7693c0a382ba85d2694f16",
        "ref": "master",
        "task": "deploy",
        "environment": "production",
        "created_at": "2021-02-18T07:02:04Z",
        "updated_at": "2021-02-18T07:05:03Z",
        "creator": {"login": "github-actions[bot]", "id": 41898282, "type": "Bot"},
    }
    log_url = f"https://github.com/{ANTS}/actions/runs/{run_id}/job/{job_id}"
    statuses = [
        {"id": 421, "state": "success", "created_at": "2021-02-18T07:05:03Z", "log_url": log_url},
        {"id": 420, "state": "in_progress", "created_at": "2021-02-18T07:02:04Z", "log_url": log_url},
    ]
    return deployment, statuses


def test_a_run_that_made_a_github_deployment_gets_no_second_one_by_job_name(
    store: Store, connection: GitHubConnectionConfig, client: HttpClient, github: FakeGitHub
) -> None:
    # Run 577330056's deployubuntu job 1924932219 deployed to an Environment: GitHub has its deployment,
    # so its jobs named deployubuntu/deploymacos (4 of them) must not count again by name.
    deployment, statuses = _deployment_by_run(577330056, 1924932219)
    github.routes[f"/repos/{ANTS}/deployments"].items = [deployment]
    github.routes[f"/repos/{ANTS}/deployments/42/statuses"] = Route(statuses)
    rules = MappingRules(
        environments=RULES.environments,
        deployment_names=DeploymentNameRule(("^deployubuntu$", "^deploymacos$"), EnvironmentClass.PRODUCTION),
    )
    sync(store, connection, rules=rules, client=client, clock=lambda: NOW)

    fact = _one(store, "deployment", f"github:{ANTS}/deployments/42")
    assert (fact.pipeline_run_id, fact.result, fact.finished_at, fact.url) == (
        f"github:{ANTS}/runs/577330056",
        "success",
        datetime(2021, 2, 18, 7, 5, 3),
        statuses[0]["log_url"],
    )
    # Only run 577324554's four remain (without the fact: eight, test_job_name_rule_makes_deployments...).
    assert sorted(_named(store)) == [
        f"{ANTS}/jobs/{job}/deployment-by-name" for job in (1924918171, 1924918191, 1924918228, 1924918243)
    ]
    ants = store.fetch_records("deployment", "repo = ?", [ANTS])
    assert len(ants) == 5
    before = snapshot(store)
    replay(store, "gh", rules=rules)
    assert snapshot(store) == before


def test_sync_reads_the_stored_deployment_statuses_only_for_batches_of_workflow_jobs(
    store: Store, connection: GitHubConnectionConfig, client: HttpClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[tuple[tuple[str, ...], str | None, int]] = []
    real = sync_module.stored_events

    def counted(
        store: Store, source: str, name: str, event_types: Any, prefix: str | None = None
    ) -> list[RawEvent]:
        found = real(store, source, name, event_types, prefix)
        reads.append((tuple(event_types), prefix, len(found)))
        return found

    monkeypatch.setattr(sync_module, "stored_events", counted)
    _sync(store, connection, client)  # no job name rule: no job can be a deployment by name
    assert reads == []

    rules = MappingRules(deployment_names=DeploymentNameRule(("^deployubuntu$",)))
    sync(store, connection, rules=rules, client=client, clock=lambda: NOW, full=True)
    # Once, for the one walk that gives jobs (ants' workflow runs; OpenBIC has no runs), not once per
    # resource of the two repositories (12); and only ants' statuses: none, where the connection holds
    # OpenBIC's (its jobs name runs of ants, never an OpenBIC run)
    assert reads == [(("deployment_status",), f"{ANTS}/", 0)]
    openbic = real(store, "github", "gh", ("deployment_status",), f"{OPENBIC}/")
    assert openbic and len(openbic) == len(real(store, "github", "gh", ("deployment_status",)))
