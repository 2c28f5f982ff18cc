"""The demo organisation: deterministic, internally consistent, and telling each stream's story."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from obeya.demo import WORKFLOW, generate, load_demo
from obeya.model.schema import TABLES
from obeya.store import Store, connect

AS_OF = dt.date(2025, 6, 30)
WRITTEN_KINDS = [
    "value_stream",
    "stage",
    "scope",
    "team",
    "person",
    "identity",
    "work_item",
    "status_transition",
    "plan",
    "plan_item",
    "commit",
    "commit_parent",
    "change",
    "change_commit",
    "review",
    "change_comment",
    "pipeline_run",
    "pipeline_job",
    "release",
    "deployment",
    "incident",
    "trace_link",
]


def _generated_digest(seed: int, items: int) -> dict[str, str]:
    digests: dict[str, hashlib._Hash] = {}
    for kind, batch in generate(seed=seed, items=items, as_of=AS_OF):
        assert batch.schema == TABLES[kind].arrow_schema
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, batch.schema) as writer:
            writer.write_table(batch)
        digests.setdefault(kind, hashlib.sha256()).update(sink.getvalue().to_pybytes())
    return {kind: d.hexdigest() for kind, d in digests.items()}


def _stored_digest(store: Store) -> dict[str, str]:
    out = {}
    for kind in WRITTEN_KINDS:
        spec = TABLES[kind]
        rows = store.query(f'SELECT * FROM "{spec.name}" ORDER BY id')
        out[kind] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return out


def test_same_seed_and_as_of_give_byte_identical_batches() -> None:
    assert _generated_digest(7, 400) == _generated_digest(7, 400)


def test_a_different_seed_gives_different_data() -> None:
    first, other = _generated_digest(7, 400), _generated_digest(8, 400)
    assert first["work_item"] != other["work_item"]
    assert first["status_transition"] != other["status_transition"]
    assert first["commit"] != other["commit"]


def test_same_seed_stores_identical_rows_on_duckdb(tmp_path: Path) -> None:
    digests = []
    for n in range(2):
        store = connect(f"duckdb:///{tmp_path}/demo-{n}.duckdb")
        store.migrate()
        load_demo(store, seed=3, items=300, as_of=AS_OF)
        digests.append(_stored_digest(store))
        store.close()
    assert digests[0] == digests[1]


# --- a small organisation on each engine -------------------------------------------------------


def _scalar(store: Store, sql: str) -> int:
    return int(store.query(sql)[0][0])


@pytest.fixture
def demo_store(store: Store) -> Store:
    report = load_demo(store, seed=11, items=600, as_of=AS_OF)
    assert report.rows["work_item"] >= 600
    return store


def test_every_kind_is_written_and_all_flow_item_types_occur(demo_store: Store) -> None:
    for kind in WRITTEN_KINDS:
        assert demo_store.count(kind) > 0, kind
    assert demo_store.count("deployment_change") == 0
    derived = "SELECT count(*) FROM trace_links WHERE link_kind NOT IN ('Blocks', 'Dependency')"
    assert _scalar(demo_store, derived) == 0  # only issue links: the rest is derive_links' job
    types = {r[0] for r in demo_store.query("SELECT DISTINCT flow_item_type FROM work_items")}
    assert types == {"feature", "defect", "risk", "debt"}
    assert _scalar(demo_store, "SELECT count(*) FROM work_items WHERE tool_type = 'Epic'") > 0
    assert _scalar(demo_store, "SELECT count(*) FROM people WHERE is_bot") == 3
    assert _scalar(demo_store, "SELECT count(DISTINCT tool) FROM identities") == 3
    assert _scalar(demo_store, "SELECT count(*) FROM work_items WHERE source <> 'demo'") == 0


def test_transitions_carry_the_workflow_mapping(demo_store: Store) -> None:
    rows = demo_store.query("SELECT DISTINCT to_status, to_flow_state, to_stage FROM status_transitions")
    for status, state, stage in rows:
        assert (WORKFLOW[status][0].value, WORKFLOW[status][1]) == (state, stage)
    bad = demo_store.query(
        "SELECT count(*) FROM status_transitions t WHERE t.from_status IS NOT NULL AND NOT EXISTS ("
        "  SELECT 1 FROM status_transitions p WHERE p.work_item_id = t.work_item_id"
        "  AND p.to_status = t.from_status"
        '  AND p."at" < t."at")'
    )
    assert bad[0][0] == 0


def test_work_item_fields_agree_with_their_transitions(demo_store: Store) -> None:
    sql = """
    WITH ordered AS (
        SELECT work_item_id, "at" AS t, to_status, to_flow_state,
               row_number() OVER (PARTITION BY work_item_id ORDER BY "at" DESC) AS from_last
        FROM status_transitions
    ), facts AS (
        SELECT work_item_id,
               min(t) AS first_at,
               max(CASE WHEN from_last = 1 THEN to_status END) AS last_status,
               max(CASE WHEN from_last = 1 THEN t END) AS last_at,
               min(CASE WHEN to_flow_state = 'active' THEN t END) AS first_active,
               max(CASE WHEN to_status = 'Done' THEN t END) AS last_done
        FROM ordered GROUP BY work_item_id
    )
    SELECT count(*) FROM work_items w LEFT JOIN facts f ON f.work_item_id = w.id
    WHERE f.work_item_id IS NULL
       OR w.status <> f.last_status
       OR w.created_at <> f.first_at
       OR w.updated_at <> f.last_at
       OR w.started_at IS DISTINCT FROM f.first_active
       OR w.done_at IS DISTINCT FROM (CASE WHEN w.status = 'Done' THEN f.last_done END)
       OR w.canceled_at IS DISTINCT FROM (CASE WHEN w.status = 'Canceled' THEN f.last_at END)
    """
    assert _scalar(demo_store, sql) == 0
    for status, (state, stage) in WORKFLOW.items():
        mismatched = demo_store.query(
            "SELECT count(*) FROM work_items WHERE status = ? "
            "AND (flow_state <> ? OR stage IS DISTINCT FROM ?)",
            (status, state.value, stage),
        )
        assert mismatched[0][0] == 0, status


def test_messy_reality_is_present(demo_store: Store) -> None:
    reopened = "SELECT count(DISTINCT work_item_id) FROM status_transitions WHERE from_status = 'Done'"
    assert _scalar(demo_store, reopened) > 0
    canceled_after_start = (
        "SELECT count(*) FROM work_items WHERE status = 'Canceled' AND started_at IS NOT NULL"
    )
    assert _scalar(demo_store, canceled_after_start) > 0
    assert (
        _scalar(
            demo_store, "SELECT count(*) FROM work_items WHERE status = 'Canceled' AND started_at IS NULL"
        )
        > 0
    )
    assert (
        _scalar(demo_store, "SELECT count(*) FROM work_items WHERE flow_state IN ('waiting', 'active')") > 0
    )
    assert _scalar(demo_store, "SELECT count(*) FROM work_items WHERE status = 'Backlog'") > 0
    assert _scalar(demo_store, "SELECT count(*) FROM status_transitions WHERE to_status = 'Blocked'") > 0
    rework = "SELECT count(*) FROM reviews WHERE state = 'changes_requested'"
    assert _scalar(demo_store, rework) > 0
    assert (
        _scalar(demo_store, "SELECT count(*) FROM pipeline_runs WHERE attempt = 2 AND result = 'success'") > 0
    )
    assert _scalar(demo_store, "SELECT count(*) FROM deployments WHERE is_rollback") > 0
    assert _scalar(demo_store, "SELECT count(*) FROM deployments WHERE result = 'rolled_back'") > 0
    assert _scalar(demo_store, "SELECT count(*) FROM incidents WHERE caused_by_deployment_id IS NOT NULL") > 0
    assert (
        _scalar(
            demo_store,
            "SELECT count(*) FROM incidents WHERE change_caused AND caused_by_deployment_id IS NULL",
        )
        > 0
    )
    assert _scalar(demo_store, "SELECT count(*) FROM incidents WHERE NOT change_caused") > 0
    assert _scalar(demo_store, "SELECT count(*) FROM plan_items WHERE added_after_start") > 0
    bot_comments = "SELECT count(*) FROM change_comments c JOIN people p ON p.id = c.author_id WHERE p.is_bot"
    assert _scalar(demo_store, bot_comments) > 0
    methods = {
        r[0] for r in demo_store.query("SELECT DISTINCT merge_method FROM changes WHERE state = 'merged'")
    }
    assert methods == {"squash", "merge", "rebase"}


def test_every_reference_resolves(demo_store: Store) -> None:
    by_kind = {spec.kind: spec.name for spec in TABLES.values()}
    for spec in TABLES.values():
        for column in spec.references:
            if column.ref is None or column.ref == "*" or column.name == "raw_event_id":
                continue
            dangling = (
                f'SELECT count(*) FROM "{spec.name}" x WHERE x."{column.name}" IS NOT NULL AND NOT EXISTS '
                f'(SELECT 1 FROM "{by_kind[column.ref]}" y WHERE y.id = x."{column.name}")'
            )
            assert _scalar(demo_store, dangling) == 0, f"{spec.name}.{column.name}"


DEPENDENCY_PAIRS = """SELECT CASE WHEN l.link_kind = 'Blocks' THEN l.to_id ELSE l.from_id END AS dependent_id,
    CASE WHEN l.link_kind = 'Blocks' THEN l.from_id ELSE l.to_id END AS provider_id, l.link_kind
