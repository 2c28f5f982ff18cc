"""Rework rate (docs/metrics.md, "Rework rate"): unplanned deployments that fix a user-facing defect, on a
hand-made March 2025 of service `api`; every figure by hand.

Production deployments of api (12:00, successful, unless said) and what they ship:
  A0 27 Feb (before the window) — the first after I4 started.
  A1 3 Mar: C4 (no work item). I4 (27 Feb 09:00 → 4 Mar) is open, but A0 answered it: not rework.
  A2 5 Mar: C1 (fixes defect BUG-1) only → rework (fix only).
  A3 7 Mar: C2 (fixes defect BUG-2) with C3 (feature FEAT-1): planned work with a fix → not rework.
  A4 10 Mar 12:00: C5 (feature) — the first after I1 (10 Mar 09:00-15:00) started → rework (response).
  A5 10 Mar 13:00: C6 (feature) — the second after I1 → not rework.
  A6 15 Mar 10:00: C7 (feature) — the first after I2, a provider's outage (change_caused false) → not.
  A7 18 Mar: C8 (feature) — the first after I3 (18 Mar 09:00-10:00), but after it was resolved → not.
  A8 20 Mar: failure — not a deployment frequency counts.
  A9 22 Mar: ships nothing (a redeploy) → not rework: no fix in it.
  A10 26 Mar: C9 (feature) — the first after I5 (25 Mar 09:00, unresolved) → rework (response).
Counted: A1, A2, A3, A4, A5, A6, A7, A9, A10 = 9; rework: A2, A4, A10 → 3/9.
The rule it replaces ("ships a change implementing a defect") gave A2, A3 → 2/9.
"""

from __future__ import annotations

from datetime import datetime

from obeya.engine.dora import rework_rate
from obeya.engine.evidence import DeploymentEvidence, evidence
from obeya.engine.window import Slice, Window
from obeya.model import Change, Deployment, DeploymentChange, Incident, Record, Scope, TraceLink
from obeya.store import Store
from tests.engine.builders import day, item, stream

MARCH = Window(datetime(2025, 3, 1), datetime(2025, 4, 1))
PAY = Slice(value_stream_id="test:pay")


def _deployment(name: str, at: datetime, ships: list[str], result: str = "success") -> list[Record]:
    records: list[Record] = [
        Deployment(
            source="test",
            external_id=name,
            service="api",
            environment="production",
            environment_class="production",
            repo="acme/api",
            result=result,
            started_at=at,
            finished_at=at,
        )
    ]
    records += [
        DeploymentChange(
            source="test", external_id=f"{name}>{c}", deployment_id=f"test:{name}", change_id=f"test:{c}"
        )
        for c in ships
    ]
    return records


def _change(name: str, implements: str | None = None) -> list[Record]:
    records: list[Record] = [
        Change(
            source="test",
            external_id=name,
            repo="acme/api",
            number=int(name[1:]),
            title=name,
            state="merged",
            created_at=day(2, 20),
            merged_at=day(2, 21),
        )
    ]
    if implements:
        records.append(
            TraceLink(
                source="test",
                external_id=f"{implements}>{name}",
                from_kind="work_item",
                from_id=f"test:{implements}",
                to_kind="change",
                to_id=f"test:{name}",
                link_kind="implemented_by",
                evidence=f"title mentions {implements}",
                confidence=0.95,
            )
        )
    return records


def _incident(
    name: str, created: datetime, resolved: datetime | None, change_caused: bool | None = None
) -> Incident:
    return Incident(
        source="test",
        external_id=name,
        title=name,
        service="api",
        status="resolved" if resolved else "open",
        created_at=created,
        resolved_at=resolved,
        change_caused=change_caused,
    )


