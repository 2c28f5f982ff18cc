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

from obeya.engine.dora_rules import DeploymentRules, DoraRules
from obeya.engine.stage_comparison import value_stream_map_with_previous
from obeya.engine.stage_evidence import stage_evidence
from obeya.engine.stages import value_stream_map
from obeya.engine.window import Slice, Window
from obeya.model import Deployment, Incident, Record, Stage, TraceLink
from obeya.model.vocabulary import FlowItemType
from obeya.store import Store
from tests.engine.builders import day, item, stream
from tests.engine.test_dora import _caused_by, _change

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


def test_previous_window_beside_the_current_one(store: Store) -> None:
    """[9, 17 Mar) against the 8 days before, [1, 9 Mar), from the visits listed above.

    Previous: ideation A 2 d, B 2 d; integration A 2 d, B 2 d (B came back on 8 Mar: 1/2 C&A);
    verification B 6→8 2 d (came back: 0/1). Total LT 2 + 2 + 2 = 6 d, rolled %C&A 1 · 1/2 · 0 = 0.
    Current: integration B 8→10 2 d (1/1); verification A 5→11 6 d, B 10→12 2 d (p50 4 d, 2/2); delivery
    A 11→14 3 d, B 12→13 1 d (p50 2 d, 2/2). Total LT 2 + 4 + 2 = 8 d, rolled %C&A 1.
    """
    store.upsert_records(_scenario())
    compared = value_stream_map_with_previous(store, Window(day(3, 9), day(3, 17)), PAY)
    assert compared.previous.window == Window(day(3, 1), day(3, 9))
    now = {s.stage: s for s in compared.current.stages}
    before = {s.stage: s for s in compared.previous.stages}
    change = {s.stage: s for s in compared.change.stages}
    assert before["integration"].departures == 2 and now["integration"].departures == 1
    assert before["verification"].lead_time.p50 == pytest.approx(2 * DAY)
    assert now["verification"].lead_time.p50 == pytest.approx(4 * DAY)
    assert change["verification"].lead_time_p50 == pytest.approx(2 * DAY)
    assert change["integration"].lead_time_p50 == pytest.approx(0)
    assert change["integration"].complete_and_accurate == pytest.approx(1 - 1 / 2)
    assert change["verification"].complete_and_accurate == pytest.approx(1 - 0)
    assert change["integration"].throughput_per_week == pytest.approx(1 / (8 / 7) - 2 / (8 / 7))
    assert change["delivery"].lead_time_p50 is None  # nothing left delivery before 9 Mar: no data
    assert change["ideation"].lead_time_p50 is None  # nothing left ideation in [9, 17 Mar)
    assert compared.previous.total_lead_time == pytest.approx(6 * DAY)
    assert compared.current.total_lead_time == pytest.approx(8 * DAY)
    assert compared.change.total_lead_time == pytest.approx(2 * DAY)
    assert compared.change.rolled_complete_and_accurate == pytest.approx(1 - 0)


def test_previous_window_judged_at_its_own_end(store: Store) -> None:
    """Both maps come from one pass over the visits, yet each is judged as of its own window's end.

    Previous window [1, 7 Mar): integration A 3→5, B 4→6 left it; B came back on 8 Mar, after that
    window: 2/2 complete and accurate there (the current window [7, 13 Mar) sees it come back). With the
    deliveries, April against the 30 days before it: D shipped C4 in D5 on 3 Apr, which caused I5 — after
    that window, so its delivery %C&A stays 1/3 (A and B failed downstream). Each map equals the one
    drawn alone.
    """
    store.upsert_records([*_scenario(), *_deliveries()])
    compared = value_stream_map_with_previous(store, Window(day(3, 7), day(3, 13)), PAY)
    integration = next(s for s in compared.previous.stages if s.stage == "integration")
    assert (integration.complete_and_accurate.numerator, integration.departures) == (2, 2)
    assert compared.previous == value_stream_map(store, Window(day(3, 1), day(3, 7)), PAY)
    assert compared.current == value_stream_map(store, Window(day(3, 7), day(3, 13)), PAY)
    april = value_stream_map_with_previous(store, Window(day(4, 1), day(5, 1)), PAY)
    delivery = next(s for s in april.previous.stages if s.stage == "delivery")
    assert (delivery.complete_and_accurate.numerator, delivery.departures) == (1, 3)
    assert april.previous == value_stream_map(store, Window(day(4, 1), day(5, 1)).previous(), PAY)


