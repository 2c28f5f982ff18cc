"""Derived tables the store keeps in step with the status transitions: materialized views of the item
timeline that the engine reads instead of recomputing them per query.

- ``flow_periods``: one row per status period of a work item — from a transition to the next one
  (``left_at`` NULL for the current period);
- ``flow_items``: per item, its first entry into ``active`` (work start), into ``waiting`` or
  ``active`` (the "committed" start), its last entry into ``done``, its current flow state and stage,
  the time of its last transition, and the seconds of its closed ``active`` periods (``active_time``);
- ``flow_visits``: per item, each maximal run of consecutive periods in one stage (entering ``done`` or
  ``canceled`` leaves the stage), with the time spent ``active`` and ``new`` in its closed periods
  (``left_at`` NULL for the visit the item is in now), and the stage and end of the item's previous
  visit.

None depends on "now": the engine cuts them at a window's end. Every write of status transitions
(`Store.upsert` of ``status_transition``, `Store.delete_where`) refreshes the rows of the items it
touched, in the same transaction, so the tables are never stale and a refresh is atomic for readers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from obeya.store.base import Store

DERIVED_TABLES = ("flow_periods", "flow_items", "flow_visits")

_PERIOD = "CAST(EXTRACT(EPOCH FROM (left_at) - (entered_at)) AS DOUBLE PRECISION)"


def _refresh_sql(ids: str) -> list[str]:
    """Statements that rebuild the derived rows of the items listed by the query `ids`."""
    return [
        f"DELETE FROM flow_periods WHERE item_id IN ({ids})",
        f"""INSERT INTO flow_periods (item_id, transition_id, status, flow_state, stage, entered_at, left_at)
SELECT t.work_item_id, t.id, t.to_status, t.to_flow_state, t.to_stage, t.at,
       LEAD(t.at) OVER (PARTITION BY t.work_item_id ORDER BY t.at, t.id)
FROM status_transitions t WHERE t.work_item_id IN ({ids})""",
        f"DELETE FROM flow_items WHERE item_id IN ({ids})",
        f"""INSERT INTO flow_items (item_id, first_active_at, first_committed_at, last_done_at,
                        current_state, current_stage, last_transition_at, active_time)
SELECT p.item_id,
       MIN(p.entered_at) FILTER (WHERE p.flow_state = 'active'),
       MIN(p.entered_at) FILTER (WHERE p.flow_state IN ('waiting', 'active')),
       MAX(p.entered_at) FILTER (WHERE p.flow_state = 'done'),
       MAX(p.flow_state) FILTER (WHERE p.left_at IS NULL),
       MAX(p.stage) FILTER (WHERE p.left_at IS NULL),
       MAX(p.entered_at),
       COALESCE(SUM({_PERIOD}) FILTER (WHERE p.flow_state = 'active' AND p.left_at IS NOT NULL), 0)
FROM flow_periods p WHERE p.item_id IN ({ids}) GROUP BY p.item_id""",
        f"DELETE FROM flow_visits WHERE item_id IN ({ids})",
        f"""INSERT INTO flow_visits
    (item_id, visit, stage, entered_at, left_at, process_time, uncommitted_time, previous_stage,
     previous_left_at)
WITH staged AS (
    SELECT p.*, CASE WHEN p.flow_state IN ('done', 'canceled') THEN NULL ELSE p.stage END AS visit_stage
    FROM flow_periods p WHERE p.item_id IN ({ids})
),
marked AS (
    SELECT s.*,
           CASE WHEN s.visit_stage IS DISTINCT FROM LAG(s.visit_stage)
                     OVER (PARTITION BY s.item_id ORDER BY s.entered_at, s.transition_id)
                THEN 1 ELSE 0 END AS starts_visit
    FROM staged s
),
numbered AS (
    SELECT m.*, SUM(m.starts_visit) OVER (PARTITION BY m.item_id ORDER BY m.entered_at, m.transition_id
                                          ROWS UNBOUNDED PRECEDING) AS visit
    FROM marked m
)
SELECT item_id, visit, visit_stage, MIN(entered_at),
       CASE WHEN COUNT(*) = COUNT(left_at) THEN MAX(left_at) END,
       COALESCE(SUM({_PERIOD}) FILTER (WHERE flow_state = 'active'), 0),
       COALESCE(SUM({_PERIOD}) FILTER (WHERE flow_state = 'new'), 0),
       LAG(visit_stage) OVER (PARTITION BY item_id ORDER BY MIN(entered_at)),
       LAG(MAX(left_at)) OVER (PARTITION BY item_id ORDER BY MIN(entered_at))
FROM numbered WHERE visit_stage IS NOT NULL
GROUP BY item_id, visit, visit_stage""",
    ]


def refresh_items(store: Store, ids: str, params: list[object] | None = None) -> None:
    """Rebuild the derived rows of the items the SQL query `ids` lists (inside the caller's transaction)."""
    for statement in _refresh_sql(ids):
        store.execute(statement, (params or []) if "?" in statement else [])


def rebuild(store: Store) -> None:
    """Rebuild every derived row from the status transitions (migrations and repairs)."""
    with store.transaction():
        for table in DERIVED_TABLES:
            store.execute(f"DELETE FROM {table}")
        refresh_items(store, "SELECT DISTINCT work_item_id FROM status_transitions")
