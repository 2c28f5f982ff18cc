"""Recommendations: the seed's interventions, each fired by an explicit rule on evidence.

A rule that does not fire gives nothing; a rule that fires gives an `Insight` with the figure that
triggered it and the items behind it (never without items). The rules and their thresholds are listed
in docs/insights.md. DORA figures and the deployments and incidents behind them follow the deployment
and incident rules of obeya.yaml (`StreamEvidence.dora_rules`), as everywhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from obeya.engine.dora import (
    FINISHED_AT,
    change_failure_rate,
    deployment_frequency,
    deployment_rows,
    failed_deployment_events,
    recovery_time,
)
from obeya.engine.dora_rules import DEFAULT_DORA_RULES, DoraRules
from obeya.engine.flow import flow_time
from obeya.engine.sql import change_conditions, incident_conditions, seconds_between
from obeya.engine.stages import ValueStreamMap, value_stream_map
from obeya.engine.timeline import WorkStart, timeline
from obeya.engine.window import Slice, Window
from obeya.insights.model import ITEM_LIMIT, Insight
from obeya.insights.scope import stream_slices
from obeya.store import Store

DAY = 86400.0
LOW_COMPLETE_AND_ACCURATE = 0.8
LOW_DEPLOYMENT_DAYS_PER_WEEK = 1.0
SLOW_RECOVERY_SECONDS = DAY
LARGE_CHANGE_LINES = 400
HIGH_CHANGE_FAILURE_RATE = 0.15
SLOW_APPROVAL_SECONDS = DAY
AGING_RISK_SHARE = 0.25
CROSS_STREAM_SHARE = 0.2


@dataclass(frozen=True)
class StreamEvidence:
    """What the rules read about one value stream: its slice, name, map and stage categories."""

    scope: Slice
    name: str
    map: ValueStreamMap
    categories: dict[str, str]  # stage name → stage category (the name when no category is set)
    dora_rules: DoraRules = DEFAULT_DORA_RULES  # what counts as a deployment and an incident
    work_start: WorkStart = "active"  # rules.work_start

    def bottleneck_category(self) -> str | None:
        """The category of the bottleneck stage, or None without a bottleneck."""
        b = self.map.bottleneck
        return self.categories.get(b.stage, b.stage) if b else None


def gather(
    store: Store,
    window: Window,
    scope: Slice,
    name: str,
    rules: DoraRules = DEFAULT_DORA_RULES,
    work_start: WorkStart = "active",
) -> StreamEvidence:
    """The evidence of one value stream, under the deployment and incident `rules` and `work_start`."""
    categories = {
        str(r[0]): str(r[1] or r[0])
        for r in store.query(
            "SELECT name, category FROM stages WHERE value_stream_id = ?", [scope.value_stream_id or ""]
        )
    }
    stream_map = value_stream_map(store, window, scope, work_start, rules)
    return StreamEvidence(scope, name, stream_map, categories, rules, work_start)


Rule = Callable[[Store, Window, StreamEvidence], Insight | None]


def _count(n: int, noun: str) -> str:
    """``1 incident``, ``2 incidents``, ``0 failed deployments``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _insight(
    e: StreamEvidence, title: str, figure: float, unit: str, rule: str, evidence: str, items: list[str]
) -> Insight | None:
    if not items:
        return None
    return Insight(
        "recommendation",
        f"{e.name}: {title}",
        e.scope.value_stream_id,
        figure,
        unit,
        rule,
        evidence,
        items[:ITEM_LIMIT],
    )


def test_automation(store: Store, window: Window, e: StreamEvidence) -> Insight | None:
    """CI and test automation: verification is the bottleneck and its %C&A is below 80 %."""
    b = e.map.bottleneck
    if b is None or e.bottleneck_category() != "verification":
        return None
    stage = next(s for s in e.map.stages if s.stage == b.stage)
    ca = stage.complete_and_accurate.value
    if ca is None or ca >= LOW_COMPLETE_AND_ACCURATE:
        return None
    return _insight(
        e,
        "CI and test automation",
        ca,
        "share",
        f"verification is the bottleneck and its %C&A is below {LOW_COMPLETE_AND_ACCURATE:.0%}",
        f"{b.wait_share:.0%} of the committed wait is in {b.stage}; only {ca:.0%} of the items leaving it "
        "are not sent back",
        [k for k, _ in b.items],
    )


