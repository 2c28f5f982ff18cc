"""One deployment that ships several repositories, stored as one row per repository (same service,
environment and finish), counts once in every DORA figure (docs/metrics.md, "DORA"); every figure by hand.

Production deployments of service shop in March 2025, each as two rows (shop/api, shop/web):
  E1 3 Mar 12:00 both succeed · E2 5 Mar 12:00 api fails, web succeeds · E3 6 Mar 12:00 both succeed ·
  E4 10 Mar 12:00 both succeed, incident I1 (13:00-17:00) attributed to the web row · E6 10 Mar 15:00
  both succeed — the first after I1 started, before it was resolved. And P5 3 Mar 12:00, one row of
  service pay: the same instant as E1, another deployment.
Deployment frequency: E1, E2 (it has a successful row), E3, E4, E6, P5 = 6 (11 rows), on 4 days.
Change failure rate: 6 deployments; failed E2 (a failed row) and E4 (an incident) → 2/6; failed 1,
  caused an incident 1.
Recovery: E2 → E3 24 h; E4 → I1 resolved 17:00, 5 h → count 2, median 14.5 h.
Rework: E6 answers I1 → 1/6 (one deployment, not two rows).
"""

from __future__ import annotations

from datetime import datetime

import pytest

from obeya.engine.dora import change_failure_rate, deployment_frequency, recovery_time, rework_rate
from obeya.engine.evidence import DeploymentEvidence, FailedDeploymentEvidence, evidence
from obeya.engine.window import Window
from obeya.model import Deployment, Incident, Record, TraceLink
from obeya.store import Store
from tests.engine.builders import day

HOUR = 3600.0
MARCH = Window(datetime(2025, 3, 1), datetime(2025, 4, 1))


def _row(name: str, repo: str, at: datetime, result: str = "success", service: str = "shop") -> Deployment:
    return Deployment(
        source="test",
        external_id=name,
        service=service,
        environment="production",
        environment_class="production",
        repo=repo,
        commit_sha=f"{name.lower().replace('-', '')}00000",
        result=result,
        started_at=at,
        finished_at=at,
    )


def _event(name: str, at: datetime, api_result: str = "success") -> list[Record]:
    return [_row(f"{name}-api", "shop/api", at, api_result), _row(f"{name}-web", "shop/web", at)]


@pytest.fixture
def scenario(store: Store) -> Store:
    records: list[Record] = [
        *_event("E1", day(3, 3, 12)),
        *_event("E2", day(3, 5, 12), "failure"),
        *_event("E3", day(3, 6, 12)),
        *_event("E4", day(3, 10, 12)),
        *_event("E6", day(3, 10, 15)),
        _row("P5", "pay/api", day(3, 3, 12), service="pay"),
        Incident(
            source="test",
            external_id="I1",
            title="errors",
            service="shop",
            status="resolved",
            created_at=day(3, 10, 13),
            resolved_at=day(3, 10, 17),
        ),
        TraceLink(
            source="test",
            external_id="I1>E4-web",
            from_kind="incident",
            from_id="test:I1",
            to_kind="deployment",
            to_id="test:E4-web",
            link_kind="caused_by",
            evidence="time rule",
            confidence=0.6,
        ),
    ]
    store.upsert_records(records)
    return store


def test_deployment_frequency_counts_a_deployment_of_several_repositories_once(scenario: Store) -> None:
    frequency = deployment_frequency(scenario, MARCH)
    assert (frequency.deployments, frequency.deployment_days) == (6, 4)
    assert frequency.per_day == pytest.approx(6 / 31)


def test_change_failure_rate_counts_it_once_and_failed_when_one_row_failed(scenario: Store) -> None:
    cfr = change_failure_rate(scenario, MARCH)
    assert (cfr.rate.numerator, cfr.rate.denominator) == (2, 6)
    assert (cfr.failed, cfr.rolled_back, cfr.caused_incident) == (1, 0, 1)


def test_recovery_counts_it_once(scenario: Store) -> None:
    recovery = recovery_time(scenario, MARCH).failed_deployment_recovery
    assert recovery.count == 2
    assert recovery.p50 == pytest.approx(14.5 * HOUR)


def test_rework_counts_it_once(scenario: Store) -> None:
    rework = rework_rate(scenario, MARCH)
    assert (rework.numerator, rework.denominator) == (1, 6)


def test_evidence_lists_one_row_per_deployment_with_its_stored_rows(scenario: Store) -> None:
    page = evidence(scenario, "dora", "change_failure_rate", MARCH)
    assert page.total == 6
    rows = {r.id: r for r in page.rows if isinstance(r, DeploymentEvidence)}
    e2 = rows["test:E2-api"]
    assert (e2.result, e2.failed, e2.repo) == ("failure", True, "shop/api,shop/web")
    assert e2.deployment_ids == ["test:E2-api", "test:E2-web"]
    assert rows["test:E4-api"].caused_incident_ids == ["test:I1"]
    assert [r.id for r in rows.values() if r.rework] == ["test:E6-api"]
    recovered = [r for r in evidence(scenario, "dora", "recovery", MARCH).rows]
    assert [(r.id, r.recovery_time) for r in recovered if isinstance(r, FailedDeploymentEvidence)] == [
        ("test:E2-api", pytest.approx(24 * HOUR)),
        ("test:E4-web", pytest.approx(5 * HOUR)),
    ]
