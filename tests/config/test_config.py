"""`obeya.yaml`: defaults without a file, overrides that reach the rules, and errors naming line and key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from obeya.config import ConfigError, load_config
from obeya.engine.dora_rules import DeploymentRules, DoraRules, IncidentRules
from obeya.linking.rules import LinkingRules
from obeya.model import EnvironmentClass, FlowItemType, FlowState
from obeya.model.vocabulary import StageCategory
from obeya.settings import database_url


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "obeya.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_no_file_means_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OBEYA_CONFIG", raising=False)
    config = load_config()
    assert config.database_url is None
    assert config.rules.mapping_rules().status("In Progress").flow_state is FlowState.ACTIVE


def test_named_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "missing.yaml")


def test_overrides_reach_the_mapping_rules(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
rules:
  statuses:
    "Dev Complete": {flow_state: waiting, stage: verification}
  item_types:
    Spike: debt
  labels:
    customer-escalation: defect
  environments:
    - {pattern: "^eu-live-", class: production}
""",
    )
    rules = load_config(path).rules.mapping_rules()
    assert rules.status("dev complete").flow_state is FlowState.WAITING
    assert rules.status("Dev Complete").stage == "verification"
    assert "dev complete" not in rules.unmapped
    assert rules.flow_item_type("Spike") is FlowItemType.DEBT
    assert rules.flow_item_type("Story", ["customer-escalation"]) is FlowItemType.DEFECT
    assert rules.environment_class("eu-live-1") is EnvironmentClass.PRODUCTION


def test_every_problem_is_reported_with_line_and_key(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """database_url: duckdb:///./x.duckdb
rules:
  statuses:
    "In Review":
      flow_state: actve
  item_types:
    Spike: research
  environments:
    - pattern: "(unclosed"
      class: production
  work_strat: active
""",
    )
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert error.value.problems == [
        f"{path}:5: rules.statuses.\"In Review\".flow_state: Input should be 'new', 'waiting', 'active', "
        "'done' or 'canceled'",
        f"{path}:7: rules.item_types.Spike: Input should be 'feature', 'defect', 'risk' or 'debt'",
        f"{path}:9: rules.environments[0].pattern: Value error, not a valid regular expression: "
        "missing ), unterminated subpattern at position 0",
        f"{path}:11: rules.work_strat: unknown key (check its spelling and docs/configuration.md)",
    ]


def test_broken_yaml_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "rules:\n  statuses: [unclosed\n")
    with pytest.raises(ConfigError, match=rf"{path}:3: not valid YAML"):
        load_config(path)


def test_a_list_is_not_a_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must be a mapping of settings"):
        load_config(_write(tmp_path, "- a\n- b\n"))


def test_database_url_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OBEYA_DATABASE_URL", raising=False)
    monkeypatch.delenv("OBEYA_CONFIG", raising=False)
    assert database_url() == "duckdb:///./obeya.duckdb"
    _write(tmp_path, "database_url: duckdb:///./from-config.duckdb\n")
    assert database_url() == "duckdb:///./from-config.duckdb"
    monkeypatch.setenv("OBEYA_DATABASE_URL", "duckdb:///./from-env.duckdb")
    assert database_url() == "duckdb:///./from-env.duckdb"
    assert database_url("duckdb:///./from-flag.duckdb") == "duckdb:///./from-flag.duckdb"


def test_linking_and_work_start_rules(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "rules:\n  work_start: committed\nlinking:\n  incident_attribution_window: 6h\n"
        '  key_patterns: ["(OPS-[0-9]+)"]\n  service_paths: {api: {acme/mono: [services/api/]}}\n',
    )
    config = load_config(path)
    assert config.rules.work_start == "committed"
    rules = config.linking.linking_rules()
    assert rules.incident_attribution_window == timedelta(hours=6)
    assert rules.key_patterns == ("(OPS-[0-9]+)",)
    assert rules.path_prefixes("api", "acme/mono") == ("services/api/",)


