"""The rows behind a figure: for every flow and DORA metric, exactly the records its number counts.

Each evidence query reuses the conditions of the metric it explains (`obeya.engine.flow`,
`obeya.engine.dora`, the `timeline`), so that the rows and the figure cannot drift apart; the test suite
checks, metric by metric, that the evidence count equals the figure's count (docs/metrics.md: "every
number Obeya shows must be reproducible from these definitions and the evidence rows behind it").

- flow ``velocity``, ``flow_time``, ``lead_time``, ``efficiency``: the work items completed in the window
  (for the times, those whose span is not negative; for efficiency, those with a positive flow time);
- flow ``load``: the items in ``waiting`` or ``active`` at the window's end; ``age``: those of them that
  started; ``daily_load``: every item in ``waiting`` or ``active`` at the end of some day of the window,
  with the number of such days (their sum ÷ the window's days is the average flow load);
- flow ``predictability``: the items committed at the start of the plans that ended in the window, each
  marked delivered or not; ``predictability_value``: those of the plans that carry business values, with
  the planned and delivered values;
- dora ``deployment_frequency`` and ``rework_rate``: the production deployments of the results deployment
  frequency counts (default: successful), each saying whether it is rework;
  ``change_failure_rate``: the production deployments that succeeded, failed or were rolled back, each
  saying whether it counts as failed; a deployment stored as several rows (one per repository it ships,
  `obeya.engine.dora.deployment_rows`) is one row here, finished at its last row's finish, as it is one
  in the figures;
- dora ``lead_time_for_changes`` (and its parts ``coding_time``, ``pickup_time``, ``review_time``,
  ``deploy_time``): the changes whose first production deployment is in the window;
- dora ``recovery``: the failed (or incident-causing) production deployments and when they recovered;
  ``time_to_restore``: the incidents of the window and when they were resolved.

DORA evidence follows the same deployment and incident rules (`obeya.engine.dora_rules`) as the figures.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any, Literal

from obeya.engine.dora import (
    EVENT_COLUMNS,
    FINISHED_AT,
    REWORK,
    REWORK_JOINS,
    WORST_RESULT,
    caused_incident_ids,
    deployment_rows,
    failed_condition,
    failed_deployment_events,
    rework_ctes,
    shipped_change_ctes,
)
from obeya.engine.dora_rules import DEFAULT_DORA_RULES, DoraRules
from obeya.engine.flow import completed_items, plan_commitments, wip_day_spans
from obeya.engine.sql import incident_conditions, seconds_between
from obeya.engine.timeline import WorkStart, timeline
from obeya.engine.window import Slice, Window
from obeya.store import Store

Family = Literal["flow", "dora"]

METRICS: dict[str, dict[str, str]] = {
    "flow": {
        "velocity": "work items completed in the window",
        "flow_time": "work items completed in the window with a flow time (work start → complete) ≥ 0",
        "lead_time": "work items completed in the window with a lead time (created → complete) ≥ 0",
        "efficiency": "work items completed in the window with a flow time > 0, with their active time",
        "load": "work items in waiting or active at the window's end",
        "age": "work items in waiting or active at the window's end that have started, with their age",
        "daily_load": "work items in waiting or active at the end of a day of the window, each with the "
        "number of such days (their sum ÷ the window's days is the average flow load)",
        "predictability": "work items committed at the start of the plans that ended in the window, "
        "each marked when done by the plan's end",
        "predictability_value": "work items committed at the start of the plans that ended in the window "
        "and carry business values, with the value planned and the value delivered",
    },
    "dora": {
        "deployment_frequency": "production deployments finished in the window with a result deployment "
        "frequency counts (rules.deployments.frequency_results, default success)",
        "change_failure_rate": "production deployments that succeeded, failed or were rolled back, "
        "each marked failed when it failed, was rolled back or caused an incident",
        "rework_rate": "production deployments deployment frequency counts, each marked when it is rework "
        "(ships only defect fixes, or responds to an incident)",
        "lead_time_for_changes": "changes first deployed to production in the window, lead time ≥ 0",
        "coding_time": "changes first deployed to production in the window, coding time ≥ 0",
        "pickup_time": "changes first deployed to production in the window, pickup time ≥ 0",
        "review_time": "changes first deployed to production in the window, review time ≥ 0",
        "deploy_time": "changes first deployed to production in the window, deploy time ≥ 0",
        "recovery": "failed or incident-causing production deployments of the window that recovered",
        "time_to_restore": "incidents of the window that were resolved",
    },
}
"""Per family, every evidence metric and the rows it returns."""


class UnknownEvidenceMetric(ValueError):
    """No evidence is defined for the family or metric asked for."""

    def __init__(self, family: str, metric: str) -> None:
        if family not in METRICS:
            message = f"no metric family {family!r}: use one of {', '.join(METRICS)}"
        else:
            accepted = ", ".join(METRICS[family])
            message = f"no {family} evidence for metric {metric!r}: use one of {accepted}"
        super().__init__(message)
        self.family = family
        self.metric = metric


@dataclass(frozen=True)
class CompletedItemEvidence:
    """A work item completed in the window; durations in seconds (None without a work start)."""

    key: str
    title: str
    flow_item_type: str
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime
    flow_time: float | None
    lead_time: float
    active_time: float | None


@dataclass(frozen=True)
class InProgressItemEvidence:
    """A work item in progress at the window's end; `age` is seconds since its work start."""

    key: str
    title: str
    flow_item_type: str
    flow_state: str
    stage: str | None
    created_at: datetime
    started_at: datetime | None
    age: float | None