def continuous_delivery(store: Store, window: Window, e: StreamEvidence) -> Insight | None:
    """Continuous delivery: delivery is the bottleneck and production deploys happen on fewer than one
    day a week (mean deployment days per week)."""
    b = e.map.bottleneck
    if b is None or e.bottleneck_category() != "delivery":
        return None
    frequency = deployment_frequency(store, window, e.scope, e.dora_rules)
    days = frequency.mean_deployment_days_per_week
    if days is None or days >= LOW_DEPLOYMENT_DAYS_PER_WEEK:
        return None
    return _insight(
        e,
        "continuous delivery",
        days,
        "deployment days/week",
        f"delivery is the bottleneck and production deploys happen on fewer than "
        f"{LOW_DEPLOYMENT_DAYS_PER_WEEK:g} day a week",
        f"{b.wait_share:.0%} of the committed wait is in {b.stage}; {frequency.deployments} production "
        f"deployments on {days:.2f} days a week",
        [k for k, _ in b.items],
    )


def self_service_environments(store: Store, window: Window, e: StreamEvidence) -> Insight | None:
    """Self-service environments: integration is the bottleneck — committed items wait for a developer
    (interruptions such as access and environment requests take the developers' time)."""
    b = e.map.bottleneck
    if b is None or e.bottleneck_category() != "integration":
        return None
    return _insight(
        e,
        "self-service environments",
        b.wait_share,
        "share",
        "integration is the bottleneck: committed items wait to be started",
        f"{b.wait_share:.0%} of the committed wait is in {b.stage}",
        [k for k, _ in b.items],
    )


def swarming_on_incidents(store: Store, window: Window, e: StreamEvidence) -> Insight | None:
    """Swarming on incidents: median failed deployment recovery time or time to restore service is over
    a day. Items: incidents restored after more than a day (or unresolved), and failed production
    deployments that recovered more than a day later (or never) — by the rule of the figure
    (`obeya.engine.dora.failed_deployment_events`: the resolution of the incidents they caused, else the
    next successful deployment)."""
    recovery = recovery_time(store, window, e.scope, e.dora_rules)
    figures = [
        f for f in (recovery.failed_deployment_recovery.p50, recovery.time_to_restore.p50) if f is not None
    ]
    if not figures or max(figures) <= SLOW_RECOVERY_SECONDS:
        return None
    incident_condition, incident_params = incident_conditions(e.scope)
    restore = seconds_between("i.created_at", "COALESCE(i.resolved_at, ?)")
    incidents = store.query(
        f"""SELECT i.id, {restore} AS restore FROM incidents i
WHERE i.created_at >= ? AND i.created_at < ? AND {incident_condition} AND {e.dora_rules.incidents.counted()}
  AND {restore} > ?
ORDER BY restore DESC, i.id""",
        [window.end, window.start, window.end, *incident_params, window.end, SLOW_RECOVERY_SECONDS],
    )
    events, params = failed_deployment_events(window, e.scope, e.dora_rules)
    recovered = seconds_between("finished_at", "COALESCE(recovered_at, ?)")
    deployments = store.query(
        f"""SELECT id, {recovered} AS recovery FROM ({events}) failed_events WHERE {recovered} > ?
ORDER BY recovery DESC, id""",
        [window.end, *params, window.end, SLOW_RECOVERY_SECONDS],
    )
    worst = max(figures)
    return _insight(
        e,
        "swarming on incidents",
        worst,
        "seconds",
        "median failed deployment recovery time or time to restore service is over a day",
        f"median recovery {worst / 3600:.1f} h; {_count(len(incidents), 'incident')} and "
        f"{_count(len(deployments), 'failed deployment')} took more than a day to recover",
        [str(r[0]) for r in incidents] + [str(r[0]) for r in deployments],
    )


