"""The schema is versioned; a new version upgrades a filled store in place without losing data."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from obeya.model import TABLES, Incident, Plan
from obeya.store import LATEST_VERSION, SchemaVersionError, Store
from obeya.store.base import VERSION_TABLE
from obeya.store.ddl import parse_column
from obeya.store.migrations import MIGRATIONS, AddColumn, CreateTable


def _columns_after_all_migrations() -> dict[str, list[tuple[str, str, bool]]]:
    tables: dict[str, list[tuple[str, str, bool]]] = {}
    for migration in MIGRATIONS:
        for step in migration.steps:
            if isinstance(step, CreateTable) and not step.derived:
                tables[step.table] = []
                for declaration in step.columns:
                    c = parse_column(declaration)
                    tables[step.table].append((c.name, c.type.value, c.nullable))
            elif isinstance(step, AddColumn) and step.table in tables:
                c = parse_column(step.column)
                tables[step.table].append((c.name, c.type.value, c.nullable))
    return tables


def test_migrations_produce_exactly_the_model() -> None:
    expected = {
        spec.name: sorted((c.name, c.type.value, c.nullable) for c in spec.columns)
        for spec in TABLES.values()
    }
    actual = {table: sorted(columns) for table, columns in _columns_after_all_migrations().items()}
    assert actual == expected


def test_versions_are_consecutive() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, LATEST_VERSION + 1))


def test_new_store_migrates_to_latest_and_has_every_table(store: Store) -> None:
    assert store.schema_version() == LATEST_VERSION
    assert {spec.name for spec in TABLES.values()} <= store.table_names()
    assert store.migrate() == []  # idempotent


def test_store_columns_match_the_model(store: Store) -> None:
    for spec in TABLES.values():
        rows = store.query(
            "SELECT column_name, is_nullable FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
            [spec.name],
        )
        assert sorted(rows) == sorted((c.name, "YES" if c.nullable else "NO") for c in spec.columns), (
            spec.name
        )


def test_upgrade_from_version_1_keeps_data(open_store: Callable[[str], Store], engine: str) -> None:
    store = open_store(engine)
    assert store.migrate(target=1) == [1]
    assert store.schema_version() == 1
    assert "plans" not in store.table_names()
    # Fill the version-1 store as an Obeya of that version would have.
    store.execute(
        "INSERT INTO incidents (id, source, external_id, title, status, created_at, labels) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        ["pagerduty:P1", "pagerduty", "P1", "Checkout down", "resolved", datetime(2025, 2, 1, 8), "[]"],
    )
    store.execute(
        "INSERT INTO value_streams (id, source, external_id, name, stream_type) VALUES (?, ?, ?, ?, ?)",
        ["obeya:pay", "obeya", "pay", "Payments", "core"],
    )

    assert store.migrate() == list(range(2, LATEST_VERSION + 1))

    assert store.schema_version() == LATEST_VERSION
    assert store.fetch_records("incident") == [
        Incident(
            source="pagerduty",
            external_id="P1",
            title="Checkout down",
            status="resolved",
            created_at=datetime(2025, 2, 1, 8),
        )
    ]
    assert store.query("SELECT name FROM value_streams") == [("Payments",)]
    # What version 2 added works on the upgraded store.
    plan = Plan(
        source="jira",
        external_id="s1",
        name="Sprint 1",
        plan_type="sprint",
        starts_at=datetime(2025, 2, 1),
        ends_at=datetime(2025, 2, 15),
    )
    store.upsert_records([plan])
    assert store.fetch_records("plan") == [plan]
    history = store.query(f"SELECT version FROM {VERSION_TABLE} ORDER BY version")
    assert history == [(v,) for v in range(1, LATEST_VERSION + 1)]


def test_failed_migration_leaves_previous_version(
    open_store: Callable[[str], Store], engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(engine)
    store.migrate(target=1)
    broken = (*MIGRATIONS[1].steps, AddColumn("no_such_table", "x text"))
    monkeypatch.setattr(
        "obeya.store.base.MIGRATIONS",
        (MIGRATIONS[0], MIGRATIONS[1].__class__(2, "broken", broken)),
    )
    with pytest.raises(Exception, match="no_such_table"):
        store.migrate()
    assert store.schema_version() == 1
    assert "plans" not in store.table_names()


def test_store_newer_than_obeya_is_refused(store: Store) -> None:
    store.execute(
        f"INSERT INTO {VERSION_TABLE} VALUES (?, ?, ?)", [LATEST_VERSION + 1, "future", datetime(2030, 1, 1)]
    )
    with pytest.raises(SchemaVersionError, match="newer than this Obeya knows"):
        store.migrate()


def test_outdated_store_is_refused_until_upgraded(open_store: Callable[[str], Store], engine: str) -> None:
    store = open_store(engine)
    store.migrate(target=1)
    with pytest.raises(SchemaVersionError, match="obeya db upgrade"):
        store.require_current_schema()


def test_upgrade_to_version_5_derives_the_timeline_of_stored_items(
    open_store: Callable[[str], Store], engine: str
) -> None:
    store = open_store(engine)
    store.migrate(target=4)
    insert = (
        'INSERT INTO status_transitions (id, source, external_id, work_item_id, "at", to_status, '
        "to_flow_state, to_stage) VALUES (?, 'jira', ?, 'jira:1', ?, ?, ?, ?)"
    )
    store.execute(insert, ["jira:t1", "t1", datetime(2025, 3, 1), "To Do", "waiting", "integration"])
    store.execute(insert, ["jira:t2", "t2", datetime(2025, 3, 3), "In Progress", "active", "integration"])
    store.migrate()
    assert store.query("SELECT status, entered_at, left_at FROM flow_periods ORDER BY entered_at") == [
        ("To Do", datetime(2025, 3, 1), datetime(2025, 3, 3)),
        ("In Progress", datetime(2025, 3, 3), None),
    ]
    assert store.query("SELECT first_active_at, current_state FROM flow_items") == [
        (datetime(2025, 3, 3), "active")
    ]
    assert store.query("SELECT stage, entered_at, left_at FROM flow_visits") == [
        ("integration", datetime(2025, 3, 1), None)
    ]


def test_upgrade_rebuilds_the_derived_timeline_once_with_the_latest_columns(
    open_store: Callable[[str], Store], engine: str
) -> None:
    store = open_store(engine)
    store.migrate(target=4)  # before the derived tables existed
    # Transitions written as an Obeya of version 4 wrote them: no derived rows kept.
    rows = [
        ("jira:T1", "jira:W1", datetime(2025, 3, 1, 9), "To Do", "new"),
        ("jira:T2", "jira:W1", datetime(2025, 3, 2, 9), "In Progress", "active"),  # active 1 day
        ("jira:T3", "jira:W1", datetime(2025, 3, 3, 9), "Review", "waiting"),
        ("jira:T4", "jira:W1", datetime(2025, 3, 4, 9), "In Progress", "active"),  # active 6 hours
        ("jira:T5", "jira:W1", datetime(2025, 3, 4, 15), "Done", "done"),
    ]
    for id_, item, at, status, state in rows:
        store.execute(
            'INSERT INTO status_transitions (id, source, external_id, work_item_id, "at", to_status, '
            "to_flow_state) VALUES (?, 'jira', ?, ?, ?, ?, ?)",
            [id_, id_, item, at, status, state],
        )

    store.migrate()

    assert store.query(
        "SELECT item_id, first_active_at, last_done_at, current_state, active_time FROM flow_items"
    ) == [("jira:W1", datetime(2025, 3, 2, 9), datetime(2025, 3, 4, 15), "done", 30 * 3600.0)]
    assert store.query("SELECT count(*) FROM flow_periods") == [(5,)]