@dataclass(frozen=True)
class DailyLoadItemEvidence:
    """A work item in ``waiting`` or ``active`` at the end of `days` days of the window, the first and
    the last of them given."""

    key: str
    title: str
    flow_item_type: str
    first_day: date
    last_day: date
    days: int


@dataclass(frozen=True)
class PlanItemEvidence:
    """A work item committed at a plan's start; `delivered` when it was done by the plan's end.
    `delivered_value` is the value counted as delivered (its delivered value, else its planned value),
    None when it was not delivered."""

    plan_id: str
    plan: str
    plan_ends_at: datetime
    key: str
    title: str
    flow_item_type: str
    completed_at: datetime | None
    delivered: bool
    planned_value: float | None
    delivered_value: float | None


@dataclass(frozen=True)
class DeploymentEvidence:
    """A production deployment, whether it counts as failed, whether it ships a defect fix, and whether it
    is rework; one deployment stored as several rows is one (`deployment_ids`: its rows; `id`, the first;
    `repo` and `commit_sha`: each row's, comma-separated; `change_request_ids`: the change requests
    covering any of its rows, docs/traceability.md)."""

    id: str
    service: str
    environment: str
    result: str
    started_at: datetime | None
    finished_at: datetime | None
    repo: str | None
    commit_sha: str | None
    failed: bool
    fixes_defect: bool
    caused_incident_ids: list[str]
    rework: bool
    deployment_ids: list[str]
    change_request_ids: list[str]  # the change requests (releases) it was made under: `covered_by` links


@dataclass(frozen=True)
class ShippedChangeEvidence:
    """A change and its first successful production deployment; spans in seconds (None: unknown)."""

    id: str
    repo: str
    number: int
    title: str
    first_commit_at: datetime | None
    opened_at: datetime
    first_review_at: datetime | None
    merged_at: datetime | None
    deployed_at: datetime
    lead_time: float | None
    coding_time: float | None
    pickup_time: float | None
    review_time: float | None
    deploy_time: float | None


@dataclass(frozen=True)
class FailedDeploymentEvidence:
    """A failed or incident-causing production deployment and when it recovered (one deployment stored as
    several rows is one: `deployment_ids` are its failed rows, `id` the first)."""

    id: str
    service: str
    environment: str
    result: str
    finished_at: datetime | None
    recovered_at: datetime | None
    recovery_time: float | None
    caused_incident_ids: list[str]
    deployment_ids: list[str]


@dataclass(frozen=True)
class IncidentEvidence:
    """An incident of the window and when it was resolved."""

    id: str
    title: str
    service: str | None
    severity: str | None
    created_at: datetime
    resolved_at: datetime | None
    time_to_restore: float | None
    caused_by_deployment_ids: list[str]


EvidenceRow = (
    CompletedItemEvidence
    | InProgressItemEvidence
    | DailyLoadItemEvidence
    | PlanItemEvidence
    | DeploymentEvidence
    | ShippedChangeEvidence
    | FailedDeploymentEvidence
    | IncidentEvidence
)