def small_batches(store: Store, window: Window, e: StreamEvidence) -> Insight | None:
    """Small batches: the median size (additions + deletions) of the changes merged in the window, bots'
    left out, is over 400 lines. Items: the changes over 400 lines, largest first."""
    condition, params = change_conditions(e.scope)
    size = "COALESCE(ch.additions, 0) + COALESCE(ch.deletions, 0)"
    rows = store.query(
        f"""WITH merged AS (
    SELECT ch.repo || '#' || CAST(ch.number AS TEXT) AS label, {size} AS size, ch.repo, ch.number
    FROM changes ch LEFT JOIN people p ON p.id = ch.author_id
    WHERE ch.merged_at >= ? AND ch.merged_at < ? AND NOT COALESCE(p.is_bot, FALSE) AND {condition}
      AND (ch.additions IS NOT NULL OR ch.deletions IS NOT NULL)
)
SELECT m.label, m.size, a.median
FROM merged m CROSS JOIN (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY size) AS median FROM merged) a
ORDER BY m.size DESC, m.repo, m.number""",
        [window.start, window.end, *params],
    )
    if not rows or float(rows[0][2]) <= LARGE_CHANGE_LINES:
        return None
    median = float(rows[0][2])
    return _insight(
        e,
        "small batches",
        median,
        "lines",
        f"the median merged change is over {LARGE_CHANGE_LINES} lines (additions + deletions)",
        f"median change {median:.0f} lines over {len(rows)} merged changes",
        [r[0] for r in rows if int(r[1]) > LARGE_CHANGE_LINES],
    )


def blue_green_and_canary(store: Store, window: Window, e: StreamEvidence) -> Insight | None:
    """Blue/green and canary releases: change failure rate over 15 % (DORA 2023 low). Items: the failed,
    rolled back or incident-causing production deployments."""
    rate = change_failure_rate(store, window, e.scope, e.dora_rules).rate.value
    if rate is None or rate <= HIGH_CHANGE_FAILURE_RATE:
        return None
    # the change failure rate's numerator: one row per failed deployment (dora.failed_deployment_events)
    events, params = failed_deployment_events(window, e.scope, e.dora_rules)
    rows = store.query(f"SELECT id FROM ({events}) failed_events ORDER BY finished_at DESC, id", params)
    return _insight(
        e,
        "blue/green and canary releases",
        rate,
        "share",
        f"change failure rate is over {HIGH_CHANGE_FAILURE_RATE:.0%}",
        f"{rate:.0%} of production deployments failed, were rolled back or caused an incident",
        [str(r[0]) for r in rows],
    )


def automated_checklists(store: Store, window: Window, e: StreamEvidence) -> Insight | None:
    """Automated checklists instead of CABs: the median wait between a commit's successful deployment to
    a pre-production environment and its production deployment is over a day (an approval gate).
    Items: the production deployments that waited more than a day.

    A deployment stored as several rows (one per repository it ships, `deployment_rows`) is one: it
    waited from when the last of its commits was ready (deployed to pre-production) to its finish (its
    last row's), and is named by its first row's id."""
    deployments, params = deployment_rows(window, e.scope, e.dora_rules)
    rows = store.query(
        f"""WITH ready AS (
    SELECT d.id, d.service, d.environment, {FINISHED_AT} AS finished_at,
           MIN(COALESCE(s.finished_at, s.started_at)) AS ready_at
    FROM {deployments} d JOIN deployments s ON s.service = d.service AND s.commit_sha = d.commit_sha
      AND s.environment_class <> 'production' AND s.result = 'success'
      AND COALESCE(s.finished_at, s.started_at) <= d.row_finished_at
    WHERE d.result = 'success'
    GROUP BY d.id, d.service, d.environment, {FINISHED_AT}
),
gated AS (
    SELECT MIN(id) AS id, {seconds_between("MAX(ready_at)", "finished_at")} AS gate
    FROM ready GROUP BY service, environment, finished_at
)
SELECT g.id, g.gate, a.median
FROM gated g CROSS JOIN (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY gate) AS median FROM gated) a
ORDER BY g.gate DESC, g.id""",
        params,
    )
    if not rows or float(rows[0][2]) <= SLOW_APPROVAL_SECONDS:
        return None
    median = float(rows[0][2])
    return _insight(
        e,
        "automated checklists instead of change advisory boards",
        median,
        "seconds",
        "the median wait from pre-production to production deployment of the same commit is over a day",
        f"median {median / DAY:.1f} d between pre-production and production over {len(rows)} deployments",
        [str(r[0]) for r in rows if float(r[1]) > SLOW_APPROVAL_SECONDS],
    )


