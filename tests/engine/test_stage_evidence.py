"""The rows behind each stage of the value stream map give back that stage's figures, on the hand-made
March of tests/engine/test_stages.py (its docstring has the figures) and on a small demo organisation.

Integration by hand: departed A 3→5 Mar (LT 2 d), B 4→6 (2 d, sent back: not C&A), B 8→10 (2 d),
D 24→25 (1 d); still in it: C since 20 Mar, 12 days at the window's end (1 Apr).
"""

from __future__ import annotations

import datetime as dt
import statistics

import pytest

from obeya.demo import load_demo
from obeya.engine.stage_evidence import UnknownStage, stage_evidence
from obeya.engine.stages import StageFigures, value_stream_map
from obeya.engine.window import Slice, Window
from obeya.linking import derive_links
from obeya.store import Store
from tests.engine.builders import day
from tests.engine.test_stages import MARCH, PAY, _scenario

DAY = 86400.0


def _assert_rows_give_the_figures(store: Store, window: Window, scope: Slice, figures: StageFigures) -> None:
    page = stage_evidence(store, figures.stage, window, scope)
    departed = [r for r in page.rows if r.part == "departed"]
    in_stage = [r for r in page.rows if r.part == "in_stage"]
    assert page.rows[: len(departed)] == departed  # departed first, then the items still in the stage
    assert (page.departed, page.in_stage, page.total) == (len(departed), len(in_stage), len(page.rows))
    assert len(departed) == figures.departures
    throughput = len(departed) / window.weeks if departed else None
    assert throughput == pytest.approx(figures.throughput_per_week)
    assert len(in_stage) == figures.in_stage_now
    assert sum(1 for r in departed if r.complete_and_accurate) == figures.complete_and_accurate.numerator
    lead = [r.lead_time for r in departed if r.lead_time is not None and r.lead_time >= 0]
    assert len(lead) == figures.lead_time.count
    process = [r.process_time for r in departed if r.process_time is not None]
    ages = [r.age for r in in_stage if r.age is not None]
    before = [r.wait_before for r in departed if r.wait_before is not None and r.wait_before >= 0]
    for values, summary in (
        (lead, figures.lead_time),
        (process, figures.process_time),
        (ages, figures.age_in_stage),
        (before, figures.wait_before),
    ):
        if values:
            assert statistics.median(values) == pytest.approx(summary.p50), figures.stage
        else:
            assert summary.p50 is None, figures.stage


def test_integration_rows_by_hand(store: Store) -> None:
    store.upsert_records(_scenario())
    page = stage_evidence(store, "integration", MARCH, PAY)
    assert [(r.part, r.key, r.entered_at, r.lead_time) for r in page.rows] == [
        ("departed", "A", day(3, 3), 2 * DAY),
        ("departed", "B", day(3, 4), 2 * DAY),
        ("departed", "B", day(3, 8), 2 * DAY),
        ("departed", "D", day(3, 24), 1 * DAY),
        ("in_stage", "C", day(3, 20), None),
    ]
    assert [r.complete_and_accurate for r in page.rows] == [True, False, True, True, None]
    assert page.rows[-1].age == 12 * DAY and page.rows[-1].left_at is None
    second = stage_evidence(store, "integration", MARCH, PAY, limit=2, offset=2)
    assert [r.key for r in second.rows] == ["B", "D"] and second.total == 5


def test_every_stage_rows_equal_its_figures(store: Store) -> None:
    store.upsert_records(_scenario())
    for figures in value_stream_map(store, MARCH, PAY).stages:
        _assert_rows_give_the_figures(store, MARCH, PAY, figures)


def test_every_demo_stage_rows_equal_its_figures(store: Store) -> None:
    as_of = dt.date(2025, 6, 30)
    load_demo(store, seed=7, items=300, as_of=as_of)
    derive_links(store)
    window = Window.last("90d", as_of)
    for stream_id, _ in store.query("SELECT id, name FROM value_streams ORDER BY name"):
        scope = Slice(value_stream_id=str(stream_id))
        stages = value_stream_map(store, window, scope).stages
        assert sum(s.departures for s in stages) > 0
        for figures in stages:
            _assert_rows_give_the_figures(store, window, scope, figures)


def test_unknown_stage_names_the_known_ones(store: Store) -> None:
    store.upsert_records(_scenario())
    with pytest.raises(UnknownStage, match="use one of ideation, integration, verification"):
        stage_evidence(store, "testing", MARCH, PAY)
