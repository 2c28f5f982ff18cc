"""DORA metrics on a hand-made March 2025 for service `api` (stream `pay`); every figure by hand.

Production deployments of api (12:00 each unless said):
  D0 20 Feb success (before the window) · D1 3 Mar success · D2 5 Mar failure · D3 6 Mar success
  D4 10 Mar success, caused incident I1 (explicit link) · D5 12 Mar rolled back, then R5 12 Mar 13:00
  (a rollback deployment, success) · D6 20 Mar success · D7 22 Mar canceled.
  Also: a staging deployment of api, and W1 10 Mar of service `web` (another stream).
Incidents: I1 api 10 Mar 14:00-18:00 (caused by D4); I2 api 15 Mar 10:00-12:00, a provider outage
  (change_caused false) wrongly linked to D6; I3 api 25 Mar, unresolved.

Deployment frequency: D1, D3, D4, D6 = 4 on 4 days; per day 4/31; weeks from 1 Mar [2, 1, 1, 0, 0]:
  median 1, mean 4/(31/7). 2023: mean < 1 day/week, ≥ once a month → medium; 2021: ≥ 1/30 per day → high.
Change failure rate: D1..D6 (R5 is a rollback, D7 canceled) = 6; failed D2 (failure), D4 (incident),
  D5 (rolled back) = 3 → 0.5; D6's link is from a provider outage and does not count.
Failed deployment recovery: D2 → D3 24 h; D4 → I1 resolved 6 h; D5 → R5 1 h: median 6 h.
Time to restore: I1 4 h, I2 2 h (I3 unresolved): median 3 h.
Lead time for changes (first commit → first successful production deployment that ships it):
  C1 commits 1 Mar 09:00, 2 Mar 09:00; opened 2 Mar 10:00; reviews: bot 10:05, author 11:00, Rita 14:00;
     merged 3 Mar 09:00; shipped by D1: lead 51 h; coding 25 h, pickup 4 h, review 19 h, deploy 3 h.
  C2 commit 4 Mar 10:00; opened 11:00; reviewed 12:00; merged 15:00; shipped by D3 (D2 failed):
     lead 50 h; coding 1 h, pickup 1 h, review 3 h, deploy 45 h. It fixes defect BUG-1.
  C3 commit 9 Mar 12:00; opened 13:00; merged 18:00; no review; shipped by D4 and again by D6:
     lead 24 h (first deployment counts); coding 1 h, deploy 18 h.
  C4 shipped by D0 in February: outside the window.
  C5 commit authored 25 Mar (a clock error); opened 19 Mar 12:00, merged 13:00, shipped by D6:
     lead and coding negative → excluded; deploy 23 h.
  Lead [24, 50, 51] h → median 50 h (2023 and 2021: high). Coding [1, 1, 25] h, 1 excluded.
  Pickup [1, 4] h → 2.5 h. Review [3, 19] h → 11 h. Deploy [3, 18, 23, 45] h → 20.5 h.
Rework rate: of D1, D3, D4, D6, only D3 ships a defect fix (C2) → 1/4.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from obeya.engine.dora import (
    change_failure_rate,
    deployment_frequency,
    dora_report,
    lead_time_for_changes,
    recovery_time,
    rework_rate,
)
from obeya.engine.window import Slice, Window
from obeya.model import (
    Change,
    ChangeCommit,
    Commit,
    Deployment,
    DeploymentChange,
    Incident,
    Person,
    Record,
    Review,
    Scope,
    TraceLink,
)
from obeya.store import Store
from tests.engine.builders import day, item, stream

HOUR = 3600.0
MARCH = Window(datetime(2025, 3, 1), datetime(2025, 4, 1))
PAY = Slice(value_stream_id="test:pay")


def _deployment(
    name: str,
    at: datetime,
    result: str = "success",
    service: str = "api",
    environment: str = "production",
    rollback: bool = False,
) -> Deployment:
    return Deployment(
        source="test",
        external_id=name,
        service=service,
        environment=environment,
        environment_class="production" if environment == "production" else "staging",
        repo=f"acme/{service}",
        commit_sha=f"{name.lower()}0000000",
        result=result,
        is_rollback=rollback,
        started_at=at,
        finished_at=at,
    )


def _change(
    name: str, opened: datetime, merged: datetime, commits: list[datetime], shipped_by: list[str]
) -> list[Record]:
    records: list[Record] = [
        Change(
            source="test",
            external_id=name,
            repo="acme/api",
            number=int(name[1:]),
            title=name,
            author_id="test:alice",
            state="merged",
            created_at=opened,
            merged_at=merged,
        )
    ]
    for n, authored in enumerate(commits):
        sha = f"{name.lower()}{n}aaaaaaa"
        records.append(
            Commit(
                source="test", external_id=sha, repo="acme/api", sha=sha, message=name, authored_at=authored
            )
        )
        records.append(
            ChangeCommit(source="test", external_id=f"{name}-{n}", change_id=f"test:{name}", commit_sha=sha)
        )
    records += [
        DeploymentChange(
            source="test", external_id=f"{d}>{name}", deployment_id=f"test:{d}", change_id=f"test:{name}"
        )
        for d in shipped_by
    ]
    return records


def _review(change: str, reviewer: str, at: datetime) -> Review:
    return Review(
        source="test",
        external_id=f"{change}-{reviewer}-{at:%d%H%M}",
        change_id=f"test:{change}",
        reviewer_id=f"test:{reviewer}",
        state="approved",
        submitted_at=at,
    )


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


def _scenario() -> list[Record]:
    records = stream("pay", "Payments", ["PAY"])
    records += [
        Scope(
            source="test",
            external_id="pay-api",
            value_stream_id="test:pay",
            tool="pagerduty",
            object_type="service",
            object_key="api",
        ),
        Person(source="test", external_id="alice", display_name="Alice"),
        Person(source="test", external_id="rita", display_name="Rita"),
        Person(source="test", external_id="bot", display_name="review-bot", is_bot=True),
        _deployment("D0", day(2, 20, 12)),
        _deployment("D1", day(3, 3, 12)),
        _deployment("D2", day(3, 5, 12), "failure"),
        _deployment("D3", day(3, 6, 12)),
        _deployment("D4", day(3, 10, 12)),
        _deployment("D5", day(3, 12, 12), "rolled_back"),
        _deployment("R5", day(3, 12, 13), rollback=True),
        _deployment("D6", day(3, 20, 12)),
        _deployment("D7", day(3, 22, 12), "canceled"),
        _deployment("S1", day(3, 4, 12), environment="staging"),
        _deployment("W1", day(3, 10, 12), service="web"),
        Incident(
            source="test",
            external_id="I1",
            title="errors",
            service="api",
            status="resolved",
            created_at=day(3, 10, 14),
            resolved_at=day(3, 10, 18),
        ),
        Incident(
            source="test",
            external_id="I2",
            title="provider down",
            service="api",
            status="resolved",
            created_at=day(3, 15, 10),
            resolved_at=day(3, 15, 12),
            change_caused=False,
        ),
        Incident(
            source="test",
            external_id="I3",
            title="slow",
            service="api",
            status="open",
            created_at=day(3, 25, 10),
        ),
        _caused_by("I1", "D4"),
        _caused_by("I2", "D6"),
    ]
    records += _change("C1", day(3, 2, 10), day(3, 3, 9), [day(3, 1, 9), day(3, 2, 9)], ["D1"])
    records += [
        _review("C1", "bot", datetime(2025, 3, 2, 10, 5)),
        _review("C1", "alice", day(3, 2, 11)),
        _review("C1", "rita", day(3, 2, 14)),
    ]
    records += _change("C2", day(3, 4, 11), day(3, 4, 15), [day(3, 4, 10)], ["D3"])
    records.append(_review("C2", "rita", day(3, 4, 12)))
    records += _change("C3", day(3, 9, 13), day(3, 9, 18), [day(3, 9, 12)], ["D4", "D6"])
    records += _change("C4", day(2, 18, 10), day(2, 19, 10), [day(2, 18, 9)], ["D0"])
    records += _change("C5", day(3, 19, 12), day(3, 19, 13), [day(3, 25, 9)], ["D6"])
    records += item("BUG-1", day(3, 3), [(day(3, 3), "In Progress")], "defect")
    records.append(
        TraceLink(
            source="test",
            external_id="bug1>c2",
            from_kind="work_item",
            from_id="test:BUG-1",
            to_kind="change",
            to_id="test:C2",
            link_kind="implemented_by",
            evidence="title mentions BUG-1",
            confidence=0.95,
        )
    )
    return records


@pytest.fixture
def scenario(store: Store) -> Store:
    store.upsert_records(_scenario())
    return store


def test_deployment_frequency_and_ratings(scenario: Store) -> None:
    frequency = deployment_frequency(scenario, MARCH, PAY)
    assert frequency.deployments == 4
    assert frequency.deployment_days == 4
    assert frequency.per_day == pytest.approx(4 / 31)
    assert frequency.median_deployment_days_per_week == 1.0
    assert frequency.mean_deployment_days_per_week == pytest.approx(4 / (31 / 7))
    assert [(r.year, r.level) for r in frequency.ratings] == [(2023, "medium"), (2021, "high")]


def test_deployment_frequency_of_a_service_outside_the_stream(scenario: Store) -> None:
    assert deployment_frequency(scenario, MARCH, Slice(service="web")).deployments == 1
    assert deployment_frequency(scenario, MARCH).deployments == 5


def test_change_failure_rate_counts_failures_rollbacks_and_incidents_not_outages(scenario: Store) -> None:
    cfr = change_failure_rate(scenario, MARCH, PAY)
    assert (cfr.rate.numerator, cfr.rate.denominator) == (3, 6)
    assert (cfr.failed, cfr.rolled_back, cfr.caused_incident) == (1, 1, 1)
    assert [(r.year, r.level) for r in cfr.ratings] == [(2023, "low"), (2021, "low")]


def test_recovery_times(scenario: Store) -> None:
    recovery = recovery_time(scenario, MARCH, PAY)
    assert recovery.failed_deployment_recovery.count == 3
    assert recovery.failed_deployment_recovery.p50 == pytest.approx(6 * HOUR)
    assert recovery.unrecovered_deployments == 0
    assert recovery.time_to_restore.count == 2
    assert recovery.time_to_restore.p50 == pytest.approx(3 * HOUR)
    assert recovery.unresolved_incidents == 1
    assert [(r.year, r.level) for r in recovery.ratings] == [(2023, "high"), (2021, "high")]


def test_lead_time_for_changes_and_its_parts(scenario: Store) -> None:
    lead = lead_time_for_changes(scenario, MARCH, PAY)
    assert lead.lead_time.count == 3
    assert lead.lead_time.p50 == pytest.approx(50 * HOUR)
    assert lead.lead_time.excluded == 1
    assert (lead.coding.count, lead.coding.p50, lead.coding.excluded) == (3, pytest.approx(HOUR), 1)
    assert lead.pickup.count == 2 and lead.pickup.p50 == pytest.approx(2.5 * HOUR)
    assert lead.review.count == 2 and lead.review.p50 == pytest.approx(11 * HOUR)
    assert lead.deploy.count == 4 and lead.deploy.p50 == pytest.approx(20.5 * HOUR)
    assert [(r.year, r.level) for r in lead.ratings] == [(2023, "high"), (2021, "high")]


def test_pickup_ignores_bots_and_the_author(scenario: Store) -> None:
    lead = lead_time_for_changes(scenario, Window(day(3, 3), day(3, 4)), PAY)  # only C1 (deployed 3 Mar)
    assert lead.pickup.count == 1 and lead.pickup.p50 == pytest.approx(4 * HOUR)


def test_rework_rate(scenario: Store) -> None:
    rework = rework_rate(scenario, MARCH, PAY)
    assert (rework.numerator, rework.denominator) == (1, 4)


def test_empty_window_is_no_data(scenario: Store) -> None:
    january = Window(datetime(2025, 1, 1), datetime(2025, 2, 1))
    report = dora_report(scenario, january, PAY)
    assert report.deployment_frequency.per_day is None and report.deployment_frequency.ratings == []
    assert report.lead_time_for_changes.lead_time.p50 is None
    assert report.change_failure_rate.rate.value is None and report.change_failure_rate.ratings == []
    assert report.recovery_time.failed_deployment_recovery.p50 is None
    assert report.rework_rate.value is None
