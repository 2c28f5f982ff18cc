"""The value stream map on a hand-made March 2025, every figure worked out by hand.

Stages (stream pay): ideation, integration, verification, delivery, observation. Times 00:00 unless said.

- A: Backlog 1 Mar (new, ideation) → In Progress 3 Mar (integration, active) → In Review 5 Mar
  (verification, active) → Ready for Test 6 Mar (verification, waiting) → Testing 10 Mar (active) →
  Ready for Release 11 Mar (delivery, waiting) → Done 14 Mar.
  Visits: ideation 1→3 (LT 2 d, PT 0, all uncommitted); integration 3→5 (LT 2, PT 2); verification
  5→11 (LT 6, PT 1 + 1 = 2, wait 4); delivery 11→14 (LT 3, PT 0, wait 3).
- B: Backlog 2 Mar → In Progress 4 Mar → In Review 6 Mar → Testing 7 Mar → In Progress 8 Mar (sent back:
  rework) → In Review 10 Mar → Ready for Release 12 Mar → Done 13 Mar.
  Visits: ideation 2→4 (LT 2); integration 4→6 (LT 2, PT 2); verification 6→8 (LT 2, PT 2);
  integration 8→10 (LT 2, PT 2); verification 10→12 (LT 2, PT 2); delivery 12→13 (LT 1, wait 1).
  B's first integration and first verification visits are not complete-and-accurate (it came back).
- C: Backlog 1 Mar → In Progress 20 Mar, still there on 1 Apr: ideation 1→20 (LT 19), and in
  integration now, 12 days so far.
- D: In Progress 24 Mar → Ready for Release 25 Mar → Done 26 Mar: integration 1 d (PT 1), delivery 1 d.

Visits that ended in March, per stage:
- ideation: A 2, B 2, C 19 → LT p50 2 d; %C&A 3/3 (nothing goes back before ideation).
- integration: A 2, B 2, B 2, D 1 → LT p50 2 d, PT p50 2 d; %C&A 3/4 (B's first visit came back).
- verification: A 6, B 2, B 2 → LT p50 2 d (mean 10/3), PT 2 each, wait [4, 0, 0]; %C&A 2/3.
- delivery: A 3, B 1, D 1 → LT p50 1 d, PT 0; %C&A 3/3.
- observation: no visits (Done leaves the stream straight from delivery here).
Total LT = 2 + 2 + 2 + 1 = 7 d (no waits between stages); total PT = 0 + 2 + 2 + 0 = 4 d; activity
ratio 4/7; rolled %C&A = 1 · 3/4 · 2/3 · 1 = 1/2.
Committed wait (LT − PT − time in `new`): ideation 0 (all its time is uncommitted backlog),
integration 0, verification 4 d (A), delivery 3 + 1 + 1 = 5 d: the bottleneck is delivery, with
5 / 9 of the committed wait; its items A (3 d), B (1 d), D (1 d).
"""

from __future__ import annotations

from datetime import datetime

import pytest

from obeya.engine.stages import value_stream_map
from obeya.engine.window import Slice, Window
from obeya.model import Record, Stage
from obeya.store import Store
from tests.engine.builders import day, item, stream

DAY = 86400.0
MARCH = Window(datetime(2025, 3, 1), datetime(2025, 4, 1))
PAY = Slice(value_stream_id="test:pay")
STAGES = ["ideation", "integration", "verification", "delivery", "observation"]


def _scenario() -> list[Record]:
    records = stream("pay", "Payments", ["PAY"])
    records += [
        Stage(source="test", external_id=f"pay-{name}", value_stream_id="test:pay", name=name, position=i)
        for i, name in enumerate(STAGES)
    ]
    records += item(
        "A",
        day(3, 1),
        [
            (day(3, 1), "Backlog"),
            (day(3, 3), "In Progress"),
            (day(3, 5), "In Review"),
            (day(3, 6), "Ready for Test"),
            (day(3, 10), "Testing"),
            (day(3, 11), "Ready for Release"),
            (day(3, 14), "Done"),
        ],
    )
    records += item(
        "B",
        day(3, 2),
        [
            (day(3, 2), "Backlog"),
            (day(3, 4), "In Progress"),
            (day(3, 6), "In Review"),
            (day(3, 7), "Testing"),
            (day(3, 8), "In Progress"),
            (day(3, 10), "In Review"),
            (day(3, 12), "Ready for Release"),
            (day(3, 13), "Done"),
        ],
    )
    records += item("C", day(3, 1), [(day(3, 1), "Backlog"), (day(3, 20), "In Progress")])
    records += item(
        "D",
        day(3, 24),
        [(day(3, 24), "In Progress"), (day(3, 25), "Ready for Release"), (day(3, 26), "Done")],
    )
    return records