@dataclass(frozen=True)
class EvidenceQuery:
    """A SELECT (ordered, so pages are stable) whose columns are `row_type`'s fields, in order."""

    sql: str
    params: list[Any]
    row_type: type[EvidenceRow]


@dataclass(frozen=True)
class EvidencePage:
    """`rows` of the `total` rows behind a figure, from `offset`."""

    family: Family
    metric: str
    description: str
    total: int
    offset: int
    rows: list[EvidenceRow]
    row_type: type[EvidenceRow]  # the type of every row, also when there are none


_COMPLETED_FILTERS = {
    "velocity": "TRUE",
    "flow_time": "c.flow_time >= 0",
    "lead_time": "c.lead_time >= 0",
    "efficiency": "c.flow_time > 0",
}


def _completed_items(metric: str, window: Window, scope: Slice, work_start: WorkStart) -> EvidenceQuery:
    sql, params = completed_items(window, scope, work_start)
    overlap = seconds_between("GREATEST(v.entered_at, c.started_at)", "LEAST(v.left_at, c.completed_at)")
    sql += f""",
active AS (
    SELECT c.id,
           COALESCE(SUM(GREATEST({overlap}, 0)) FILTER (WHERE v.flow_state = 'active'), 0) AS active_time
    FROM completed c LEFT JOIN intervals v ON v.item_id = c.id
    WHERE c.flow_time >= 0
    GROUP BY c.id
)
SELECT c.key, c.title, c.flow_item_type, c.created_at, c.started_at, c.completed_at, c.flow_time,
       c.lead_time, a.active_time
FROM completed c LEFT JOIN active a ON a.id = c.id
WHERE {_COMPLETED_FILTERS[metric]}
ORDER BY c.completed_at, c.key, c.id"""
    return EvidenceQuery(sql, params, CompletedItemEvidence)


def _in_progress_items(metric: str, window: Window, scope: Slice, work_start: WorkStart) -> EvidenceQuery:
    t = timeline(scope, window.end, work_start)
    # load counts the items whose current status period is waiting or active (flow.flow_load reads the
    # intervals); age counts those that started, whatever their status history (flow.work_item_age)
    condition = (
        "EXISTS (SELECT 1 FROM intervals v WHERE v.item_id = i.id AND v.is_current)"
        if metric == "load"
        else "i.started_at IS NOT NULL"
    )
    sql = f"""WITH {t.ctes},
clock AS (SELECT CAST(? AS TIMESTAMP) AS now_at)
SELECT i.key, i.title, i.flow_item_type, i.state_now, i.stage_now, i.created_at, i.started_at,
       {seconds_between("i.started_at", "k.now_at")} AS age
FROM item_times i CROSS JOIN clock k
WHERE i.state_now IN ('waiting', 'active') AND {condition}
ORDER BY i.started_at, i.key, i.id"""
    return EvidenceQuery(sql, [*t.params, window.end], InProgressItemEvidence)


def _daily_load(window: Window, scope: Slice, work_start: WorkStart) -> EvidenceQuery:
    # the spans flow.flow_load counts, per item: each day a span covers is one unit of the daily sum
    sql, params = wip_day_spans(window, scope, work_start)
    sql += """
SELECT i.key, i.title, i.flow_item_type, MIN(s.from_day) AS first_day, MAX(s.to_day) AS last_day,
       SUM(s.to_day - s.from_day + 1) AS days
FROM spans s JOIN items i ON i.id = s.item_id
WHERE s.flow_state IN ('waiting', 'active') AND s.from_day <= s.to_day
GROUP BY i.id, i.key, i.title, i.flow_item_type
ORDER BY first_day, i.key, i.id"""
    return EvidenceQuery(sql, params, DailyLoadItemEvidence)


def _plan_items(metric: str, window: Window, scope: Slice, work_start: WorkStart) -> EvidenceQuery:
    # the commitments flow.flow_predictability sums; the value figure is over plans carrying values
    sql, params = plan_commitments(window, scope, work_start)
    condition = "plan_value <> 0" if metric == "predictability_value" else "TRUE"
    sql += f"""
SELECT plan_id, plan_name, plan_ends_at, key, title, flow_item_type, completed_at, delivered,
       planned_value, delivered_value
FROM committed
WHERE {condition}
ORDER BY plan_ends_at, plan_id, key, item_id"""
    return EvidenceQuery(sql, params, PlanItemEvidence)


