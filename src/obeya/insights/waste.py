"""Waste by the eight lean DOWNTIME categories, each bound to one measurable signal (docs/insights.md).

Every signal is a share computed in SQL over the window and slice, with its denominator said in the
docstring: a signal whose denominator is empty is "no data" (figure None), never 0. Each carries the
items behind it (work item keys, ``repo#number`` for changes, person ids for reviewers), worst first.
"""

from __future__ import annotations

import math
from datetime import timedelta

from obeya.engine.flow import completed_items, flow_efficiency, flow_time
from obeya.engine.sql import change_conditions, seconds_between
from obeya.engine.timeline import WorkStart, timeline
from obeya.engine.window import Slice, Window
from obeya.insights.model import ITEM_LIMIT, WasteSignal, severity
from obeya.insights.scope import ITEM_CHANGES, stage_positions
from obeya.store import Store

DAY = 86400.0
STALE_CHANGE_DAYS = 14
TOP_REVIEWER_SHARE = 0.2

# (threshold, high mark) of each category's figure; a figure at or past the threshold is a finding.
THRESHOLDS: dict[str, tuple[float, float]] = {
    "defects": (0.25, 0.5),
    "overproduction": (0.1, 0.25),
    "waiting": (0.6, 0.85),
    "non-utilized talent": (0.5, 0.7),
    "transportation": (0.2, 0.4),
    "inventory": (0.15, 0.3),
    "motion": (0.1, 0.25),
    "extra-processing": (0.05, 0.15),
}


def _signal(
    category: str, numerator: int, denominator: int, items: list[str], explanation: str
) -> WasteSignal:
    threshold, high = THRESHOLDS[category]
    figure = numerator / denominator if denominator else None
    if figure is None:
        explanation = f"no data: {explanation}"
    return WasteSignal(
        category,
        figure,
        "share",
        threshold,
        severity(figure, threshold, high),
        items[:ITEM_LIMIT],
        explanation,
    )


def _staged(store: Store, scope: Slice) -> str:
    """CTE ``staged``: the stage periods of completed items (done and canceled periods are not stages),
    with the stage and position of the period before."""
    return f""",
{stage_positions(store, scope)},
staged AS (
    SELECT v.item_id, v.entered_at, v.stage, p.position,
           LAG(p.position) OVER (PARTITION BY v.item_id ORDER BY v.entered_at, v.transition_id)
               AS previous_position,
           LAG(v.stage) OVER (PARTITION BY v.item_id ORDER BY v.entered_at, v.transition_id) AS previous_stage
    FROM intervals v JOIN positions p ON p.stage = v.stage
    WHERE v.flow_state NOT IN ('done', 'canceled') AND v.item_id IN (SELECT id FROM completed)
)"""


def defects(
    store: Store, window: Window, scope: Slice = Slice(), work_start: WorkStart = "active"
) -> WasteSignal:
    """Defects: share of the items completed in the window that are defects or were reworked.

    Reworked: sent back from a stage to an earlier one at least once (a reopened item counts); the time
    spent after the first return (first return → work complete) is the rework time.
    Denominator: items completed in the window.
    """
    sql, params = completed_items(window, scope, work_start)
    sql += _staged(store, scope)
    rows = store.query(
        f"""{sql},
returns AS (
    SELECT item_id, MIN(entered_at) AS first_return_at FROM staged
    WHERE position < previous_position GROUP BY item_id
)
SELECT c.key, c.flow_item_type = 'defect' AS is_defect, r.first_return_at IS NOT NULL AS reworked,
       {seconds_between("r.first_return_at", "c.completed_at")} AS rework_time,
       count(*) OVER () AS completed
FROM completed c LEFT JOIN returns r ON r.item_id = c.id
ORDER BY rework_time DESC NULLS LAST, c.key""",
        params,
    )
    total = int(rows[0][4]) if rows else 0
    defect_count = sum(1 for r in rows if r[1])
    reworked = [r for r in rows if r[2]]
    flagged = [r for r in rows if r[1] or r[2]]
    rework_days = sum(float(r[3] or 0) for r in reworked) / DAY
    return _signal(
        "defects",
        len(flagged),
        total,
        [r[0] for r in reworked] + [r[0] for r in flagged if not r[2]],
        f"{len(flagged)} of {total} items completed in the window are defects ({defect_count}) or were "
        f"sent back to an earlier stage ({len(reworked)}, {rework_days:.1f} days spent after their first "
        "return)",
    )


