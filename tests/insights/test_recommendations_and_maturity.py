"""Recommendation rules firing on evidence and not without it; maturity levels on hand-made streams.

Window: March 2025. Stream pay (project PAY, repository pay/api, service pay-api).
- Change failure: 4 production deployments of pay-api, one failed → 1/4 = 25 % > 15 %: blue/green and
  canary fires with the failed deployment; with all four successful it does not.
- Change size: merged changes of 500 + 100, 450 + 50 and 100 + 20 lines → median 500 > 400: small batches
  fires with the two changes over 400 lines; with sizes 100, 120, 150 it does not.
- Maturity: stream pay has work items, a commit, a pipeline run, production deployments and an incident
  (5 tool categories, deployments in 1 of 5 weeks → Practicing); stream ops has only work items
  (1 category → Emerging).
"""

from __future__ import annotations

from datetime import datetime

from obeya.engine.window import Slice, Window
from obeya.insights.maturity import maturity
from obeya.insights.model import MaturityLevel
from obeya.insights.recommendations import blue_green_and_canary, gather, recommendations, small_batches
from obeya.model import Change, Commit, Deployment, Incident, PipelineRun, Record, Scope
from obeya.store import Store
from tests.engine.builders import day, item, stream

MARCH = Window(datetime(2025, 3, 1), datetime(2025, 4, 1))
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


def _deployments(results: list[str]) -> list[Record]:
    return [
        Deployment(
            source="test",
            external_id=f"dep-{n}",
            service="pay-api",
            environment="production",
            environment_class="production",
            repo="pay/api",
            result=result,
            started_at=day(3, 2 + n),
            finished_at=day(3, 2 + n, 1),
        )
        for n, result in enumerate(results)
    ]


def _changes(sizes: list[tuple[int, int]]) -> list[Record]:
    return [
        Change(
            source="test",
            external_id=f"pr-{n}",
            repo="pay/api",
            number=n,
            title=f"change {n}",
            state="merged",
            created_at=day(3, 2),
            merged_at=day(3, 3 + n),
            additions=additions,
            deletions=deletions,
        )
        for n, (additions, deletions) in enumerate(sizes)
    ]


def test_blue_green_fires_on_a_high_change_failure_rate(store: Store) -> None:
    store.upsert_records([*_scopes(), *_deployments(["success", "failure", "success", "success"])])
    insight = blue_green_and_canary(store, MARCH, gather(store, MARCH, PAY, "Payments"))
    assert insight is not None
    assert insight.figure == 0.25
    assert insight.items == ["test:dep-1"]


def test_blue_green_does_not_fire_without_failures(store: Store) -> None:
    store.upsert_records([*_scopes(), *_deployments(["success"] * 4)])
    assert blue_green_and_canary(store, MARCH, gather(store, MARCH, PAY, "Payments")) is None


def test_small_batches_fires_on_large_changes(store: Store) -> None:
    store.upsert_records([*_scopes(), *_changes([(500, 100), (450, 50), (100, 20)])])
    insight = small_batches(store, MARCH, gather(store, MARCH, PAY, "Payments"))
    assert insight is not None
    assert insight.figure == 500
    assert insight.items == ["pay/api#0", "pay/api#1"]


def test_small_batches_does_not_fire_on_small_changes(store: Store) -> None:
    store.upsert_records([*_scopes(), *_changes([(80, 20), (100, 20), (100, 50)])])
    assert small_batches(store, MARCH, gather(store, MARCH, PAY, "Payments")) is None


def test_no_rule_fires_without_evidence(store: Store) -> None:
    store.upsert_records(_scopes())
    assert recommendations(store, MARCH, PAY) == []


def test_maturity_toolchain_all_five_categories_against_work_items_only(store: Store) -> None:
    records = _scopes() + stream("ops", "Operations", ["OPS"])
    records += item("PAY-1", day(3, 1), [(day(3, 2), "In Progress")])
    records += item("OPS-1", day(3, 1), [(day(3, 2), "In Progress")], project="OPS")
    records += [
        Commit(
            source="test",
            external_id="c1",
            repo="pay/api",
            sha="abcdef1",
            message="PAY-1",
            authored_at=day(3, 3),
        ),
        PipelineRun(
            source="test",
            external_id="r1",
            pipeline="ci",
            repo="pay/api",
            result="success",
            created_at=day(3, 3),
        ),
        *_deployments(["success"]),
        Incident(
            source="test",
            external_id="i1",
            title="down",
            service="pay-api",
            status="resolved",
            created_at=day(3, 5),
        ),
    ]
    store.upsert_records(records)
    window = Window(datetime(2025, 3, 1), datetime(2025, 4, 5))  # five weeks
    scored = {m.name: m for m in maturity(store, window)}
    pay, ops = scored["Payments"], scored["Operations"]
    assert pay.level("DevOps toolchain") is MaturityLevel.PRACTICING
    assert ops.level("DevOps toolchain") is MaturityLevel.EMERGING
    toolchain = next(d for d in pay.dimensions if d.dimension == "DevOps toolchain")
    assert toolchain.figure == 5
    assert "deployments in 1 of 5 weeks" in toolchain.evidence
    assert ops.level("insights-driven") is None  # no production deployment to trace: no data
    assert ops.level("organizational") is None  # nothing completed: no data
