"""Flow metrics on a hand-made month, every expected figure worked out by hand below.

Window: March 2025 (31 days), "now" = 1 April 00:00. Items of project PAY (stream "pay"):

- A feature: created 20 Feb; active 2 Mar, blocked 4 Mar, active 5 Mar, done 7 Mar.
  flow time 5 d, active 4 d, lead time 15 d.
- B defect, reopened: created 1 Mar; active 3 Mar, done 6 Mar, active 10 Mar, done 12 Mar.
  work complete = last done (12 Mar): flow time 9 d, active 3 d + 2 d = 5 d, lead time 11 d.
- C feature, canceled after it started (2 Mar → canceled 8 Mar): never complete.
- D risk: created 10 Mar, active 20 Mar, still active: age 12 d.
- E feature: active 2 Mar, done 5 Mar, reopened (active) 25 Mar and still active: not done; age 30 d.
- F feature: done 10 Feb, before the window.
- G debt, a data error: created 20 Mar but active 10 Mar and done 15 Mar: flow time 5 d (active 5 d);
  lead time negative, so excluded and counted.
- X in project OTHER: outside the stream.

Completed in March: A, B, G. Flow times [5, 5, 9] d: p50 5, p70 5 + 0.4·4 = 6.6, p85 5 + 0.7·4 = 7.8,
p95 5 + 0.9·4 = 8.6, mean 19/3. Lead times [11, 15] d: p50 13. Efficiency (4 + 5 + 5) / (5 + 9 + 5).
"""

from __future__ import annotations

from datetime import date, datetime

import pytest

from obeya.engine.flow import (
    cumulative_flow,
    flow_distribution,
    flow_efficiency,
    flow_load,
    flow_predictability,
    flow_time,
    flow_velocity,
    work_item_age,
)
from obeya.engine.window import Slice, Window
from obeya.model import FlowItemType, Plan, PlanItem, Record
from obeya.store import Store
from tests.engine.builders import day, item, stream

DAY = 86400.0
MARCH = Window(datetime(2025, 3, 1), datetime(2025, 4, 1))
PAY = Slice(value_stream_id="test:pay")


def _scenario() -> list[Record]:
    records = stream("pay", "Payments", ["PAY"])
    records += item(
        "A",
        day(2, 20),
        [
            (day(2, 20), "Backlog"),
            (day(3, 2), "In Progress"),
            (day(3, 4), "Blocked"),
            (day(3, 5), "In Progress"),
            (day(3, 7), "Done"),
        ],
    )
    records += item(
        "B",
        day(3, 1),
        [
            (day(3, 1), "Backlog"),
            (day(3, 3), "In Progress"),
            (day(3, 6), "Done"),
            (day(3, 10), "In Progress"),
            (day(3, 12), "Done"),
        ],
        "defect",
    )
    records += item(
        "C", day(3, 1), [(day(3, 1), "Backlog"), (day(3, 2), "In Progress"), (day(3, 8), "Canceled")]
    )
    records += item("D", day(3, 10), [(day(3, 10), "Backlog"), (day(3, 20), "In Progress")], "risk")
    records += item(
        "E",
        day(3, 1),
        [
            (day(3, 1), "Backlog"),
            (day(3, 2), "In Progress"),
            (day(3, 5), "Done"),
            (day(3, 25), "In Progress"),
        ],
    )
    records += item(
        "F", day(2, 1), [(day(2, 1), "Backlog"), (day(2, 2), "In Progress"), (day(2, 10), "Done")]
    )
    records += item("G", day(3, 20), [(day(3, 10), "In Progress"), (day(3, 15), "Done")], "debt")
    records += item("X", day(3, 1), [(day(3, 1), "In Progress"), (day(3, 3), "Done")], project="OTHER")
    records.append(
        Plan(
            source="test",
            external_id="s1",
            name="Sprint 1",
            plan_type="sprint",
            starts_at=day(3, 1),
            ends_at=day(3, 15),
        )
    )
    for key, value, late in [("A", 5.0, False), ("B", 3.0, False), ("C", 2.0, False), ("D", 8.0, True)]:
        records.append(
            PlanItem(
                source="test",
                external_id=f"s1-{key}",
                plan_id="test:s1",
                work_item_id=f"test:{key}",
                planned_value=value,
                added_after_start=late,
            )
        )
    return records


