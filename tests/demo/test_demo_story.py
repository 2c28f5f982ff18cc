"""The demo's story is what the engine finds (docs/demo.md "The story"; docs/metrics.md "The demo's story,
as the engine finds it"), for the demo `make run` loads — seed 7, 5 200 items — at any as-of date.

The simulation runs in working time from the Monday on or before as-of − 365 days, so the data depends
on the as-of date only through its weekday (`test_the_demo_depends_on_the_as_of_only_through_its_weekday`):
the seven dates below, one per weekday, spread over the year, stand for every as-of. Each demo is read over
the 90 days ending at its as-of and ending a day earlier (the audit's `--as-of` one day back).

DuckDB only: tests/engine/test_same_figures_on_both_engines.py compares the two engines. Cost: each date
builds its demo once (generate, write, `derive_links`: about 3 s), about 25 s for the file in all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from obeya.demo import load_demo
from obeya.demo.calendar import DemoCalendar
from obeya.demo.generator import DEFAULT_ITEMS, DEFAULT_SEED
from obeya.engine.dora import dora_report
from obeya.engine.slices import resolve_slice
from obeya.engine.stages import value_stream_map
from obeya.engine.window import Window
from obeya.insights.maturity import dependencies
from obeya.insights.model import MaturityLevel
from obeya.linking import derive_links
from obeya.store import Store, connect

DATES = [
    dt.date(2026, 3, 16),  # Monday
    dt.date(2026, 5, 5),  # Tuesday
    dt.date(2026, 8, 12),  # Wednesday
    dt.date(2026, 12, 3),  # Thursday: the audit's date
    dt.date(2026, 6, 19),  # Friday
    dt.date(2026, 12, 5),  # Saturday
    dt.date(2026, 9, 27),  # Sunday
]

BOTTLENECK = {"Payments": "verification", "Mobile App": "delivery", "Platform": "integration"}

# 2023 levels per stream: deployment frequency, lead time for changes, change failure rate, recovery
DORA_2023 = {
    "Payments": ("high", "high", "medium", "high"),
    "Mobile App": ("medium", "medium", "low", "medium"),
    "Platform": ("elite", "elite", "elite", "elite"),
}

# maturity's dependencies dimension (docs/demo.md): Mobile App leans on Platform and Payments, Payments on
# Platform, Platform rarely on either
DEPENDENCIES = {
    "Payments": MaturityLevel.LEARNING,
    "Mobile App": MaturityLevel.EMERGING,
    "Platform": MaturityLevel.PRACTICING,
}


def test_the_demo_depends_on_the_as_of_only_through_its_weekday() -> None:
    """Dates a whole number of weeks apart give the same working-time span: the same simulation."""
    for day in DATES:
        calendar = DemoCalendar.ending(day)
        for weeks in (1, 5, 30, 52):
            later = DemoCalendar.ending(day + dt.timedelta(weeks=weeks))
            assert (later.end_days, later.end_work_days) == (calendar.end_days, calendar.end_work_days)
            assert later.origin == calendar.origin + dt.timedelta(weeks=weeks)
    assert len({d.weekday() for d in DATES}) == 7


@dataclass(frozen=True)
class Demo:
    store: Store
    as_of: dt.date

    def window(self, days_before: int) -> Window:
        """The 90 days ending `days_before` days before the demo's as-of."""
        return Window.last("90d", self.as_of - dt.timedelta(days=days_before))


@pytest.fixture(scope="module", params=DATES, ids=str)
def demo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    as_of: dt.date = request.param
    store = connect(f"duckdb:///{tmp_path_factory.mktemp('story')}/demo-{as_of}.duckdb")
    store.migrate()
    load_demo(store, seed=DEFAULT_SEED, items=DEFAULT_ITEMS, as_of=as_of)
    derive_links(store)
    yield Demo(store, as_of)
    store.close()


@pytest.mark.parametrize("days_before", [0, 1])
@pytest.mark.parametrize("stream", list(BOTTLENECK))
def test_each_stream_has_its_bottleneck_with_a_clear_lead(demo: Demo, stream: str, days_before: int) -> None:
    scope = resolve_slice(demo.store, stream, None, None, None)
    vsm = value_stream_map(demo.store, demo.window(days_before), scope)
    waits = {s.stage: s.committed_wait_total for s in vsm.stages if s.stage != "observation"}
    shares = {stage: wait / sum(waits.values()) for stage, wait in waits.items()}
    bottleneck = vsm.bottleneck
    assert bottleneck is not None
    assert bottleneck.stage == BOTTLENECK[stream], shares
    assert bottleneck.wait_share == pytest.approx(shares[bottleneck.stage])
    runner_up = max(share for stage, share in shares.items() if stage != bottleneck.stage)
    # clear, not a coin toss: over half the committed wait, and 25 points ahead of the next stage
    assert bottleneck.wait_share > 0.55, shares
    assert bottleneck.wait_share - runner_up > 0.25, shares
    assert bottleneck.confirmed_by
    assert bottleneck.items


@pytest.mark.parametrize("days_before", [0, 1])
@pytest.mark.parametrize("stream", list(DORA_2023))
def test_each_stream_rates_at_its_dora_levels(demo: Demo, stream: str, days_before: int) -> None:
    """Platform elite on all four, Mobile App low on change failure rate (docs/metrics.md)."""
    scope = resolve_slice(demo.store, stream, None, None, None)
    report = dora_report(demo.store, demo.window(days_before), scope)
    figures = (
        report.deployment_frequency,
        report.lead_time_for_changes,
        report.change_failure_rate,
        report.recovery_time,
    )
    levels = tuple(next(r.level for r in f.ratings if r.year == 2023) for f in figures)
    assert levels == DORA_2023[stream]


@pytest.mark.parametrize("days_before", [0, 1])
@pytest.mark.parametrize("stream", list(DEPENDENCIES))
def test_each_stream_depends_on_the_others_as_the_story_says(
    demo: Demo, stream: str, days_before: int
) -> None:
    """The product streams depend on other streams' work far more than Platform does."""
    scope = resolve_slice(demo.store, stream, None, None, None)
    score = dependencies(demo.store, demo.window(days_before), scope)
    assert score.level is DEPENDENCIES[stream], score.evidence
