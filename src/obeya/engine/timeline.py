"""The per-item timeline every flow and stage figure is built from, as SQL common table expressions.

``intervals``: one row per status period of a work item — its status, flow state and stage from the
transition that entered it (``entered_at``) until the next transition (``left_at``; the end of the
window's day, "now", for the current period).

The periods come from the derived ``flow_periods``; the marks, the state at `now` and the active time
from ``flow_items`` (`obeya.store.derived`) for items whose whole history is before `now` ("settled"),
and from the period spanning `now` for the others: no window function and no scan of every period
runs per query unless a metric reads ``intervals`` itself.

``item_times``: one row per work item with its state and stage at `now`, its creation, **work start**
(first entry into ``active``; with ``work_start="committed"``, first entry into ``waiting`` or
``active``) and **work complete** (last entry into ``done``, only for items whose flow state at `now` is
``done``: a reopened item is not done), whether it is settled, and for settled items ``active_time``,
the seconds of their closed ``active`` periods.
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


def timeline(
    scope: Slice, now: datetime, work_start: WorkStart = "active", snapshot: str | None = None
) -> TimelineSQL:
    """The ``items``, ``intervals`` and ``item_times`` CTEs for the items of `scope`, as of `now`.

    With `snapshot`, the name of a table holding these very ``item_times`` rows
    (`obeya.engine.snapshot`), ``item_times`` reads it instead of computing them again.
    """
    condition, params = work_item_conditions(scope)
    first_start = "f.first_active_at" if work_start == "active" else "f.first_committed_at"
    # Items whose whole history is before `now` ("settled": every dashboard's items, as no transition
    # lies in the future) take their marks, state and active time from the derived `flow_items`, with no
    # period scan. The others (a window in the past) are read off the period that spans `now` — a range
    # filter on `flow_periods` — and, for those done at `now`, their last entry into done before it.
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
spanning AS (
    SELECT p.item_id, p.flow_state, p.stage FROM flow_periods p WHERE p.entered_at < ? AND p.left_at >= ?
),
done_before AS (
    SELECT p.item_id, MAX(p.entered_at) AS last_done FROM flow_periods p
    WHERE p.flow_state = 'done' AND p.entered_at < ?
      AND p.item_id IN (SELECT s.item_id FROM spanning s WHERE s.flow_state = 'done')
    GROUP BY p.item_id
),
marks AS (
    SELECT f.item_id,
           (f.last_transition_at < ?) AS settled,
           CASE WHEN f.last_transition_at < ? THEN f.current_state ELSE s.flow_state END AS state_now,
           CASE WHEN f.last_transition_at < ? THEN f.current_stage ELSE s.stage END AS stage_now,
           CASE WHEN {first_start} < ? THEN {first_start} END AS first_start,
           CASE WHEN f.last_transition_at < ? THEN f.last_done_at ELSE d.last_done END AS last_done,
           f.active_time
    FROM flow_items f JOIN items i ON i.id = f.item_id
    LEFT JOIN spanning s ON s.item_id = f.item_id
    LEFT JOIN done_before d ON d.item_id = f.item_id
),
item_times AS (
    SELECT i.id, i.key, i.title, i.flow_item_type,
           CASE WHEN m.item_id IS NULL THEN i.flow_state ELSE m.state_now END AS state_now,
           CASE WHEN m.item_id IS NULL THEN i.stage ELSE m.stage_now END AS stage_now,
           i.created_at, i.team_id,
           COALESCE(m.first_start, i.started_field) AS started_at,
           CASE WHEN (CASE WHEN m.item_id IS NULL THEN i.flow_state ELSE m.state_now END) = 'done'
                THEN COALESCE(m.last_done, i.done_field) END AS completed_at,
           m.settled, m.active_time
    FROM items i
    LEFT JOIN marks m ON m.item_id = i.id
)"""
    if snapshot:
        ctes = ctes[: ctes.index("item_times AS (")] + f"item_times AS (SELECT * FROM {snapshot})"
    # Every placeholder after the slice's own is `now`.
    return TimelineSQL(ctes, [*params, *[now] * (ctes.count("?") - len(params))])