def overproduction(
    store: Store, window: Window, scope: Slice = Slice(), work_start: WorkStart = "active"
) -> WasteSignal:
    """Overproduction: share of the items completed in the window that nobody asked for, as far as the
    data can tell: no parent, in no plan (sprint, release, PI) and never shipped by a successful
    production deployment (through a change or commit that implements it).

    Items that are parents of other items (epics) are containers, left out of both counts.
    Denominator: items completed in the window.
    """
    sql, params = completed_items(window, scope, work_start)
    rows = store.query(
        f"""{sql},
{ITEM_CHANGES},
deployed AS (
    SELECT DISTINCT ic.item_id FROM item_changes ic
    JOIN deployment_changes dc ON dc.change_id = ic.change_id
    JOIN deployments d ON d.id = dc.deployment_id
    WHERE d.environment_class = 'production' AND d.result = 'success'
      AND COALESCE(d.finished_at, d.started_at) < ?
)
SELECT c.key,
       w.parent_id IS NULL AND NOT EXISTS (SELECT 1 FROM plan_items pi WHERE pi.work_item_id = c.id)
           AND c.id NOT IN (SELECT item_id FROM deployed) AS unasked
FROM completed c JOIN work_items w ON w.id = c.id
WHERE NOT EXISTS (SELECT 1 FROM work_items child WHERE child.parent_id = c.id)
ORDER BY c.key""",
        [*params, window.end],
    )
    unasked = [r[0] for r in rows if r[1]]
    return _signal(
        "overproduction",
        len(unasked),
        len(rows),
        unasked,
        f"{len(unasked)} of {len(rows)} items completed in the window have no parent, no plan and never "
        "reached production",
    )


def waiting(
    store: Store, window: Window, scope: Slice = Slice(), work_start: WorkStart = "active"
) -> WasteSignal:
    """Waiting: share of the flow time of the items completed in the window spent not ``active``
    (1 − flow efficiency, the ratio of sums), with the handoffs (``active`` → ``waiting``) among them.

    Denominator: the flow time of the items completed in the window (docs/metrics.md, flow efficiency).
    """
    efficiency = flow_efficiency(store, window, scope, work_start=work_start).efficiency
    sql, params = completed_items(window, scope, work_start)
    overlap = seconds_between("GREATEST(v.entered_at, c.started_at)", "LEAST(v.left_at, c.completed_at)")
    rows = store.query(
        f"""{sql},
periods AS (
    SELECT v.*, LAG(v.flow_state) OVER (PARTITION BY v.item_id ORDER BY v.entered_at, v.transition_id)
               AS previous_state
    FROM intervals v WHERE v.item_id IN (SELECT id FROM completed)
)
SELECT c.key,
       {seconds_between("c.started_at", "c.completed_at")}
           - COALESCE(SUM(GREATEST({overlap}, 0)) FILTER (WHERE v.flow_state = 'active'), 0) AS waited,
       count(*) FILTER (WHERE v.flow_state = 'waiting' AND v.previous_state = 'active'
                        AND v.entered_at >= c.started_at AND v.entered_at < c.completed_at) AS handoffs
FROM completed c JOIN periods v ON v.item_id = c.id
WHERE c.started_at IS NOT NULL AND c.completed_at > c.started_at
GROUP BY c.key, c.started_at, c.completed_at
ORDER BY waited DESC, c.key""",
        params,
    )
    handoffs = sum(int(r[2]) for r in rows)
    waited = efficiency.denominator - efficiency.numerator
    return _signal_seconds(
        "waiting",
        waited,
        efficiency.denominator,
        [r[0] for r in rows if float(r[1]) > 0],
        f"{waited / DAY:.1f} of {efficiency.denominator / DAY:.1f} days of flow time of the items completed "
        f"in the window were not active; {handoffs} handoffs (active → waiting) among {len(rows)} items",
    )


def _signal_seconds(
    category: str, numerator: float, denominator: float, items: list[str], explanation: str
) -> WasteSignal:
    threshold, high = THRESHOLDS[category]
    figure = numerator / denominator if denominator else None
    if figure is None:
        explanation = "no data: no item with a flow time completed in the window"
    return WasteSignal(
        category,
        figure,
        "share",
        threshold,
        severity(figure, threshold, high),
        items[:ITEM_LIMIT],
        explanation,
    )


def non_utilized_talent(
    store: Store, window: Window, scope: Slice = Slice(), work_start: WorkStart = "active"
) -> WasteSignal:
    """Non-utilized talent (a proxy: the data cannot see skills that go unused): share of the reviews
    submitted in the window that the top 20 % of reviewers (at least one) did.

    Reviews by bots and by a change's own author are left out. Denominator: those reviews.
    Items: the top reviewers' person ids.
    """
    condition, params = change_conditions(scope)
    rows = store.query(
        f"""SELECT r.reviewer_id, count(*) AS reviews
FROM reviews r JOIN changes ch ON ch.id = r.change_id LEFT JOIN people p ON p.id = r.reviewer_id
WHERE r.submitted_at >= ? AND r.submitted_at < ? AND r.reviewer_id IS NOT NULL
  AND r.reviewer_id <> COALESCE(ch.author_id, '') AND NOT COALESCE(p.is_bot, FALSE) AND {condition}
GROUP BY r.reviewer_id ORDER BY reviews DESC, r.reviewer_id""",
        [window.start, window.end, *params],
    )
    total = sum(int(r[1]) for r in rows)
    top = rows[: max(1, math.ceil(TOP_REVIEWER_SHARE * len(rows)))] if rows else []
    by_top = sum(int(r[1]) for r in top)
    return _signal(
        "non-utilized talent",
        by_top,
        total,
        [str(r[0]) for r in top],
        f"proxy: the top {len(top)} of {len(rows)} reviewers did {by_top} of the {total} reviews "
        "in the window",
    )


