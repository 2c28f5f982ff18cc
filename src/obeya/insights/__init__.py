"""Insights: bottlenecks, waste by the eight DOWNTIME categories, recommendations and maturity.

Built on the engine's figures (`obeya.engine`); definitions and thresholds in docs/insights.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from obeya.engine.dora_rules import DEFAULT_DORA_RULES, DoraRules
from obeya.engine.timeline import WorkStart
from obeya.engine.window import Slice, Window
from obeya.insights.bottlenecks import bottlenecks, map_bottleneck
from obeya.insights.maturity import maturity
from obeya.insights.model import (
    DimensionScore,
    Insight,
    MaturityLevel,
    Severity,
    StreamMaturity,
    WasteSignal,
)
from obeya.insights.recommendations import gather, recommendations, stream_recommendations
from obeya.insights.scope import stream_slices
from obeya.insights.waste import waste
from obeya.store import Store


@dataclass(frozen=True)
class InsightsReport:
    """Everything `obeya insights` shows for a slice and window."""

    bottlenecks: list[Insight]
    waste: list[WasteSignal]
    recommendations: list[Insight]


def insights_report(
    store: Store,
    window: Window,
    scope: Slice = Slice(),
    rules: DoraRules = DEFAULT_DORA_RULES,
    work_start: WorkStart = "active",
) -> InsightsReport:
    """The bottlenecks, the eight waste signals and the recommendations that fire, for a slice (DORA
    figures under the deployment and incident `rules`, work start as `rules.work_start` says).

    Each stream's value stream map is computed once and read by both its bottleneck and its
    recommendations (the map is the costliest figure of the report)."""
    found: list[Insight] = []
    recommended: list[Insight] = []
    for stream_scope, name in stream_slices(store, scope):
        evidence = gather(store, window, stream_scope, name, rules, work_start)
        bottleneck = map_bottleneck(stream_scope.value_stream_id, name, evidence.map)
        if bottleneck is not None:
            found.append(bottleneck)
        recommended += stream_recommendations(store, window, evidence)
    return InsightsReport(found, waste(store, window, scope, work_start), recommended)


__all__ = [
    "DimensionScore",
    "Insight",
    "InsightsReport",
    "MaturityLevel",
    "Severity",
    "StreamMaturity",
    "WasteSignal",
    "bottlenecks",
    "insights_report",
    "maturity",
    "recommendations",
    "waste",
]
