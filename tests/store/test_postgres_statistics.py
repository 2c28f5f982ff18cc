"""PostgreSQL plans from statistics: a bulk write refreshes them at commit (autovacuum may be off, or
not have run yet after a load), small writes leave them alone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from obeya.model import StatusTransition, WorkItem
from obeya.store import Store
from obeya.store.postgres_store import ANALYZE_AFTER_ROWS


def _analyzed(store: Store) -> set[str]:
    rows = store.query(
        "SELECT relname FROM pg_stat_user_tables WHERE schemaname = current_schema() "
        "AND (last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL)"
    )
    return {r[0] for r in rows}


def _items(n: int) -> list[WorkItem]:
    return [
        WorkItem(
            source="test",
            external_id=f"W{i}",
            key=f"W-{i}",
            title="item",
            project="PAY",
            tool_type="Story",
            flow_item_type="feature",
            status="To Do",
            flow_state="new",
            created_at=datetime(2025, 1, 1) + timedelta(minutes=i),
        )
        for i in range(n)
    ]


def test_a_bulk_write_refreshes_the_tables_statistics(open_store: Callable[[str], Store]) -> None:
    store = open_store("postgresql")
    store.migrate()
    store.execute("SELECT pg_stat_reset()")  # forget what the migration's ANALYZE recorded
    store.upsert_records(_items(10))
    assert "work_items" not in _analyzed(store)

    store.upsert_records(_items(ANALYZE_AFTER_ROWS))
    transitions = [
        StatusTransition(
            source="test",
            external_id=f"T{i}",
            work_item_id=f"test:W{i}",
            at=datetime(2025, 1, 2),
            to_status="In Progress",
            to_flow_state="active",
        )
        for i in range(ANALYZE_AFTER_ROWS)
    ]
    store.upsert_records(transitions)

    analyzed = _analyzed(store)
    assert {"work_items", "status_transitions", "flow_periods", "flow_items", "flow_visits"} <= analyzed
    assert store.query(
        "SELECT reltuples FROM pg_class WHERE relname = 'work_items' AND relkind = 'r' "
        "AND relnamespace = current_schema()::regnamespace"
    ) == [(float(ANALYZE_AFTER_ROWS + 0),)]
