"""DORA under the rules of obeya.yaml (rules.deployments, rules.incidents) and sliced by team and flow
item type, on the hand-made March of `tests/engine/test_dora.py` (its docstring has every base figure).

Additions here, each with its figures by hand:
- C6 by Bob (no team): commit 5 Mar 12:00, opened 13:00, merged 14:00, shipped by D3 (6 Mar 12:00) with
  C2: lead time 24 h. BUG-1 (a defect, team Fixers) is implemented by C2; Alice is in team Core.
- Lead time by type defect: only C2 (50 h) — not C6, though D3 ships both. By team Fixers: C2 (through
  BUG-1's team). By team Core (Alice's): C1 51 h, C2 50 h, C3 24 h (C5 negative, left out) → median 50 h.
"""

from __future__ import annotations

import pytest

from obeya.engine.dora import (
    change_failure_rate,
    deployment_frequency,
    lead_time_for_changes,
    recovery_time,
    rework_rate,
)
from obeya.engine.dora_rules import DeploymentRules, DoraRules, IncidentRules
from obeya.engine.evidence import evidence
from obeya.engine.window import Slice
from obeya.model import Change, Incident, Person, Record, Team
from obeya.model.vocabulary import FlowItemType
from obeya.store import Store
from tests.engine.builders import day, item
from tests.engine.test_dora import HOUR, MARCH, PAY, _change, _deployment, _scenario


def _i1(**fields: object) -> Incident:
    """I1 of the base scenario (caused by D4) with other fields."""
    base = dict(
        source="test",
        external_id="I1",
        title="errors",
        service="api",
        status="resolved",
        created_at=day(3, 10, 14),
        resolved_at=day(3, 10, 18),
    )
    return Incident.model_validate(base | fields)


@pytest.fixture
def scenario(store: Store) -> Store:
    records: list[Record] = _scenario()
    records += [
        Team(source="test", external_id="core", name="Core"),
        Team(source="test", external_id="fixers", name="Fixers"),
        Person(source="test", external_id="alice", display_name="Alice", team_id="test:core"),
        Person(source="test", external_id="bob", display_name="Bob"),
    ]
    c6 = _change("C6", day(3, 5, 13), day(3, 5, 14), [day(3, 5, 12)], ["D3"])
    assert isinstance(c6[0], Change)
    records += [c6[0].model_copy(update={"author_id": "test:bob"}), *c6[1:]]
    store.upsert_records(records)
    store.upsert_records(item("BUG-1", day(3, 3), [(day(3, 3), "In Progress")], "defect", team="test:fixers"))
    return store


def test_rollbacks_count_when_the_rules_say_so(scenario: Store) -> None:
    rules = DoraRules(DeploymentRules(count_rollbacks=True))
    # D1, D3, D4, R5, D6 on five days; CFR over D1..D6 and R5: 3 failed of 7
    assert deployment_frequency(scenario, MARCH, PAY, rules).deployments == 5
    assert deployment_frequency(scenario, MARCH, PAY, rules).deployment_days == 5
    cfr = change_failure_rate(scenario, MARCH, PAY, rules).rate
    assert (cfr.numerator, cfr.denominator) == (3, 7)


def test_frequency_counts_the_configured_results(scenario: Store) -> None:
    rules = DoraRules(DeploymentRules(frequency_results=("success", "failure", "rolled_back")))
    # D1, D2 (failure), D3, D4, D5 (rolled back), D6; rework: none of those 6 — D3 ships C6 (no defect)
    # beside the fix C2, and D5, the first after I1 started, came after I1 was resolved
    assert deployment_frequency(scenario, MARCH, PAY, rules).deployments == 6
    rework = rework_rate(scenario, MARCH, PAY, rules)
    assert (rework.numerator, rework.denominator) == (0, 6)
    assert evidence(scenario, "dora", "deployment_frequency", MARCH, PAY, rules=rules).total == 6


def test_excluded_services_and_environments_never_count(scenario: Store) -> None:
    no_api = DoraRules(DeploymentRules(exclude_services=("API",)))  # case-insensitive
    assert deployment_frequency(scenario, MARCH, PAY, no_api).per_day is None
    assert deployment_frequency(scenario, MARCH, Slice(), no_api).deployments == 1  # W1 of web
    assert lead_time_for_changes(scenario, MARCH, PAY, no_api).lead_time.count == 0
    assert change_failure_rate(scenario, MARCH, PAY, no_api).rate.denominator == 0
    no_production = DoraRules(DeploymentRules(exclude_environments=("Production",)))
    assert deployment_frequency(scenario, MARCH, Slice(), no_production).deployments == 0


def test_incidents_below_the_minimum_severity_do_not_count(scenario: Store) -> None:
    scenario.upsert_records([_i1(severity="sev3")])
    sev2 = DoraRules(incidents=IncidentRules(min_severity="sev2"))
    # D4 failed only through I1: CFR 2 of 6 (D2, D5); recovery D2 24 h, D5 1 h → median 12.5 h
    cfr = change_failure_rate(scenario, MARCH, PAY, sev2)
    assert (cfr.rate.numerator, cfr.rate.denominator, cfr.caused_incident) == (2, 6, 0)
    recovery = recovery_time(scenario, MARCH, PAY, sev2)
    assert recovery.failed_deployment_recovery.count == 2
    assert recovery.failed_deployment_recovery.p50 == pytest.approx(12.5 * HOUR)
    # time to restore: I2 (no severity: counts) 2 h; I3 unresolved; I1 left out
    assert (recovery.time_to_restore.count, recovery.unresolved_incidents) == (1, 1)
    assert recovery.time_to_restore.p50 == pytest.approx(2 * HOUR)
    assert evidence(scenario, "dora", "time_to_restore", MARCH, PAY, rules=sev2).total == 1
    # sev3 is severe enough under min_severity sev3
    sev3 = DoraRules(incidents=IncidentRules(min_severity="sev3"))
    assert change_failure_rate(scenario, MARCH, PAY, sev3).rate.numerator == 3


