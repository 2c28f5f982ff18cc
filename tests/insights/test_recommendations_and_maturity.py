"""Recommendation rules firing on evidence and not without it; maturity levels on hand-made streams.

Window: March 2025. Stream pay (project PAY, repository pay/api, service pay-api).
- Change failure: 4 production deployments of pay-api, one failed → 1/4 = 25 % > 15 %: blue/green and
  canary fires with the failed deployment; with all four successful it does not.
- Change size: merged changes of 500 + 100, 450 + 50 and 100 + 20 lines → median 500 > 400: small batches
  fires with the two changes over 400 lines; with sizes 100, 120, 150 it does not.
- Maturity: stream pay has work items, a commit, a pipeline run, production deployments and an incident
  (5 tool categories, but one deployment day in 5 weeks: deployment frequency low → Learning); stream ops
  has only work items (1 category → Emerging).
- Toolchain by cadence, 3–31 March 2025 (four weeks from a Monday), every stream with all five categories:
  daily (every weekday: 5 deployment days each week, median 5 → elite → Evolving), twice (Tue and Thu:
  median 2, mean 2 → high → Practicing), train (4 and 18 Mar: weeks [1, 0, 1, 0], mean 0.5 ≥ 12/52 →
  medium → Learning), quiet (every weekday but no incident tool: 4 categories, elite → Practicing).
- Insights-driven on the lower of two shares: stream pay's 2 successful production deployments both ship
  a change implementing PAY-1 (2 of 2), but only PAY-1 of its 4 done items has a change (1 of 4 = 25 %)
  → Learning.
- Dependencies, open items at the end of March with a cross-stream dependency: Payments' 10 open items
  PAY-1..10 — PLAT-1 (done 10 Mar) blocks PAY-1, PLAT-2 (open) blocks PAY-2, PAY-3 depends on PLAT-2,
  PAY-4 depends on PLAT-3 (created after the window: not yet), canceled PLAT-4 blocks PAY-5, PAY-6 blocks
  PLAT-2 (PAY-6 is the blocker), PAY-7 relates to PLAT-1 (no dependency), PAY-8 blocks PAY-9 (same
  stream), PLAT-1 blocks the done PAY-11 (not open) → PAY-1, 2, 3, 5: 4 of 10 = 40 % → Emerging, PAY-2 and
  PAY-3 still waiting. Mobile's 20 open items: MOB-1 depends on the open PAY-1, MOB-2's parent is the
  Payments epic PAY-E (done 5 Mar) → 2 of 20 = 10 % → Learning, MOB-1 waiting. Platform's 20 open items
  (PLAT-2, PLAT-5..23): PLAT-2 blocked by PAY-6 → 1 of 20 = 5 % → Practicing (the bound is inclusive).
  Quiet's 3 open items have none → Evolving; Empty has no open item → no data.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from obeya.engine.dora_rules import DeploymentRules, DoraRules
from obeya.engine.window import Slice, Window
from obeya.insights.maturity import maturity
from obeya.insights.model import MaturityLevel
from obeya.insights.recommendations import blue_green_and_canary, gather, recommendations, small_batches
from obeya.model import (
    Change,
    Commit,
    Deployment,
    DeploymentChange,
    Incident,
    PipelineRun,
    Record,
    Scope,
    TraceLink,
)
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


def test_blue_green_follows_the_deployment_rules(store: Store) -> None:
    rollback = _deployments(["success"])[0].model_copy(
        update={"external_id": "dep-rb", "is_rollback": True, "finished_at": day(3, 2, 5)}
    )  # finishing apart from dep-0: rows of one service, environment and finish are one deployment
    store.upsert_records([*_scopes(), *_deployments(["success", "failure", "success", "success"]), rollback])
    with_rollbacks = DoraRules(DeploymentRules(count_rollbacks=True))
    insight = blue_green_and_canary(store, MARCH, gather(store, MARCH, PAY, "Payments", with_rollbacks))
    assert insight is not None and insight.figure == 0.2  # 1 failed of 5, the rollback counted
    assert insight.items == ["test:dep-1"]
    without_service = DoraRules(DeploymentRules(exclude_services=("PAY-API",)))
    assert blue_green_and_canary(store, MARCH, gather(store, MARCH, PAY, "Payments", without_service)) is None


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
    assert pay.level("DevOps toolchain") is MaturityLevel.LEARNING
    assert ops.level("DevOps toolchain") is MaturityLevel.EMERGING
    toolchain = next(d for d in pay.dimensions if d.dimension == "DevOps toolchain")
    assert toolchain.figure == 5
    assert "deployments in 1 of 5 weeks" in toolchain.evidence
    assert "deployment frequency low" in toolchain.evidence
    assert ops.level("insights-driven") is None  # no production deployment to trace: no data
    assert ops.level("organizational") is None  # nothing completed: no data


def _connected_stream(
    key: str, name: str, deployment_days: list[datetime], incident: bool = True
) -> list[Record]:
    """A stream with planning, code, CI and CD data in March (and an incident unless told), deploying
    its service `{key}-svc` to production at noon on each of `deployment_days`."""
    project, repo, service = key.upper(), f"{key}/app", f"{key}-svc"
    records = stream(key, name, [project])
    for object_type, object_key in (("repository", repo), ("service", service)):
        records.append(
            Scope(
                source="test",
                external_id=f"{key}-{object_key}",
                value_stream_id=f"test:{key}",
                tool="github",
                object_type=object_type,
                object_key=object_key,
            )
        )
    records += item(f"{project}-1", day(3, 3), [(day(3, 4), "In Progress")], project=project)
    records += [
        Commit(
            source="test",
            external_id=f"{key}-c",
            repo=repo,
            sha=f"{key}000001",
            message="x",
            authored_at=day(3, 4),
        ),
        PipelineRun(
            source="test",
            external_id=f"{key}-r",
            pipeline="ci",
            repo=repo,
            result="success",
            created_at=day(3, 4),
        ),
    ]
    records += [
        Deployment(
            source="test",
            external_id=f"{key}-d{n}",
            service=service,
            environment="production",
            environment_class="production",
            repo=repo,
            result="success",
            started_at=at + timedelta(hours=12),
            finished_at=at + timedelta(hours=12),
        )
        for n, at in enumerate(deployment_days)
    ]
    if incident:
        records.append(
            Incident(
                source="test",
                external_id=f"{key}-i",
                title="slow",
                service=service,
                status="resolved",
                created_at=day(3, 5),
            )
        )
    return records


def test_maturity_toolchain_follows_the_deployment_cadence(store: Store) -> None:
    weekdays = [
        day(3, 3) + timedelta(days=d) for d in range(28) if (day(3, 3) + timedelta(days=d)).weekday() < 5
    ]
    assert len(weekdays) == 20
    records = _connected_stream("daily", "Daily", weekdays)
    records += _connected_stream("twice", "Twice", [d for d in weekdays if d.weekday() in (1, 3)])
    records += _connected_stream("train", "Train", [day(3, 4), day(3, 18)])
    records += _connected_stream("quiet", "Quiet", weekdays, incident=False)
    store.upsert_records(records)
    scored = {m.name: m for m in maturity(store, Window(day(3, 3), day(3, 31)))}
    levels = {name: m.level("DevOps toolchain") for name, m in scored.items()}
    assert levels == {
        "Daily": MaturityLevel.EVOLVING,
        "Twice": MaturityLevel.PRACTICING,
        "Train": MaturityLevel.LEARNING,
        "Quiet": MaturityLevel.PRACTICING,
    }
    evidence = {
        n: next(d.evidence for d in m.dimensions if d.dimension == "DevOps toolchain")
        for n, m in scored.items()
    }
    assert "deployment frequency elite (DORA 2023: median 5," in evidence["Daily"]
    assert "deployment frequency high (DORA 2023: median 2, mean 2.0" in evidence["Twice"]
    assert "deployment frequency medium (DORA 2023: median 0.5, mean 0.5" in evidence["Train"]


def _link(kind: str, from_kind: str, from_id: str, to_kind: str, to_id: str) -> TraceLink:
    return TraceLink(
        source="test",
        external_id=f"{from_id}>{to_id}",
        from_kind=from_kind,
        from_id=from_id,
        to_kind=to_kind,
        to_id=to_id,
        link_kind=kind,
        evidence="test",
        confidence=1.0,
    )


def test_maturity_insights_driven_is_the_weaker_traceability_direction(store: Store) -> None:
    records = _scopes()
    for n in range(1, 5):
        records += item(f"PAY-{n}", day(3, 1), [(day(3, 2), "In Progress"), (day(3, 10), "Done")])
    records += _deployments(["success", "success"])
    records += _changes([(10, 1)])
    records += [
        DeploymentChange(
            source="test", external_id=f"dep-{n}>pr-0", deployment_id=f"test:dep-{n}", change_id="test:pr-0"
        )
        for n in range(2)
    ]
    records.append(_link("implemented_by", "work_item", "test:PAY-1", "change", "test:pr-0"))
    store.upsert_records(records)
    pay = next(m for m in maturity(store, MARCH) if m.name == "Payments")
    insights = next(d for d in pay.dimensions if d.dimension == "insights-driven")
    assert (insights.level, insights.figure) == (MaturityLevel.LEARNING, 0.25)
    assert insights.evidence == (
        "2 of 2 successful production deployments reach a work item; 1 of 4 done work items have a change"
    )


def test_maturity_dependencies_by_hand(store: Store) -> None:
    records: list[Record] = []
    for key, name, project in (
        ("pay", "Payments", "PAY"),
        ("mob", "Mobile App", "MOB"),
        ("plat", "Platform", "PLAT"),
        ("quiet", "Quiet", "QQ"),
        ("empty", "Empty", "EE"),
    ):
        records += stream(key, name, [project])
    in_progress = [(day(3, 2), "In Progress")]
    for n in range(1, 11):
        records += item(f"PAY-{n}", day(3, 1), in_progress)
    records += item("PAY-11", day(3, 1), [(day(3, 2), "In Progress"), (day(3, 15), "Done")])
    records += item("PAY-E", day(2, 1), [(day(2, 2), "In Progress"), (day(3, 5), "Done")])
    for n in range(1, 21):
        records += item(f"MOB-{n}", day(3, 1), in_progress, project="MOB")
    records = [
        r.model_copy(update={"parent_id": "test:PAY-E"}) if r.id == "test:MOB-2" else r for r in records
    ]
    records += item("PLAT-1", day(2, 20), [(day(3, 1), "In Progress"), (day(3, 10), "Done")], project="PLAT")
    for n in (2, *range(5, 24)):
        records += item(f"PLAT-{n}", day(3, 1), in_progress, project="PLAT")
    records += item("PLAT-3", day(4, 5), [], project="PLAT")
    records += item(
        "PLAT-4", day(3, 1), [(day(3, 2), "In Progress"), (day(3, 20), "Canceled")], project="PLAT"
    )
    for n in range(1, 4):
        records += item(f"QQ-{n}", day(3, 1), in_progress, project="QQ")
    records += item("EE-1", day(3, 1), [(day(3, 2), "In Progress"), (day(3, 3), "Done")], project="EE")
    for blocker, blocked in (
        ("PLAT-1", "PAY-1"),
        ("PLAT-2", "PAY-2"),
        ("PLAT-4", "PAY-5"),
        ("PAY-6", "PLAT-2"),
        ("PAY-8", "PAY-9"),
        ("PLAT-1", "PAY-11"),
    ):
        records.append(_link("Blocks", "work_item", f"test:{blocker}", "work_item", f"test:{blocked}"))
    for dependent, dependency in (("PAY-3", "PLAT-2"), ("PAY-4", "PLAT-3"), ("MOB-1", "PAY-1")):
        records.append(
            _link("Dependency", "work_item", f"test:{dependent}", "work_item", f"test:{dependency}")
        )
    records.append(_link("Relates", "work_item", "test:PAY-7", "work_item", "test:PLAT-1"))
    store.upsert_records(records)
    scored = {
        m.name: next(d for d in m.dimensions if d.dimension == "dependencies") for m in maturity(store, MARCH)
    }
    assert {name: (d.level, d.figure) for name, d in scored.items()} == {
        "Payments": (MaturityLevel.EMERGING, 0.4),
        "Mobile App": (MaturityLevel.LEARNING, 0.1),
        "Platform": (MaturityLevel.PRACTICING, 0.05),
        "Quiet": (MaturityLevel.EVOLVING, 0.0),
        "Empty": (None, None),
    }
    assert scored["Payments"].evidence == (
        "4 of 10 open items (40.0 %) depend on another value stream (on Platform 4), 2 still waiting on "
        "work not finished there at the window's end (PAY-2, PAY-3); Emerging: over 15 %"
    )
    assert scored["Mobile App"].evidence == (
        "2 of 20 open items (10.0 %) depend on another value stream (on Payments 2), 1 still waiting on "
        "work not finished there at the window's end (MOB-1); Learning: over 5 %, up to 15 %"
    )
    assert scored["Platform"].evidence == (
        "1 of 20 open items (5.0 %) depend on another value stream (on Payments 1), 1 still waiting on "
        "work not finished there at the window's end (PLAT-2); Practicing: up to 5 %"
    )
    assert scored["Quiet"].evidence == (
        "0 of 3 open items (0.0 %) depend on another value stream, 0 still waiting on work not finished "
        "there at the window's end; Evolving: none"
    )