def transportation(
    store: Store, window: Window, scope: Slice = Slice(), work_start: WorkStart = "active"
) -> WasteSignal:
    """Transportation: share of the items completed in the window that changed team on the way: two
    consecutive status changes of the item made by people of different teams (a handoff between teams).

    The data keeps no history of a work item's assignee or team, so the teams are those of the people
    who moved the item. Denominator: items completed in the window with a status change by a person
    with a team (bots left out).
    """
    sql, params = completed_items(window, scope, work_start)
    rows = store.query(
        f"""{sql},
moved AS (
    SELECT t.work_item_id AS item_id, p.team_id,
           LAG(p.team_id) OVER (PARTITION BY t.work_item_id ORDER BY t.at, t.id) AS previous_team
    FROM status_transitions t JOIN people p ON p.id = t.author_id
    WHERE t.at < ? AND p.team_id IS NOT NULL AND NOT p.is_bot
      AND t.work_item_id IN (SELECT id FROM completed)
)
SELECT c.key, count(*) FILTER (WHERE m.previous_team IS NOT NULL AND m.team_id <> m.previous_team) AS handoffs
FROM completed c JOIN moved m ON m.item_id = c.id
GROUP BY c.key ORDER BY handoffs DESC, c.key""",
        [*params, window.end],
    )
    moved = [r for r in rows if int(r[1]) > 0]
    return _signal(
        "transportation",
        len(moved),
        len(rows),
        [r[0] for r in moved],
        f"{len(moved)} of {len(rows)} completed items moved by people of a known team changed team "
        f"({sum(int(r[1]) for r in moved)} handoffs between teams)",
    )


def inventory(
    store: Store, window: Window, scope: Slice = Slice(), work_start: WorkStart = "active"
) -> WasteSignal:
    """Inventory: share of the work in progress at the window's end that is stale: items older than the
    85th percentile flow time of the items completed in the window (aging WIP), and open changes with no
    commit, review or comment for 14 days.

    Denominator: items in ``waiting`` or ``active`` that started (when a p85 flow time exists) plus the
    changes open at the window's end.
    """
    p85 = flow_time(store, window, scope, work_start=work_start).flow_time.p85
    t = timeline(scope, window.end, work_start)
    aging: list[str] = []
    wip = 0
    if p85 is not None:
        age = seconds_between("started_at", "?")
        rows = store.query(
            f"""WITH {t.ctes}
SELECT key, {age} > ? AS aging FROM item_times
WHERE state_now IN ('waiting', 'active') AND started_at IS NOT NULL
ORDER BY started_at, key""",
            [*t.params, window.end, p85],
        )
        wip = len(rows)
        aging = [r[0] for r in rows if r[1]]
    condition, params = change_conditions(scope)
    last = "COALESCE(MAX({0}) FILTER (WHERE {0} < ?), ch.created_at)"
    changes = store.query(
        f"""WITH open_changes AS (
    SELECT ch.id, ch.repo, ch.number, ch.created_at FROM changes ch
    WHERE ch.created_at < ? AND (ch.state = 'open' OR COALESCE(ch.merged_at, ch.closed_at) >= ?)
      AND {condition}
),
touched AS (
    SELECT ch.id, ch.repo, ch.number,
           GREATEST(ch.created_at, {last.format("c.committed_at")}, {last.format("c.authored_at")},
                    {last.format("r.submitted_at")}, {last.format("m.created_at")}) AS last_update
    FROM open_changes ch
    LEFT JOIN change_commits cc ON cc.change_id = ch.id
    LEFT JOIN commits c ON c.sha = cc.commit_sha AND c.repo = ch.repo
    LEFT JOIN reviews r ON r.change_id = ch.id
    LEFT JOIN change_comments m ON m.change_id = ch.id
    GROUP BY ch.id, ch.repo, ch.number, ch.created_at
)
SELECT repo || '#' || CAST(number AS TEXT), last_update < ? AS stale FROM touched
ORDER BY last_update, repo, number""",
        [
            window.end,
            window.end,
            *params,
            *[window.end] * 4,
            window.end - timedelta(days=STALE_CHANGE_DAYS),
        ],
    )
    stale = [r[0] for r in changes if r[1]]
    aging_note = (
        f"{len(aging)} of {wip} items in progress are older than the p85 flow time ({p85 / DAY:.1f} d)"
        if p85 is not None
        else "no completed items in the window, so no p85 flow time to age items against"
    )
    return _signal(
        "inventory",
        len(aging) + len(stale),
        wip + len(changes),
        aging + stale,
        f"{aging_note}; {len(stale)} of {len(changes)} open changes had no update for "
        f"{STALE_CHANGE_DAYS} days",
    )