FROM trace_links l"""


def test_cross_stream_dependencies_are_issue_links_between_streams_in_time(demo_store: Store) -> None:
    """Platform blocks the product streams; the product streams (and now and then Platform) depend on
    another stream's item with a `Dependency` link; never within one project; never before it is done."""
    pairs = demo_store.query(
        f"""SELECT d.link_kind, dependent.project, provider.project, count(*) FROM ({DEPENDENCY_PAIRS}) d
JOIN work_items dependent ON dependent.id = d.dependent_id
JOIN work_items provider ON provider.id = d.provider_id
GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"""
    )
    assert sum(r[3] for r in pairs) == demo_store.count("trace_link")  # both ends are work items
    kinds = {r[:3] for r in pairs}
    assert {("Blocks", "MOB", "PLAT"), ("Blocks", "PAY", "PLAT"), ("Dependency", "MOB", "PAY")} <= kinds
    assert kinds <= {
        ("Blocks", "MOB", "PLAT"),
        ("Blocks", "PAY", "PLAT"),
        ("Dependency", "MOB", "PAY"),
        ("Dependency", "PLAT", "MOB"),
        ("Dependency", "PLAT", "PAY"),
    }
    counts = {(r[1], r[2]): r[3] for r in pairs}
    platform_on_others = counts.get(("PLAT", "PAY"), 0) + counts.get(("PLAT", "MOB"), 0)
    assert counts["PAY", "PLAT"] > 5 * platform_on_others
    # in time: a started item's dependency was done between its creation and its start; an unstarted
    # item's is done after its creation or still open; none is canceled or an epic
    checked = f"""SELECT count(*) FROM ({DEPENDENCY_PAIRS}) d
JOIN work_items dependent ON dependent.id = d.dependent_id
JOIN work_items provider ON provider.id = d.provider_id
WHERE provider.canceled_at IS NOT NULL OR 'Epic' IN (provider.tool_type, dependent.tool_type)
   OR (dependent.started_at IS NOT NULL AND NOT (provider.done_at > dependent.created_at
       AND provider.done_at < dependent.started_at))
   OR (dependent.started_at IS NULL AND provider.done_at <= dependent.created_at)"""
    assert _scalar(demo_store, checked) == 0
    open_providers = f"""SELECT count(*) FROM ({DEPENDENCY_PAIRS}) d
JOIN work_items provider ON provider.id = d.provider_id WHERE provider.done_at IS NULL"""
    assert _scalar(demo_store, open_providers) > 0  # some dependencies are still open