def test_oldest_item_still_in_the_stage(vsm) -> None:  # type: ignore[no-untyped-def]
    by = {s.stage: s for s in vsm.stages}
    assert by["integration"].oldest_in_stage == pytest.approx(12 * DAY)  # C, alone in it since 20 Mar
    assert by["delivery"].oldest_in_stage is None and by["delivery"].in_stage_now == 0


def _production(name: str, at: datetime, result: str = "success", commit: str | None = None) -> Deployment:
    environment = "staging" if name.startswith("S") else "production"
    return Deployment(
        source="test",
        external_id=name,
        service="api",
        environment=environment,
        environment_class="production" if environment == "production" else "staging",
        repo="acme/api",
        commit_sha=commit or f"{name.lower()}000000",
        result=result,
        started_at=at,
        finished_at=at,
    )


def _implements(key: str, change: str) -> TraceLink:
    return TraceLink(
        source="test",
        external_id=f"{key}>{change}",
        from_kind="work_item",
        from_id=f"test:{key}",
        to_kind="change",
        to_id=f"test:{change}",
        link_kind="implemented_by",
        evidence=f"title mentions {key}",
        confidence=0.95,
    )


def _deliveries() -> list[Record]:
    """The March scenario's work, deployed to production (service api), 12:00 unless said:

    - A (in delivery 11 → 14 Mar) is implemented by C1, shipped by D1 on 12 Mar, which caused incident
      I1: A failed downstream.
    - B (12 → 13 Mar) by C2, shipped by D3 on 13 Mar 14:00, the retry of D2 (same commit) that failed at
      10:00: B failed downstream.
    - D (25 → 26 Mar) by C3, shipped by D4 on 26 Mar (fine; a staging failure S4 of its commit before
      does not count); by C5, shipped by D6 on 20 Mar, before D entered delivery, which caused I6; and by
      C4, shipped by D5 on 3 Apr, which caused I5 — after the window. D did not fail downstream in March.
    Delivery %C&A: 1/3 (was 3/3); rolled %C&A 1 · 3/4 · 2/3 · 1/3 = 1/6.
    """
    records: list[Record] = [
        _production("D1", day(3, 12, 12)),
        _production("D2", day(3, 13, 10), "failure", commit="c2"),
        _production("D3", day(3, 13, 14), commit="c2"),
        _production("S4", day(3, 25, 12), "failure", commit="c3"),
        _production("D4", day(3, 26, 12), commit="c3"),
        _production("D5", day(4, 3, 12)),
        _production("D6", day(3, 20, 12)),
        _caused_by("I1", "D1"),
        _caused_by("I5", "D5"),
        _caused_by("I6", "D6"),
    ]
    for name, at in (("I1", day(3, 12, 14)), ("I5", day(4, 3, 14)), ("I6", day(3, 20, 14))):
        records.append(
            Incident(
                source="test", external_id=name, title="errors", service="api", status="open", created_at=at
            )
        )
    for key, change, deployment in (
        ("A", "C1", "D1"),
        ("B", "C2", "D3"),
        ("D", "C3", "D4"),
        ("D", "C4", "D5"),
        ("D", "C5", "D6"),
    ):
        records += _change(change, day(3, 1), day(3, 1), [], [deployment])
        records.append(_implements(key, change))
    return records


def test_delivery_complete_and_accurate_counts_failures_downstream(store: Store) -> None:
    store.upsert_records([*_scenario(), *_deliveries()])
    vsm = value_stream_map(store, MARCH, PAY)
    by = {s.stage: s.complete_and_accurate for s in vsm.stages}
    assert (by["delivery"].numerator, by["delivery"].denominator) == (1, 3)
    assert (by["integration"].numerator, by["integration"].denominator) == (3, 4)  # only delivery
    assert vsm.rolled_complete_and_accurate == pytest.approx(1 * 3 / 4 * 2 / 3 * 1 / 3)
    rows = stage_evidence(store, "delivery", MARCH, PAY).rows
    assert [(r.key, r.complete_and_accurate, r.sent_back, r.failed_downstream) for r in rows] == [
        ("B", False, False, True),
        ("A", False, False, True),
        ("D", True, False, False),
    ]