def motion(
    store: Store, window: Window, scope: Slice = Slice(), work_start: WorkStart = "active"
) -> WasteSignal:
    """Motion: share of the items completed in the window that entered the same stage more than once
    (back and forth between stages). Denominator: items completed in the window.
    """
    sql, params = completed_items(window, scope, work_start)
    sql += _staged(store, scope)
    rows = store.query(
        f"""{sql},
entries AS (
    SELECT item_id, stage, count(*) AS entered FROM staged
    WHERE previous_stage IS NULL OR stage <> previous_stage GROUP BY item_id, stage
)
SELECT c.key, COALESCE(SUM(e.entered - 1), 0) AS extra_entries
FROM completed c LEFT JOIN entries e ON e.item_id = c.id
GROUP BY c.key ORDER BY extra_entries DESC, c.key""",
        params,
    )
    moved = [r for r in rows if int(r[1]) > 0]
    return _signal(
        "motion",
        len(moved),
        len(rows),
        [r[0] for r in moved],
        f"{len(moved)} of {len(rows)} items completed in the window entered a stage again "
        f"({sum(int(r[1]) for r in moved)} repeated stage entries)",
    )


def extra_processing(
    store: Store, window: Window, scope: Slice = Slice(), work_start: WorkStart = "active"
) -> WasteSignal:
    """Extra-processing: share of the work that ended in the window and was thrown away: items canceled
    after their work started, and changes closed without merge (bots' changes left out).

    Denominator: items completed or canceled-after-start in the window, plus changes merged or closed in
    the window. The time spent on the canceled items (work start → cancel) is in the explanation.
    """
    t = timeline(scope, window.end, work_start)
    items = store.query(
        f"""WITH {t.ctes},
canceled AS (
    SELECT i.id, MAX(v.entered_at) AS canceled_at FROM item_times i JOIN intervals v ON v.item_id = i.id
    WHERE i.state_now = 'canceled' AND v.flow_state = 'canceled' GROUP BY i.id
)
SELECT i.key, x.canceled_at IS NOT NULL AS thrown,
       {seconds_between("i.started_at", "x.canceled_at")} AS spent
FROM item_times i LEFT JOIN canceled x ON x.id = i.id
WHERE (i.completed_at >= ? AND i.completed_at < ?)
   OR (x.canceled_at >= ? AND x.canceled_at < ? AND i.started_at IS NOT NULL AND i.started_at < x.canceled_at)
ORDER BY spent DESC NULLS LAST, i.key""",
        [*t.params, window.start, window.end, window.start, window.end],
    )
    condition, params = change_conditions(scope)
    changes = store.query(
        f"""SELECT ch.repo || '#' || CAST(ch.number AS TEXT), ch.merged_at IS NULL AS thrown
FROM changes ch LEFT JOIN people p ON p.id = ch.author_id
WHERE NOT COALESCE(p.is_bot, FALSE) AND {condition}
  AND ((ch.merged_at >= ? AND ch.merged_at < ?)
       OR (ch.state = 'closed' AND ch.merged_at IS NULL AND ch.closed_at >= ? AND ch.closed_at < ?))
ORDER BY ch.closed_at DESC, ch.repo, ch.number""",
        [*params, window.start, window.end, window.start, window.end],
    )
    canceled = [r for r in items if r[1]]
    closed = [r[0] for r in changes if r[1]]
    spent = sum(float(r[2] or 0) for r in canceled) / DAY
    return _signal(
        "extra-processing",
        len(canceled) + len(closed),
        len(items) + len(changes),
        [r[0] for r in canceled] + closed,
        f"{len(canceled)} items canceled after work started ({spent:.1f} days spent on them) of {len(items)} "
        f"items ended; {len(closed)} of {len(changes)} changes closed without merge",
    )


def waste(
    store: Store, window: Window, scope: Slice = Slice(), work_start: WorkStart = "active"
) -> list[WasteSignal]:
    """The eight DOWNTIME signals, in the acronym's order (work start as `rules.work_start` says)."""
    signals = (
        defects,
        overproduction,
        waiting,
        non_utilized_talent,
        transportation,
        inventory,
        motion,
        extra_processing,
    )
    return [signal(store, window, scope, work_start) for signal in signals]