@pytest.fixture
def scenario(store: Store) -> Store:
    store.upsert_records(_scenario())
    return store


def test_flow_velocity_counts_items_done_in_window_once(scenario: Store) -> None:
    velocity = flow_velocity(scenario, MARCH, PAY, by="month")
    assert velocity.completed == 3
    assert velocity.per_week == pytest.approx(3 / (31 / 7))
    assert [(p.period, p.value) for p in velocity.series] == [(date(2025, 3, 1), 3.0)]


def test_flow_series_give_every_week_of_the_window(scenario: Store) -> None:
    # March 2025 starts on a Saturday: weeks of 1-2, 3-9, 10-16, 17-23, 24-30 and 31 March.
    # A done 7 Mar (flow 5 d, active 4 d); B 12 Mar (9 d, 5 d) and G 15 Mar (5 d, 5 d); nothing after.
    weeks = [date(2025, 3, d) for d in (1, 3, 10, 17, 24, 31)]
    assert [(p.start.date(), p.days) for p in MARCH.periods("week")] == list(
        zip(weeks, [2, 7, 7, 7, 7, 1], strict=True)
    )
    velocity = flow_velocity(scenario, MARCH, PAY, by="week").series
    assert [(p.period, p.value) for p in velocity] == list(zip(weeks, [0, 1, 2, 0, 0, 0], strict=True))
    times = [p.value for p in flow_time(scenario, MARCH, PAY, by="week").series]
    assert times == [None, 5 * DAY, 7 * DAY, None, None, None]  # no data, never 0
    efficiency = [p.value for p in flow_efficiency(scenario, MARCH, PAY, by="week").series]
    assert efficiency == [None, pytest.approx(4 / 5), pytest.approx(10 / 14), None, None, None]


def test_a_window_starting_mid_week_labels_its_first_week_by_the_window_start(scenario: Store) -> None:
    # 5 March is a Wednesday: the first week is 5-9 March (5 days), labelled 5 March, not Monday 3 March,
    # and holds A (done 7 Mar); then 10-16 (B, G), 17-23, 24-30 and 31 March (1 day).
    window = Window(datetime(2025, 3, 5), datetime(2025, 4, 1))
    velocity = flow_velocity(scenario, window, PAY, by="week").series
    assert [(p.period, p.value) for p in velocity] == [
        (date(2025, 3, 5), 1.0),
        (date(2025, 3, 10), 2.0),
        (date(2025, 3, 17), 0.0),
        (date(2025, 3, 24), 0.0),
        (date(2025, 3, 31), 0.0),
    ]
    # By month from 20 February: 20-28 February (F was done on 10 February: none), then March.
    window = Window(datetime(2025, 2, 20), datetime(2025, 4, 1))
    assert [(p.start.date(), p.days) for p in window.periods("month")] == [
        (date(2025, 2, 20), 9),
        (date(2025, 3, 1), 31),
    ]
    months = flow_velocity(scenario, window, PAY, by="month").series
    assert [(p.period, p.value) for p in months] == [(date(2025, 2, 20), 0.0), (date(2025, 3, 1), 3.0)]
    assert [p.value for p in flow_time(scenario, window, PAY, by="month").series] == [None, 5 * DAY]


def test_flow_velocity_without_stream_filter_includes_other_projects(scenario: Store) -> None:
    assert flow_velocity(scenario, MARCH).completed == 4


def test_flow_time_and_lead_time(scenario: Store) -> None:
    times = flow_time(scenario, MARCH, PAY)
    assert times.flow_time.count == 3
    assert times.flow_time.p50 == pytest.approx(5 * DAY)
    assert times.flow_time.p70 == pytest.approx(6.6 * DAY)
    assert times.flow_time.p85 == pytest.approx(7.8 * DAY)
    assert times.flow_time.p95 == pytest.approx(8.6 * DAY)
    assert times.flow_time.mean == pytest.approx(19 / 3 * DAY)
    assert times.flow_time.excluded == 0
    assert times.lead_time.count == 2
    assert times.lead_time.p50 == pytest.approx(13 * DAY)
    assert times.lead_time.excluded == 1  # G's negative lead time


