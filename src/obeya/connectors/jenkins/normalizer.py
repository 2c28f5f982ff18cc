"""Where Jenkins builds and stages become records: pure functions, no HTTP.

Record ids, all under source ``jenkins``: ``JOB#N`` (PipelineRun), ``JOB#N/stages/ID`` (PipelineJob),
``JOB#N/deployment`` (a deploy job's build), ``JOB#N/stages/ID/deployment`` (a deploy stage).

**Deployments.** Facts first, names second:

1. a build of a job named by a ``job``-only rule of `deploy_jobs` is a deployment (unless it was never
   built, ``NOT_BUILT``): the job is declared a deploy job, the build's result is the deployment's;
2. otherwise a stage matching a ``stage`` rule is a deployment only if it really ran: not skipped
   (`SKIPPED_STATUSES`: wfapi's ``NOT_EXECUTED``, ``SKIPPED`` for a stage a ``when`` condition skipped,
   ``NOT_BUILT``; the pipeline-graph and Blue Ocean answers' ``state`` ``skipped`` / ``not_built``), and
   not after an earlier stage of the build that failed or was aborted (a declarative Pipeline skips the
   remaining stages then, and the stage view reports them with the build's status). Where the
   pipeline-graph answer of the build is stored (``stage_graph``), a stage it says was skipped did not
   run whatever wfapi says (older stage views report a ``when``-skipped stage as ``SUCCESS``). A stage
   name alone never makes a deployment of a stage that did not run;
3. otherwise, for builds of jobs no rule of `deploy_jobs` names, a stage that really ran and whose name
   matches the global job name rule (`rules.deployments.job_patterns`) is a deployment
   ``JOB#N/stages/ID/deployment-by-name``: service = the job, environment = the stage's name.

The environment is the rule's `environment`, else the stage pattern's ``environment`` group; its class
comes from `MappingRules.environment_class`.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from obeya.connectors.base import Normalized
from obeya.connectors.jenkins.collector import SOURCE, finished
from obeya.connectors.jenkins.config import JenkinsDeployRule
from obeya.connectors.raw import event_key
from obeya.model.records import Deployment, PipelineJob, PipelineRun, RawEvent, Record, RunResult
from obeya.normalize.rules import NAMED_DEPLOYMENT, MappingRules, named_deployment_result

Item = dict[str, Any]
REFERENCE_TYPES = ("deploy_rules",)

BUILD_RESULTS: dict[str, RunResult] = {
    "SUCCESS": "success",
    "FAILURE": "failure",
    "UNSTABLE": "failure",
    "ABORTED": "canceled",
    "NOT_BUILT": "skipped",
    "NOT_BUILD": "skipped",
}
STAGE_RESULTS: dict[str, RunResult] = {
    "SUCCESS": "success",
    "FAILED": "failure",
    "FAILURE": "failure",
    "UNSTABLE": "failure",
    "ABORTED": "canceled",
    "NOT_EXECUTED": "skipped",
    "NOT_BUILT": "skipped",
    "SKIPPED": "skipped",
    "IN_PROGRESS": "running",
    "PAUSED_PENDING_INPUT": "running",
    "RUNNING": "running",
    "QUEUED": "running",
    "PAUSED": "running",
}
SKIPPED_STATUSES = frozenset({"NOT_EXECUTED", "NOT_BUILT", "SKIPPED"})
"""Stage statuses of a stage that did not run (a ``when`` condition, a stage never reached)."""
_BROKEN = {"FAILED", "FAILURE", "ABORTED"}
_REMOTE = re.compile(r"[:/]([^/:]+/[^/]+?)(?:\.git)?/?$")


def _time(millis: Any) -> datetime | None:
    return datetime.fromtimestamp(millis / 1000, UTC) if isinstance(millis, int | float) and millis else None


def _build_data(build: Item) -> Item:
    """The git plugin's BuildData of the build's own checkout (the first one with a revision)."""
    for action in build.get("actions") or []:
        if isinstance(action, dict) and isinstance(action.get("lastBuiltRevision"), dict):
            return action
    return {}


def _branch(name: str | None) -> str | None:
    if not name:
        return None
    for prefix in ("refs/remotes/origin/", "refs/heads/", "origin/"):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def repo_of(url: str | None) -> str | None:
    """``owner/name`` of a git remote URL (``git@github.com:o/n.git``, ``https://host/o/n``)."""
    match = _REMOTE.search(url or "")
    return match.group(1) if match else None


def _cause(build: Item) -> str | None:
    for action in build.get("actions") or []:
        for cause in (action or {}).get("causes") or []:
            if cause.get("shortDescription"):
                return str(cause["shortDescription"])
    return None


def build_result(build: Item) -> RunResult:
    """The result of a build: running until it is over."""
    if not finished(build):
        return "running"
    return BUILD_RESULTS.get(str(build.get("result")), "failure")


def stage_status(stage: Item) -> str:
    """A stage's status, upper case: wfapi's ``status``; else the ``state`` of a pipeline-graph (or Blue
    Ocean) stage, whose ``state`` ``skipped`` wins over its ``result`` (Blue Ocean says ``NOT_BUILT``)."""
    state = str(stage.get("state") or "").upper()
    if state == "SKIPPED":
        return state
    return str(stage.get("status") or state or stage.get("result") or "").upper()


def _listed(answer: Item) -> list[Item]:
    listed = answer.get("stages")
    if listed is None and isinstance(answer.get("data"), dict):
        listed = answer["data"].get("stages")
    return [s for s in listed or [] if isinstance(s, dict)]


@dataclass(frozen=True)
class GraphSkips:
    """The stages a pipeline-graph answer says were skipped: by flow node id, and by name."""

    ids: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()
    known_ids: frozenset[str] = frozenset()

    def skipped(self, stage: Item) -> bool:
        """Whether the graph says `stage` (a wfapi stage) was skipped: by its id, else by its name."""
        stage_id = str(stage.get("id"))
        if stage_id in self.known_ids:
            return stage_id in self.ids
        return str(stage.get("name")) in self.names


def graph_skips(tree: Item | None) -> GraphSkips:
    """What a pipeline-graph answer says was skipped (parallel branches included)."""
    if tree is None:
        return GraphSkips()
    ids: set[str] = set()
    names: set[str] = set()
    known: set[str] = set()
    pending = _listed(tree)
    while pending:
        stage = pending.pop()
        pending.extend(c for c in stage.get("children") or [] if isinstance(c, dict))
        known.add(str(stage.get("id")))
        if stage_status(stage) in SKIPPED_STATUSES:
            ids.add(str(stage.get("id")))
            names.add(str(stage.get("name")))
    return GraphSkips(frozenset(ids), frozenset(names), frozenset(known))


def stages_that_ran(describe: Item, graph: GraphSkips | None = None) -> list[tuple[Item, bool]]:
    """The stages of a wfapi answer (or a pipeline-graph tree's ``data``), in order, each with whether it
    really ran; `graph` (the pipeline-graph answer of the same build) names stages a ``when`` skipped
    that wfapi reports as run."""
    stages = sorted(_listed(describe), key=lambda s: int(s.get("id", 0)))
    graph = graph or GraphSkips()
    broken = False
    result = []
    for stage in stages:
        status = stage_status(stage)
        ran = status not in SKIPPED_STATUSES and not broken and not graph.skipped(stage)
        result.append((stage, ran))
        broken = broken or status in _BROKEN
    return result


def _deploy_rules(context: Sequence[RawEvent]) -> list[JenkinsDeployRule]:
    rules: list[JenkinsDeployRule] = []
    for event in context:
        if event.event_type == "deploy_rules":
            rules += [JenkinsDeployRule(**r) for r in json.loads(event.payload).get("deploy_jobs", [])]
    return rules


def _job_matches(rule: JenkinsDeployRule, job: str) -> bool:
    return rule.job is None or rule.job == job or fnmatch.fnmatchcase(job, rule.job)


def normalize(
    events: Sequence[RawEvent], rules: MappingRules, context: Sequence[RawEvent] = ()
) -> Normalized:
    """The records of Jenkins raw events: ``build`` with its ``stages`` (normalized together)."""
    result = Normalized()
    deploy_rules = _deploy_rules([*context, *(e for e in events if e.event_type == "deploy_rules")])
    stages = {event_key(e): e for e in events if e.event_type == "stages"}
    graphs = {event_key(e): e for e in events if e.event_type == "stage_graph"}
    for event in events:
        if event.event_type != "build":
            if event.event_type not in ("stages", "stage_graph", "deploy_rules"):
                result.skipped.append(
                    (event.id, f"Jenkins raw event type {event.event_type!r} is not normalized")
                )
            continue
        key = event_key(event)
        try:
            graph = graphs.get(key)
            skips = graph_skips(json.loads(graph.payload) if graph is not None else None)
            records = _build_records(event, key, stages.get(key), deploy_rules, rules, skips)
        except (KeyError, TypeError, ValueError, ValidationError) as error:
            result.skipped.append((event.id, f"malformed Jenkins build {key}: {error}"[:300]))
            continue
        result.records += records
        result.normalized_events += 1 + (key in stages) + (key in graphs)
    return result


def _build_records(
    event: RawEvent,
    key: str,
    stages_event: RawEvent | None,
    deploy_rules: list[JenkinsDeployRule],
    rules: MappingRules,
    skips: GraphSkips,
) -> list[Record]:
    build = json.loads(event.payload)
    job = key.rpartition("#")[0]
    data = _build_data(build)
    revision = data.get("lastBuiltRevision") or {}
    branches = revision.get("branch") or [{}]
    started = _time(build.get("timestamp"))
    if started is None:
        raise ValueError("no timestamp")
    ended = started + timedelta(milliseconds=int(build.get("duration") or 0)) if finished(build) else None
    run = PipelineRun(
        source=SOURCE,
        external_id=key,
        raw_event_id=event.id,
        pipeline=job,
        repo=repo_of((data.get("remoteUrls") or [None])[0]),
        commit_sha=revision.get("SHA1"),
        branch=_branch(branches[0].get("name")),
        trigger=_cause(build),
        result=build_result(build),
        created_at=started,
        started_at=started,
        finished_at=ended,
        url=build.get("url"),
    )
    records: list[Record] = [run]

    def deployment(suffix: str, rule: JenkinsDeployRule, environment: str, **fields: Any) -> Deployment:
        return Deployment(
            source=SOURCE,
            external_id=f"{key}{suffix}/deployment",
            raw_event_id=fields.pop("raw_event_id"),
            service=rule.service,
            environment=environment,
            environment_class=rules.environment_class(environment),
            repo=run.repo,
            commit_sha=run.commit_sha,
            pipeline_run_id=run.id,
            url=run.url,
            **fields,
        )

    job_rule = next((r for r in deploy_rules if r.stage is None and _job_matches(r, job)), None)
    if job_rule is not None and run.result != "skipped" and job_rule.environment:
        records.append(
            deployment(
                "",
                job_rule,
                job_rule.environment,
                raw_event_id=event.id,
                result=run.result,
                started_at=started,
                finished_at=ended,
            )
        )
    if stages_event is None:
        return records
    stage_rules = [r for r in deploy_rules if r.stage is not None and _job_matches(r, job)]
    # `deploy_jobs` wins: the global job name rule only looks at builds of jobs no rule of it names.
    name_rule = rules.deployment_name_rule() if job_rule is None and not stage_rules else None
    for stage, ran in stages_that_ran(json.loads(stages_event.payload), skips):
        status = stage_status(stage)
        begun = _time(stage.get("startTimeMillis"))
        over = (
            begun
            + timedelta(
                milliseconds=int(stage.get("durationMillis") or stage.get("totalDurationMillis") or 0)
            )
            if begun and STAGE_RESULTS.get(status) != "running"
            else None
        )
        outcome: RunResult = STAGE_RESULTS.get(status, "failure") if ran else "skipped"
        environment = None
        rule = None
        if ran and job_rule is None:
            for candidate in stage_rules:
                match = re.search(candidate.stage or "", str(stage.get("name", "")), re.IGNORECASE)
                if match:
                    named = match.groupdict().get("environment")
                    environment, rule = candidate.environment or named, candidate
                    break
        stage_key = f"/stages/{stage['id']}"
        records.append(
            PipelineJob(
                source=SOURCE,
                external_id=f"{key}{stage_key}",
                raw_event_id=stages_event.id,
                run_id=run.id,
                name=str(stage.get("name") or stage["id"]),
                stage=str(stage.get("name") or stage["id"]),
                result=outcome,
                environment=environment if rule else None,
                started_at=begun,
                finished_at=over,
            )
        )
        if rule is not None and environment and outcome != "skipped":
            records.append(
                deployment(
                    stage_key,
                    rule,
                    environment,
                    raw_event_id=stages_event.id,
                    result=outcome,
                    started_at=begun,
                    finished_at=over,
                )
            )
        named = named_deployment_result(outcome) if ran and name_rule is not None else None
        if named is not None and name_rule is not None and begun is not None:
            name = str(stage.get("name") or "")
            if name_rule.matched_pattern(name) is not None:
                records.append(
                    Deployment(
                        source=SOURCE,
                        external_id=f"{key}{stage_key}/{NAMED_DEPLOYMENT}",
                        raw_event_id=stages_event.id,
                        service=job,
                        environment=name,
                        environment_class=rules.job_environment_class(name, name_rule),
                        repo=run.repo,
                        commit_sha=run.commit_sha,
                        pipeline_run_id=run.id,
                        result=named,
                        started_at=begun,
                        finished_at=over,
                        url=run.url,
                    )
                )
    return records
