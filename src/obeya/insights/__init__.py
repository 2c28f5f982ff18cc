"""Insights: bottlenecks, waste by the eight DOWNTIME categories, recommendations and maturity.

Built on the engine's figures (`obeya.engine`); definitions and thresholds in docs/insights.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from obeya.engine.dora_rules import DEFAULT_DORA_RULES, DoraRules
from obeya.engine.timeline import WorkStart
from obeya.engine.window import Slice, Window
from obeya.insights.bottlenecks import bottlenecks
from obeya.insights.maturity import maturity
from obeya.insights.model import (
    DimensionScore,
    Insight,
    MaturityLevel,
    Severity,
    StreamMaturity,
    WasteSignal,
)
from obeya.insights.recommendations import recommendations
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
    figures under the deployment and incident `rules`, work start as `rules.work_start` says)."""
    return InsightsReport(
        bottlenecks(store, window, scope, work_start, rules),
        waste(store, window, scope, work_start),
        recommendations(store, window, scope, rules, work_start),
    )


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