def test_flow_efficiency_is_ratio_of_sums(scenario: Store) -> None:
    efficiency = flow_efficiency(scenario, MARCH, PAY)
    assert efficiency.efficiency.numerator == pytest.approx(14 * DAY)
    assert efficiency.efficiency.denominator == pytest.approx(19 * DAY)
    assert efficiency.efficiency.value == pytest.approx(14 / 19)
    assert efficiency.median_item_efficiency == pytest.approx(0.8)  # A 4/5, B 5/9, G 5/5


def test_flow_load_daily(scenario: Store) -> None:
    load = flow_load(scenario, MARCH, PAY)
    by_day = {p.period: p.value for p in load.daily}
    # A day's instant is the midnight after it, and a transition at that very instant already counts:
    # end of 1 Mar = 2 Mar 00:00, when A, C and E enter In Progress.
    assert by_day[date(2025, 3, 1)] == 3
    # End of 2 Mar = 3 Mar 00:00: B enters In Progress too.
    assert by_day[date(2025, 3, 2)] == 4
    # End of 12 Mar: B done at 12 Mar 00:00; A done, C canceled, E done; G active (10-15), D backlog.
    assert by_day[date(2025, 3, 12)] == 1
    # End of March: D and E active.
    assert by_day[date(2025, 3, 31)] == 2
    assert load.at_end == 2
    assert len(load.daily) == 31


def test_cumulative_flow_counts_every_state(scenario: Store) -> None:
    cfd = cumulative_flow(scenario, MARCH, PAY)
    last = {state: counts[-1] for state, counts in cfd.counts.items()}
    assert last == {"active": 2, "canceled": 1, "done": 4, "new": 0, "waiting": 0}  # done: A, B, F, G
    assert cfd.counts["waiting"][cfd.days.index(date(2025, 3, 3))] == 1  # A blocked from 4 Mar 00:00
    assert cfd.days[0] == date(2025, 3, 1) and cfd.days[-1] == date(2025, 3, 31)


def test_cumulative_flow_gives_every_state_and_stage_in_order(scenario: Store) -> None:
    by_state = cumulative_flow(scenario, MARCH, PAY)
    assert list(by_state.counts) == ["new", "waiting", "active", "done", "canceled"]
    stages = ["ideation", "integration", "verification", "delivery", "observation"]
    by_stage = cumulative_flow(scenario, MARCH, PAY, by="stage", stages=stages)
    assert list(by_stage.counts) == [*stages, "(none)"]  # C, canceled, is in no stage
    # End of March: D and E in progress (integration), A, B, F, G done (observation), C canceled.
    last = {stage: counts[-1] for stage, counts in by_stage.counts.items()}
    assert last == {
        "ideation": 0,
        "integration": 2,
        "verification": 0,
        "delivery": 0,
        "observation": 4,
        "(none)": 1,
    }
    assert by_stage.counts["verification"] == [0] * 31  # no item was ever there: a column of 0
    # 1 March: B in the backlog (ideation), A, C, E In Progress from 2 Mar 00:00, F done.
    assert [by_stage.counts[s][0] for s in stages] == [1, 3, 0, 0, 1]


def test_flow_distribution(scenario: Store) -> None:
    distribution = flow_distribution(scenario, MARCH, PAY)
    assert {k: r.value for k, r in distribution.completed.items()} == {
        "feature": pytest.approx(1 / 3),
        "defect": pytest.approx(1 / 3),
        "risk": 0.0,
        "debt": pytest.approx(1 / 3),
    }
    assert {k: r.value for k, r in distribution.wip.items()} == {
        "feature": 0.5,
        "defect": 0.0,
        "risk": 0.5,
        "debt": 0.0,
    }


def test_flow_predictability_counts_only_the_commitment(scenario: Store) -> None:
    predictability = flow_predictability(scenario, MARCH, PAY)
    assert predictability.items.numerator == 2 and predictability.items.denominator == 3
    assert predictability.business_value.value == pytest.approx(8 / 10)
    assert [(p.name, p.planned, p.delivered) for p in predictability.plans] == [("Sprint 1", 3, 2)]


def test_work_item_age_with_service_level_expectations(scenario: Store) -> None:
    age = work_item_age(scenario, MARCH, PAY)
    assert [(i.key, i.age / DAY, i.beyond_sle) for i in age.items] == [("E", 30.0, "p95"), ("D", 12.0, "p95")]
    assert age.service_level_expectations.p85 == pytest.approx(7.8 * DAY)
    assert age.age.p50 == pytest.approx(21 * DAY)