def test_failures_downstream_follow_the_deployment_rules(store: Store) -> None:
    """With api's deployments left out (rules.deployments.exclude_services), nothing failed downstream."""
    store.upsert_records([*_scenario(), *_deliveries()])
    rules = DoraRules(deployments=DeploymentRules(exclude_services=("api",)))
    delivery = next(
        s for s in value_stream_map(store, MARCH, PAY, rules=rules).stages if s.stage == "delivery"
    )
    assert (delivery.complete_and_accurate.numerator, delivery.complete_and_accurate.denominator) == (3, 3)


def _sliced() -> list[Record]:
    """Three items of March, each In Progress (integration, active) → Ready for Release (delivery,
    waiting) → Done, all 00:00:

    - E feature, team web, shipped by service api: integration 3 → 7 Mar (4 d), delivery 7 → 8 (1 d).
    - F defect, team core, shipped by api: integration 10 → 12 (2 d), delivery 12 → 15 (3 d).
    - G feature, team core, shipped by web: integration 3 → 11 (8 d), delivery 11 → 12 (1 d).

    Integration LT p50 / delivery LT p50 / total LT (no waits between stages):
    all [4, 2, 8] → 4 d / [1, 3, 1] → 1 d / 5 d; team core (F, G) 5 d / 2 d / 7 d; team web (E) 4 / 1 / 5;
    type feature (E, G) 6 d / 1 d / 7 d; type defect (F) 2 / 3 / 5; service api (E, F) 3 d / 2 d / 5 d;
    service web (G) 8 / 1 / 9.
    """
    records = stream("pay", "Payments", ["PAY"])
    for key, flow_item_type, team, service, start, ready, done in (
        ("E", "feature", "test:web", "api", 3, 7, 8),
        ("F", "defect", "test:core", "api", 10, 12, 15),
        ("G", "feature", "test:core", "web", 3, 11, 12),
    ):
        history = [
            (day(3, start), "In Progress"),
            (day(3, ready), "Ready for Release"),
            (day(3, done), "Done"),
        ]
        records += item(key, day(3, start), history, flow_item_type, team=team)
        change, deployment = f"C{ord(key)}", f"{service}-{key}"
        records += _change(change, day(3, done), day(3, done), [], [deployment])
        records.append(_implements(key, change))
        records.append(
            Deployment(
                source="test",
                external_id=deployment,
                service=service,
                environment="production",
                environment_class="production",
                repo=f"acme/{service}",
                commit_sha=f"{key.lower()}000000",
                result="success",
                started_at=day(3, done, 12),
                finished_at=day(3, done, 12),
            )
        )
    return records


@pytest.mark.parametrize(
    ("scope", "integration", "delivery", "departures"),
    [
        (Slice(value_stream_id="test:pay"), 4, 1, 3),
        (Slice(value_stream_id="test:pay", team_id="test:core"), 5, 2, 2),
        (Slice(value_stream_id="test:pay", team_id="test:web"), 4, 1, 1),
        (Slice(value_stream_id="test:pay", flow_item_type=FlowItemType.FEATURE), 6, 1, 2),
        (Slice(value_stream_id="test:pay", flow_item_type=FlowItemType.DEFECT), 2, 3, 1),
        (Slice(value_stream_id="test:pay", service="api"), 3, 2, 2),
        (Slice(value_stream_id="test:pay", service="web"), 8, 1, 1),
    ],
)
def test_map_sliced_by_team_type_and_service(
    store: Store, scope: Slice, integration: float, delivery: float, departures: int
) -> None:
    store.upsert_records(_sliced())
    vsm = value_stream_map(store, MARCH, scope)
    by = {s.stage: s for s in vsm.stages}
    assert by["integration"].departures == by["delivery"].departures == departures
    assert by["integration"].lead_time.p50 == pytest.approx(integration * DAY)
    assert by["delivery"].lead_time.p50 == pytest.approx(delivery * DAY)
    assert vsm.total_lead_time == pytest.approx((integration + delivery) * DAY)