def test_the_git_graph_holds_every_named_commit(demo_store: Store) -> None:
    checks = {
        "merge commits": "SELECT count(*) FROM changes c WHERE c.state = 'merged' "
        "AND (c.merge_commit_sha IS NULL OR "
        "NOT EXISTS (SELECT 1 FROM commits k WHERE k.repo = c.repo AND k.sha = c.merge_commit_sha))",
        "parents": "SELECT count(*) FROM commit_parents p WHERE NOT EXISTS "
        "(SELECT 1 FROM commits k WHERE k.repo = p.repo AND k.sha = p.parent_sha)",
        "deployed commits": "SELECT count(*) FROM deployments d WHERE NOT EXISTS "
        "(SELECT 1 FROM commits k WHERE k.repo = d.repo AND k.sha = d.commit_sha)",
        "pull request commits": "SELECT count(*) FROM change_commits cc "
        "JOIN changes c ON c.id = cc.change_id "
        "WHERE NOT EXISTS (SELECT 1 FROM commits k WHERE k.repo = c.repo AND k.sha = cc.commit_sha)",
    }
    for name, sql in checks.items():
        assert _scalar(demo_store, sql) == 0, name
    merges = (
        "SELECT count(*) FROM changes c JOIN commit_parents p "
        "ON p.repo = c.repo AND p.commit_sha = c.merge_commit_sha "
    )
    assert _scalar(demo_store, merges + "WHERE c.merge_method = 'merge' AND p.position = 1") > 0
    human = "FROM changes c JOIN people p ON p.id = c.author_id WHERE NOT p.is_bot"
    keyed = f"SELECT count(*) {human} AND (title LIKE 'PAY-%' OR title LIKE 'MOB-%' OR title LIKE 'PLAT-%')"
    assert 0.7 < _scalar(demo_store, keyed) / _scalar(demo_store, f"SELECT count(*) {human}") < 0.95


