"""The value stream map beside the map of the previous window of the same length, and how each figure
moved (docs/metrics.md, "The value stream map", "Previous window"; the maps: `obeya.engine.stages`)."""

from __future__ import annotations

from dataclasses import dataclass

from obeya.engine.dora_rules import DEFAULT_DORA_RULES, DoraRules
from obeya.engine.stages import StageFigures, ValueStreamMap, value_stream_maps
from obeya.engine.timeline import WorkStart
from obeya.engine.window import Slice, Window
from obeya.store import Store


@dataclass(frozen=True)
class StageChange:
    """How one stage's figures moved: this window's minus the previous window's (seconds, shares,
    items per week); None when either window has no data for the figure."""

    stage: str
    lead_time_p50: float | None
    lead_time_p85: float | None
    process_time_p50: float | None
    wait_time_p50: float | None
    wait_before_p50: float | None
    complete_and_accurate: float | None
    throughput_per_week: float | None


@dataclass(frozen=True)
class MapChange:
    """How the map moved: per stage (in the stream's order) and for the stream's totals."""

    stages: list[StageChange]
    total_lead_time: float | None
    total_process_time: float | None
    activity_ratio: float | None
    rolled_complete_and_accurate: float | None


@dataclass(frozen=True)
class MapComparison:
    """The map of a window (`current`), of the window of the same length just before (`previous`), and
    the change from one to the other."""

    current: ValueStreamMap
    previous: ValueStreamMap
    change: MapChange


def _minus(now: float | None, before: float | None) -> float | None:
    return None if now is None or before is None else now - before


def _stage_change(now: StageFigures, before: StageFigures) -> StageChange:
    return StageChange(
        stage=now.stage,
        lead_time_p50=_minus(now.lead_time.p50, before.lead_time.p50),
        lead_time_p85=_minus(now.lead_time.p85, before.lead_time.p85),
        process_time_p50=_minus(now.process_time.p50, before.process_time.p50),
        wait_time_p50=_minus(now.wait_time.p50, before.wait_time.p50),
        wait_before_p50=_minus(now.wait_before.p50, before.wait_before.p50),
        complete_and_accurate=_minus(now.complete_and_accurate.value, before.complete_and_accurate.value),
        throughput_per_week=_minus(now.throughput_per_week, before.throughput_per_week),
    )


def map_change(current: ValueStreamMap, previous: ValueStreamMap) -> MapChange:
    """Each figure of `current` minus the same figure of `previous`, stage by stage (matched by name)."""
    before = {s.stage: s for s in previous.stages}
    return MapChange(
        stages=[_stage_change(s, before[s.stage]) for s in current.stages if s.stage in before],
        total_lead_time=_minus(current.total_lead_time, previous.total_lead_time),
        total_process_time=_minus(current.total_process_time, previous.total_process_time),
        activity_ratio=_minus(current.activity_ratio, previous.activity_ratio),
        rolled_complete_and_accurate=_minus(
            current.rolled_complete_and_accurate, previous.rolled_complete_and_accurate
        ),
    )


def value_stream_map_with_previous(
    store: Store,
    window: Window,
    scope: Slice = Slice(),
    work_start: WorkStart = "active",
    rules: DoraRules = DEFAULT_DORA_RULES,
) -> MapComparison:
    """The value stream map of `window` and of `window.previous()` (the same length, just before), each
    each the map `value_stream_map` draws for it alone (both from one pass over the visits,
    `value_stream_maps`), and how every figure moved. docs/metrics.md."""
    current, previous = value_stream_maps(store, [window, window.previous()], scope, work_start, rules)
    return MapComparison(current, previous, map_change(current, previous))