def devsecops(store: Store, window: Window, e: StreamEvidence) -> Insight | None:
    """DevSecOps: at least 25 % of the risk items in progress are older than the 85th percentile flow
    time of the items completed in the window."""
    p85 = flow_time(store, window, e.scope, work_start=e.work_start).flow_time.p85
    if p85 is None:
        return None
    t = timeline(e.scope, window.end, e.work_start)
    age = seconds_between("started_at", "?")
    rows = store.query(
        f"""WITH {t.ctes}
SELECT key, {age} AS age FROM item_times
WHERE state_now IN ('waiting', 'active') AND started_at IS NOT NULL AND flow_item_type = 'risk'
ORDER BY age DESC, key""",
        [*t.params, window.end],
    )
    aging = [r[0] for r in rows if float(r[1]) > p85]
    if not rows or len(aging) / len(rows) < AGING_RISK_SHARE:
        return None
    return _insight(
        e,
        "DevSecOps",
        len(aging) / len(rows),
        "share",
        f"at least {AGING_RISK_SHARE:.0%} of the risk items in progress are older than the p85 flow time",
        f"{len(aging)} of {len(rows)} risk items in progress are older than {p85 / DAY:.1f} d",
        aging,
    )


def organise_around_value_streams(store: Store, window: Window, e: StreamEvidence) -> Insight | None:
    """Organise around value streams: at least 20 % of the items completed in the window were moved by
    people of a team not aligned to the stream (``teams.value_stream_id``)."""
    t = timeline(e.scope, window.end, e.work_start)
    rows = store.query(
        f"""WITH {t.ctes}
SELECT c.key, count(*) FILTER (WHERE tm.value_stream_id IS DISTINCT FROM ?) AS outside
FROM item_times c JOIN status_transitions s ON s.work_item_id = c.id AND s.at < ?
JOIN people p ON p.id = s.author_id AND NOT p.is_bot JOIN teams tm ON tm.id = p.team_id
WHERE c.completed_at >= ? AND c.completed_at < ?
GROUP BY c.key ORDER BY outside DESC, c.key""",
        [*t.params, e.scope.value_stream_id, window.end, window.start, window.end],
    )
    crossing = [r[0] for r in rows if int(r[1]) > 0]
    if not rows or len(crossing) / len(rows) < CROSS_STREAM_SHARE:
        return None
    return _insight(
        e,
        "organise teams around the value stream",
        len(crossing) / len(rows),
        "share",
        f"at least {CROSS_STREAM_SHARE:.0%} of completed items were moved by a team aligned elsewhere",
        f"{len(crossing)} of {len(rows)} completed items passed through a team aligned elsewhere",
        crossing,
    )


RULES: tuple[Rule, ...] = (
    small_batches,
    test_automation,
    continuous_delivery,
    self_service_environments,
    blue_green_and_canary,
    automated_checklists,
    swarming_on_incidents,
    devsecops,
    organise_around_value_streams,
)


def recommendations(
    store: Store,
    window: Window,
    scope: Slice = Slice(),
    rules: DoraRules = DEFAULT_DORA_RULES,
    work_start: WorkStart = "active",
) -> list[Insight]:
    """Every rule on the scope's value stream (or on every stream); only the rules that fire. DORA
    figures follow the deployment and incident `rules`, flow figures `work_start`."""
    found = []
    for stream_scope, name in stream_slices(store, scope):
        evidence = gather(store, window, stream_scope, name, rules, work_start)
        found += stream_recommendations(store, window, evidence)
    return found


def stream_recommendations(store: Store, window: Window, evidence: StreamEvidence) -> list[Insight]:
    """The recommendations that fire for one value stream, from its gathered evidence (`gather`)."""
    return [insight for rule in RULES if (insight := rule(store, window, evidence)) is not None]
