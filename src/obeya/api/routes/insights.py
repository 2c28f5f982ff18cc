"""`/api/v1/insights` (bottlenecks, the eight DOWNTIME waste signals and the recommendations that fire)
and `/api/v1/maturity` (every value stream on the five dimensions); definitions in docs/insights.md."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from obeya.api.routes.dependencies import FiltersDep, SliceOut, StoreDep, WindowOut
from obeya.insights import InsightsReport, StreamMaturity, insights_report
from obeya.insights import maturity as maturity_model
from obeya.insights.model import Insight, WasteSignal

router = APIRouter(prefix="/api/v1", tags=["insights"])


class InsightsOut(BaseModel):
    """What `obeya insights` shows: each insight with the figure that triggered it and its items."""

    window: WindowOut
    slice: SliceOut
    bottlenecks: list[Insight]
    waste: list[WasteSignal]
    recommendations: list[Insight]


class MaturityOut(BaseModel):
    """Every value stream's level on each dimension, with the data that justifies it."""

    window: WindowOut
    streams: list[StreamMaturity]


@router.get("/insights")
def insights(store: StoreDep, filters: FiltersDep) -> InsightsOut:
    """The bottleneck of each value stream of the slice (or of every stream), waste by the eight lean
    DOWNTIME categories (a signal with nothing to measure has no figure, never 0) and the
    recommendations whose rules fire — each with its figure, threshold or rule, and the items behind it."""
    report: InsightsReport = insights_report(
        store, filters.window, filters.scope, filters.dora_rules, filters.work_start
    )
    return InsightsOut(
        window=filters.window_out(),
        slice=filters.slice_out(),
        bottlenecks=report.bottlenecks,
        waste=report.waste,
        recommendations=report.recommendations,
    )


@router.get("/maturity")
def maturity(store: StoreDep, filters: FiltersDep) -> MaturityOut:
    """Every value stream at Emerging, Learning, Practicing or Evolving on insights-driven, dependencies,
    DevOps toolchain, metrics and organizational, each level with its figure and evidence (the window
    applies; the slice filters do not: maturity is per stream)."""
    return MaturityOut(
        window=filters.window_out(), streams=maturity_model(store, filters.window, filters.dora_rules)
    )
