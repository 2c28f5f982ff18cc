"""Headline figures of a slice and window, with the previous window beside them, as flat rows.

The CLI prints these as a table or CSV and the API serves them; the typed results behind each row come
from `obeya.engine.flow`, `obeya.engine.dora` and `obeya.engine.stages`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Literal

from obeya.engine import dora, flow
from obeya.engine.dora_rules import DEFAULT_DORA_RULES, DoraRules
from obeya.engine.stages import stage_order
from obeya.engine.timeline import WorkStart
from obeya.engine.window import Slice, Window
from obeya.store import Store

Unit = Literal["items", "items/week", "per day", "days/week", "seconds", "share", "level"]


@dataclass(frozen=True)
class FigureRow:
    """One figure: its name, value (None = no data), unit, and the same figure one window earlier."""

    metric: str
    value: float | str | None
    unit: Unit
    previous: float | str | None


@dataclass(frozen=True)
class SeriesRow:
    """One period of a series: its first day in the window, its length in days, and the value
    (None = no data). Periods are `Window.periods`: calendar weeks or months clipped to the window."""

    metric: str
    period: date
    days: float
    value: float | None


Figures = list[tuple[str, float | str | None, Unit]]


def _flow_figures(store: Store, window: Window, scope: Slice, work_start: WorkStart = "active") -> Figures:
    velocity = flow.flow_velocity(store, window, scope, work_start=work_start)
    times = flow.flow_time(store, window, scope, work_start=work_start)
    efficiency = flow.flow_efficiency(store, window, scope, work_start=work_start)
    load = flow.flow_load(store, window, scope, work_start=work_start)
    distribution = flow.flow_distribution(store, window, scope, work_start=work_start)
    predictability = flow.flow_predictability(store, window, scope, work_start=work_start)
    age = flow.work_item_age(store, window, scope, work_start=work_start, limit=0, flow_times=times)
    figures: Figures = [
        ("flow velocity", velocity.per_week, "items/week"),
        ("items completed", velocity.completed, "items"),
        ("flow time p50", times.flow_time.p50, "seconds"),
        ("flow time p85", times.flow_time.p85, "seconds"),
        ("lead time p50", times.lead_time.p50, "seconds"),
        ("lead time p85", times.lead_time.p85, "seconds"),
        ("flow efficiency", efficiency.efficiency.value, "share"),
        ("flow load (average WIP)", load.average, "items"),
        ("flow load at window end", load.at_end, "items"),
    ]
    figures += [(f"flow distribution: {k}", r.value, "share") for k, r in distribution.completed.items()]
    figures += [
        ("flow predictability (items)", predictability.items.value, "share"),
        ("flow predictability (business value)", predictability.business_value.value, "share"),
        ("work item age p50", age.age.p50, "seconds"),
        ("items older than the p85 flow time", age.beyond["p85"], "items"),
    ]
    return figures


def _dora_figures(
    store: Store, window: Window, scope: Slice, rules: DoraRules = DEFAULT_DORA_RULES
) -> Figures:
    report = dora.dora_report(store, window, scope, rules)
    frequency, lead = report.deployment_frequency, report.lead_time_for_changes
    cfr, recovery = report.change_failure_rate, report.recovery_time
    figures: Figures = [
        ("deployments", frequency.deployments, "items"),
        ("deployment frequency", frequency.per_day, "per day"),
        ("deployment days per week (median)", frequency.median_deployment_days_per_week, "days/week"),
        ("lead time for changes p50", lead.lead_time.p50, "seconds"),
        ("  coding p50", lead.coding.p50, "seconds"),
        ("  pickup p50", lead.pickup.p50, "seconds"),
        ("  review p50", lead.review.p50, "seconds"),
        ("  deploy p50", lead.deploy.p50, "seconds"),
        ("change failure rate", cfr.rate.value, "share"),
        ("failed deployment recovery time p50", recovery.failed_deployment_recovery.p50, "seconds"),
        ("time to restore service p50", recovery.time_to_restore.p50, "seconds"),
        ("rework rate", report.rework_rate.value, "share"),
    ]
    for name, ratings in [
        ("deployment frequency", frequency.ratings),
        ("lead time for changes", lead.ratings),
        ("change failure rate", cfr.ratings),
        ("recovery time", recovery.ratings),
    ]:
        figures += [(f"{name} level (DORA {r.year})", r.level, "level") for r in ratings]
    return figures


def _with_previous(
    compute: Callable[[Store, Window, Slice], Figures], store: Store, window: Window, scope: Slice
) -> list[FigureRow]:
    # many statements, both windows: all of them read one state of the store
    with store.reading():
        current = compute(store, window, scope)
        previous = {name: value for name, value, _ in compute(store, window.previous(), scope)}
    return [FigureRow(name, value, unit, previous.get(name)) for name, value, unit in current]


def flow_summary(
    store: Store, window: Window, scope: Slice = Slice(), work_start: WorkStart = "active"
) -> list[FigureRow]:
    """The flow figures of a slice over a window, with the previous window's beside them."""
    return _with_previous(lambda st, w, sc: _flow_figures(st, w, sc, work_start), store, window, scope)


