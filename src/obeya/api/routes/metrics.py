"""`/api/v1/metrics/flow` and `/api/v1/metrics/dora`: headline figures, series and the typed detail.

Every figure carries the link to the rows behind it (`/api/v1/metrics/{family}/evidence`).
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from obeya.api.routes.dependencies import Filters as FiltersT
from obeya.api.routes.dependencies import FiltersDep, SliceOut, StoreDep, WindowOut
from obeya.api.routes.models import RatioOut
from obeya.engine import dora, flow
from obeya.engine.benchmarks import Rating
from obeya.engine.dora import DeploymentFrequency, LeadTimeForChanges, RecoveryTime
from obeya.engine.flow import AgingItem, PlanOutcome
from obeya.engine.results import DurationSummary, SeriesPoint
from obeya.engine.summary import (
    FigureRow,
    SeriesRow,
    Unit,
    cumulative_flow,
    dora_series,
    dora_summary,
    flow_series,
    flow_summary,
)

router = APIRouter(prefix="/api/v1/metrics", tags=["metrics"])

ByParam = Annotated[
    Literal["week", "month"] | None,
    Query(description="Also give the series per calendar week (from Monday) or month."),
]
DetailParam = Annotated[bool, Query(description="Include the typed detail (percentiles, ratings, ...).")]


class FigureOut(BaseModel):
    """One headline figure: value (null = no data), unit, the previous window's value, and evidence links."""

    key: str
    metric: str
    value: float | str | None
    unit: Unit
    previous: float | str | None
    evidence: str | None  # the rows behind the figure; null where no row set is its exact basis
    previous_evidence: str | None


class SeriesOut(BaseModel):
    """One period of a series: its first day in the window (ISO date), its length in days (the first
    and last period are clipped to the window), and the value (null = no data)."""

    metric: str
    period: date
    days: float
    value: float | None


class VelocityOut(BaseModel):
    """Items completed in the window, and per week."""

    completed: int
    per_week: float | None


class EfficiencyOut(BaseModel):
    """Σ active time ÷ Σ flow time; and the median of the items' own ratios."""

    efficiency: RatioOut
    median_item_efficiency: float | None


class LoadOut(BaseModel):
    """Work in progress at the end of each day of the window."""

    average: float | None
    at_end: int
    daily: list[SeriesPoint]


class DistributionOut(BaseModel):
    """Shares by flow item type of the items completed in the window, and of the WIP at its end."""

    completed: dict[str, RatioOut]
    wip: dict[str, RatioOut]


class PredictabilityOut(BaseModel):
    """Delivered ÷ planned over the plans ending in the window."""

    items: RatioOut
    business_value: RatioOut
    plans: list[PlanOutcome]


class AgeOut(BaseModel):
    """Age of the items in progress (the 50 oldest listed), and the service level expectations."""

    service_level_expectations: DurationSummary
    age: DurationSummary
    beyond: dict[str, int | None]  # per expectation, the items in progress older than it (null: none)
    oldest: list[AgingItem]


class FlowDetail(BaseModel):
    """The typed flow results of the window (durations in seconds, percentiles interpolated)."""

    velocity: VelocityOut
    flow_time: DurationSummary
    lead_time: DurationSummary
    completed_without_start: int
    efficiency: EfficiencyOut
    load: LoadOut
    distribution: DistributionOut
    predictability: PredictabilityOut
    age: AgeOut


class ChangeFailureRateOut(BaseModel):
    """Failed, rolled back or incident-causing production deployments ÷ production deployments."""

    rate: RatioOut
    failed: int
    rolled_back: int
    caused_incident: int
    ratings: list[Rating]


class DoraDetail(BaseModel):
    """The typed DORA results of the window, each rating with its benchmark year."""

    deployment_frequency: DeploymentFrequency
    lead_time_for_changes: LeadTimeForChanges
    change_failure_rate: ChangeFailureRateOut
    recovery_time: RecoveryTime
    rework_rate: RatioOut


class FlowMetricsOut(BaseModel):
    """The flow figures of a slice and window."""

    window: WindowOut
    slice: SliceOut
    figures: list[FigureOut]
    by: Literal["week", "month"] | None
    series: list[SeriesOut]
    detail: FlowDetail | None


class DoraMetricsOut(BaseModel):
    """The DORA figures of a slice and window."""

    window: WindowOut
    slice: SliceOut
    figures: list[FigureOut]
    by: Literal["week", "month"] | None
    series: list[SeriesOut]
    detail: DoraDetail | None


