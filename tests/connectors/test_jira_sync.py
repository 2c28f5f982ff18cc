"""Jira sync against the recorded Jira REST API on a local server, on DuckDB and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from jira_server import EMAIL, RECORDINGS, TOKEN, FakeJira, load

from obeya.config.loader import ConfigError, parse_config
from obeya.connectors.config import JiraConnectionConfig
from obeya.connectors.errors import AuthenticationError, MissingCredentialError
from obeya.connectors.jira.collector import jira_client
from obeya.connectors.sync import load_cursor, replay, sync
from obeya.engine.flow import flow_time
from obeya.engine.window import Window
from obeya.model.records import Identity, Person, Plan, PlanItem, StatusTransition, TraceLink, WorkItem
from obeya.model.vocabulary import FlowState
from obeya.normalize.rules import MappingRules, StatusMapping
from obeya.store import Store

NOW = datetime(2024, 5, 1, tzinfo=UTC)
NORMALIZED_KINDS = ("person", "identity", "work_item", "status_transition", "plan", "plan_item", "trace_link")


def _connection(server: FakeJira, **options: Any) -> JiraConnectionConfig:
    return JiraConnectionConfig(name="jira", base_url=server.base_url, **{"boards": [8, 93], **options})


def _sync(store: Store, connection: JiraConnectionConfig, **options: Any) -> Any:
    return sync(store, connection, clock=lambda: NOW, **options)


def _recorded_issue(key: str) -> dict[str, Any]:
    return next(i for i in load("issues") if i["key"] == key)


def _utc(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC).replace(tzinfo=None)


def snapshot(store: Store) -> dict[str, dict[str, dict[str, Any]]]:
    """Every normalized record, by kind and id."""
    return {kind: {r.id: r.model_dump() for r in store.fetch_records(kind)} for kind in NORMALIZED_KINDS}


def test_issue_becomes_a_work_item_with_every_status_change_and_its_flow_times(
    store: Store, jira: FakeJira
) -> None:
    report = _sync(store, _connection(jira))
    assert report.resources["boards/8/issues"].fetched == 30
    assert report.resources["boards/8/issues"].pages == 5
    assert jira.received("/rest/api/3/issue/10079/changelog"), "the cut changelog is fetched in full"

    # By hand from the recording: EE-17's status changes, placed by the status catalog's categories.
    issue = _recorded_issue("EE-17")
    categories = {s["id"]: s["statusCategory"]["key"] for s in load("status")}
    changes = sorted(
        (h["created"], item)
        for h in issue["changelog"]["histories"]
        for item in h["items"]
        if item["field"] == "status"
    )
    assert [(item["fromString"], item["toString"]) for _, item in changes] == [
        ("To Do", "Open"),
        ("Open", "In Progress"),
        ("In Progress", "Resolved"),
        ("Resolved", "Closed"),
        ("Closed", "已完成"),
    ]
    started = min(_utc(at) for at, item in changes if categories.get(item["to"]) == "indeterminate")
    done = max(_utc(at) for at, item in changes if categories.get(item["to"]) == "done")

    item = store.fetch_records("work_item", "id = ?", ["jira:EE-17"])[0]
    assert isinstance(item, WorkItem)
    assert (item.key, item.project, item.tool_type, item.status) == ("EE-17", "EE", "任务", "已完成")
    assert (item.flow_item_type.value, item.flow_state, item.priority) == (
        "feature",
        FlowState.DONE,
        "Medium",
    )
    assert item.title == issue["fields"]["summary"]
    assert item.created_at == _utc(issue["fields"]["created"])
    assert (item.started_at, item.done_at, item.canceled_at) == (started, done, None)
    assert item.assignee_id == f"jira:user/{issue['fields']['assignee']['accountId']}"

    transitions = [
        t
        for t in store.fetch_records("status_transition", "work_item_id = ?", ["jira:EE-17"])
        if isinstance(t, StatusTransition)
    ]
    transitions.sort(key=lambda t: t.at)
    assert len(transitions) == 1 + len(changes)
    created = transitions[0]
    assert (created.external_id, created.at, created.from_status, created.to_status) == (
        "EE-17/created",
        item.created_at,
        None,
        "To Do",
    )
    for transition, (at, change) in zip(transitions[1:], changes, strict=True):
        assert (transition.at, transition.from_status, transition.to_status) == (
            _utc(at),
            change["fromString"],
            change["toString"],
        )
    assert [t.to_flow_state.value for t in transitions] == [
        "waiting",
        "new",
        "active",
        "done",
        "done",
        "done",
    ]
    assert transitions[2].author_id is not None

    window = Window(done - timedelta(milliseconds=1), done + timedelta(milliseconds=1))
    times = flow_time(store, window)
    assert times.flow_time.count == 1
    assert times.flow_time.p50 == pytest.approx((done - started).total_seconds())
    assert times.lead_time.p50 == pytest.approx((done - item.created_at).total_seconds())


def test_sprint_plan_items_tell_committed_from_added_after_start(store: Store, jira: FakeJira) -> None:
    _sync(store, _connection(jira))
    plan = store.fetch_records("plan", "id = ?", ["jira:sprint/7"])[0]
    assert (plan.name, plan.plan_type, plan.starts_at) == (
        "EE Sprint 7",
        "sprint",
        _utc("2020-06-12T00:38:51.882Z"),
    )
    items = {
        p.work_item_id: p
        for p in store.fetch_records("plan_item", "plan_id = ?", ["jira:sprint/7"])
        if isinstance(p, PlanItem)
    }
    assert len(items) == 27
    # EE-1 was put in the sprint (changelog, 08:29 +0800) before it started (00:38 UTC): committed.
    assert items["jira:EE-1"].added_after_start is False
    # Its sub-task EE-25 was created at 08:40 +0800, after the start, straight into the sprint.
    assert items["jira:EE-25"].added_after_start is True
    assert sum(p.added_after_start for p in items.values()) == 13


def test_epic_and_parent_become_the_work_items_parent(store: Store, jira: FakeJira) -> None:
    _sync(store, _connection(jira))
    children = store.query("SELECT key FROM work_items WHERE parent_id = ? ORDER BY key", ["jira:K5-4"])
    assert children == [("K5-3",)]
    epic = store.fetch_records("work_item", "id = ?", ["jira:K5-4"])[0]
    assert (epic.tool_type, epic.flow_state) == ("Epic", FlowState.NEW)
    subtasks = store.query("SELECT key FROM work_items WHERE parent_id = ? ORDER BY key", ["jira:EE-2"])
    assert subtasks == [("EE-29",), ("EE-30",), ("EE-31",), ("EE-32",)]


def test_datacenter_signs_in_with_a_bearer_token_and_keeps_issue_links(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JIRA_TOKEN", TOKEN)
    monkeypatch.delenv("JIRA_EMAIL", raising=False)
    server = FakeJira(deployment="datacenter", changelog_cap=1).start()
    try:
        connection = _connection(server, boards=[3], deployment="datacenter")
        _sync(store, connection)
        assert {r.headers["Authorization"] for r in server.requests} == {f"Bearer {TOKEN}"}
        assert server.received("/rest/api/2/issue/"), "a cut changelog is read from the issue on Data Center"
    finally:
        server.stop()
    recorded = next(i for i in load("issue_relationships") if i["key"] == "DZFNK0168-5")
    link_id = next(li["id"] for li in recorded["fields"]["issuelinks"] if li["type"]["name"] == "Blocks")
    link = store.fetch_records("trace_link", "id = ?", [f"jira:link/{link_id}"])[0]
    assert isinstance(link, TraceLink)
    assert (link.from_id, link.to_id, link.link_kind) == ("jira:DZFNK0168-5", "jira:DZFNK0168-1", "Blocks")
    assert (link.evidence, link.confidence) == ("Jira issue link: blocks", 1.0)
    outward = {
        li["id"]
        for i in load("issue_relationships")
        for li in i["fields"]["issuelinks"]
        if "outwardIssue" in li
    }
    assert store.count("trace_link") == len(outward) == 8  # each link once, from its outward side
    person = store.fetch_records("person", "id = ?", ["jira:user/admin"])[0]
    assert person.email == "hao.ke@merico.dev"


def test_cloud_signs_in_with_email_and_api_token(jira: FakeJira, monkeypatch: pytest.MonkeyPatch) -> None:
    client = jira_client(_connection(jira))
    try:
        client.get_json("rest/api/2/status")
    finally:
        client.close()
    header = jira.requests[-1].headers["Authorization"]
    assert header == jira.expected_authorization and header.startswith("Basic ")
    monkeypatch.delenv("JIRA_EMAIL")
    with pytest.raises(MissingCredentialError, match=r"\$JIRA_EMAIL"):
        jira_client(_connection(jira))


def test_second_sync_asks_only_for_issues_updated_since_the_first(store: Store, jira: FakeJira) -> None:
    _sync(store, _connection(jira, boards=[8]))
    cursor = load_cursor(store, "jira", "boards/8/issues")
    assert cursor is not None and cursor.status == "complete"
    assert json.loads(cursor.cursor) == {"high_water": "2021-08-06T14:14:54.647+0800"}  # EE-20, the newest
    first = len(jira.requests)

    report = _sync(store, _connection(jira, boards=[8]))
    asked = [r.query["jql"] for r in jira.requests[first:] if r.path.endswith("/board/8/issue")]
    assert asked == ['updated >= "2021/08/06 14:13" ORDER BY updated ASC']
    assert report.resources["boards/8/issues"].fetched == 1
    assert store.count("work_item") == 30


def test_projects_are_searched_with_jql(store: Store, jira: FakeJira) -> None:
    report = _sync(store, _connection(jira, boards=[], projects=["K5"]))
    assert report.resources["issues"].fetched == 3
    asked = {r.query["jql"] for r in jira.received("/rest/api/3/search/jql")}
    assert asked == {'(project in ("K5")) ORDER BY updated ASC'}


def test_rejected_token_stops_with_a_clear_error(
    store: Store, jira: FakeJira, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JIRA_TOKEN", "wrong")
    with pytest.raises(
        AuthenticationError, match=r"Jira rejected the token in \$JIRA_TOKEN \(401\)"
    ) as error:
        _sync(store, _connection(jira))
    assert "API token of the account whose e-mail is in $JIRA_EMAIL" in str(error.value)
    cursor = load_cursor(store, "jira", "statuses")
    assert cursor is not None and cursor.status == "failed"


def test_unmapped_statuses_fall_back_to_their_category_and_are_reported(store: Store, jira: FakeJira) -> None:
    rules = MappingRules(statuses={"Closed": StatusMapping(FlowState.DONE, "delivery")})
    _sync(store, _connection(jira), rules=rules)
    assert rules.unmapped["已完成"].guessed == StatusMapping(FlowState.DONE, None)  # category done
    assert rules.unmapped["open"].guessed.flow_state is FlowState.NEW  # category new, not "waiting"
    assert "closed" not in rules.unmapped
    closed = store.query("SELECT DISTINCT to_stage FROM status_transitions WHERE to_status = 'Closed'")
    assert closed == [("delivery",)]


def test_replay_rebuilds_what_sync_wrote(store: Store, jira: FakeJira) -> None:
    _sync(store, _connection(jira))
    synced = snapshot(store)
    assert all(synced[kind] for kind in NORMALIZED_KINDS if kind != "trace_link")
    for record in (Person, Identity, WorkItem, StatusTransition, Plan, PlanItem, TraceLink):
        store.execute(f"DELETE FROM {record.table}")
    requests = len(jira.requests)
    report = replay(store, "jira")
    assert len(jira.requests) == requests
    assert set(report.resources) == {"user", "sprint", "issue+changelog"}
    assert snapshot(store) == synced


def test_jira_connection_with_a_wrong_key_is_named_with_its_line(tmp_path: Path) -> None:
    text = (
        "connections:\n"
        "  - name: jira\n"
        "    tool: jira\n"
        "    base_url: https://example.atlassian.net\n"
        "    board: [8]\n"
        "  - name: other\n"
        "    tool: jirra\n"
    )
    with pytest.raises(ConfigError) as error:
        parse_config(text, tmp_path / "obeya.yaml")
    message = str(error.value)
    assert f"{tmp_path / 'obeya.yaml'}:5: connections[0].board: unknown key" in message
    assert ":7: connections[1].tool: Input tag 'jirra'" in message
    with pytest.raises(
        ConfigError, match=r"obeya.yaml:2: connections\[0\]: Value error, a Jira connection needs"
    ):
        parse_config(
            "connections:\n  - name: j\n    tool: jira\n    base_url: https://x\n", tmp_path / "obeya.yaml"
        )
    config = parse_config(
        "connections:\n  - name: j\n    tool: jira\n    base_url: https://x.atlassian.net\n    boards: [8]\n",
        tmp_path / "obeya.yaml",
    )
    jira = config.connection("j")
    assert isinstance(jira, JiraConnectionConfig)
    assert (jira.deployment, jira.email_env, jira.token_env) == ("cloud", "JIRA_EMAIL", "JIRA_TOKEN")


def test_recordings_are_where_the_server_reads_them() -> None:
    assert (RECORDINGS / "_raw_jira_api_issues.jsonl").exists() and EMAIL
