"""Jenkins sync against the recorded Jenkins remote API on a local server, on DuckDB and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jenkins_server import FREESTYLE, MULTIBRANCH, TOKEN, USER, FakeJenkins, load_stages

from obeya.config.loader import ConfigError, parse_config
from obeya.connectors.errors import AuthenticationError, MissingCredentialError
from obeya.connectors.jenkins.config import JenkinsConnectionConfig, JenkinsDeployRule
from obeya.connectors.jenkins.normalizer import normalize
from obeya.connectors.raw import raw_event
from obeya.connectors.sync import load_cursor, replay, sync
from obeya.model.records import Deployment, PipelineJob, PipelineRun
from obeya.model.vocabulary import EnvironmentClass
from obeya.normalize.rules import DeploymentNameRule, MappingRules
from obeya.store import Store

NOW = datetime(2024, 5, 1, tzinfo=UTC)
Item = dict[str, Any]
NORMALIZED_KINDS = ("pipeline_run", "pipeline_job", "deployment")
RULES = [
    JenkinsDeployRule(job=FREESTYLE, service="lake", environment="production"),
    JenkinsDeployRule(job=f"{MULTIBRANCH}/*", stage=r"^deploy$", service="devlake", environment="staging"),
]


@pytest.fixture
def jenkins(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeJenkins]:
    monkeypatch.setenv("JENKINS_USER", USER)
    monkeypatch.setenv("JENKINS_TOKEN", TOKEN)
    server = FakeJenkins().start()
    yield server
    server.stop()


def _connection(server: FakeJenkins, **options: Any) -> JenkinsConnectionConfig:
    return JenkinsConnectionConfig(
        name="ci",
        base_url=server.base_url,
        **{"jobs": [MULTIBRANCH, FREESTYLE], "deploy_jobs": RULES, **options},
    )


def _utc(millis: int) -> datetime:
    return datetime.fromtimestamp(millis / 1000, UTC).replace(tzinfo=None)


def _one(store: Store, kind: str, record_id: str) -> Any:
    found = store.fetch_records(kind, "id = ?", [record_id])
    assert len(found) == 1, record_id
    return found[0]


def snapshot(store: Store) -> dict[str, dict[str, dict[str, Any]]]:
    return {kind: {r.id: r.model_dump() for r in store.fetch_records(kind)} for kind in NORMALIZED_KINDS}


def test_build_and_its_stages(store: Store, jenkins: FakeJenkins) -> None:
    report = sync(store, _connection(jenkins), clock=lambda: NOW)
    assert report.resources[f"jobs/{MULTIBRANCH}"].fetched == 15  # main 4, PR-2 2, feature-1 3, feature-2 6
    assert report.resources[f"jobs/{FREESTYLE}"].fetched == 13

    # By hand from the recording: main #2, pushed to main, built f521ff9, 35260 ms.
    run = _one(store, "pipeline_run", f"jenkins:{MULTIBRANCH}/main#2")
    assert isinstance(run, PipelineRun)
    assert (run.pipeline, run.repo, run.commit_sha, run.branch) == (
        f"{MULTIBRANCH}/main",
        "gustavobini/devlake-jenkins",
        "f521ff9c806e74b9100c8fc87d07ac504f828f93",
        "main",
    )
    assert (run.result, run.trigger) == ("success", "Push event to branch main")
    assert run.created_at == run.started_at == _utc(1711277301765)
    assert run.finished_at == _utc(1711277301765 + 35260)

    jobs = sorted(
        (
            j
            for j in store.fetch_records("pipeline_job", "run_id = ?", [run.id])
            if isinstance(j, PipelineJob)
        ),
        key=lambda j: j.started_at or NOW,
    )
    recorded = load_stages()[f"{MULTIBRANCH}/main#2"]
    assert (
        [j.name for j in jobs]
        == [s["name"] for s in recorded]
        == ["Declarative: Checkout SCM", "checkout", "build", "test", "deploy"]
    )
    for job, stage in zip(jobs, recorded, strict=True):
        assert job.external_id == f"{MULTIBRANCH}/main#2/stages/{stage['id']}"
        assert (job.result, job.started_at) == ("success", _utc(stage["startTimeMillis"]))
        assert job.finished_at == _utc(stage["startTimeMillis"] + stage["durationMillis"])
    assert [j.environment for j in jobs] == [None, None, None, None, "staging"]

    results = {
        r.external_id.rpartition("#")[2]: (r.result, r.finished_at is None)
        for r in store.fetch_records("pipeline_run", "pipeline = ?", [FREESTYLE])
        if isinstance(r, PipelineRun)
    }
    assert results["10002"] == ("running", True)  # recorded "building": true
    assert results["10003"] == ("canceled", False)  # ABORTED
    assert results["10004"] == ("skipped", False)  # NOT_BUILD
    assert results["10005"] == ("failure", False)  # UNSTABLE
    freestyle = _one(store, "pipeline_run", f"jenkins:{FREESTYLE}#31")
    assert (freestyle.branch, freestyle.repo, freestyle.trigger) == (
        "main",
        "merico-dev/lake",
        "Started by user abc",
    )
    # Pipeline build #23 of the freestyle job has no recorded stages: reported, not failed
    assert sum(report.resources[f"jobs/{FREESTYLE}"].skipped.values()) == 1


def test_deployments_from_deploy_jobs_and_stages_that_ran(store: Store, jenkins: FakeJenkins) -> None:
    sync(store, _connection(jenkins), clock=lambda: NOW)
    build = _one(store, "deployment", f"jenkins:{FREESTYLE}#31/deployment")
    assert isinstance(build, Deployment)
    assert (build.service, build.environment, build.environment_class) == (
        "lake",
        "production",
        EnvironmentClass.PRODUCTION,
    )
    assert (build.commit_sha, build.result) == ("0f886c74949c3ee7e489188911c7dc0c1d547418", "success")
    assert build.pipeline_run_id == f"jenkins:{FREESTYLE}#31"
    assert build.started_at == _utc(1650024049161) and build.finished_at == _utc(1650024049161 + 1587)
    assert _one(store, "deployment", f"jenkins:{FREESTYLE}#10003/deployment").result == "canceled"
    assert not store.fetch_records(
        "deployment", "id = ?", [f"jenkins:{FREESTYLE}#10004/deployment"]
    )  # never built

    stage = _one(store, "deployment", f"jenkins:{MULTIBRANCH}/main#2/stages/28/deployment")
    assert (stage.service, stage.environment, stage.environment_class, stage.result) == (
        "devlake",
        "staging",
        EnvironmentClass.STAGING,
        "success",
    )
    assert stage.commit_sha == "f521ff9c806e74b9100c8fc87d07ac504f828f93"
    assert stage.pipeline_run_id == f"jenkins:{MULTIBRANCH}/main#2"
    assert stage.started_at == _utc(1711277333432)

    # PR-2 #1 was aborted in `checkout`: its `deploy` stage (recorded ABORTED, 11 ms) was skipped
    skipped = _one(store, "pipeline_job", f"jenkins:{MULTIBRANCH}/PR-2#1/stages/28")
    assert (skipped.name, skipped.result, skipped.environment) == ("deploy", "skipped", None)
    assert not store.fetch_records("deployment", "pipeline_run_id = ?", [f"jenkins:{MULTIBRANCH}/PR-2#1"])
    deployed = store.query("SELECT count(*) FROM deployments WHERE service = 'devlake'")[0][0]
    assert deployed == 11  # 13 recorded deploy stages minus PR-2 #1 and feature-2 #6 (aborted earlier)


# A wfapi ``describe`` answer in the shape of the example in the Pipeline REST API's documentation
# (jenkinsci/pipeline-stage-view-plugin, rest-api/README.md: Build 5228 ms, Test, Deploy), with the
# deploy stage's status as each way Jenkins says a `when` condition skipped it.
def _describe(deploy: Item) -> Item:
    return {
        "id": "2014-10-16_13-07-52",
        "name": "#15",
        "status": "SUCCESS",
        "startTimeMillis": 1413461275770,
        "endTimeMillis": 1413461285999,
        "durationMillis": 10229,
        "stages": [
            {"id": "5", "name": "build", "status": "SUCCESS", "startTimeMillis": 1413461275770,
             "durationMillis": 5228},
            {"id": "8", "name": "test", "status": "SUCCESS", "startTimeMillis": 1413461280998,
             "durationMillis": 4001},
            {"id": "10", "name": "deploy", "startTimeMillis": 1413461285000, "durationMillis": 12, **deploy},
        ],
    }  # fmt: skip


# The pipeline-graph-view plugin's ``pipeline-graph/tree`` answer (its PipelineGraph: ``stages`` of
# PipelineStage with ``id``, ``name``, ``state`` in lower case, ``startTimeMillis``, ``totalDurationMillis``).
_GRAPH_TREE = {
    "status": "ok",
    "data": {
        "complete": True,
        "stages": [
            {"id": "5", "name": "build", "state": "success", "startTimeMillis": 1413461275770,
             "totalDurationMillis": 5228, "type": "STAGE", "children": []},
            {"id": "8", "name": "test", "state": "success", "startTimeMillis": 1413461280998,
             "totalDurationMillis": 4001, "type": "STAGE", "children": []},
            {"id": "10", "name": "deploy", "state": "skipped", "startTimeMillis": 1413461285000,
             "totalDurationMillis": 12, "type": "STAGE", "children": []},
        ],
    },
}  # fmt: skip


def _normalized_stages(describe: Item) -> list[Any]:
    build = {
        "number": 15,
        "result": "SUCCESS",
        "building": False,
        "timestamp": 1413461275770,
        "duration": 10229,
    }
    rules = raw_event(
        "jenkins",
        "deploy_rules",
        "ci",
        {"deploy_jobs": [r.model_dump() for r in RULES]},
        connection="ci",
        received_at=NOW,
    )
    events = [
        raw_event("jenkins", kind, f"{MULTIBRANCH}/main#15", item, connection="ci", received_at=NOW)
        for kind, item in (("build", build), ("stages", describe))
    ]
    return normalize(events, MappingRules(), [rules]).records


@pytest.mark.parametrize(
    "describe",
    [
        _describe({"status": "NOT_EXECUTED"}),
        _describe({"status": "SKIPPED"}),
        _describe({"status": "NOT_BUILT"}),
        _GRAPH_TREE,
        _describe({"state": "SKIPPED", "result": "NOT_BUILT"}),  # Blue Ocean's node of a skipped stage
    ],
    ids=["wfapi-not-executed", "wfapi-skipped", "wfapi-not-built", "pipeline-graph-skipped", "blue-ocean"],
)
def test_a_deploy_stage_skipped_by_a_when_condition_is_no_deployment(describe: Item) -> None:
    records = _normalized_stages(describe)
    assert not [r for r in records if isinstance(r, Deployment)]
    assert [
        (r.external_id, r.name, r.result, r.environment) for r in records if isinstance(r, PipelineJob)
    ] == [
        (f"{MULTIBRANCH}/main#15/stages/5", "build", "success", None),
        (f"{MULTIBRANCH}/main#15/stages/8", "test", "success", None),
        (f"{MULTIBRANCH}/main#15/stages/10", "deploy", "skipped", None),
    ]


def test_the_same_deploy_stage_that_ran_is_a_deployment() -> None:
    records = _normalized_stages(_describe({"status": "SUCCESS"}))
    deployments = [r for r in records if isinstance(r, Deployment)]
    assert len(deployments) == 1
    deployed = deployments[0]
    assert (deployed.external_id, deployed.environment, deployed.result) == (
        f"{MULTIBRANCH}/main#15/stages/10/deployment",
        "staging",
        "success",
    )
    assert deployed.started_at == datetime(2014, 10, 16, 12, 8, 5)
    assert deployed.finished_at == datetime(2014, 10, 16, 12, 8, 5, 12000)


def test_stage_the_pipeline_graph_says_was_skipped_is_no_deployment(
    store: Store, jenkins: FakeJenkins
) -> None:
    # wfapi reports main #2's `deploy` stage (id 28) as SUCCESS, as older stage views do for a stage a
    # `when` condition skipped; the pipeline-graph-view plugin's tree of the build says it was skipped.
    # (With the plugin installed every Pipeline build has a tree: the others say what wfapi says.)
    recorded = load_stages()
    assert [s["status"] for s in recorded[f"{MULTIBRANCH}/main#2"] if s["id"] == "28"] == ["SUCCESS"]
    for key, stages in recorded.items():
        jenkins.graphs[key] = {
            "status": "ok",
            "data": {
                "complete": True,
                "stages": [
                    {
                        "id": s["id"],
                        "name": s["name"],
                        "state": "skipped"
                        if key == f"{MULTIBRANCH}/main#2" and s["name"] == "deploy"
                        else str(s["status"]).lower(),
                        "type": "STAGE",
                        "children": [],
                    }
                    for s in stages
                ],
            },
        }
    sync(store, _connection(jenkins), clock=lambda: NOW)
    skipped = _one(store, "pipeline_job", f"jenkins:{MULTIBRANCH}/main#2/stages/28")
    assert (skipped.name, skipped.result, skipped.environment) == ("deploy", "skipped", None)
    assert not store.fetch_records(
        "deployment", "id = ?", [f"jenkins:{MULTIBRANCH}/main#2/stages/28/deployment"]
    )
    deployed = store.query("SELECT count(*) FROM deployments WHERE service = 'devlake'")[0][0]
    assert deployed == 10  # the 11 deploy stages that ran, less this one


def test_pipeline_graph_is_not_asked_again_once_it_answered_404(store: Store, jenkins: FakeJenkins) -> None:
    sync(store, _connection(jenkins), clock=lambda: NOW)
    asked = jenkins.received("/pipeline-graph/tree")
    assert len(asked) == 1  # the plugin is not installed: one 404, then wfapi alone
    assert len(jenkins.received("/wfapi/describe")) > 1


def test_second_sync_fetches_only_new_builds(store: Store, jenkins: FakeJenkins) -> None:
    jenkins.hidden = {(f"{MULTIBRANCH}/main", 4)}
    sync(store, _connection(jenkins), clock=lambda: NOW)
    assert not store.fetch_records("pipeline_run", "id = ?", [f"jenkins:{MULTIBRANCH}/main#4"])
    cursor = load_cursor(store, "ci", f"jobs/{MULTIBRANCH}")
    assert cursor is not None and json.loads(cursor.cursor or "")["marks"][f"{MULTIBRANCH}/main"] == 3

    jenkins.reveal()
    jenkins.requests.clear()
    report = sync(store, _connection(jenkins), clock=lambda: NOW)
    assert report.resources[f"jobs/{MULTIBRANCH}"].fetched == 1
    assert jenkins.received("/wfapi/describe") == [
        "/job/github_org/job/devlake-jenkins/job/main/4/wfapi/describe"
    ]
    listed = [q["tree"] for p, q in jenkins.requests if "allBuilds" in q.get("tree", "")]
    assert len(listed) == 2  # main (new build 4) and the freestyle job (its running builds hold it back)
    run = _one(store, "pipeline_run", f"jenkins:{MULTIBRANCH}/main#4")
    assert run.commit_sha == "c83ae02076382670e286ac2474b7a7327fc28cde"


def test_wrong_token_is_a_clear_error(
    store: Store, jenkins: FakeJenkins, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JENKINS_TOKEN", "wrong")
    with pytest.raises(
        AuthenticationError, match=r"rejected the token in \$JENKINS_TOKEN \(401\).*API token"
    ):
        sync(store, _connection(jenkins), clock=lambda: NOW)
    monkeypatch.delenv("JENKINS_USER")
    with pytest.raises(MissingCredentialError, match=r"\$JENKINS_USER"):
        sync(store, _connection(jenkins), clock=lambda: NOW)


def test_replay_rebuilds_what_sync_wrote(store: Store, jenkins: FakeJenkins) -> None:
    sync(store, _connection(jenkins), clock=lambda: NOW)
    synced = snapshot(store)
    assert all(synced.values())
    for table in ("deployments", "pipeline_jobs", "pipeline_runs"):
        store.execute(f"DELETE FROM {table}")
    requests = len(jenkins.requests)
    report = replay(store, "ci")
    assert len(jenkins.requests) == requests
    assert set(report.resources) == {"build+stages+stage_graph"}
    assert snapshot(store) == synced


def test_jenkins_connection_in_obeya_yaml(tmp_path: Path) -> None:
    text = (
        "connections:\n"
        "  - name: ci\n"
        "    tool: jenkins\n"
        "    base_url: https://jenkins.example.com/\n"
        "    jobs: [payments/build]\n"
        "    deploy_jobs:\n"
        "      - {job: payments/deploy-prod, service: payments, environment: production}\n"
        "      - {stage: '(?i)deploy to (?P<environment>\\w+)', service: payments}\n"
    )
    connection = parse_config(text, tmp_path / "obeya.yaml").connections[0]
    assert isinstance(connection, JenkinsConnectionConfig)
    assert (connection.base_url, connection.user_env, connection.token_env) == (
        "https://jenkins.example.com",
        "JENKINS_USER",
        "JENKINS_TOKEN",
    )
    with pytest.raises(ConfigError, match="environment"):
        parse_config(text.replace("(?P<environment>\\w+)", "prod"), tmp_path / "obeya.yaml")


DEPLOY_BY_NAME = MappingRules(deployment_names=DeploymentNameRule(("^deploy$",), EnvironmentClass.PRODUCTION))


def _named(store: Store) -> dict[str, Deployment]:
    found = store.fetch_records("deployment", "external_id LIKE ?", ["%/deployment-by-name"])
    return {d.external_id: d for d in found if isinstance(d, Deployment)}


def test_job_name_rule_makes_deployments_of_stages_that_ran(store: Store, jenkins: FakeJenkins) -> None:
    sync(store, _connection(jenkins, deploy_jobs=[]), rules=DEPLOY_BY_NAME, clock=lambda: NOW)
    named = _named(store)
    key = f"{MULTIBRANCH}/main#2/stages/28/deployment-by-name"
    assert named[key] == Deployment(
        source="jenkins",
        external_id=key,
        raw_event_id=f"jenkins:stages:{MULTIBRANCH}/main#2",
        service=f"{MULTIBRANCH}/main",
        environment="deploy",
        environment_class=EnvironmentClass.PRODUCTION,  # "deploy" names no class: job_environment
        repo=named[key].repo,
        commit_sha="f521ff9c806e74b9100c8fc87d07ac504f828f93",
        pipeline_run_id=f"jenkins:{MULTIBRANCH}/main#2",
        result="success",
        started_at=_utc(1711277333432),
        finished_at=_utc(1711277333432 + 3552),
        url=_one(store, "pipeline_run", f"jenkins:{MULTIBRANCH}/main#2").url,
    )
    # PR-2 #1 and feature-2 #6 were aborted before their `deploy` stage: skipped, no deployment.
    assert f"{MULTIBRANCH}/PR-2#1/stages/28/deployment-by-name" not in named
    assert len(named) == 11  # the same 11 deploy stages that ran as with the deploy_jobs stage rule
    assert {d.environment for d in named.values()} == {"deploy"}  # "build", "test", ... are not deploy
    assert not store.fetch_records("deployment", "external_id LIKE ?", ["%/stages/%/deployment"])


def test_deploy_jobs_win_over_the_job_name_rule(store: Store, jenkins: FakeJenkins) -> None:
    sync(store, _connection(jenkins), rules=DEPLOY_BY_NAME, clock=lambda: NOW)
    assert _named(store) == {}  # both jobs are named by deploy_jobs: no second deployment per stage
    deployed = store.query("SELECT count(*) FROM deployments WHERE service = 'devlake'")[0][0]
    assert deployed == 11


def test_replay_applies_a_changed_job_name_rule(store: Store, jenkins: FakeJenkins) -> None:
    sync(store, _connection(jenkins, deploy_jobs=[]), clock=lambda: NOW)
    assert _named(store) == {}  # no rule: a stage name alone is nothing
    requests = len(jenkins.requests)
    replay(store, "ci", rules=DEPLOY_BY_NAME)
    assert len(jenkins.requests) == requests
    assert len(_named(store)) == 11
    replay(store, "ci", rules=MappingRules())
    assert _named(store) == {}  # the rule removed: replay drops what only the rule made


def _named_stages(describe: Item) -> list[Deployment]:
    build = {
        "number": 15,
        "result": "SUCCESS",
        "building": False,
        "timestamp": 1413461275770,
        "duration": 10229,
    }
    events = [
        raw_event("jenkins", kind, f"{MULTIBRANCH}/main#15", item, connection="ci", received_at=NOW)
        for kind, item in (("build", build), ("stages", describe))
    ]
    return [r for r in normalize(events, DEPLOY_BY_NAME).records if isinstance(r, Deployment)]


@pytest.mark.parametrize(
    "describe",
    [
        _describe({"status": "NOT_EXECUTED"}),
        _describe({"status": "SKIPPED"}),
        _describe({"status": "NOT_BUILT"}),
        _GRAPH_TREE,
        _describe({"state": "SKIPPED", "result": "NOT_BUILT"}),
    ],
    ids=["wfapi-not-executed", "wfapi-skipped", "wfapi-not-built", "pipeline-graph-skipped", "blue-ocean"],
)
def test_a_skipped_stage_matching_the_job_name_rule_is_no_deployment(describe: Item) -> None:
    assert _named_stages(describe) == []


def test_the_same_stage_that_ran_matches_the_job_name_rule() -> None:
    (deployed,) = _named_stages(_describe({"status": "SUCCESS"}))
    assert (deployed.external_id, deployed.environment, deployed.environment_class, deployed.result) == (
        f"{MULTIBRANCH}/main#15/stages/10/deployment-by-name",
        "deploy",
        EnvironmentClass.PRODUCTION,
        "success",
    )