# A figure's evidence: the first prefix its name starts with names the evidence metric.
_EVIDENCE: dict[str, list[tuple[str, str | None]]] = {
    "flow": [
        ("flow velocity", "velocity"),
        ("items completed", "velocity"),
        ("flow time", "flow_time"),
        ("lead time", "lead_time"),
        ("flow efficiency", "efficiency"),
        ("flow load (average", "daily_load"),  # each item with its days in WIP: Σ days ÷ window days
        ("flow load at window end", "load"),
        ("flow distribution", "velocity"),  # the completed items, each with its type
        ("flow predictability (items)", "predictability"),
        ("flow predictability (business value)", "predictability_value"),
        ("work item age", "age"),
        ("items older than", "age"),  # the items in progress, each with its age
    ],
    "dora": [
        ("deployment", "deployment_frequency"),
        ("lead time for changes", "lead_time_for_changes"),
        ("coding", "coding_time"),
        ("pickup", "pickup_time"),
        ("review", "review_time"),
        ("deploy p50", "deploy_time"),
        ("change failure rate", "change_failure_rate"),
        ("failed deployment recovery", "recovery"),
        ("recovery time level (DORA 2023)", "recovery"),
        ("recovery time level (DORA 2021)", "time_to_restore"),
        ("time to restore", "time_to_restore"),
        ("rework rate", "rework_rate"),
    ],
}


def evidence_metric(family: str, figure: str) -> str | None:
    """The evidence metric behind a headline figure of `family`, if one is its exact basis."""
    return next((metric for prefix, metric in _EVIDENCE[family] if figure.startswith(prefix)), None)


def _figures(family: str, rows: list[FigureRow], filters: FiltersT) -> list[FigureOut]:
    out = []
    for row in rows:
        name = row.metric.strip()
        metric = evidence_metric(family, name)
        link = f"/api/v1/metrics/{family}/evidence?"
        out.append(
            FigureOut(
                key=re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_"),
                metric=name,
                value=row.value,
                unit=row.unit,
                previous=row.previous,
                evidence=link + filters.query({"metric": metric}) if metric else None,
                previous_evidence=link + filters.query({"metric": metric}, previous=True) if metric else None,
            )
        )
    return out


def _series(rows: list[SeriesRow]) -> list[SeriesOut]:
    return [SeriesOut(metric=r.metric, period=r.period, days=r.days, value=r.value) for r in rows]


def _flow_detail(store: StoreDep, filters: FiltersT) -> FlowDetail:
    window, scope, work_start = filters.window, filters.scope, filters.work_start
    velocity = flow.flow_velocity(store, window, scope, work_start=work_start)
    times = flow.flow_time(store, window, scope, work_start=work_start)
    efficiency = flow.flow_efficiency(store, window, scope, work_start=work_start)
    load = flow.flow_load(store, window, scope, work_start=work_start)
    distribution = flow.flow_distribution(store, window, scope, work_start=work_start)
    predictability = flow.flow_predictability(store, window, scope, work_start=work_start)
    age = flow.work_item_age(store, window, scope, work_start=work_start, flow_times=times)
    return FlowDetail(
        velocity=VelocityOut(completed=velocity.completed, per_week=velocity.per_week),
        flow_time=times.flow_time,
        lead_time=times.lead_time,
        completed_without_start=times.not_started,
        efficiency=EfficiencyOut(
            efficiency=RatioOut.of(efficiency.efficiency),
            median_item_efficiency=efficiency.median_item_efficiency,
        ),
        load=LoadOut(average=load.average, at_end=load.at_end, daily=load.daily),
        distribution=DistributionOut(
            completed={k: RatioOut.of(r) for k, r in distribution.completed.items()},
            wip={k: RatioOut.of(r) for k, r in distribution.wip.items()},
        ),
        predictability=PredictabilityOut(
            items=RatioOut.of(predictability.items),
            business_value=RatioOut.of(predictability.business_value),
            plans=predictability.plans,
        ),
        age=AgeOut(
            service_level_expectations=age.service_level_expectations,
            age=age.age,
            beyond=age.beyond,
            oldest=age.items,
        ),
    )


def _dora_detail(store: StoreDep, filters: FiltersT) -> DoraDetail:
    report = dora.dora_report(store, filters.window, filters.scope, filters.dora_rules)
    cfr = report.change_failure_rate
    return DoraDetail(
        deployment_frequency=report.deployment_frequency,
        lead_time_for_changes=report.lead_time_for_changes,
        change_failure_rate=ChangeFailureRateOut(
            rate=RatioOut.of(cfr.rate),
            failed=cfr.failed,
            rolled_back=cfr.rolled_back,
            caused_incident=cfr.caused_incident,
            ratings=cfr.ratings,
        ),
        recovery_time=report.recovery_time,
        rework_rate=RatioOut.of(report.rework_rate),
    )