def test_linking_defaults_match_the_linking_layer(tmp_path: Path) -> None:
    assert load_config(_write(tmp_path, "{}\n")).linking.linking_rules() == LinkingRules()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "linking:\n  incident_attribution_window: soon\n",
            ":2: linking.incident_attribution_window: Input should",
        ),
        (
            "linking:\n  incident_attribution_window: 0h\n",
            ":2: linking.incident_attribution_window: Value error",
        ),
        ('linking:\n  key_patterns: ["PAY-[0-9]+"]\n', "must have exactly one group capturing the key"),
        ("rules:\n  work_start: started\n", ":2: rules.work_start: Input should be 'active' or 'committed'"),
    ],
)
def test_bad_rules_name_line_and_key(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(_write(tmp_path, text))
    assert problem in str(error.value)


def test_deployment_and_incident_rules_reach_the_engine(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "rules:\n  deployments:\n    frequency_results: [success, failure]\n    count_rollbacks: true\n"
        "    exclude_services: [docs-site]\n    exclude_environments: [prod-canary]\n"
        "  incidents:\n    min_severity: sev2\n"
        "    not_change_caused: {labels: [provider-outage], services: [cdn]}\n",
    )
    assert load_config(path).rules.dora_rules() == DoraRules(
        DeploymentRules(("success", "failure"), True, ("docs-site",), ("prod-canary",)),
        IncidentRules("sev2", ("provider-outage",), ("cdn",)),
    )


def test_deployment_and_incident_defaults_match_the_engine(tmp_path: Path) -> None:
    assert load_config(_write(tmp_path, "{}\n")).rules.dora_rules() == DoraRules()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "rules:\n  deployments:\n    frequency_results: [success, canceled]\n",
            ":3: rules.deployments.frequency_results[1]: Input should be 'success', 'failure' or",
        ),
        (
            "rules:\n  deployments:\n    frequency_results: []\n",
            ":3: rules.deployments.frequency_results: List should have at least 1 item",
        ),
        (
            "rules:\n  deployments:\n    frequency_results: [success, success]\n",
            ":3: rules.deployments.frequency_results: Value error, given more than once: success",
        ),
        (
            "rules:\n  deployments:\n    count_rollbacks: sometimes\n",
            ":3: rules.deployments.count_rollbacks: Input should be a valid boolean",
        ),
        (
            "rules:\n  deployments:\n    exclude_services: [docs, DOCS]\n",
            ":3: rules.deployments.exclude_services: Value error, 'DOCS' is given more than once",
        ),
        (
            'rules:\n  deployments:\n    exclude_environments: ["  "]\n',
            ":3: rules.deployments.exclude_environments: Value error, names must not be empty",
        ),
        (
            "rules:\n  deployments:\n    job_name: deploy\n",
            ":3: rules.deployments.job_name: unknown key",
        ),
        (
            "rules:\n  incidents:\n    min_severity: critical\n",
            ":3: rules.incidents.min_severity: Input should be 'sev1', 'sev2', 'sev3' or 'sev4'",
        ),
        (
            "rules:\n  incidents:\n    not_change_caused:\n      label: [outage]\n",
            ":4: rules.incidents.not_change_caused.label: unknown key",
        ),
        (
            "rules:\n  incidents:\n    not_change_caused:\n      services: cdn\n",
            ":4: rules.incidents.not_change_caused.services: Input should be a valid list",
        ),
    ],
)
def test_bad_deployment_and_incident_rules_name_line_and_key(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(_write(tmp_path, text))
    assert problem in str(error.value)


def test_job_name_rule_reaches_the_mapping_rules(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        'rules:\n  deployments:\n    job_patterns: ["^deploy", "roll-?out"]\n'
        "    job_environment: production\n",
    )
    rule = load_config(path).rules.mapping_rules().deployment_name_rule(("release",))
    assert rule.patterns == ("^deploy", "roll-?out")  # configured: the tool's default is not used
    assert rule.environment_class is EnvironmentClass.PRODUCTION
    assert rule.matched_pattern("lint", "Deploy-EU") == "^deploy"  # case-insensitive
    assert rule.matched_pattern("canary rollout") == "roll-?out"
    assert rule.matched_pattern("release", "predeploy") is None


def test_job_name_rule_unset_leaves_each_tool_its_default(tmp_path: Path) -> None:
    rules = load_config(_write(tmp_path, "{}\n")).rules.mapping_rules()
    assert rules.deployment_names is None
    assert rules.deployment_name_rule().patterns == ()
    assert rules.deployment_name_rule(("deploy",)).matched_pattern("Deploy") == "deploy"
    assert rules.deployment_name_rule().environment_class is EnvironmentClass.OTHER


def test_empty_job_patterns_turn_every_tool_default_off(tmp_path: Path) -> None:
    path = _write(tmp_path, "rules:\n  deployments:\n    job_patterns: []\n")
    rules = load_config(path).rules.mapping_rules()
    assert rules.deployment_name_rule(("deploy",)).matched_pattern("deploy") is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            'rules:\n  deployments:\n    job_patterns: [deploy, "(prod"]\n',
            ":3: rules.deployments.job_patterns[1]: Value error, not a valid regular expression: missing )",
        ),
        (
            'rules:\n  deployments:\n    job_patterns: [deploy, " "]\n',
            ":3: rules.deployments.job_patterns: Value error, pattern 1 is empty: it would match every job",
        ),
        (
            "rules:\n  deployments:\n    job_patterns: deploy\n",
            ":3: rules.deployments.job_patterns: Input should be a valid list",
        ),
        (
            "rules:\n  deployments:\n    job_environment: prod\n",
            ":3: rules.deployments.job_environment: Input should be 'production', 'staging'",
        ),
    ],
)
def test_bad_job_name_rules_name_line_and_key(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(_write(tmp_path, text))
    assert problem in str(error.value)


def test_value_streams_default_to_the_five_stages(tmp_path: Path) -> None:
    config = load_config(
        _write(
            tmp_path,
            "value_streams:\n  - name: Card Payments\n    type: supporting\n    owner: Ana\n"
            "  - name: Mobile\n    id: app\n    stages:\n      - ideation\n"
            "      - {name: build, category: integration, wip_limit: 3}\n      - delivery\n",
        )
    )
    payments, mobile = config.value_streams
    assert (payments.key, payments.type, payments.owner, payments.description) == (
        "card-payments",
        "supporting",
        "Ana",
        None,
    )
    assert [(s.name, s.stage_category, s.wip_limit) for s in payments.stages] == [
        ("ideation", StageCategory.IDEATION, None),
        ("integration", StageCategory.INTEGRATION, None),
        ("verification", StageCategory.VERIFICATION, None),
        ("delivery", StageCategory.DELIVERY, None),
        ("observation", StageCategory.OBSERVATION, None),
    ]
    assert mobile.key == "app"
    assert [(s.name, s.stage_category, s.wip_limit) for s in mobile.stages] == [
        ("ideation", StageCategory.IDEATION, None),
        ("build", StageCategory.INTEGRATION, 3),
        ("delivery", StageCategory.DELIVERY, None),
    ]
    assert config.value_stream("card payments") is payments
    assert config.value_stream("card-payments") is payments
    assert config.value_stream("app") is mobile
    assert config.value_stream("mobile") is mobile
    assert config.value_stream("checkout") is None


def test_value_stream_problems_name_line_and_key(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """value_streams:
  - name: Payments
    stages:
      - ideation
      - {name: ideation, wip_limit: 0}
      - {name: build, category: building}
  - name: Mobile
    id: Mobile App
    kind: core
  - name: "  "
""",
    )
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert error.value.problems == [
        f"{path}:5: value_streams[0].stages[1].wip_limit: Input should be greater than or equal to 1",
        f"{path}:6: value_streams[0].stages[2].category: Input should be 'ideation', 'integration', "
        "'verification', 'delivery' or 'observation'",
        f"{path}:8: value_streams[1].id: String should match pattern '^[a-z0-9][a-z0-9_-]*$'",
        f"{path}:9: value_streams[1].kind: unknown key (check its spelling and docs/configuration.md)",
        f"{path}:10: value_streams[2].name: Value error, '  ' has no letter or digit: give the stream an "
        "`id` too",
    ]
    path = _write(
        tmp_path,
        "value_streams:\n  - name: Payments\n    stages: [ideation, delivery, ideation]\n"
        "  - name: payments\n  - name: Web\n    id: payments\n",
    )
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert error.value.problems == [
        f"{path}:3: value_streams[0].stages: Value error, stage names must be distinct in a stream; "
        "given twice: ideation",
    ]
    path = _write(
        tmp_path,
        "value_streams:\n  - name: Payments\n  - name: payments\n  - name: Web\n    id: payments\n"
        "  - name: Payments\n    id: pay2\n",
    )
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert error.value.problems == [
        f"{path}:3: value_streams[1].name: 'payments' is already the name or id of value_streams[0]",
        f"{path}:5: value_streams[2].id: 'payments' is already the name or id of value_streams[0]",
        f"{path}:6: value_streams[3].name: 'payments' is already the name or id of value_streams[0]",
    ]