def dora_summary(
    store: Store, window: Window, scope: Slice = Slice(), rules: DoraRules = DEFAULT_DORA_RULES
) -> list[FigureRow]:
    """The DORA figures (and ratings) of a slice over a window, with the previous window's."""
    return _with_previous(lambda st, w, sc: _dora_figures(st, w, sc, rules), store, window, scope)


@dataclass(frozen=True)
class ServiceLevelRow:
    """One service level expectation: a flow-time percentile of the items completed in the window, and
    how many items in progress at its end are older than it (None = no data: nothing completed)."""

    expectation: Literal["p50", "p70", "p85", "p95"]
    flow_time: float | None
    items_beyond: int | None


@dataclass(frozen=True)
class AgingSummary:
    """Work in progress against the service level expectations: how many items are in progress (and
    started), the expectations with the items beyond each, and the oldest items."""

    in_progress: int
    expectations: list[ServiceLevelRow]
    oldest: list[flow.AgingItem]


def aging_summary(
    store: Store, window: Window, scope: Slice, work_start: WorkStart = "active", oldest: int = 10
) -> AgingSummary:
    """The service level expectations of a slice and window and its aging work in progress
    (docs/metrics.md, "Work item age")."""
    age = flow.work_item_age(store, window, scope, work_start=work_start, limit=oldest)
    sle = age.service_level_expectations
    flow_times = {"p50": sle.p50, "p70": sle.p70, "p85": sle.p85, "p95": sle.p95}
    return AgingSummary(
        age.age.count,
        [ServiceLevelRow(name, flow_times[name], age.beyond[name]) for name in ("p50", "p70", "p85", "p95")],
        age.items,
    )


def cumulative_flow(
    store: Store,
    window: Window,
    scope: Slice,
    by: Literal["flow_state", "stage"] = "flow_state",
    work_start: WorkStart = "active",
) -> flow.CumulativeFlow:
    """The cumulative flow of a slice over a window (`obeya.engine.flow.cumulative_flow`), by stage in
    the order of the slice's value stream (its own stages, else the five defaults)."""
    stages = stage_order(store, scope) if by == "stage" else None
    return flow.cumulative_flow(store, window, scope, by, work_start, stages)


def flow_series(
    store: Store, window: Window, scope: Slice, by: flow.Grouping, work_start: WorkStart = "active"
) -> list[SeriesRow]:
    """Velocity (items completed in the period; 0 when none), median flow time and flow efficiency
    (no data when nothing completed) for every calendar week or month of the window, the first and
    last clipped to it (docs/metrics.md, "Series")."""
    periods = window.periods(by)
    series = {
        "flow velocity": flow.flow_velocity(store, window, scope, by=by, work_start=work_start).series,
        "flow time p50": flow.flow_time(store, window, scope, by=by, work_start=work_start).series,
        "flow efficiency": flow.flow_efficiency(store, window, scope, by=by, work_start=work_start).series,
    }
    return [
        SeriesRow(metric, point.period, period.days, point.value)
        for metric, points in series.items()
        for period, point in zip(periods, points, strict=True)
    ]


def dora_series(
    store: Store, window: Window, scope: Slice, by: flow.Grouping, rules: DoraRules = DEFAULT_DORA_RULES
) -> list[SeriesRow]:
    """Deployments per day, median lead time for changes, change failure rate and median failed
    deployment recovery time, for every calendar week or month of the window, the first and last
    clipped to it; each period is computed as its own window (docs/metrics.md, "Series").

    A period without a deployment has a deployment frequency of 0 (none over the days it has); the
    figures over its deployments or changes are no data.
    """
    rows: list[SeriesRow] = []
    for period in window.periods(by):
        report = dora.dora_report(store, period, scope, rules)
        start, days = period.start.date(), period.days
        rows += [
            SeriesRow("deployment frequency", start, days, report.deployment_frequency.deployments / days),
            SeriesRow("lead time for changes p50", start, days, report.lead_time_for_changes.lead_time.p50),
            SeriesRow("change failure rate", start, days, report.change_failure_rate.rate.value),
            SeriesRow(
                "failed deployment recovery time p50",
                start,
                days,
                report.recovery_time.failed_deployment_recovery.p50,
            ),
        ]
    return rows