@router.get("/flow")
def flow_metrics(
    store: StoreDep, filters: FiltersDep, by: ByParam = None, detail: DetailParam = True
) -> FlowMetricsOut:
    """Flow velocity, flow time, lead time, efficiency, load, distribution, predictability and age.

    Each figure comes with the previous window of the same length and a link to its evidence; with
    `by`, velocity, median flow time and efficiency for every calendar week or month of the window (the
    first and last clipped to it). Definitions: docs/metrics.md.
    """
    return FlowMetricsOut(
        window=filters.window_out(),
        slice=filters.slice_out(),
        figures=_figures(
            "flow", flow_summary(store, filters.window, filters.scope, filters.work_start), filters
        ),
        by=by,
        series=_series(flow_series(store, filters.window, filters.scope, by, filters.work_start))
        if by
        else [],
        detail=_flow_detail(store, filters) if detail else None,
    )


@router.get("/dora")
def dora_metrics(
    store: StoreDep, filters: FiltersDep, by: ByParam = None, detail: DetailParam = True
) -> DoraMetricsOut:
    """Deployment frequency, lead time for changes (and its parts), change failure rate, recovery times
    and rework rate, with their DORA 2023 and 2021 levels.

    Each figure comes with the previous window of the same length and a link to its evidence; with
    `by`, the series per calendar week or month. Definitions and benchmarks: docs/metrics.md.
    """
    return DoraMetricsOut(
        window=filters.window_out(),
        slice=filters.slice_out(),
        figures=_figures(
            "dora", dora_summary(store, filters.window, filters.scope, filters.dora_rules), filters
        ),
        by=by,
        series=_series(dora_series(store, filters.window, filters.scope, by, filters.dora_rules))
        if by
        else [],
        detail=_dora_detail(store, filters) if detail else None,
    )


CfdByParam = Annotated[
    Literal["state", "stage"],
    Query(description="Count the items per flow state or per stage of the value stream."),
]
FormatParam = Annotated[Literal["json", "csv"], Query(alias="format", description="json or csv.")]


class CumulativeFlowDayOut(BaseModel):
    """One day of the cumulative flow: per group, the items in it at the day's end."""

    day: date
    counts: dict[str, int]


class CumulativeFlowOut(BaseModel):
    """Per day of the window, how many items were in each flow state (or stage) at its end."""

    window: WindowOut
    slice: SliceOut
    by: Literal["state", "stage"]
    groups: list[str]  # in display order: flow states new … canceled, or the stream's stages
    days: list[CumulativeFlowDayOut]


def cumulative_flow_csv(cfd: flow.CumulativeFlow) -> str:
    """The cumulative flow as CSV: a header ``day,<group>,...`` and one row per day."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["day", *cfd.counts])
    for i, day in enumerate(cfd.days):
        writer.writerow([day.isoformat(), *(counts[i] for counts in cfd.counts.values())])
    return buffer.getvalue()


@router.get(
    "/flow/cumulative",
    response_model=CumulativeFlowOut,
    responses={200: {"content": {"text/csv": {}}, "description": "The days, as JSON or CSV."}},
)
def cumulative_flow_metrics(
    store: StoreDep, filters: FiltersDep, by: CfdByParam = "state", output: FormatParam = "json"
) -> CumulativeFlowOut | Response:
    """Cumulative flow: per day of the window, the count of items in each flow state (`by=state`) or
    stage (`by=stage`, the stream's stages in order, "(none)" for items in no stage) at the day's end.

    CSV has a header row `day,<group>,...` and one row per day. Definitions: docs/metrics.md.
    """
    cfd = cumulative_flow(
        store, filters.window, filters.scope, "flow_state" if by == "state" else "stage", filters.work_start
    )
    if output == "csv":
        return Response(cumulative_flow_csv(cfd), media_type="text/csv")
    return CumulativeFlowOut(
        window=filters.window_out(),
        slice=filters.slice_out(),
        by=by,
        groups=list(cfd.counts),
        days=[
            CumulativeFlowDayOut(day=day, counts={g: counts[i] for g, counts in cfd.counts.items()})
            for i, day in enumerate(cfd.days)
        ],
    )
