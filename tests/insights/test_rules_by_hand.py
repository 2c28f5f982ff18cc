"""Every recommendation rule firing on hand-made evidence, and not firing just under its threshold; the
waste signals without a hand-made case (non-utilized talent, transportation, inventory).

Stream pay: project PAY, repository pay/api, service pay-api, the five default stages (builders:
In Progress active/integration, Blocked waiting/integration, Ready for Test waiting/verification,
Testing and In Review active/verification, Ready for Release waiting/delivery). Window: March 2025
(31 days) unless said. Every figure below is worked out by hand in the test's docstring.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from obeya.engine.dora import deployment_frequency, recovery_time
from obeya.engine.evidence import FailedDeploymentEvidence, evidence
from obeya.engine.flow import flow_time
from obeya.engine.window import Slice, Window
from obeya.insights.model import Insight, Severity
from obeya.insights.recommendations import (
    Rule,
    automated_checklists,
    continuous_delivery,
    devsecops,
    gather,
    organise_around_value_streams,
    self_service_environments,
    swarming_on_incidents,
)
from obeya.insights.recommendations import test_automation as ci_and_test_automation  # not a test
from obeya.insights.waste import inventory, non_utilized_talent, transportation
from obeya.model import (
    Change,
    ChangeComment,
    ChangeCommit,
    Commit,
    Deployment,
    Incident,
    Person,
    Record,
    Review,
    Scope,
    StatusTransition,
    Team,
    TraceLink,
)
from obeya.store import Store
from tests.engine.builders import day, item, stream

DAY = 86400.0
HOUR = 3600.0
MARCH = Window(datetime(2025, 3, 1), datetime(2025, 4, 1))
FOUR_WEEKS = Window(datetime(2025, 3, 1), datetime(2025, 3, 29))
PAY = Slice(value_stream_id="test:pay")


def _scopes() -> list[Record]:
    records = stream("pay", "Payments", ["PAY"])
    for object_type, key in (("repository", "pay/api"), ("service", "pay-api")):
        records.append(
            Scope(
                source="test",
                external_id=f"pay-{key}",
                value_stream_id="test:pay",
                tool="github",
                object_type=object_type,
                object_key=key,
            )
        )
    return records


def _fire(store: Store, window: Window, rule: Rule, records: list[Record]) -> Insight | None:
    store.upsert_records([*_scopes(), *records])
    return rule(store, window, gather(store, window, PAY, "Payments"))


def _moved_by(records: list[Record], authors: list[str | None]) -> list[Record]:
    """`item(...)` records with the authors of its status transitions, in order."""
    work_item, *transitions = records
    assert len(transitions) == len(authors)
    moved: list[Record] = [work_item]
    for transition, author in zip(transitions, authors, strict=True):
        assert isinstance(transition, StatusTransition)
        moved.append(transition.model_copy(update={"author_id": f"test:{author}" if author else None}))
    return moved


def _deployment(
    name: str, at: datetime, result: str = "success", environment: str = "production", sha: str | None = None
) -> Deployment:
    return Deployment(
        source="test",
        external_id=name,
        service="pay-api",
        environment=environment,
        environment_class="production" if environment == "production" else "staging",
        repo="pay/api",
        commit_sha=sha,
        result=result,
        started_at=at,
        finished_at=at,
    )


def _person(name: str, team: str | None = None, bot: bool = False) -> Person:
    return Person(
        source="test",
        external_id=name,
        display_name=name,
        team_id=f"test:{team}" if team else None,
        is_bot=bot,
    )


# --- CI and test automation -------------------------------------------------------------------------


def _verification(a_sent_back: bool = True, b_sent_back: bool = True) -> list[Record]:
    """Five items through verification (Ready for Test waits, Testing 1 d active), no other wait.

    A: In Progress 2 → Ready for Test 3 → Testing 7 → 8: wait 4 d, then sent back to In Progress (stays).
    B: In Progress 2 → Ready for Test 3 → Testing 6 → 7: wait 3 d, sent back (or Done 7).
    C: Ready for Test 3 → Testing 5 → Done 6: wait 2 d. D, E: Ready for Test 3 → Testing 4 → Done 5: 1 d.
    """

    def through(key: str, testing: int, sent_back: bool) -> list[Record]:
        after = "In Progress" if sent_back else "Done"
        return item(
            key,
            day(3, 1),
            [
                (day(3, 2), "In Progress"),
                (day(3, 3), "Ready for Test"),
                (day(3, testing), "Testing"),
                (day(3, testing + 1), after),
            ],
        )

    return [
        *through("A", 7, a_sent_back),
        *through("B", 6, b_sent_back),
        *through("C", 5, False),
        *through("D", 4, False),
        *through("E", 4, False),
    ]


def test_test_automation_fires_when_verification_is_the_bottleneck_and_sends_work_back(store: Store) -> None:
    """Only verification holds committed wait (4 + 3 + 2 + 1 + 1 = 11 d): it is the bottleneck (share 1).
    Its five departures: A and B came back into integration → %C&A = 3/5 = 0.6 < 0.8.
    Items: the departures by wait, longest first: A 4 d, B 3 d, C 2 d, D 1 d, E 1 d."""
    insight = _fire(store, MARCH, ci_and_test_automation, _verification())
    assert insight is not None
    assert insight.title == "Payments: CI and test automation"
    assert insight.figure == pytest.approx(0.6)
    assert insight.unit == "share"
    assert insight.items == ["A", "B", "C", "D", "E"]
    assert "100% of the committed wait is in verification" in insight.evidence


def test_test_automation_does_not_fire_at_80_percent_complete_and_accurate(store: Store) -> None:
    """Same, but B is done after testing: only A came back → %C&A = 4/5 = 0.8, not below 0.8."""
    assert _fire(store, MARCH, ci_and_test_automation, _verification(b_sent_back=False)) is None
    evidence = gather(store, MARCH, PAY, "Payments")  # the same bottleneck, just at the threshold
    assert evidence.bottleneck_category() == "verification"
    verification = next(s for s in evidence.map.stages if s.stage == "verification")
    assert verification.complete_and_accurate.value == pytest.approx(0.8)


def test_an_item_sent_back_through_the_bottleneck_is_listed_once(store: Store) -> None:
    """A: Ready for Test 3 → Testing 7 → In Progress 8 (sent back) → Ready for Test 9 → Testing 11 → Done
    12: two verification departures (waits 4 d and 2 d), the first not accurate. C: Ready for Test 3 →
    Testing 4 → Done 5 (1 d). %C&A = 2/3 < 0.8 → fires; the items behind it are the work items A, C."""
    a = item(
        "A",
        day(3, 1),
        [
            (day(3, 2), "In Progress"),
            (day(3, 3), "Ready for Test"),
            (day(3, 7), "Testing"),
            (day(3, 8), "In Progress"),
            (day(3, 9), "Ready for Test"),
            (day(3, 11), "Testing"),
            (day(3, 12), "Done"),
        ],
    )
    c = item(
        "C",
        day(3, 1),
        [
            (day(3, 2), "In Progress"),
            (day(3, 3), "Ready for Test"),
            (day(3, 4), "Testing"),
            (day(3, 5), "Done"),
        ],
    )
    insight = _fire(store, MARCH, ci_and_test_automation, [*a, *c])
    assert insight is not None
    assert insight.figure == pytest.approx(2 / 3)
    assert insight.items == ["A", "C"]


# --- Continuous delivery ----------------------------------------------------------------------------


def _delivery(deployment_days: list[int]) -> list[Record]:
    """P1: In Progress 2 → Ready for Release 3 → Done 9 (6 d waiting for delivery); P2: 3 → 4 → Done 8
    (4 d); P3: 4 → 5 → Done 7 (2 d). In Progress is active: delivery holds all the committed wait.
    Successful production deployments at 10:00 on the given days, a second one at 15:00 on the first day
    (same day: one deployment day) and a failed one on 20 Mar (not a deployment day)."""
    records: list[Record] = []
    for key, start in (("P1", 2), ("P2", 3), ("P3", 4)):
        done = {"P1": 9, "P2": 8, "P3": 7}[key]
        records += item(
            key,
            day(3, 1),
            [
                (day(3, start), "In Progress"),
                (day(3, start + 1), "Ready for Release"),
                (day(3, done), "Done"),
            ],
        )
    records += [_deployment(f"dep-{d}", day(3, d, 10)) for d in deployment_days]
    records += [
        _deployment("dep-again", day(3, deployment_days[0], 15)),
        _deployment("dep-failed", day(3, 20, 10), result="failure"),
    ]
    return records


def test_continuous_delivery_fires_when_delivery_waits_and_deploys_are_rare(store: Store) -> None:
    """Window 1-29 Mar = 4 weeks. Deployment days 3, 10, 17 Mar (4 successful deployments on 3 days):
    mean 3 / 4 = 0.75 deployment days a week < 1. Items: P1 (6 d), P2 (4 d), P3 (2 d)."""
    insight = _fire(store, FOUR_WEEKS, continuous_delivery, _delivery([3, 10, 17]))
    assert insight is not None
    assert insight.title == "Payments: continuous delivery"
    assert insight.figure == pytest.approx(0.75)
    assert insight.items == ["P1", "P2", "P3"]
    assert "4 production deployments on 0.75 days a week" in insight.evidence


def test_continuous_delivery_does_not_fire_at_one_deployment_day_a_week(store: Store) -> None:
    """Same, with a fourth deployment day (24 Mar): 4 / 4 = 1.0 day a week, not fewer than 1."""
    assert _fire(store, FOUR_WEEKS, continuous_delivery, _delivery([3, 10, 17, 24])) is None
    assert gather(store, FOUR_WEEKS, PAY, "Payments").bottleneck_category() == "delivery"
    assert deployment_frequency(store, FOUR_WEEKS, PAY).mean_deployment_days_per_week == pytest.approx(1.0)


# --- Self-service environments ----------------------------------------------------------------------


def _integration(s1_blocked_from: int) -> list[Record]:
    """S1: Blocked (waiting, integration) → In Progress 6 → Ready for Test 7 → Testing 9 → Done 10:
    integration wait 6 − `s1_blocked_from` d, verification wait 2 d.
    S2: Blocked 3 → In Progress 5 → Ready for Test 6 → Testing 8 → Done 9: integration 2 d, verification 2 d.
    """
    return [
        *item(
            "S1",
            day(3, 1),
            [
                (day(3, s1_blocked_from), "Blocked"),
                (day(3, 6), "In Progress"),
                (day(3, 7), "Ready for Test"),
                (day(3, 9), "Testing"),
                (day(3, 10), "Done"),
            ],
        ),
        *item(
            "S2",
            day(3, 1),
            [
                (day(3, 3), "Blocked"),
                (day(3, 5), "In Progress"),
                (day(3, 6), "Ready for Test"),
                (day(3, 8), "Testing"),
                (day(3, 9), "Done"),
            ],
        ),
    ]


def test_self_service_environments_fires_when_integration_is_the_bottleneck(store: Store) -> None:
    """S1 blocked from 2 Mar: integration wait 4 + 2 = 6 d, verification 2 + 2 = 4 d → integration is the
    bottleneck with 6 / 10 = 0.6 of the committed wait. Items: S1 (4 d), S2 (2 d)."""
    insight = _fire(store, MARCH, self_service_environments, _integration(2))
    assert insight is not None
    assert insight.title == "Payments: self-service environments"
    assert insight.figure == pytest.approx(0.6)
    assert insight.items == ["S1", "S2"]


def test_self_service_environments_does_not_fire_when_verification_waits_longer(store: Store) -> None:
    """S1 blocked from 5 Mar: integration 1 + 2 = 3 d < verification 4 d → verification is the bottleneck."""
    assert _fire(store, MARCH, self_service_environments, _integration(5)) is None
    bottleneck = gather(store, MARCH, PAY, "Payments").map.bottleneck
    assert bottleneck is not None
    assert (bottleneck.stage, bottleneck.wait_share) == ("verification", pytest.approx(4 / 7))


# --- Automated checklists instead of CABs -----------------------------------------------------------


def _gates(gate_hours: list[int]) -> list[Record]:
    """Commit n deployed to staging, then to production `gate_hours[n]` later (production at 10 Mar + n d,
    12:00). Commit 0 also had a failed staging deployment 5 days before (not a successful pre-production
    deployment: it does not count)."""
    records: list[Record] = []
    for n, hours in enumerate(gate_hours):
        sha = f"{n}abcdef0"
        production = datetime(2025, 3, 10 + n, 12)
        records.append(_deployment(f"prod-{n}", production, sha=sha))
        records.append(
            _deployment(f"stg-{n}", production - timedelta(hours=hours), sha=sha, environment="staging")
        )
    records.append(_deployment("stg-failed", datetime(2025, 3, 5, 12), "failure", "staging", "0abcdef0"))
    return records


def test_automated_checklists_fires_on_a_median_gate_over_a_day(store: Store) -> None:
    """Gates 48 h, 36 h, 12 h → median 36 h = 129 600 s > 1 d. Items: the production deployments that
    waited over a day, longest first: prod-0 (48 h), prod-1 (36 h)."""
    insight = _fire(store, MARCH, automated_checklists, _gates([48, 36, 12]))
    assert insight is not None
    assert insight.title == "Payments: automated checklists instead of change advisory boards"
    assert insight.figure == pytest.approx(36 * HOUR)
    assert insight.unit == "seconds"
    assert insight.items == ["test:prod-0", "test:prod-1"]


def test_automated_checklists_does_not_fire_on_a_median_gate_of_a_day(store: Store) -> None:
    """Gates 48 h, 24 h, 12 h → median exactly 1 d: not over a day."""
    assert _fire(store, MARCH, automated_checklists, _gates([48, 24, 12])) is None


# --- Swarming on incidents ---------------------------------------------------------------------------


def _incidents(restore_hours: list[int]) -> list[Record]:
    """Incident n of pay-api opened 5 Mar + 3n d at 08:00, resolved `restore_hours[n]` later; plus one of
    another service (not the stream's) open for 100 h."""
    records: list[Record] = []
    for n, hours in enumerate([*restore_hours, 100]):
        opened = datetime(2025, 3, 5 + 3 * n, 8)
        records.append(
            Incident(
                source="test",
                external_id=f"I{n}",
                title=f"incident {n}",
                service="pay-api" if n < len(restore_hours) else "web",
                status="resolved",
                created_at=opened,
                resolved_at=opened + timedelta(hours=hours),
            )
        )
    return records


def test_swarming_fires_on_a_slow_median_time_to_restore(store: Store) -> None:
    """Time to restore 30 h, 26 h, 2 h → median 26 h > 1 d (no failed deployments). Items: incidents
    restored after over a day, slowest first: I0 (30 h), I1 (26 h)."""
    insight = _fire(store, MARCH, swarming_on_incidents, _incidents([30, 26, 2]))
    assert insight is not None
    assert insight.title == "Payments: swarming on incidents"
    assert insight.figure == pytest.approx(26 * HOUR)
    assert insight.items == ["test:I0", "test:I1"]


def test_swarming_does_not_fire_on_a_median_time_to_restore_of_a_day(store: Store) -> None:
    """Time to restore 30 h, 24 h, 2 h → median 24 h: not over a day."""
    assert _fire(store, MARCH, swarming_on_incidents, _incidents([30, 24, 2])) is None
    assert recovery_time(store, MARCH, PAY).time_to_restore.p50 == pytest.approx(24 * HOUR)


def _failed_deployments(third_recovery_hours: int) -> list[Record]:
    """Production deployments of pay-api: F0 fails 3 Mar 12:00, next success 5 Mar 12:00 (48 h);
    F1 fails 10 Mar 12:00, next success 14:00 (2 h); F2 fails 20 Mar 12:00, next success
    `third_recovery_hours` later."""
    f2 = datetime(2025, 3, 20, 12)
    return [
        _deployment("F0", day(3, 3, 12), "failure"),
        _deployment("OK0", day(3, 5, 12)),
        _deployment("F1", day(3, 10, 12), "failure"),
        _deployment("OK1", day(3, 10, 14)),
        _deployment("F2", f2, "failure"),
        _deployment("OK2", f2 + timedelta(hours=third_recovery_hours)),
    ]


def test_swarming_fires_on_a_slow_median_failed_deployment_recovery(store: Store) -> None:
    """Recovery 48 h, 2 h, 30 h → median 30 h > 1 d (no incidents). Items: F0 (48 h), F2 (30 h)."""
    insight = _fire(store, MARCH, swarming_on_incidents, _failed_deployments(30))
    assert insight is not None
    assert insight.figure == pytest.approx(30 * HOUR)
    assert insight.items == ["test:F0", "test:F2"]


def test_swarming_does_not_fire_on_a_median_recovery_of_a_day(store: Store) -> None:
    """Recovery 48 h, 2 h, 24 h → median 24 h: not over a day."""
    assert _fire(store, MARCH, swarming_on_incidents, _failed_deployments(24)) is None
    assert recovery_time(store, MARCH, PAY).failed_deployment_recovery.p50 == pytest.approx(24 * HOUR)


def _caused_by(incident: str, deployment: str) -> TraceLink:
    return TraceLink(
        source="test",
        external_id=f"{incident}>{deployment}",
        from_kind="incident",
        from_id=f"test:{incident}",
        to_kind="deployment",
        to_id=f"test:{deployment}",
        link_kind="caused_by",
        evidence="explicit",
        confidence=1.0,
    )


def test_swarming_lists_the_deployments_the_recovery_figure_counts_as_slow(store: Store) -> None:
    """Recovery follows the figure's rule — the incidents a deployment caused resolved, else the next
    success:
    F0 rolled back 3 Mar 12:00, caused IA (13:00-15:00): recovered 3 h (not the next success, 48 h later);
    F1 succeeded 10 Mar 12:00, caused IB (13:00 → 11 Mar 18:00): 30 h (not the next success 2 h later);
    F2 failed 20 Mar 12:00, next success 21 Mar 14:00: 26 h.
    Recovery [3, 30, 26] h → median 26 h; time to restore IA 2 h, IB 29 h → median 15.5 h; figure 26 h.
    Items: IB (29 h), then F1 (30 h) and F2 (26 h) — not F0."""
    incidents = [
        Incident(
            source="test",
            external_id=name,
            title=name,
            service="pay-api",
            status="resolved",
            created_at=opened,
            resolved_at=resolved,
        )
        for name, opened, resolved in (
            ("IA", day(3, 3, 13), day(3, 3, 15)),
            ("IB", day(3, 10, 13), day(3, 11, 18)),
        )
    ]
    records: list[Record] = [
        _deployment("F0", day(3, 3, 12), "rolled_back"),
        _deployment("OK0", day(3, 5, 12)),
        _deployment("F1", day(3, 10, 12)),
        _deployment("OK1", day(3, 10, 14)),
        _deployment("F2", day(3, 20, 12), "failure"),
        _deployment("OK2", day(3, 21, 14)),
        *incidents,
        _caused_by("IA", "F0"),
        _caused_by("IB", "F1"),
    ]
    insight = _fire(store, MARCH, swarming_on_incidents, records)
    assert insight is not None
    assert insight.figure == pytest.approx(26 * HOUR)
    assert insight.items == ["test:IB", "test:F1", "test:F2"]
    assert insight.evidence == (
        "median recovery 26.0 h; 1 incident and 2 failed deployments took more than a day to recover"
    )
    rows = evidence(store, "dora", "recovery", MARCH, PAY).rows
    slow = [r.id for r in rows if isinstance(r, FailedDeploymentEvidence) and (r.recovery_time or 0) > DAY]
    assert sorted(slow) == ["test:F1", "test:F2"]  # the figure's own evidence rows agree


# --- DevSecOps ---------------------------------------------------------------------------------------


def _risks(fresh: int) -> list[Record]:
    """Completed F1, F2, F3: In Progress 2/3/4 Mar → Done 2 d later: flow times 2 d each → p85 = 2 d.
    Risk items in progress at 1 Apr: R1 since 10 Mar (22 d old), R2 since 20 Mar (12 d), and `fresh`
    since 31 Mar 12:00 (0.5 d). Not counted: an aging feature in progress (OLD, since 5 Mar) and a risk
    in the backlog (RB, never started)."""
    records: list[Record] = []
    for n in (1, 2, 3):
        records += item(f"F{n}", day(3, 1), [(day(3, 1 + n), "In Progress"), (day(3, 3 + n), "Done")])
    records += item("R1", day(3, 1), [(day(3, 10), "In Progress")], flow_item_type="risk")
    records += item(
        "R2", day(3, 1), [(day(3, 20), "In Progress"), (day(3, 21), "Blocked")], flow_item_type="risk"
    )
    for n in range(fresh):
        records += item(f"RF{n}", day(3, 1), [(day(3, 31, 12), "In Progress")], flow_item_type="risk")
    records += item("OLD", day(3, 1), [(day(3, 5), "In Progress")])
    records += item("RB", day(3, 1), [(day(3, 1), "Backlog")], flow_item_type="risk")
    return records


def test_devsecops_fires_when_a_quarter_of_risk_items_are_aging(store: Store) -> None:
    """2 aging risk items of 2 + 6 in progress = 0.25 ≥ 25 %. Items, oldest first: R1, R2."""
    insight = _fire(store, MARCH, devsecops, _risks(6))
    assert insight is not None
    assert insight.title == "Payments: DevSecOps"
    assert insight.figure == pytest.approx(0.25)
    assert insight.items == ["R1", "R2"]
    assert "2 of 8 risk items in progress are older than 2.0 d" in insight.evidence


def test_devsecops_does_not_fire_just_under_a_quarter(store: Store) -> None:
    """2 aging of 2 + 7 = 0.222 < 25 %."""
    assert _fire(store, MARCH, devsecops, _risks(7)) is None
    assert flow_time(store, MARCH, PAY).flow_time.p85 == pytest.approx(2 * DAY)


# --- Organise around value streams -------------------------------------------------------------------


def _teams() -> list[Record]:
    """Team pay (aligned to stream pay) with Pia and Paul; team ops (aligned to stream ops) with Oscar
    and a bot."""
    return [
        *stream("ops", "Operations", ["OPS"]),
        Team(source="test", external_id="pay-team", name="pay", value_stream_id="test:pay"),
        Team(source="test", external_id="ops-team", name="ops", value_stream_id="test:ops"),
        _person("pia", "pay-team"),
        _person("paul", "pay-team"),
        _person("oscar", "ops-team"),
        _person("opsbot", "ops-team", bot=True),
    ]


def _crossing(aligned_only: int) -> list[Record]:
    """O1: moved by Pia, Oscar (ops), Paul. O2: Pia, the ops bot (bots are left out), Paul. `aligned_only`
    more items moved by Pia and Paul only. All: In Progress 3 → In Review 5 → Done 7 Mar. OPEN: moved by
    Oscar but not completed (not counted)."""
    history = [(day(3, 3), "In Progress"), (day(3, 5), "In Review"), (day(3, 7), "Done")]
    records = _teams()
    records += _moved_by(item("O1", day(3, 1), history), ["pia", "oscar", "paul"])
    records += _moved_by(item("O2", day(3, 1), history), ["pia", "opsbot", "paul"])
    for n in range(aligned_only):
        records += _moved_by(item(f"A{n}", day(3, 1), history), ["pia", "paul", "paul"])
    records += _moved_by(item("OPEN", day(3, 1), history[:2]), ["oscar", "oscar"])
    return records


def test_organise_around_value_streams_fires_at_a_fifth_of_items_crossing_teams(store: Store) -> None:
    """Completed items moved by people with a team: O1, O2 and 3 more = 5; moved by a team aligned
    elsewhere: O1 → 1/5 = 0.2 ≥ 20 %. Items: O1."""
    insight = _fire(store, MARCH, organise_around_value_streams, _crossing(3))
    assert insight is not None
    assert insight.title == "Payments: organise teams around the value stream"
    assert insight.figure == pytest.approx(0.2)
    assert insight.items == ["O1"]


def test_organise_around_value_streams_does_not_fire_just_under_a_fifth(store: Store) -> None:
    """One more aligned item: 1/6 ≈ 0.167 < 20 %."""
    assert _fire(store, MARCH, organise_around_value_streams, _crossing(4)) is None


# --- Waste: non-utilized talent, transportation, inventory -------------------------------------------


def test_non_utilized_talent_is_the_top_fifth_of_reviewers_share(store: Store) -> None:
    """Changes by Alice in pay/api, reviews in March: Rita 5, Sam 3, Tom, Uma, Vic, Wes 1 each = 12
    (six reviewers → top ceil(6 × 0.2) = 2: Rita and Sam, 8 reviews). Left out: 4 by a bot, 3 by Alice
    on her own change, 2 by Rita in February. 8/12 ≈ 0.667 → medium (50 % ≤ x < 70 %)."""
    people = ["alice", "rita", "sam", "tom", "uma", "vic", "wes"]
    records: list[Record] = [*_scopes(), *(_person(p) for p in people), _person("bot", bot=True)]
    records += [
        Change(
            source="test",
            external_id=f"pr-{n}",
            repo="pay/api",
            number=n,
            title=f"change {n}",
            author_id="test:alice",
            state="open",
            created_at=day(2, 20),
        )
        for n in range(2)
    ]
    counts = {"rita": 5, "sam": 3, "tom": 1, "uma": 1, "vic": 1, "wes": 1, "bot": 4, "alice": 3}
    for reviewer, count in counts.items():
        for n in range(count):
            records.append(
                Review(
                    source="test",
                    external_id=f"{reviewer}-{n}",
                    change_id=f"test:pr-{n % 2}",
                    reviewer_id=f"test:{reviewer}",
                    state="approved",
                    submitted_at=day(3, 2 + n),
                )
            )
    records += [
        Review(
            source="test",
            external_id=f"rita-feb-{n}",
            change_id="test:pr-0",
            reviewer_id="test:rita",
            state="commented",
            submitted_at=day(2, 21 + n),
        )
        for n in range(2)
    ]
    store.upsert_records(records)
    signal = non_utilized_talent(store, MARCH, PAY)
    assert signal.figure == pytest.approx(8 / 12)
    assert signal.severity is Severity.MEDIUM
    assert signal.items == ["test:rita", "test:sam"]
    assert "the top 2 of 6 reviewers did 8 of the 12 reviews" in signal.explanation


def test_transportation_is_completed_items_changing_team(store: Store) -> None:
    """Teams a (Ann) and b (Ben, and a bot); each item In Progress 3 → In Review 5 → Done 7 Mar.
    T1 moved by Ann, Ben, Ben: 1 handoff. T2 Ann, Ann, Ann: none. T3 Ben, Ann, Ben: 2 handoffs.
    T4 no authors: not in the denominator. T5 Ann, bot of b, Ann: bots left out, none.
    → 2 of 4 = 0.5 → high (≥ 40 %). Items, most handoffs first: T3, T1; 3 handoffs."""
    history = [(day(3, 3), "In Progress"), (day(3, 5), "In Review"), (day(3, 7), "Done")]
    records: list[Record] = [
        *_scopes(),
        Team(source="test", external_id="a", name="a"),
        Team(source="test", external_id="b", name="b"),
        _person("ann", "a"),
        _person("ben", "b"),
        _person("bbot", "b", bot=True),
    ]
    records += _moved_by(item("T1", day(3, 1), history), ["ann", "ben", "ben"])
    records += _moved_by(item("T2", day(3, 1), history), ["ann", "ann", "ann"])
    records += _moved_by(item("T3", day(3, 1), history), ["ben", "ann", "ben"])
    records += item("T4", day(3, 1), history)
    records += _moved_by(item("T5", day(3, 1), history), ["ann", "bbot", "ann"])
    store.upsert_records(records)
    signal = transportation(store, MARCH, PAY)
    assert signal.figure == pytest.approx(0.5)
    assert signal.severity is Severity.HIGH
    assert signal.items == ["T3", "T1"]
    assert "2 of 4 completed items" in signal.explanation
    assert "(3 handoffs between teams)" in signal.explanation


def test_inventory_is_aging_work_and_stale_open_changes(store: Store) -> None:
    """Completed C1, C2, C3 (flow time 2 d each) → p85 2 d. In progress at 1 Apr: W1 (In Progress since
    10 Mar, aging), W2 (since 31 Mar 12:00, 0.5 d), W3 (In Progress 20 Mar → Blocked 21 Mar, aging);
    W4 in the backlog is not in progress → 2 aging of 3.
    Open changes at 1 Apr (stale: no update since 18 Mar): #1 opened 1 Mar, commit 5 Mar → stale;
    #2 opened 1 Mar, review 25 Mar → fresh; #4 opened 1 Mar, comment 20 Mar → fresh; #5 opened 1 Feb,
    comment 2 Apr (after the window) → stale. #3, merged 10 Mar, is not open.
    → (2 + 2) / (3 + 4) = 4/7 ≈ 0.571 → high (≥ 30 %). Items: W1, W3 (oldest start first), then the
    stale changes, least recently updated first: #5, #1."""
    records: list[Record] = [*_scopes()]
    for n in (1, 2, 3):
        records += item(f"C{n}", day(3, 1), [(day(3, 1 + n), "In Progress"), (day(3, 3 + n), "Done")])
    records += item("W1", day(3, 1), [(day(3, 10), "In Progress")])
    records += item("W2", day(3, 1), [(day(3, 31, 12), "In Progress")])
    records += item("W3", day(3, 1), [(day(3, 20), "In Progress"), (day(3, 21), "Blocked")])
    records += item("W4", day(3, 1), [(day(3, 1), "Backlog")])

    def change(number: int, opened: datetime, state: str = "open", merged: datetime | None = None) -> Change:
        return Change(
            source="test",
            external_id=f"pr-{number}",
            repo="pay/api",
            number=number,
            title=f"change {number}",
            state=state,
            created_at=opened,
            merged_at=merged,
            closed_at=merged,
        )

    records += [
        change(1, day(3, 1)),
        Commit(
            source="test",
            external_id="c1",
            repo="pay/api",
            sha="c1aaaaaa",
            message="x",
            authored_at=day(3, 5),
        ),
        ChangeCommit(source="test", external_id="pr-1-c1", change_id="test:pr-1", commit_sha="c1aaaaaa"),
        change(2, day(3, 1)),
        Review(
            source="test", external_id="r2", change_id="test:pr-2", state="approved", submitted_at=day(3, 25)
        ),
        change(3, day(3, 1), "merged", day(3, 10)),
        change(4, day(3, 1)),
        ChangeComment(source="test", external_id="m4", change_id="test:pr-4", created_at=day(3, 20)),
        change(5, day(2, 1)),
        ChangeComment(source="test", external_id="m5", change_id="test:pr-5", created_at=day(4, 2)),
    ]
    store.upsert_records(records)
    signal = inventory(store, MARCH, PAY)
    assert signal.figure == pytest.approx(4 / 7)
    assert signal.severity is Severity.HIGH
    assert signal.items == ["W1", "W3", "pay/api#5", "pay/api#1"]
    assert "2 of 3 items in progress are older than the p85 flow time (2.0 d)" in signal.explanation
    assert "2 of 4 open changes had no update for 14 days" in signal.explanation
