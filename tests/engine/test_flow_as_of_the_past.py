"""Figures of a window in the past are judged at its own end, also for items whose history goes on after
it (they are read off the period spanning the window's end, not the derived current state).

Window: 1–10 March 2025, "now" = 10 March 00:00. Stream PAY.

- A: created 1 Mar; active 2 Mar 09:00, blocked 3 Mar 09:00, active 4 Mar 09:00, done 4 Mar 15:00 —
  then, after the window, active 12 Mar and done 13 Mar. At the window's end A is done:
  flow time 2 d 6 h = 54 h, active 24 h + 6 h = 30 h.
- B: created 1 Mar; active 3 Mar 10:00, Done 5 Mar 10:00, Closed (also done) 6 Mar 10:00 — reopened
  15 Mar. Work complete is its last entry into done before the end, 6 Mar 10:00: flow time 3 d = 72 h,
  active 48 h.
- C: created 1 Mar; active 8 Mar, done 11 Mar: in progress at the end, age 2 d.
- D: created 5 Mar, no status change before 20 Mar: neither done nor in progress at the end.

Completed: A and B. Flow times [54, 72] h: p50 63 h. Efficiency (30 + 48) / (54 + 72) = 78 / 126.
Seen from 1 April (everything settled): A done 13 Mar, B reopened and not done, C done 11 Mar.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from obeya.engine.flow import flow_distribution, flow_efficiency, flow_time, flow_velocity, work_item_age
from obeya.engine.window import Slice, Window
from obeya.model import Record
from obeya.store import Store
from tests.engine.builders import day, item, stream

HOUR = 3600.0
EARLY_MARCH = Window(datetime(2025, 3, 1), datetime(2025, 3, 10))
MARCH = Window(datetime(2025, 3, 1), datetime(2025, 4, 1))
PAY = Slice(value_stream_id="test:pay")


def _scenario() -> list[Record]:
    records = stream("pay", "Payments", ["PAY"])
    records += item(
        "A",
        day(3, 1),
        [
            (day(3, 1), "Backlog"),
            (day(3, 2, 9), "In Progress"),
            (day(3, 3, 9), "Blocked"),
            (day(3, 4, 9), "In Progress"),
            (day(3, 4, 15), "Done"),
            (day(3, 12), "In Progress"),
            (day(3, 13), "Done"),
        ],
    )
    records += item(
        "B",
        day(3, 1),
        [
            (day(3, 1), "Backlog"),
            (day(3, 3, 10), "In Progress"),
            (day(3, 5, 10), "Done"),
            (day(3, 6, 10), "Closed"),
            (day(3, 15), "In Progress"),
        ],
    )
    records += item(
        "C", day(3, 1), [(day(3, 1), "Backlog"), (day(3, 8), "In Progress"), (day(3, 11), "Done")]
    )
    records += item("D", day(3, 5), [(day(3, 20), "In Progress")])
    return records


@pytest.fixture
def scenario(store: Store) -> Store:
    store.upsert_records(_scenario())
    return store


def test_items_done_at_a_past_end_are_complete_at_their_last_done_before_it(scenario: Store) -> None:
    times = flow_time(scenario, EARLY_MARCH, PAY)
    assert times.flow_time.count == 2
    assert times.flow_time.p50 == pytest.approx(63 * HOUR)
    assert times.flow_time.mean == pytest.approx(63 * HOUR)
    assert times.lead_time.p50 == pytest.approx(((3 * 24 + 15) + (5 * 24 + 10)) / 2 * HOUR)


def test_active_time_of_items_whose_history_goes_on_is_cut_at_their_completion(scenario: Store) -> None:
    efficiency = flow_efficiency(scenario, EARLY_MARCH, PAY).efficiency
    assert (efficiency.numerator, efficiency.denominator) == pytest.approx((78 * HOUR, 126 * HOUR))


def test_state_at_a_past_end_not_today(scenario: Store) -> None:
    age = work_item_age(scenario, EARLY_MARCH, PAY)
    assert [(i.key, i.age) for i in age.items] == [("C", pytest.approx(2 * 24 * HOUR))]
    wip = flow_distribution(scenario, EARLY_MARCH, PAY).wip
    assert wip["feature"].numerator == 1  # C only: D has no status yet, A and B are done


def test_the_same_items_seen_when_everything_is_settled(scenario: Store) -> None:
    assert flow_velocity(scenario, MARCH, PAY).completed == 2  # A (13 Mar) and C (11 Mar); B reopened
    times = flow_time(scenario, MARCH, PAY)
    # A: 2 Mar 09:00 → 13 Mar 00:00 = 10 d 15 h; C: 8 → 11 Mar = 3 d.
    assert sorted([times.flow_time.p50 or 0, times.flow_time.mean or 0]) == pytest.approx(
        [((10 * 24 + 15) + 72) / 2 * HOUR] * 2
    )
    efficiency = flow_efficiency(scenario, MARCH, PAY).efficiency
    # A active: 24 h + 6 h + (12 → 13 Mar) 24 h = 54 h; C active 3 d = 72 h.
    assert (efficiency.numerator, efficiency.denominator) == pytest.approx(
        (126 * HOUR, ((10 * 24 + 15) + 72) * HOUR)
    )
