"""Flow metrics (docs/metrics.md, "Flow metrics"), each one SQL query on the store.

All take a `Window` and a `Slice`; "now" for items still in progress is the window's end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from itertools import accumulate
from typing import Any, Literal

from obeya.engine.results import DURATION_WIDTH, DurationSummary, Ratio, SeriesPoint
from obeya.engine.snapshot import item_times_snapshot
from obeya.engine.sql import percentile, seconds_between
from obeya.engine.timeline import WorkStart, timeline
from obeya.engine.window import Slice, Window
from obeya.model.vocabulary import FlowState
from obeya.store import Store

Grouping = Literal["week", "month"]


def duration_columns(expression: str, condition: str | None = None) -> str:
    """``count, [p50, p70, p85, p95], mean`` of `expression` (over rows matching `condition`): the
    `DURATION_WIDTH` columns `DurationSummary.from_row` reads. The four percentiles come from one
    ``percentile_cont(ARRAY[...])``, which both engines answer with a list after a single sort."""
    where = f" FILTER (WHERE {condition})" if condition else ""
    return ", ".join(
        [
            f"count({expression}){where}",
            f"percentile_cont(ARRAY[0.5, 0.7, 0.85, 0.95]) WITHIN GROUP (ORDER BY {expression}){where}",
            f"avg({expression}){where}",
        ]
    )


def completed_items(
    window: Window, scope: Slice, work_start: WorkStart, snapshot: str | None = None
) -> tuple[str, list[Any]]:
    """CTEs ending in ``completed``: items whose work completed in the window, with their spans
    (``item_times`` read from `snapshot` when given; see `obeya.engine.snapshot`)."""
    t = timeline(scope, window.end, work_start, snapshot)
    sql = f"""WITH {t.ctes},
completed AS (
    SELECT c.*, {seconds_between("c.started_at", "c.completed_at")} AS flow_time,
           {seconds_between("c.created_at", "c.completed_at")} AS lead_time
    FROM item_times c
    WHERE c.completed_at >= ? AND c.completed_at < ?
)"""
    return sql, [*t.params, window.start, window.end]


def _snapshot(store: Store, window: Window, scope: Slice, work_start: WorkStart) -> str:
    """The connection's ``item_times`` snapshot for the window's end (built once per data version)."""
    return item_times_snapshot(store, scope, window.end, work_start)


def _periods(window: Window, by: Grouping) -> str:
    return f"date_trunc('{by}', completed_at)"


def _dense(
    window: Window, by: Grouping, rows: list[tuple[Any, ...]], empty: float | None
) -> list[SeriesPoint]:
    """One point per period of `window.periods(by)`, labelled by the period's first day in the window.

    `rows` are ``(calendar period start, value)`` per period holding something; the first calendar period
    starts before the window when the window starts mid-week (or mid-month), so its start is clipped to
    the window's. Periods without a row take `empty`: 0 for a count, None ("no data") for a figure over
    the items of the period.
    """
    values = {max(r[0], window.start).date(): None if r[1] is None else float(r[1]) for r in rows}
    return [SeriesPoint(p.start.date(), values.get(p.start.date(), empty)) for p in window.periods(by)]


@dataclass(frozen=True)
class FlowVelocity:
    """Items completed in the window, per week, and as a series: the count of each period (0 when none
    completed), every period of the window in order (`Window.periods`)."""

    completed: int
    per_week: float | None
    series: list[SeriesPoint]


def flow_velocity(
    store: Store,
    window: Window,
    scope: Slice = Slice(),
    by: Grouping | None = None,
    work_start: WorkStart = "active",
) -> FlowVelocity:
    """Flow velocity: items reaching ``done`` (work complete) in the window, per week by default.

    docs/metrics.md, "Flow velocity". A reopened item counts when it is done again, once.
    """
    sql, params = completed_items(window, scope, work_start, _snapshot(store, window, scope, work_start))
    count = int(store.query(f"{sql} SELECT count(*) FROM completed", params)[0][0])
    series = []
    if by:
        rows = store.query(
            f"{sql} SELECT {_periods(window, by)} AS p, count(*) FROM completed GROUP BY p ORDER BY p", params
        )
        series = _dense(window, by, rows, 0.0)
    return FlowVelocity(count, count / window.weeks if count else None, series)


@dataclass(frozen=True)
class FlowTimes:
    """Flow time (work start → complete) and lead time (created → complete) of completed items."""

    flow_time: DurationSummary
    lead_time: DurationSummary
    not_started: int  # completed items that never entered the work-start state: no flow time
    series: list[SeriesPoint]  # median flow time per period of the window; None where none completed


def flow_time(
    store: Store,
    window: Window,
    scope: Slice = Slice(),
    by: Grouping | None = None,
    work_start: WorkStart = "active",
) -> FlowTimes:
    """Flow time (cycle time) and lead time of the items completed in the window.

    docs/metrics.md, "Flow time". Negative spans are data errors: excluded and counted in `excluded`.
    """
    sql, params = completed_items(window, scope, work_start, _snapshot(store, window, scope, work_start))
    row = store.query(
        f"""{sql}