# --- the story ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def story_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = connect(f"duckdb:///{tmp_path_factory.mktemp('story')}/story.duckdb")
    store.migrate()
    load_demo(store, seed=7, items=3000, as_of=AS_OF)
    yield store
    store.close()


def _waits_by_status(store: Store, project: str) -> dict[str, float]:
    """Total days items of a project spent in each `waiting` status before release (time to the next
    transition). Time in the observation stage (Released: waiting for feedback) is no queue."""
    rows = store.query(
        """
        WITH spans AS (
            SELECT t.to_status, t.to_flow_state, t."at",
                   lead(t."at") OVER (PARTITION BY t.work_item_id ORDER BY t."at") AS next_at
            FROM status_transitions t JOIN work_items w ON w.id = t.work_item_id
            WHERE w.project = ? AND w.tool_type <> 'Epic'
        )
        SELECT to_status, sum(extract(epoch FROM next_at - "at")) / 86400.0
        FROM spans WHERE to_flow_state = 'waiting' AND to_status <> 'Released' AND next_at IS NOT NULL
        GROUP BY to_status
        """,
        (project,),
    )
    return {status: float(days) for status, days in rows}


@pytest.mark.parametrize(
    ("project", "bottleneck"),
    [("PAY", "Ready for Test"), ("MOB", "Ready for Release"), ("PLAT", "Ready for Dev")],
)
def test_each_stream_waits_most_in_front_of_its_bottleneck(
    story_store: Store, project: str, bottleneck: str
) -> None:
    waits = _waits_by_status(story_store, project)
    longest = max(waits, key=lambda s: waits[s])
    assert longest == bottleneck, waits
    assert waits[bottleneck] > 1.5 * sorted(waits.values())[-2], waits


def _production(store: Store, service_like: str, condition: str) -> int:
    return _scalar(
        store,
        f"SELECT count(*) FROM deployments WHERE environment_class = 'production' AND NOT is_rollback "
        f"AND service IN {service_like} AND {condition}",
    )


def test_platform_deploys_far_more_often_than_mobile(story_store: Store) -> None:
    platform = _production(story_store, "('gateway', 'auth')", "result = 'success'")
    mobile = _production(story_store, "('mobile-app', 'mobile-bff')", "result = 'success'")
    assert platform > 5 * mobile


def _change_failure_share(store: Store, services: str) -> float:
    total = _production(store, services, "true")
    failed = _production(
        store,
        services,
        "(result IN ('failure', 'rolled_back') "
        "OR id IN (SELECT caused_by_deployment_id FROM incidents) OR EXISTS ("
        "  SELECT 1 FROM incidents i WHERE i.change_caused AND i.service = deployments.service"
        "  AND i.created_at > deployments.finished_at"
        "  AND i.created_at < deployments.finished_at + INTERVAL '24 hours'))",
    )
    return failed / total


def test_mobile_fails_more_changes_than_platform(story_store: Store) -> None:
    mobile = _change_failure_share(story_store, "('mobile-app', 'mobile-bff')")
    platform = _change_failure_share(story_store, "('gateway', 'auth')")
    payments = _change_failure_share(story_store, "('payments-api', 'ledger')")
    assert mobile > payments > platform
    assert platform < 0.08


def test_incidents_recover_slowly_on_mobile_and_fast_on_platform(story_store: Store) -> None:
    def median_hours(services: str) -> float:
        rows = story_store.query(
            "SELECT extract(epoch FROM resolved_at - created_at) / 3600 FROM incidents "
            f"WHERE change_caused AND resolved_at IS NOT NULL AND service IN {services} ORDER BY 1"
        )
        return float(rows[len(rows) // 2][0])

    assert median_hours("('mobile-app', 'mobile-bff')") > 3 * median_hours("('gateway', 'auth')")
