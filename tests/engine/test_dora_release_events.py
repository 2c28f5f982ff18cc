"""A release or pipeline run that deploys several repositories, its rows finishing seconds apart, is one
deployment finished at its last row's finish (docs/metrics.md, "One deployment, several rows"): in every
DORA figure, the evidence, the automated-checklists recommendation and the traceability coverage. Every
figure by hand, on both engines.

Production deployments of service shop (repositories shop/api and shop/web), 2025:
  R1  release rel-1: api 3 Mar 12:00:00, web 12:00:40, both succeed → one deployment, 12:00:40.
  R2  pipeline run run-2: api 5 Mar 12:00:00 fails, web 12:00:30 succeeds → one deployment, failed,
      12:00:30; then api again under the same run, 14:00:00, succeeds: a second row of shop/api under
      run-2, so another deployment (the retry).
  U3  no release, no run: api and web both 10 Mar 12:00:00 → one deployment (same finish).
  U4  no release, no run: api 12 Mar 12:00:00, web 12:00:20 → two deployments (nothing ties them).
  E   release rel-e: api 31 Mar 23:59:50, web 1 Apr 00:00:10 → one deployment, in April.
Incident I1 of shop, 3 Mar 11:00-13:00. Staging: R1's api commit 28 Feb 12:00, its web commit 1 Mar
12:00:40. R1's web row ships change C1, which implements work item W1.

March: deployments R1, R2, R2's retry, U3, U4 ×2 = 6, on 4 days (3, 5, 10, 12 March); change failure rate
1/6 (R2); recovery of R2: 12:00:30 → the retry 14:00:00 = 7 170 s (its web row, finished by R2's finish,
is not its recovery); rework 1/6: R1 is the deployment whose row (api 12:00:00) was the first after I1
began, before it was resolved. April: 1 deployment (E, both rows).
Automated checklists: R1 waited from its last commit's staging (1 Mar 12:00:40) to its finish (3 Mar
12:00:40) = 2 d, one deployment (per row it would be 3 d and 2 d, median 2.5 d over two).
Coverage, all time: successful production deployments R1, R2, retry, U3, U4 ×2, E = 7; R1 reaches W1 → 1/7.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from obeya.engine.dora import change_failure_rate, deployment_frequency, recovery_time, rework_rate
from obeya.engine.evidence import DeploymentEvidence, evidence
from obeya.engine.window import Slice, Window
from obeya.insights.recommendations import automated_checklists, gather
from obeya.linking import traceability_coverage
from obeya.model import Deployment, DeploymentChange, Incident, Record, Scope, TraceLink
from obeya.store import Store
from tests.engine.builders import stream

MARCH = Window(datetime(2025, 3, 1), datetime(2025, 4, 1))
APRIL = Window(datetime(2025, 4, 1), datetime(2025, 5, 1))
SHOP = Slice(value_stream_id="test:shop")


def _row(
    name: str,
    repo: str,
    at: datetime,
    result: str = "success",
    release: str | None = None,
    run: str | None = None,
    environment: str = "production",
) -> Deployment:
    return Deployment(
        source="test",
        external_id=name,
        service="shop",
        environment=environment,
        environment_class="production" if environment == "production" else "staging",
        repo=repo,
        commit_sha=f"{name.lower().replace('-', '')}0000",
        release_id=f"test:{release}" if release else None,
        pipeline_run_id=f"test:{run}" if run else None,
        result=result,
        started_at=at,
        finished_at=at,
    )


def _staged(name: str, of: Deployment, at: datetime) -> Deployment:
    return _row(name, str(of.repo), at, environment="staging").model_copy(
        update={"commit_sha": of.commit_sha}
    )


@pytest.fixture
def scenario(store: Store) -> Store:
    r1_api = _row("R1-api", "shop/api", datetime(2025, 3, 3, 12, 0, 0), release="rel-1")
    r1_web = _row("R1-web", "shop/web", datetime(2025, 3, 3, 12, 0, 40), release="rel-1")
    records: list[Record] = [
        *stream("shop", "Shop", ["SHOP"]),
        Scope(
            source="test",
            external_id="shop-service",
            value_stream_id="test:shop",
            tool="github",
            object_type="service",
            object_key="shop",
        ),
        r1_api,
        r1_web,
        _staged("S-api", r1_api, datetime(2025, 2, 28, 12)),
        _staged("S-web", r1_web, datetime(2025, 3, 1, 12, 0, 40)),
        _row("R2-api", "shop/api", datetime(2025, 3, 5, 12, 0, 0), "failure", run="run-2"),
        _row("R2-web", "shop/web", datetime(2025, 3, 5, 12, 0, 30), run="run-2"),
        _row("R2-api-retry", "shop/api", datetime(2025, 3, 5, 14, 0, 0), run="run-2"),
        _row("U3-api", "shop/api", datetime(2025, 3, 10, 12)),
        _row("U3-web", "shop/web", datetime(2025, 3, 10, 12)),
        _row("U4-api", "shop/api", datetime(2025, 3, 12, 12, 0, 0)),
        _row("U4-web", "shop/web", datetime(2025, 3, 12, 12, 0, 20)),
        _row("E-api", "shop/api", datetime(2025, 3, 31, 23, 59, 50), release="rel-e"),
        _row("E-web", "shop/web", datetime(2025, 4, 1, 0, 0, 10), release="rel-e"),
        Incident(
            source="test",
            external_id="I1",
            title="errors",
            service="shop",
            status="resolved",
            created_at=datetime(2025, 3, 3, 11),
            resolved_at=datetime(2025, 3, 3, 13),
        ),
        DeploymentChange(
            source="test", external_id="R1-web>C1", deployment_id="test:R1-web", change_id="test:C1"
        ),
        TraceLink(
            source="test",
            external_id="W1>C1",
            from_kind="work_item",
            from_id="test:W1",
            to_kind="change",
            to_id="test:C1",
            link_kind="implemented_by",
            evidence="change title mentions SHOP-1",
            confidence=0.95,
        ),
    ]
    store.upsert_records(records)
    return store


def test_deployment_frequency_counts_a_release_once_at_its_last_finish(scenario: Store) -> None:
    march = deployment_frequency(scenario, MARCH)
    assert (march.deployments, march.deployment_days) == (6, 4)
    assert march.per_day == pytest.approx(6 / 31)
    april = deployment_frequency(scenario, APRIL)
    assert (april.deployments, april.deployment_days) == (1, 1)


def test_change_failure_rate_and_recovery_count_a_run_once(scenario: Store) -> None:
    cfr = change_failure_rate(scenario, MARCH)
    assert (cfr.rate.numerator, cfr.rate.denominator) == (1, 6)
    assert (cfr.failed, cfr.rolled_back, cfr.caused_incident) == (1, 0, 0)
    recovery = recovery_time(scenario, MARCH).failed_deployment_recovery
    assert recovery.count == 1
    assert recovery.p50 == pytest.approx(7170.0)


def test_rework_finds_the_deployment_of_the_first_row_after_an_incident(scenario: Store) -> None:
    rework = rework_rate(scenario, MARCH)
    assert (rework.numerator, rework.denominator) == (1, 6)


def test_evidence_lists_one_row_per_release_and_run(scenario: Store) -> None:
    page = evidence(scenario, "dora", "change_failure_rate", MARCH)
    rows = {r.id: r for r in page.rows if isinstance(r, DeploymentEvidence)}
    assert page.total == 6
    assert sorted(rows) == [
        "test:R1-api",
        "test:R2-api",
        "test:R2-api-retry",
        "test:U3-api",
        "test:U4-api",
        "test:U4-web",
    ]
    r1, r2 = rows["test:R1-api"], rows["test:R2-api"]
    assert (r1.deployment_ids, r1.finished_at, r1.rework) == (
        ["test:R1-api", "test:R1-web"],
        datetime(2025, 3, 3, 12, 0, 40),
        True,
    )
    assert (r2.deployment_ids, r2.result, r2.failed, r2.finished_at) == (
        ["test:R2-api", "test:R2-web"],
        "failure",
        True,
        datetime(2025, 3, 5, 12, 0, 30),
    )
    assert rows["test:U3-api"].deployment_ids == ["test:U3-api", "test:U3-web"]
    april = evidence(scenario, "dora", "deployment_frequency", APRIL).rows
    assert [(r.id, r.deployment_ids) for r in april if isinstance(r, DeploymentEvidence)] == [
        ("test:E-api", ["test:E-api", "test:E-web"])
    ]


def test_automated_checklists_wait_from_a_releases_last_ready_commit(scenario: Store) -> None:
    insight = automated_checklists(scenario, MARCH, gather(scenario, MARCH, SHOP, "Shop"))
    assert insight is not None
    assert insight.figure == pytest.approx(2 * 86400.0)
    assert insight.items == ["test:R1-api"]
    assert "over 1 deployments" in insight.evidence


def test_traceability_coverage_counts_a_release_once(scenario: Store) -> None:
    coverage = traceability_coverage(scenario).deployments_with_work_item
    assert (coverage.numerator, coverage.denominator) == (1, 7)
    assert traceability_coverage(scenario, "test:shop").deployments_with_work_item == coverage