def test_work_item_age_counts_the_items_beyond_each_expectation(store: Store) -> None:
    # April 2025, now = 1 May. Done: flow times 2, 4, 6, 8, 10 d (active 1 Apr, done 3 … 11 Apr), so the
    # expectations are p50 6 d, p70 6 + 0.8·2 = 7.6 d, p85 8 + 0.4·2 = 8.8 d, p95 8 + 0.8·2 = 9.6 d.
    # In progress: active since 28, 24, 22 and 20 Apr: ages 3, 7, 9 and 11 d.
    records = stream("pay", "Payments", ["PAY"])
    for n, flow_days in enumerate([2, 4, 6, 8, 10]):
        records += item(f"DONE-{n}", day(4, 1), [(day(4, 1), "In Progress"), (day(4, 1 + flow_days), "Done")])
    for n, started in enumerate([28, 24, 22, 20]):
        records += item(f"WIP-{n}", day(4, 1), [(day(4, 1), "Backlog"), (day(4, started), "In Progress")])
    store.upsert_records(records)
    april = Window(datetime(2025, 4, 1), datetime(2025, 5, 1))
    age = work_item_age(store, april, PAY, limit=2)
    sle = age.service_level_expectations
    assert (sle.p50, sle.p70, sle.p85, sle.p95) == pytest.approx((6 * DAY, 7.6 * DAY, 8.8 * DAY, 9.6 * DAY))
    assert age.beyond == {"p50": 3, "p70": 2, "p85": 2, "p95": 1}  # all items, not only the 2 listed
    assert [(i.key, i.age / DAY, i.beyond_sle) for i in age.items] == [
        ("WIP-3", 11, "p95"),
        ("WIP-2", 9, "p85"),
    ]
    assert age.age.count == 4


def test_work_item_age_beyond_is_no_data_without_expectations(scenario: Store) -> None:
    # Nothing was completed in the week of 17-23 March: there are no expectations to be beyond.
    week = Window(datetime(2025, 3, 17), datetime(2025, 3, 24))
    age = work_item_age(scenario, week, PAY)
    assert age.service_level_expectations.p85 is None
    assert age.beyond == {"p50": None, "p70": None, "p85": None, "p95": None}
    assert [i.key for i in age.items] == ["D"] and age.items[0].beyond_sle is None


def test_slices_by_team_and_type(scenario: Store) -> None:
    defects = Slice(value_stream_id="test:pay", flow_item_type=FlowItemType.DEFECT)
    assert flow_velocity(scenario, MARCH, defects).completed == 1
    assert flow_velocity(scenario, MARCH, Slice(team_id="test:nobody")).completed == 0


def test_empty_window_is_no_data_not_zero(scenario: Store) -> None:
    january = Window(datetime(2025, 1, 1), datetime(2025, 2, 1))
    assert flow_velocity(scenario, january, PAY).per_week is None
    times = flow_time(scenario, january, PAY)
    assert times.flow_time.count == 0 and times.flow_time.p50 is None and times.flow_time.mean is None
    assert flow_efficiency(scenario, january, PAY).efficiency.value is None
    assert flow_predictability(scenario, january, PAY).items.value is None


def test_past_window_judges_done_at_its_own_end(scenario: Store) -> None:
    # On 8 Mar, E had been done since 5 Mar and B since 6 Mar (both were reopened later): they count
    # in a window ending then, with A (7 Mar).
    early = Window(datetime(2025, 3, 1), datetime(2025, 3, 8))
    assert flow_velocity(scenario, early, PAY).completed == 3
    assert flow_time(scenario, early, PAY).flow_time.p50 == pytest.approx(3 * DAY)  # A 5, B 3, E 3


def test_work_start_committed_counts_from_the_first_commitment(store: Store) -> None:
    # W is committed (Blocked, a waiting state) on 2 Mar, started on 5 Mar, done on 7 Mar.
    records = stream("pay", "Payments", ["PAY"])
    records += item(
        "W",
        day(3, 1),
        [(day(3, 1), "Backlog"), (day(3, 2), "Blocked"), (day(3, 5), "In Progress"), (day(3, 7), "Done")],
    )
    store.upsert_records(records)
    assert flow_time(store, MARCH, PAY).flow_time.p50 == pytest.approx(2 * DAY)
    assert flow_time(store, MARCH, PAY, work_start="committed").flow_time.p50 == pytest.approx(5 * DAY)