SELECT {duration_columns("flow_time", "flow_time >= 0")},
       count(*) FILTER (WHERE flow_time < 0),
       {duration_columns("lead_time", "lead_time >= 0")},
       count(*) FILTER (WHERE lead_time < 0),
       count(*) FILTER (WHERE started_at IS NULL)
FROM completed""",
        params,
    )[0]
    series = []
    if by:
        rows = store.query(
            f"{sql} SELECT {_periods(window, by)} AS p, {percentile(0.5, 'flow_time')} FROM completed "
            "WHERE flow_time >= 0 GROUP BY p ORDER BY p",
            params,
        )
        series = _dense(window, by, rows, None)
    return FlowTimes(
        DurationSummary.from_row(row[0:3], excluded=int(row[3])),
        DurationSummary.from_row(row[4:7], excluded=int(row[7])),
        int(row[8]),
        series,
    )


def _active_seconds_cte() -> str:
    """Per completed item, the seconds it spent in ``active`` between work start and complete.

    A settled item (no transition after the window's end) is done for good, so every closed ``active``
    period of it lies between its work start and its completion: its ``active_time`` from the derived
    ``flow_items`` is the answer. Only the others are summed from their periods.
    """
    overlap = seconds_between("GREATEST(v.entered_at, c.started_at)", "LEAST(v.left_at, c.completed_at)")
    return f""",
unsettled_active AS (
    SELECT c.id, SUM(GREATEST({overlap}, 0)) AS active_time
    FROM completed c JOIN intervals v ON v.item_id = c.id
    WHERE c.flow_time >= 0 AND NOT COALESCE(c.settled, TRUE) AND v.flow_state = 'active'
    GROUP BY c.id
),
active AS (
    SELECT c.id, c.completed_at, c.flow_time,
           CASE WHEN c.settled THEN c.active_time ELSE COALESCE(u.active_time, 0) END AS active_time
    FROM completed c LEFT JOIN unsettled_active u ON u.id = c.id
    WHERE c.flow_time >= 0
)"""


@dataclass(frozen=True)
class FlowEfficiency:
    """Σ active time ÷ Σ flow time over the items completed in the window (the ratio of sums)."""

    efficiency: Ratio
    median_item_efficiency: float | None
    series: list[SeriesPoint]  # per period of the window; None where nothing with a flow time completed


def flow_efficiency(
    store: Store,
    window: Window,
    scope: Slice = Slice(),
    by: Grouping | None = None,
    work_start: WorkStart = "active",
) -> FlowEfficiency:
    """Flow efficiency: time in ``active`` ÷ flow time, per item; the stream's figure is the ratio of sums.

    docs/metrics.md, "Flow efficiency". Items with a zero or negative flow time are left out.
    """
    sql, params = completed_items(window, scope, work_start, _snapshot(store, window, scope, work_start))
    sql += _active_seconds_cte()
    row = store.query(
        f"""{sql}
SELECT COALESCE(SUM(active_time), 0), COALESCE(SUM(flow_time), 0),
       {percentile(0.5, "active_time / flow_time", "flow_time > 0")}
FROM active WHERE flow_time > 0""",
        params,
    )[0]
    series = []
    if by:
        rows = store.query(
            f"{sql} SELECT {_periods(window, by)} AS p, SUM(active_time) / NULLIF(SUM(flow_time), 0) "
            "FROM active WHERE flow_time > 0 GROUP BY p ORDER BY p",
            params,
        )
        series = _dense(window, by, rows, None)
    return FlowEfficiency(
        Ratio(float(row[0]), float(row[1])), None if row[2] is None else float(row[2]), series
    )


@dataclass(frozen=True)
class FlowLoad:
    """Work in progress (items in ``waiting`` or ``active``) at the end of each day of the window."""

    daily: list[SeriesPoint]
    average: float | None
    at_end: int


def wip_day_spans(window: Window, scope: Slice, work_start: WorkStart) -> tuple[str, list[Any]]:
    """CTEs ending in ``spans`` (and ``bounds``): per status period of the slice's items that had not
    ended by the window's start, its item, flow state and stage, and the first and last day of the
    window whose instant it covers (``from_day`` > ``to_day``: none).

    A day's instant is the midnight after it, the last one being the window's end; a period covers an
    instant when it entered at or before it and left after it (or is current). The periods of one item
    never overlap, so each of its days is covered by exactly one of them.
    """
    t = timeline(scope, window.end, work_start)
    sql = f"""WITH {t.ctes},
bounds AS (SELECT CAST(? AS DATE) AS first_day, CAST(? AS DATE) AS last_day),
periods AS (
    SELECT p.item_id, p.flow_state, p.stage, p.entered_at, p.left_at,
           (p.left_at IS NULL OR p.left_at >= ?) AS is_current
    FROM flow_periods p JOIN items i ON i.id = p.item_id
    WHERE p.entered_at < ? AND (p.left_at IS NULL OR p.left_at > ?)
),
spans AS (
    SELECT v.item_id, v.flow_state, v.stage,
           GREATEST(CAST(v.entered_at - INTERVAL '1 microsecond' AS DATE), b.first_day) AS from_day,
           CASE WHEN v.is_current THEN b.last_day
                ELSE CAST(v.left_at - INTERVAL '1 microsecond' AS DATE) - 1 END AS to_day
    FROM periods v CROSS JOIN bounds b
)"""
    params = [*t.params, window.start, window.end - timedelta(days=1), window.end, window.end, window.start]
    return sql, params


def _window_days(window: Window) -> list[date]:
    return [window.start.date() + timedelta(days=i) for i in range(round(window.days))]


def _daily_counts(
    store: Store, window: Window, scope: Slice, work_start: WorkStart, group: str
) -> tuple[list[date], dict[str, list[int]]]:
    """Per day of the window and per value of `group` (over the spans, alias ``v``), how many items
    were in such a period at the day's instant (`wip_day_spans`).

    Each period adds 1 from the first day whose instant it covers and takes it away after the last, so the
    counts are running sums of those changes: linear in the periods, not days × periods.
    """
    sql, params = wip_day_spans(window, scope, work_start)
    rows = store.query(
        f"""{sql},
changes AS (
    SELECT {group} AS grp, v.from_day AS day, 1 AS change FROM spans v WHERE v.from_day <= v.to_day
    UNION ALL
    SELECT {group}, v.to_day + 1, -1 FROM spans v CROSS JOIN bounds b
    WHERE v.from_day <= v.to_day AND v.to_day < b.last_day
)
SELECT grp, day, SUM(change) FROM changes GROUP BY grp, day""",
        params,
    )
    days = _window_days(window)
    index = {d: i for i, d in enumerate(days)}
    steps: dict[str, list[int]] = {}
    for grp, day, change in rows:
        steps.setdefault(str(grp), [0] * (len(days) + 1))[index.get(day, len(days))] += int(change)
    counts = {grp: list(accumulate(changes[:-1])) for grp, changes in steps.items()}
    return days, counts


def flow_load(
    store: Store, window: Window, scope: Slice = Slice(), work_start: WorkStart = "active"
) -> FlowLoad:
    """Flow load: items in ``waiting`` or ``active`` at the end of each day, and the daily average.

    docs/metrics.md, "Flow load (WIP)". The last day's instant is the window's end.
    """
    days, counts = _daily_counts(store, window, scope, work_start, "v.flow_state")
    wip = [
        sum(counts.get(state, [0] * len(days))[i] for state in ("waiting", "active"))
        for i in range(len(days))
    ]
    daily = [SeriesPoint(day, float(n)) for day, n in zip(days, wip, strict=True)]
    average = sum(wip) / len(wip) if wip else None
    return FlowLoad(daily, average, wip[-1] if wip else 0)


@dataclass(frozen=True)
class CumulativeFlow:
    """Per day, how many items were in each flow state (or stage), the groups in display order."""

    by: Literal["flow_state", "stage"]
    days: list[date]
    counts: dict[str, list[int]]


NO_STAGE = "(none)"
"""The group of items whose status maps to no stage, in the cumulative flow by stage."""


def cumulative_flow(
    store: Store,
    window: Window,
    scope: Slice = Slice(),
    by: Literal["flow_state", "stage"] = "flow_state",
    work_start: WorkStart = "active",
    stages: list[str] | None = None,
) -> CumulativeFlow:
    """Cumulative flow: per day, the count of items in each flow state or stage at the day's end.

    docs/metrics.md, "Cumulative flow". Every flow state appears, in the order new, waiting, active,
    done, canceled; by stage, the `stages` given (the value stream's, in order) appear, then any other
    stage an item was in (by name), then items with no stage under "(none)". A group with no item is 0
    on every day.
    """
    group = "v.flow_state" if by == "flow_state" else f"COALESCE(v.stage, '{NO_STAGE}')"
    days, counts = _daily_counts(store, window, scope, work_start, group)
    known = [s.value for s in FlowState] if by == "flow_state" else list(stages or [])
    others = sorted(g for g in counts if g not in known and g != NO_STAGE)
    order = known + others + ([NO_STAGE] if NO_STAGE in counts else [])
    return CumulativeFlow(by, days, {g: counts.get(g, [0] * len(days)) for g in order})


@dataclass(frozen=True)
class FlowDistribution:
    """Shares by flow item type: of the items completed in the window, and of the WIP at its end."""

    completed: dict[str, Ratio]
    wip: dict[str, Ratio]


def flow_distribution(
    store: Store, window: Window, scope: Slice = Slice(), work_start: WorkStart = "active"
) -> FlowDistribution:
    """Flow distribution: share of completed items (and of WIP at the window's end) by flow item type.

    docs/metrics.md, "Flow distribution".
    """
    sql, params = completed_items(window, scope, work_start, _snapshot(store, window, scope, work_start))
    done = dict(store.query(f"{sql} SELECT flow_item_type, count(*) FROM completed GROUP BY 1", params))
    t = timeline(scope, window.end, work_start, _snapshot(store, window, scope, work_start))
    wip = dict(
        store.query(
            f"WITH {t.ctes} SELECT flow_item_type, count(*) FROM item_times "
            "WHERE state_now IN ('waiting', 'active') GROUP BY 1",
            t.params,
        )
    )

    def shares(counts: dict[str, int]) -> dict[str, Ratio]:
        total = sum(counts.values())
        kinds = ("feature", "defect", "risk", "debt")
        return {k: Ratio(counts.get(k, 0), total) for k in kinds}

    return FlowDistribution(shares(done), shares(wip))


@dataclass(frozen=True)
class PlanOutcome:
    """One plan's commitment and what of it was delivered by its end."""

    plan_id: str
    name: str
    planned: int
    delivered: int
    planned_value: float | None
    delivered_value: float | None


@dataclass(frozen=True)
class FlowPredictability:
    """Delivered ÷ planned over the plans that ended in the window (items, and business value)."""

    items: Ratio
    business_value: Ratio
    plans: list[PlanOutcome]


def plan_commitments(
    window: Window, scope: Slice, work_start: WorkStart, snapshot: str | None = None
) -> tuple[str, list[Any]]:
    """CTEs ending in ``committed``: per plan that ended in the window, the items of the slice committed
    at its start (not added after it), whether each was done by the plan's end (``delivered``), its
    planned value, the value it delivered (its delivered value, else its planned value; null when not
    delivered), and the plan's summed planned value (``plan_value``; null when no item carries one)."""
    t = timeline(scope, window.end, work_start, snapshot)
    delivered = "c.completed_at IS NOT NULL AND c.completed_at <= p.ends_at"
    sql = f"""WITH {t.ctes},
committed AS (
    SELECT p.id AS plan_id, p.name AS plan_name, p.ends_at AS plan_ends_at,
           c.id AS item_id, c.key, c.title, c.flow_item_type, c.completed_at,
           ({delivered}) AS delivered,
           pi.planned_value,
           CASE WHEN {delivered} THEN COALESCE(pi.delivered_value, pi.planned_value) END AS delivered_value,
           SUM(pi.planned_value) OVER (PARTITION BY p.id) AS plan_value
    FROM plans p
    JOIN plan_items pi ON pi.plan_id = p.id AND NOT pi.added_after_start
    JOIN item_times c ON c.id = pi.work_item_id
    WHERE p.ends_at >= ? AND p.ends_at < ?
)"""
    return sql, [*t.params, window.start, window.end]


def flow_predictability(
    store: Store, window: Window, scope: Slice = Slice(), work_start: WorkStart = "active"
) -> FlowPredictability:
    """Flow predictability: items committed at a plan's start and done by its end ÷ items committed.

    docs/metrics.md, "Flow predictability". Items added after the plan started are not part of the
    commitment. When plan items carry business values, delivered value ÷ planned value is given too,
    over the plans that carry values.
    """
    sql, params = plan_commitments(window, scope, work_start, _snapshot(store, window, scope, work_start))
    rows = store.query(
        f"""{sql}
SELECT plan_id, plan_name, count(*) AS planned, count(*) FILTER (WHERE delivered) AS delivered,
       SUM(planned_value) AS planned_value, SUM(delivered_value) AS delivered_value
FROM committed
GROUP BY plan_id, plan_name, plan_ends_at
ORDER BY plan_ends_at, plan_id""",
        params,
    )
    plans = [
        PlanOutcome(
            r[0],
            r[1],
            int(r[2]),
            int(r[3]),
            None if r[4] is None else float(r[4]),
            None if r[4] is None else float(r[5] or 0),
        )
        for r in rows
    ]
    valued = [p for p in plans if p.planned_value]
    return FlowPredictability(
        Ratio(sum(p.delivered for p in plans), sum(p.planned for p in plans)),
        Ratio(sum(p.delivered_value or 0 for p in valued), sum(p.planned_value or 0 for p in valued)),
        plans,
    )


@dataclass(frozen=True)
class AgingItem:
    """A work item in progress and how long since its work started."""

    key: str
    title: str
    flow_state: str
    stage: str | None
    age: float
    beyond_sle: str | None  # the highest service level expectation its age exceeds ("p85"), if any


@dataclass(frozen=True)
class WorkItemAge:
    """Items in progress at the window's end, their ages, and the service level expectations."""

    service_level_expectations: DurationSummary
    items: list[AgingItem]
    age: DurationSummary
    beyond: dict[str, int | None]  # per expectation (p50 … p95), items older than it; None without it


def work_item_age(
    store: Store,
    window: Window,
    scope: Slice = Slice(),
    work_start: WorkStart = "active",
    limit: int = 50,
    flow_times: FlowTimes | None = None,
) -> WorkItemAge:
    """Work item age: now - work start for items started and not done, oldest first.

    docs/metrics.md, "Work item age". The service level expectations are the 50/70/85/95th percentile
    flow times of the items completed in the window; each aging item says which one it is beyond.
    `beyond` counts, per expectation, the items in progress older than it (all of them, not only the
    `limit` listed). `flow_times` of the same window and slice, when the caller has them already, spares
    recomputing them.
    """
    sle = (flow_times or flow_time(store, window, scope, work_start=work_start)).flow_time
    t = timeline(scope, window.end, work_start, _snapshot(store, window, scope, work_start))
    age_expr = seconds_between("started_at", "?")
    in_progress = "FROM item_times WHERE state_now IN ('waiting', 'active') AND started_at IS NOT NULL"
    thresholds = [("p95", sle.p95), ("p85", sle.p85), ("p70", sle.p70), ("p50", sle.p50)]
    beyond_columns = ", ".join(f"count(*) FILTER (WHERE {age_expr} > ?)" for _ in thresholds)
    age_columns = duration_columns(age_expr)
    age_row = store.query(
        f"WITH {t.ctes} SELECT {age_columns}, {beyond_columns} {in_progress}",
        [
            *t.params,
            *[window.end] * age_columns.count("?"),
            *[v for _, limit_ in thresholds for v in (window.end, limit_ or 0.0)],
        ],
    )[0]
    beyond = {
        name: None if limit_ is None else int(count)
        for (name, limit_), count in zip(thresholds, age_row[DURATION_WIDTH:], strict=True)
    }
    rows = store.query(
        f"WITH {t.ctes} SELECT key, title, state_now, stage_now, {age_expr} AS age {in_progress} "
        "ORDER BY age DESC, key LIMIT ?",
        [*t.params, window.end, limit],
    )
    items = [
        AgingItem(
            r[0],
            r[1],
            r[2],
            r[3],
            float(r[4]),
            next((name for name, limit_ in thresholds if limit_ is not None and r[4] > limit_), None),
        )
        for r in rows
    ]
    return WorkItemAge(
        sle, items, DurationSummary.from_row(age_row[:DURATION_WIDTH]), dict(reversed(beyond.items()))
    )