_DEPLOYMENT_METRICS = ("deployment_frequency", "rework_rate", "change_failure_rate")
_COVERED_BY = """(SELECT string_agg(l.to_id, ',' ORDER BY l.to_id) FROM trace_links l
    WHERE l.link_kind = 'covered_by' AND l.from_kind = 'deployment' AND l.from_id = d.id)"""
"""SQL: the change requests (comma-separated, sorted) covering deployment row ``d``."""


def _deployments(metric: str, window: Window, scope: Slice, rules: DoraRules) -> EvidenceQuery:
    ctes, params = rework_ctes(window, scope, rules)
    rows, row_params = deployment_rows(window, scope, rules)
    results = (
        "d.result IN ('success', 'failure', 'rolled_back')"
        if metric == "change_failure_rate"
        else rules.deployments.frequency_result()
    )
    # as in dora.rework_rate: a deployment (event) fixes a defect when one of its changes does
    fixes = (
        "EXISTS (SELECT 1 FROM event_changes ec JOIN defect_fixes df ON df.change_id = ec.change_id "
        "WHERE ec.service = e.service AND ec.environment = e.environment "
        "AND ec.finished_at = e.finished_at)"
    )
    sql = f"""WITH {ctes},
shown AS (
    SELECT MIN(id) AS id, {EVENT_COLUMNS}, {WORST_RESULT} AS result, MIN(started_at) AS started_at,
           MAX(raw_finished_at) AS raw_finished_at,
           string_agg(repo, ',' ORDER BY id) AS repo, string_agg(commit_sha, ',' ORDER BY id) AS commit_sha,
           bool_or(failed) AS failed, string_agg(caused, ',' ORDER BY id) AS caused,
           string_agg(id, ',' ORDER BY id) AS deployment_ids,
           string_agg(covered, ',' ORDER BY id) AS change_request_ids
    FROM (
        SELECT d.id, d.service, d.environment, {FINISHED_AT} AS finished_at, d.result, d.started_at,
               d.finished_at AS raw_finished_at, d.repo, d.commit_sha, {failed_condition(rules)} AS failed,
               {caused_incident_ids(rules)} AS caused, {_COVERED_BY} AS covered
        FROM {rows} d WHERE {results}
    ) deployment_rows
    GROUP BY {EVENT_COLUMNS}
)
SELECT e.id, e.service, e.environment, e.result, e.started_at, e.raw_finished_at, e.repo, e.commit_sha,
       e.failed, {fixes} AS fixes_defect, e.caused, {REWORK} AS rework, e.deployment_ids,
       e.change_request_ids
FROM shown e
{REWORK_JOINS}
ORDER BY e.finished_at, e.id"""
    return EvidenceQuery(sql, [*params, *row_params], DeploymentEvidence)


_CHANGE_SPANS = {
    "lead_time_for_changes": "lead_time",
    "coding_time": "coding_time",
    "pickup_time": "pickup_time",
    "review_time": "review_time",
    "deploy_time": "deploy_time",
}


def _shipped_changes(metric: str, window: Window, scope: Slice, rules: DoraRules) -> EvidenceQuery:
    shipped_ctes, params = shipped_change_ctes(scope, rules, window)
    sql = f"""WITH {shipped_ctes},
spans AS (
    SELECT ch.id, ch.repo, ch.number, ch.title, f.first_commit_at, ch.created_at AS opened_at,
           r.first_review_at, ch.merged_at, s.deployed_at,
           {seconds_between("COALESCE(f.first_commit_at, ch.created_at)", "s.deployed_at")} AS lead_time,
           {seconds_between("f.first_commit_at", "ch.created_at")} AS coding_time,
           {seconds_between("ch.created_at", "r.first_review_at")} AS pickup_time,
           {seconds_between("r.first_review_at", "ch.merged_at")} AS review_time,
           {seconds_between("ch.merged_at", "s.deployed_at")} AS deploy_time
    FROM shipped s JOIN changes ch ON ch.id = s.change_id
    LEFT JOIN first_commits f ON f.change_id = s.change_id
    LEFT JOIN first_reviews r ON r.change_id = s.change_id
    WHERE s.deployed_at >= ? AND s.deployed_at < ?
)
SELECT * FROM spans WHERE {_CHANGE_SPANS[metric]} >= 0
ORDER BY deployed_at, repo, number, id"""
    return EvidenceQuery(sql, [*params, window.start, window.end], ShippedChangeEvidence)