def test_not_change_caused_labels_and_services_spare_the_deployment(scenario: Store) -> None:
    scenario.upsert_records([_i1(labels=["customer", "Provider-Outage"])])
    by_label = DoraRules(incidents=IncidentRules(not_change_caused_labels=("provider-outage",)))
    cfr = change_failure_rate(scenario, MARCH, PAY, by_label)
    assert (cfr.rate.numerator, cfr.caused_incident) == (2, 0)
    failed = evidence(scenario, "dora", "change_failure_rate", MARCH, PAY, rules=by_label)
    assert sum(1 for row in failed.rows if getattr(row, "failed", False)) == 2
    assert recovery_time(scenario, MARCH, PAY, by_label).failed_deployment_recovery.count == 2
    # time to restore counts incidents whatever caused them
    assert recovery_time(scenario, MARCH, PAY, by_label).time_to_restore.count == 2
    by_service = DoraRules(incidents=IncidentRules(not_change_caused_services=("API",)))
    assert change_failure_rate(scenario, MARCH, PAY, by_service).rate.numerator == 2


def test_label_rule_matches_whole_labels_and_no_wildcards(scenario: Store) -> None:
    scenario.upsert_records([_i1(labels=["providerXoutage", "provider-outage-maybe"])])
    for label in ("provider_outage", "provider%", "provider-outage"):
        rules = DoraRules(incidents=IncidentRules(not_change_caused_labels=(label,)))
        assert change_failure_rate(scenario, MARCH, PAY, rules).rate.numerator == 3, label


def test_lead_time_by_flow_item_type_counts_the_changes_of_that_type(scenario: Store) -> None:
    everything = lead_time_for_changes(scenario, MARCH, PAY)
    assert everything.lead_time.count == 4  # C1, C2, C3, C6 (C5 negative)
    defects = lead_time_for_changes(scenario, MARCH, Slice(flow_item_type=FlowItemType.DEFECT))
    assert defects.lead_time.count == 1
    assert defects.lead_time.p50 == pytest.approx(50 * HOUR)
    rows = evidence(
        scenario, "dora", "lead_time_for_changes", MARCH, Slice(flow_item_type=FlowItemType.DEFECT)
    )
    assert [getattr(r, "title", None) for r in rows.rows] == ["C2"]
    assert (
        lead_time_for_changes(scenario, MARCH, Slice(flow_item_type=FlowItemType.RISK)).lead_time.p50 is None
    )


def test_lead_time_by_team_counts_the_author_team_or_the_work_item_team(scenario: Store) -> None:
    fixers = lead_time_for_changes(scenario, MARCH, Slice(team_id="test:fixers"))
    assert fixers.lead_time.count == 1 and fixers.lead_time.p50 == pytest.approx(50 * HOUR)
    core = lead_time_for_changes(scenario, MARCH, Slice(team_id="test:core"))
    assert core.lead_time.count == 3 and core.lead_time.excluded == 1
    assert core.lead_time.p50 == pytest.approx(50 * HOUR)


def test_default_rules_change_nothing(scenario: Store) -> None:
    # the base figures with C6 added: frequency 4, CFR 3 of 6
    assert deployment_frequency(scenario, MARCH, PAY, DoraRules()).deployments == 4
    cfr = change_failure_rate(scenario, MARCH, PAY, DoraRules()).rate
    assert (cfr.numerator, cfr.denominator) == (3, 6)


def test_a_failed_deployment_is_in_the_slice_of_the_retry_that_shipped_its_commit(scenario: Store) -> None:
    # F1 failed on 5 Mar 18:00 with D3's commit; D3 (6 Mar) shipped it: C2 (Alice's, fixing BUG-1 of the
    # Fixers) and C6 (Bob's). D2 failed with a commit no later deployment shipped: in no team or type slice.
    failed = _deployment("F1", day(3, 5, 18), "failure").model_copy(update={"commit_sha": "d30000000"})
    scenario.upsert_records([failed])
    defects = change_failure_rate(scenario, MARCH, Slice(flow_item_type=FlowItemType.DEFECT)).rate
    assert (defects.numerator, defects.denominator) == (1, 2)  # F1 of D3, F1
    fixers = change_failure_rate(scenario, MARCH, Slice(team_id="test:fixers")).rate
    assert (fixers.numerator, fixers.denominator) == (1, 2)
    # Core (Alice's changes): D1, D3, D4 (caused I1), D6, and F1 → 2 failed of 5
    core = change_failure_rate(scenario, MARCH, Slice(team_id="test:core")).rate
    assert (core.numerator, core.denominator) == (2, 5)
    assert deployment_frequency(scenario, MARCH, Slice(team_id="test:core")).deployments == 4
