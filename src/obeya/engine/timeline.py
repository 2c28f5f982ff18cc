"""The per-item timeline every flow and stage figure is built from, as SQL common table expressions.

``intervals``: one row per status period of a work item — its status, flow state and stage from the
transition that entered it (``entered_at``) until the next transition (``left_at``; the end of the
window's day, "now", for the current period).

``states_now``: each item's flow state and stage at `now` (from its current period).

``item_times``: one row per work item with its state and stage at `now`, its creation, **work start**
(first entry into ``active``; with ``work_start="committed"``, first entry into ``waiting`` or
``active``) and **work complete** (last entry into ``done``, only for items whose flow state at `now` is
``done``: a reopened item is not done).
Items imported without transitions fall back to their ``started_at`` / ``done_at`` fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from obeya.engine.sql import work_item_conditions
from obeya.engine.window import Slice

WorkStart = Literal["active", "committed"]


@dataclass(frozen=True)
class TimelineSQL:
    """The ``WITH`` clause (without the word WITH) and its parameters."""

    ctes: str
    params: list[Any]


def timeline(scope: Slice, now: datetime, work_start: WorkStart = "active") -> TimelineSQL:
    """The ``items``, ``intervals`` and ``item_times`` CTEs for the items of `scope`, as of `now`."""
    condition, params = work_item_conditions(scope)
    start_states = "('active')" if work_start == "active" else "('waiting', 'active')"
    ctes = f"""
items AS (
    SELECT w.id, w.key, w.title, w.flow_item_type, w.flow_state, w.stage, w.created_at, w.team_id,
           w.started_at AS started_field, w.done_at AS done_field
    FROM work_items w
    WHERE {condition} AND w.created_at < ?
),
intervals AS (
    SELECT t.work_item_id AS item_id, t.id AS transition_id, t.to_status AS status,
           t.to_flow_state AS flow_state, t.to_stage AS stage, t.at AS entered_at,
           COALESCE(LEAD(t.at) OVER (PARTITION BY t.work_item_id ORDER BY t.at, t.id), ?) AS left_at,
           LEAD(t.at) OVER (PARTITION BY t.work_item_id ORDER BY t.at, t.id) IS NULL AS is_current
    FROM status_transitions t JOIN items i ON i.id = t.work_item_id
    WHERE t.at < ?
),
states_now AS (
    SELECT v.item_id, v.flow_state AS state_now, v.stage AS stage_now FROM intervals v WHERE v.is_current
),
item_marks AS (
    SELECT v.item_id,
           MIN(v.entered_at) FILTER (WHERE v.flow_state IN {start_states}) AS first_start,
           MAX(v.entered_at) FILTER (WHERE v.flow_state = 'done') AS last_done
    FROM intervals v GROUP BY v.item_id
),
item_times AS (
    SELECT i.id, i.key, i.title, i.flow_item_type,
           COALESCE(n.state_now, i.flow_state) AS state_now, COALESCE(n.stage_now, i.stage) AS stage_now,
           i.created_at, i.team_id,
           COALESCE(m.first_start, i.started_field) AS started_at,
           CASE WHEN COALESCE(n.state_now, i.flow_state) = 'done'
                THEN COALESCE(m.last_done, i.done_field) END AS completed_at
    FROM items i
    LEFT JOIN states_now n ON n.item_id = i.id
    LEFT JOIN item_marks m ON m.item_id = i.id
)"""
    return TimelineSQL(ctes, [*params, now, now, now])
