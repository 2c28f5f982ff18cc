"""Default mapping rules: stock workflows land in the right flow state and stage."""

from __future__ import annotations

import pytest

from obeya.model import EnvironmentClass, FlowItemType, FlowState
from obeya.normalize import MappingRules, StatusMapping
from obeya.normalize.rules import DeploymentNameRule, EnvironmentRule, named_deployment_result


@pytest.mark.parametrize(
    ("status", "state", "stage"),
    [
        ("Backlog", FlowState.NEW, "ideation"),
        ("To Do", FlowState.WAITING, "integration"),
        ("Selected for Development", FlowState.WAITING, "integration"),
        ("Ready for Dev", FlowState.WAITING, "integration"),
        ("In Progress", FlowState.ACTIVE, "integration"),
        ("Blocked", FlowState.WAITING, "integration"),
        ("In Review", FlowState.ACTIVE, "verification"),
        ("Waiting for Review", FlowState.WAITING, "verification"),
        ("Ready for Test", FlowState.WAITING, "verification"),
        ("Testing", FlowState.ACTIVE, "verification"),
        ("Ready for Release", FlowState.WAITING, "delivery"),
        ("Deploying", FlowState.ACTIVE, "delivery"),
        ("Monitoring", FlowState.WAITING, "observation"),
        ("Done", FlowState.DONE, "observation"),
        ("Resolved", FlowState.DONE, "observation"),
        ("Won't Do", FlowState.CANCELED, None),
        ("Canceled", FlowState.CANCELED, None),
    ],
)
def test_stock_statuses(status: str, state: FlowState, stage: str | None) -> None:
    assert MappingRules().status(status) == StatusMapping(state, stage)


def test_heuristic_guesses_are_reported_as_unmapped() -> None:
    rules = MappingRules(statuses={"In Progress": StatusMapping(FlowState.ACTIVE, "integration")})
    rules.status("in_progress")
    rules.status("Peer Review")
    assert sorted(rules.unmapped) == ["peer review"]
    assert rules.unmapped["peer review"].guessed == StatusMapping(FlowState.ACTIVE, "verification")


def test_unknown_status_falls_back_to_waiting() -> None:
    assert MappingRules().status("Xyzzy").flow_state is FlowState.WAITING


@pytest.mark.parametrize(
    ("tool_type", "labels", "expected"),
    [
        ("Bug", [], FlowItemType.DEFECT),
        ("Story", [], FlowItemType.FEATURE),
        ("Epic", [], FlowItemType.FEATURE),
        ("Story", ["Security"], FlowItemType.RISK),
        ("Task", ["tech-debt"], FlowItemType.DEBT),
        ("Task", [], FlowItemType.FEATURE),
        ("Vulnerability", [], FlowItemType.RISK),
    ],
)
def test_flow_item_types(tool_type: str, labels: list[str], expected: FlowItemType) -> None:
    assert MappingRules().flow_item_type(tool_type, labels) is expected


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ("production", EnvironmentClass.PRODUCTION),
        ("prod-eu-west-1", EnvironmentClass.PRODUCTION),
        ("Live", EnvironmentClass.PRODUCTION),
        ("staging", EnvironmentClass.STAGING),
        ("pre-prod", EnvironmentClass.STAGING),
        ("qa", EnvironmentClass.TESTING),
        ("dev", EnvironmentClass.DEVELOPMENT),
        ("review/feature-x", EnvironmentClass.DEVELOPMENT),
        ("github-pages", EnvironmentClass.OTHER),
    ],
)
def test_environment_classes(environment: str, expected: EnvironmentClass) -> None:
    assert MappingRules().environment_class(environment) is expected


def test_job_name_rule_gives_the_first_matching_pattern_case_insensitively() -> None:
    rule = DeploymentNameRule(("^deploy", "roll-?out"))
    assert rule.matched_pattern("Deploy to EU") == "^deploy"
    assert rule.matched_pattern("build", "canary ROLLOUT") == "roll-?out"  # any of the names
    assert rule.matched_pattern("predeploy checks", "") is None  # anchored: not anywhere
    assert DeploymentNameRule().matched_pattern("deploy") is None


def test_job_environment_class_reads_the_name_before_the_rule_default() -> None:
    rules = MappingRules(environments=(EnvironmentRule("^eu-live", EnvironmentClass.PRODUCTION),))
    rule = DeploymentNameRule(("deploy",), EnvironmentClass.PRODUCTION)
    assert rules.job_environment_class("deploy staging", rule) is EnvironmentClass.STAGING
    assert rules.job_environment_class("eu-live deploy", rule) is EnvironmentClass.PRODUCTION
    assert rules.job_environment_class("deploy", rule) is EnvironmentClass.PRODUCTION  # the rule's class
    # "stage" and "job" are generic words, not the staging environment
    assert rules.job_environment_class("Deploy stage", DeploymentNameRule()) is EnvironmentClass.OTHER


def test_configured_job_name_rule_replaces_a_tool_default() -> None:
    assert MappingRules().deployment_name_rule(("deploy",)).patterns == ("deploy",)
    configured = MappingRules(deployment_names=DeploymentNameRule(("ship",)))
    assert configured.deployment_name_rule(("deploy",)).patterns == ("ship",)


def test_a_job_that_did_not_run_is_no_deployment_by_name() -> None:
    assert named_deployment_result("skipped") is None
    assert [named_deployment_result(r) for r in ("success", "failure", "canceled", "running")] == [
        "success",
        "failure",
        "canceled",
        "running",
    ]