def _scenario() -> list[Record]:
    records = stream("pay", "Payments", ["PAY"])
    records.append(
        Scope(
            source="test",
            external_id="pay-api",
            value_stream_id="test:pay",
            tool="pagerduty",
            object_type="service",
            object_key="api",
        )
    )
    records += item("BUG-1", day(2, 1), [(day(2, 1), "In Progress")], "defect")
    records += item("BUG-2", day(2, 1), [(day(2, 1), "In Progress")], "defect")
    records += item("FEAT-1", day(2, 1), [(day(2, 1), "In Progress")], "feature")
    changes = {"C1": "BUG-1", "C2": "BUG-2", "C3": "FEAT-1", "C5": "FEAT-1", "C6": "FEAT-1"}
    for n in range(1, 10):
        records += _change(f"C{n}", changes.get(f"C{n}", "FEAT-1" if n >= 7 else None))
    records += _deployment("A0", day(2, 27, 12), [])
    records += _deployment("A1", day(3, 3, 12), ["C4"])
    records += _deployment("A2", day(3, 5, 12), ["C1"])
    records += _deployment("A3", day(3, 7, 12), ["C2", "C3"])
    records += _deployment("A4", day(3, 10, 12), ["C5"])
    records += _deployment("A5", day(3, 10, 13), ["C6"])
    records += _deployment("A6", day(3, 15, 10), ["C7"])
    records += _deployment("A7", day(3, 18, 12), ["C8"])
    records += _deployment("A8", day(3, 20, 12), [], "failure")
    records += _deployment("A9", day(3, 22, 12), [])
    records += _deployment("A10", day(3, 26, 12), ["C9"])
    records += [
        _incident("I4", day(2, 27, 9), day(3, 4)),
        _incident("I1", day(3, 10, 9), day(3, 10, 15)),
        _incident("I2", day(3, 15, 9), day(3, 15, 12), change_caused=False),
        _incident("I3", day(3, 18, 9), day(3, 18, 10)),
        _incident("I5", day(3, 25, 9), None),
    ]
    return records


def test_rework_is_a_fix_only_deployment_or_the_first_response_to_an_incident(store: Store) -> None:
    store.upsert_records(_scenario())
    rework = rework_rate(store, MARCH, PAY)
    assert (rework.numerator, rework.denominator) == (3, 9)


def test_rework_evidence_marks_the_rework_deployments(store: Store) -> None:
    store.upsert_records(_scenario())
    page = evidence(store, "dora", "rework_rate", MARCH, PAY)
    assert page.total == 9
    rows = [r for r in page.rows if isinstance(r, DeploymentEvidence)]
    assert [r.id for r in rows if r.rework] == ["test:A2", "test:A4", "test:A10"]
    assert [r.id for r in rows if r.fixes_defect] == ["test:A2", "test:A3"]  # ships a fix, planned or not


def test_a_deployment_before_the_window_answers_an_incident_of_the_window(store: Store) -> None:
    """The first deployment after I4 is A0 (27 Feb): a window of 1-4 March holds A1 (C4, no work item),
    which is not rework, though it is the first of that window while I4 is open."""
    store.upsert_records(_scenario())
    rework = rework_rate(store, Window(day(3, 1), day(3, 4)), PAY)
    assert (rework.numerator, rework.denominator) == (0, 1)


def test_an_unfinished_deployment_started_first_answers_the_incident(store: Store) -> None:
    """April: I6 opens 2 Apr 09:00 (unresolved). B1 (no finish known, started 2 Apr 10:00; counted at
    its start) and B2 (finished 2 Apr 11:00) both ship C4, no fix: B1 came first → 1/2 rework. B0, failed
    at 10:00, is not a deployment frequency counts and answers nothing."""
    store.upsert_records(_scenario())
    unfinished = _deployment("B1", day(4, 2, 10), ["C4"])
    unfinished[0] = unfinished[0].model_copy(update={"finished_at": None})
    store.upsert_records(
        [
            _incident("I6", day(4, 2, 9), None),
            *_deployment("B0", day(4, 2, 10), [], "failure"),
            *unfinished,
            *_deployment("B2", day(4, 2, 11), ["C4"]),
        ]
    )
    april = Window(day(4, 1), day(5, 1))
    rework = rework_rate(store, april, PAY)
    assert (rework.numerator, rework.denominator) == (1, 2)
    rows = evidence(store, "dora", "rework_rate", april, PAY).rows
    assert {r.id: r.rework for r in rows if isinstance(r, DeploymentEvidence)} == {
        "test:B1": True,
        "test:B2": False,
    }
