"""The per-item timeline every flow and stage figure is built from, as SQL common table expressions.

``intervals``: one row per status period of a work item — its status, flow state and stage from the
transition that entered it (``entered_at``) until the next transition (``left_at``; the end of the
window's day, "now", for the current period).

``states_now``: each item's flow state and stage at `now` (from its current period).

The periods come from the derived ``flow_periods`` and, for items whose whole history is before
`now`, the marks and state from ``flow_items`` (`obeya.store.derived`): no window function runs per query.

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
    first_start = "f.first_active_at" if work_start == "active" else "f.first_committed_at"
    # Items whose whole history is before `now` take their marks and state from the derived
    # `flow_items`; the others (a window in the past) are computed from their periods up to `now`.
    ctes = f"""
items AS (
    SELECT w.id, w.key, w.title, w.flow_item_type, w.flow_state, w.stage, w.created_at, w.team_id,
           w.started_at AS started_field, w.done_at AS done_field
    FROM work_items w
    WHERE {condition} AND w.created_at < ?
),
intervals AS (
    SELECT p.item_id, p.transition_id, p.status, p.flow_state, p.stage, p.entered_at,
           CASE WHEN p.left_at IS NULL OR p.left_at >= ? THEN CAST(? AS TIMESTAMP) ELSE p.left_at END
               AS left_at,
           (p.left_at IS NULL OR p.left_at >= ?) AS is_current
    FROM flow_periods p JOIN items i ON i.id = p.item_id
    WHERE p.entered_at < ?
),
settled AS (
    SELECT f.* FROM flow_items f JOIN items i ON i.id = f.item_id WHERE f.last_transition_at < ?
),
states_now AS (
    SELECT f.item_id, f.current_state AS state_now, f.current_stage AS stage_now FROM settled f
    UNION ALL
    SELECT v.item_id, v.flow_state, v.stage FROM intervals v
    WHERE v.is_current AND v.item_id NOT IN (SELECT item_id FROM settled)
),
item_marks AS (
    SELECT f.item_id, {first_start} AS first_start, f.last_done_at AS last_done FROM settled f
    UNION ALL
    SELECT v.item_id,
           MIN(v.entered_at) FILTER (WHERE v.flow_state IN {start_states}),
           MAX(v.entered_at) FILTER (WHERE v.flow_state = 'done')
    FROM intervals v WHERE v.item_id NOT IN (SELECT item_id FROM settled)
    GROUP BY v.item_id
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
    # Every placeholder after the slice's own is `now`.
    return TimelineSQL(ctes, [*params, *[now] * (ctes.count("?") - len(params))])