@pytest.fixture
def vsm(store: Store):  # type: ignore[no-untyped-def]
    store.upsert_records(_scenario())
    return value_stream_map(store, MARCH, PAY)


def test_stages_in_the_streams_order(vsm) -> None:  # type: ignore[no-untyped-def]
    assert [s.stage for s in vsm.stages] == STAGES


def test_per_stage_lead_process_and_wait(vsm) -> None:  # type: ignore[no-untyped-def]
    by = {s.stage: s for s in vsm.stages}
    assert by["ideation"].departures == 3 and by["ideation"].lead_time.p50 == pytest.approx(2 * DAY)
    assert by["integration"].departures == 4
    assert by["integration"].lead_time.p50 == pytest.approx(2 * DAY)
    assert by["integration"].process_time.p50 == pytest.approx(2 * DAY)
    assert by["verification"].lead_time.p50 == pytest.approx(2 * DAY)
    assert by["verification"].lead_time.mean == pytest.approx(10 / 3 * DAY)
    assert by["verification"].wait_time.p50 == pytest.approx(0)
    assert by["verification"].wait_time.mean == pytest.approx(4 / 3 * DAY)
    assert by["delivery"].lead_time.p50 == pytest.approx(1 * DAY)
    assert by["delivery"].process_time.p50 == pytest.approx(0)
    assert by["observation"].departures == 0 and by["observation"].lead_time.p50 is None


def test_complete_and_accurate_counts_rework(vsm) -> None:  # type: ignore[no-untyped-def]
    by = {s.stage: s.complete_and_accurate for s in vsm.stages}
    assert (by["ideation"].numerator, by["ideation"].denominator) == (3, 3)
    assert (by["integration"].numerator, by["integration"].denominator) == (3, 4)
    assert (by["verification"].numerator, by["verification"].denominator) == (2, 3)
    assert (by["delivery"].numerator, by["delivery"].denominator) == (3, 3)
    assert by["observation"].value is None


def test_items_still_in_a_stage_are_shown_apart(vsm) -> None:  # type: ignore[no-untyped-def]
    integration = next(s for s in vsm.stages if s.stage == "integration")
    assert integration.in_stage_now == 1
    assert integration.age_in_stage.p50 == pytest.approx(12 * DAY)  # C, since 20 Mar
    assert integration.departures == 4  # C is not among them


def test_stream_totals(vsm) -> None:  # type: ignore[no-untyped-def]
    assert vsm.total_lead_time == pytest.approx((2 + 2 + 2 + 1) * DAY)
    assert vsm.total_process_time == pytest.approx((0 + 2 + 2 + 0) * DAY)
    assert vsm.activity_ratio == pytest.approx(4 / 7)
    assert vsm.rolled_complete_and_accurate == pytest.approx(1 * 3 / 4 * 2 / 3 * 1)


def test_bottleneck_is_the_largest_committed_wait(vsm) -> None:  # type: ignore[no-untyped-def]
    bottleneck = vsm.bottleneck
    assert bottleneck is not None
    assert bottleneck.stage == "delivery"
    assert bottleneck.wait_share == pytest.approx(5 / 9)
    assert bottleneck.items == [
        ("A", pytest.approx(3 * DAY)),
        ("B", pytest.approx(DAY)),
        ("D", pytest.approx(DAY)),
    ]


def test_empty_window_has_no_map_figures(store: Store) -> None:
    store.upsert_records(_scenario())
    empty = value_stream_map(store, Window(datetime(2025, 1, 1), datetime(2025, 2, 1)), PAY)
    assert empty.total_lead_time is None and empty.activity_ratio is None and empty.bottleneck is None
    assert all(s.departures == 0 and s.complete_and_accurate.value is None for s in empty.stages)
