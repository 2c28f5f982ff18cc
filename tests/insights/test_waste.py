"""The DOWNTIME waste signals on a hand-made March 2025 (stream pay, five default stages).

- A (feature, in plan S1): Backlog 1 Mar → In Progress 3 → In Review 5 → In Progress 6 (sent back) →
  In Review 8 → Ready for Release 9 → Done 10. Flow time 3→10 = 7 d, active 2 + 1 + 2 + 1 = 6 d.
  Reworked: first return 6 Mar, 4 d before completion; entered integration and verification twice.
- B (defect, child of epic E): Backlog 2 → In Progress 4 → Ready for Release 6 → Done 8: flow 4 d,
  active 2 d.
- C (feature, no parent, no plan, never deployed): In Progress 10 → Ready for Release 11 → Done 12:
  flow 2 d, active 1 d.
- D: In Progress 5 → Canceled 15: canceled after 10 days of work.
- E (epic): Backlog 1 Mar, parent of B, never done.

Completed in March: A, B, C (3).
- defects: A (reworked) and B (defect) → 2/3; items A (reworked first) then B.
- overproduction: only C has no parent, no plan and no deployment → 1/3.
- waiting: Σ flow 7 + 4 + 2 = 13 d, Σ active 6 + 2 + 1 = 9 d → 4/13; B waited longest (2 d).
- motion: A entered two stages twice → 1/3.
- extra-processing: ended A, B, C done and D canceled after start → 1/4; no changes.
- transportation: no status change has an author → no data.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from obeya.engine.window import Slice, Window
from obeya.insights.model import Severity
from obeya.insights.waste import (
    defects,
    extra_processing,
    motion,
    overproduction,
    transportation,
    waiting,
    waste,
)
from obeya.model import Plan, PlanItem, Record, WorkItem
from obeya.store import Store
from tests.engine.builders import day, item, stream

MARCH = Window(datetime(2025, 3, 1), datetime(2025, 4, 1))
PAY = Slice(value_stream_id="test:pay")


def _scenario() -> list[Record]:
    records = stream("pay", "Payments", ["PAY"])
    records.append(
        WorkItem(
            source="test",
            external_id="E",
            key="E",
            title="epic",
            project="PAY",
            tool_type="Epic",
            flow_item_type="feature",
            status="Backlog",
            flow_state="new",
            stage="ideation",
            created_at=day(3, 1),
        )
    )
    records += item(
        "A",
        day(3, 1),
        [
            (day(3, 1), "Backlog"),
            (day(3, 3), "In Progress"),
            (day(3, 5), "In Review"),
            (day(3, 6), "In Progress"),
            (day(3, 8), "In Review"),
            (day(3, 9), "Ready for Release"),
            (day(3, 10), "Done"),
        ],
    )
    b = item(
        "B",
        day(3, 2),
        [
            (day(3, 2), "Backlog"),
            (day(3, 4), "In Progress"),
            (day(3, 6), "Ready for Release"),
            (day(3, 8), "Done"),
        ],
        flow_item_type="defect",
    )
    first = b[0]
    assert isinstance(first, WorkItem)
    records += [first.model_copy(update={"parent_id": "test:E"}), *b[1:]]
    records += item(
        "C", day(3, 9), [(day(3, 10), "In Progress"), (day(3, 11), "Ready for Release"), (day(3, 12), "Done")]
    )
    records += item("D", day(3, 4), [(day(3, 5), "In Progress"), (day(3, 15), "Canceled")])
    records += [
        Plan(
            source="test",
            external_id="S1",
            name="S1",
            plan_type="sprint",
            starts_at=day(3, 1),
            ends_at=day(3, 14),
        ),
        PlanItem(source="test", external_id="S1-A", plan_id="test:S1", work_item_id="test:A"),
    ]
    return records


@pytest.fixture
def march(store: Store) -> Store:
    store.upsert_records(_scenario())
    return store


def test_defects_count_defect_items_and_items_sent_back(march: Store) -> None:
    signal = defects(march, MARCH, PAY)
    assert signal.figure == pytest.approx(2 / 3)
    assert signal.items == ["A", "B"]
    assert signal.severity is Severity.HIGH
    assert "4.0 days spent after their first return" in signal.explanation


def test_overproduction_is_work_with_no_parent_plan_or_deployment(march: Store) -> None:
    signal = overproduction(march, MARCH, PAY)
    assert signal.figure == pytest.approx(1 / 3)
    assert signal.items == ["C"]


def test_waiting_is_one_minus_flow_efficiency(march: Store) -> None:
    signal = waiting(march, MARCH, PAY)
    assert signal.figure == pytest.approx(4 / 13)
    assert signal.items[0] == "B"
    assert signal.severity is Severity.LOW


def test_motion_is_items_entering_a_stage_again(march: Store) -> None:
    signal = motion(march, MARCH, PAY)
    assert signal.figure == pytest.approx(1 / 3)
    assert signal.items == ["A"]
    assert "2 repeated stage entries" in signal.explanation


def test_extra_processing_is_work_canceled_after_it_started(march: Store) -> None:
    signal = extra_processing(march, MARCH, PAY)
    assert signal.figure == pytest.approx(1 / 4)
    assert signal.items == ["D"]
    assert "10.0 days spent" in signal.explanation


def test_transportation_without_authors_is_no_data(march: Store) -> None:
    signal = transportation(march, MARCH, PAY)
    assert signal.figure is None
    assert signal.severity is Severity.NO_DATA


def test_every_signal_on_an_empty_store_is_no_data_never_zero(store: Store) -> None:
    store.upsert_records(stream("pay", "Payments", ["PAY"]))
    signals = waste(store, MARCH, PAY)
    assert [s.category for s in signals] == [
        "defects",
        "overproduction",
        "waiting",
        "non-utilized talent",
        "transportation",
        "inventory",
        "motion",
        "extra-processing",
    ]
    assert all(s.figure is None and s.severity is Severity.NO_DATA for s in signals)