def _failed_deployments(window: Window, scope: Slice, rules: DoraRules) -> EvidenceQuery:
    events, params = failed_deployment_events(window, scope, rules)
    recovery = seconds_between("finished_at", "recovered_at")
    sql = f"""SELECT id, service, environment, result, finished_at, recovered_at, {recovery} AS recovery_time,
       caused_incident_ids, deployment_ids
FROM ({events}) failed_events WHERE {recovery} >= 0
ORDER BY finished_at, id"""
    return EvidenceQuery(sql, params, FailedDeploymentEvidence)


def _incidents(window: Window, scope: Slice, rules: DoraRules) -> EvidenceQuery:
    condition, params = incident_conditions(scope)
    restore = seconds_between("i.created_at", "i.resolved_at")
    sql = f"""SELECT i.id, i.title, i.service, i.severity, i.created_at, i.resolved_at, {restore} AS restore,
       (SELECT string_agg(l.to_id, ',' ORDER BY l.to_id) FROM trace_links l
        WHERE l.link_kind = 'caused_by' AND l.from_id = i.id AND l.to_kind = 'deployment') AS caused_by
FROM incidents i
WHERE i.created_at >= ? AND i.created_at < ? AND {condition} AND {rules.incidents.counted()}
  AND {restore} >= 0
ORDER BY i.created_at, i.id"""
    return EvidenceQuery(sql, [window.start, window.end, *params], IncidentEvidence)


def evidence_query(
    family: str,
    metric: str,
    window: Window,
    scope: Slice = Slice(),
    work_start: WorkStart = "active",
    rules: DoraRules = DEFAULT_DORA_RULES,
) -> EvidenceQuery:
    """The query for the rows behind `metric` of `family` over a slice and window (DORA rows under the
    deployment and incident `rules`, as the figures).

    Raises `UnknownEvidenceMetric` for a family or metric without evidence (see `METRICS`).
    """
    if family not in METRICS or metric not in METRICS[family]:
        raise UnknownEvidenceMetric(family, metric)
    if metric in _COMPLETED_FILTERS:
        return _completed_items(metric, window, scope, work_start)
    if metric in ("load", "age"):
        return _in_progress_items(metric, window, scope, work_start)
    if metric == "daily_load":
        return _daily_load(window, scope, work_start)
    if metric in ("predictability", "predictability_value"):
        return _plan_items(metric, window, scope, work_start)
    if metric in _DEPLOYMENT_METRICS:
        return _deployments(metric, window, scope, rules)
    if metric in _CHANGE_SPANS:
        return _shipped_changes(metric, window, scope, rules)
    if metric == "recovery":
        return _failed_deployments(window, scope, rules)
    return _incidents(window, scope, rules)


def _row(row_type: type[EvidenceRow], values: tuple[Any, ...]) -> EvidenceRow:
    converted: list[Any] = []
    for field, value in zip(fields(row_type), values, strict=True):
        if field.name.endswith("_ids"):
            # rows of one event may name the same record (a change request covering each of them)
            value = list(dict.fromkeys(str(value).split(","))) if value else []
        converted.append(value)
    return row_type(*converted)


def evidence(
    store: Store,
    family: str,
    metric: str,
    window: Window,
    scope: Slice = Slice(),
    limit: int | None = None,
    offset: int = 0,
    work_start: WorkStart = "active",
    rules: DoraRules = DEFAULT_DORA_RULES,
) -> EvidencePage:
    """The rows behind `metric` of `family` (all of them, or `limit` from `offset`) and their count.

    Raises `UnknownEvidenceMetric` for a family or metric without evidence (see `METRICS`).
    """
    query = evidence_query(family, metric, window, scope, work_start, rules)
    total = int(store.query(f"SELECT count(*) FROM ({query.sql}) AS evidence", query.params)[0][0])
    if limit is None:
        rows = store.query(query.sql, query.params) if total else []
    else:
        rows = store.query(f"{query.sql} LIMIT ? OFFSET ?", [*query.params, limit, offset]) if total else []
    return EvidencePage(
        "flow" if family == "flow" else "dora",
        metric,
        METRICS[family][metric],
        total,
        offset,
        [_row(query.row_type, tuple(r)) for r in rows],
        query.row_type,
    )
