"""DORA metrics (docs/metrics.md, "DORA"), each one SQL query on the store.

Production deployments are deployments to an environment of class ``production``, placed in a window by
when they finished (when they started, if the finish is unknown). Rollback deployments (``is_rollback``)
are remediation: by default they are counted neither as deployments nor as changes that could fail.
Shipped changes come from ``deployment_changes`` (derived by `obeya.linking`); incident attribution from
``trace_links`` of kind ``caused_by``. What counts as a deployment and as an incident follows the
`DoraRules` of obeya.yaml (`obeya.engine.dora_rules`), applied here in SQL at query time.

Rows of one service and environment that share a release (else a pipeline run), one per repository,
are one deployment finished at its last row's finish; rows with neither are one per service,
environment and finish (`deployment_rows`, `EVENT_KEY`: a deployment that ships several repositories is
stored as one row per repository): deployment frequency, change failure rate, recovery and rework count
it once, lead time follows each of its changes.

Sliced by team or flow item type, deployment frequency, change failure rate, recovery and rework count
the deployments that ship a change of the slice; lead time for changes counts the changes of the slice
themselves (`obeya.engine.sql.change_conditions`).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from obeya.engine.benchmarks import Rating, rate
from obeya.engine.dora_rules import DEFAULT_DORA_RULES, DoraRules
from obeya.engine.flow import duration_columns
from obeya.engine.results import DurationSummary, Ratio
from obeya.engine.snapshot import materialized
from obeya.engine.sql import change_conditions, deployment_conditions, incident_conditions, seconds_between
from obeya.engine.window import Slice, Window
from obeya.store import Store

FINISHED_AT = "COALESCE(d.finished_at, d.started_at)"
"""When a deployment (aliased ``d``) counts as having happened: its finish, else its start."""

EVENT_KEY = ("service", "environment", "finished_at")
"""What makes rows of `deployment_rows` one deployment: the same service, environment and finish — there
the deployment's finish (its last row's), not the row's own.

A deployment that ships several repositories is stored as one row per repository (each linked within its
own repository's chain, docs/traceability.md); deployment frequency, change failure rate, recovery and
rework count its rows once (docs/metrics.md, "One deployment, several rows")."""

EVENT_GROUP = "COALESCE(d.release_id, d.pipeline_run_id)"
"""Besides service and environment, what ties the rows of one deployment (aliased ``d``) together: the
release they deliver, else the pipeline run that made them; NULL: the row's finish alone does."""

COUNTED_RESULTS = "('success', 'failure', 'rolled_back')"
"""The results of the deployment rows the DORA figures read (canceled and running ones never count)."""


def deployment_rows(
    window: Window | None,
    scope: Slice,
    rules: DoraRules = DEFAULT_DORA_RULES,
    production_class: str = "production",
) -> tuple[str, list[Any]]:
    """A subquery (alias it ``d``) of the production deployment rows the rules count (results success,
    failure, rolled back), of the slice, whose deployment finished in the window (every one without a
    window), and its parameters. Its columns are those of ``deployments`` — ``finished_at`` being the
    finish of the row's **deployment**, its last row's (a row with neither release nor run keeps its
    own, unknown ones too: `FINISHED_AT` then reads its start) — and ``row_finished_at``, the row's own
    `FINISHED_AT`; its rows with the same `EVENT_KEY` (over `FINISHED_AT`) are one deployment.

    docs/metrics.md, "One deployment, several rows": rows of one service and environment that share a
    release (else a pipeline run) are one deployment, one row per repository — the first row of each
    repository together, then the second of each (a retry or redeployment of a repository under the same
    release or run is another deployment); rows with neither are one per service, environment and finish.
    A deployment whose rows straddle the window's edge is in the window of its last finish: rows before
    the window's start that share a release or run with a row inside it are read too.
    """
    condition, params = deployment_conditions(scope)
    in_window, window_params = "", []
    if window is not None:
        # the rows of the window, and those of the releases and runs that have a row in it; one OR with
        # an IN, which PostgreSQL hashes: split into a UNION ALL, its estimate of one row for the window
        # made a nested loop of the outer rows and the window's (2.8 s instead of 20 ms on the demo)
        in_window = f"""AND ({FINISHED_AT} >= ? AND {FINISHED_AT} < ? OR {EVENT_GROUP} IN (
        SELECT COALESCE(w.release_id, w.pipeline_run_id) FROM deployments w WHERE w.environment_class = ?
          AND COALESCE(w.finished_at, w.started_at) >= ? AND COALESCE(w.finished_at, w.started_at) < ?))"""
        window_params = [window.start, window.end, production_class, window.start, window.end]
    ended = f"{FINISHED_AT} >= ? AND {FINISHED_AT} < ?" if window is not None else "TRUE"
    sql = f"""(WITH keyed AS (
    SELECT d.id, d.service, d.environment, d.environment_class, d.repo, d.commit_sha, d.pipeline_run_id,
           d.release_id, d.result, d.is_rollback, d.started_at, d.finished_at AS own_finished_at,
           {FINISHED_AT} AS row_finished_at, {EVENT_GROUP} AS event_group
    FROM deployments d
    WHERE d.environment_class = ? AND {rules.deployments.counted()} AND d.result IN {COUNTED_RESULTS}
      {in_window}
),
attempts AS (
    SELECT k.*, ROW_NUMBER() OVER (PARTITION BY service, environment, event_group, repo
                                   ORDER BY row_finished_at, id) AS attempt
    FROM keyed k
),
evented AS (
    SELECT a.*, CASE WHEN event_group IS NULL THEN own_finished_at
                     ELSE MAX(row_finished_at) OVER (PARTITION BY service, environment, event_group, attempt)
                END AS finished_at
    FROM attempts a
)
SELECT d.id, d.service, d.environment, d.environment_class, d.repo, d.commit_sha, d.pipeline_run_id,
       d.release_id, d.result, d.is_rollback, d.started_at, d.finished_at, d.row_finished_at
FROM evented d WHERE {ended} AND {condition})"""
    return sql, [
        production_class,
        *window_params,
        *([window.start, window.end] if window is not None else []),
        *params,
    ]


def counted_deployment_rows(
    store: Store, window: Window, scope: Slice, rules: DoraRules = DEFAULT_DORA_RULES
) -> tuple[str, list[Any]]:
    """`deployment_rows` of the window, read once into a temporary table of this connection (at the
    store's data version) and named, with no parameters: deployment frequency, change failure rate,
    recovery and rework rate of one report all read the same rows, which cost two window functions
    over the window's production deployments to build (docs/performance.md)."""
    sql, params = deployment_rows(window, scope, rules)
    key = ("deployment_rows", window, scope, rules)
    return materialized(store, key, f"SELECT * FROM {sql} d", params), []


EVENT_COLUMNS = ", ".join(EVENT_KEY)

WORST_RESULT = (
    "CASE WHEN bool_or(result = 'rolled_back') THEN 'rolled_back' "
    "WHEN bool_or(result = 'failure') THEN 'failure' ELSE MIN(result) END"
)
"""The result of a deployment event (an aggregate over its rows' ``result``): rolled back, else failure,
else the rows' own result."""


def incidents_resolved_at(rules: DoraRules = DEFAULT_DORA_RULES) -> str:
    """SQL: the latest resolution of the incidents deployment ``d`` caused (as the rules count them)."""
    return f"""(SELECT MAX(i.resolved_at) FROM trace_links l JOIN incidents i ON i.id = l.from_id
         WHERE l.link_kind = 'caused_by' AND l.to_id = d.id AND {rules.incidents.change_caused()})"""


def caused_incident_ids(rules: DoraRules = DEFAULT_DORA_RULES) -> str:
    """SQL: the ids (comma-separated, sorted) of the incidents counted against deployment ``d``:
    attributed by a ``caused_by`` link and change-caused under the rules."""
    return f"""(SELECT string_agg(i.id, ',' ORDER BY i.id) FROM trace_links l
    JOIN incidents i ON i.id = l.from_id
    WHERE l.link_kind = 'caused_by' AND l.to_id = d.id AND {rules.incidents.change_caused()})"""


def failed_deployment_events(
    window: Window,
    scope: Slice,
    rules: DoraRules = DEFAULT_DORA_RULES,
    read: tuple[str, list[Any]] | None = None,
) -> tuple[str, list[Any]]:
    """A query with one row per failed production deployment event of the window (failed, rolled back
    or incident-causing; rows of one deployment, `deployment_rows`, are one event) and its parameters.

    Columns: ``id`` (the event's first row), ``deployment_ids`` (its failed rows, comma-separated),
    ``service``, ``environment``, ``result`` (`WORST_RESULT`), ``finished_at``, ``recovered_at`` (the
    latest resolution of the incidents its rows caused, `incidents_resolved_at`, else the next successful
    deployment — a rollback too — of the same service and environment: the first row with result
    ``success`` finished after it; NULL while unrecovered) and ``caused_incident_ids``. The figure
    (`recovery_time`), its evidence and the swarming recommendation all read this one query. `read`:
    the window's `deployment_rows` as already read (`counted_deployment_rows`), if they are.
    """
    rows, params = deployment_rows(window, scope, rules) if read is None else (read[0], list(read[1]))
    # The next success of each failed event from one ordered pass over the events and the successes of
    # their services and environments after the first of them (a correlated "first success after"
    # would be decorrelated into a join of every failed event with every later success). The event's
    # own rows finish by its finish, so none of them is its recovery.
    sql = f"""WITH failed_rows AS (
    SELECT d.id, d.service, d.environment, d.result, {FINISHED_AT} AS finished_at,
           {incidents_resolved_at(rules)} AS resolved_at, {caused_incident_ids(rules)} AS caused
    FROM {rows} d
    WHERE {failed_condition(rules)}
),
failed_events AS (
    SELECT MIN(id) AS id, string_agg(id, ',' ORDER BY id) AS deployment_ids, service, environment,
           {WORST_RESULT} AS result, finished_at, MAX(resolved_at) AS resolved_at,
           string_agg(caused, ',' ORDER BY id) AS caused_incident_ids
    FROM failed_rows GROUP BY {EVENT_COLUMNS}
),
later_successes AS (
    SELECT n.service, n.environment, COALESCE(n.finished_at, n.started_at) AS finished_at
    FROM deployments n
    JOIN (SELECT DISTINCT service, environment FROM failed_events) p
      ON p.service = n.service AND p.environment = n.environment
    WHERE n.result = 'success'
      AND COALESCE(n.finished_at, n.started_at) > (SELECT MIN(finished_at) FROM failed_events)
),
sequenced AS (
    -- latest first, an event before a success of the same finish: the rows before an event are the
    -- successes finished after it
    SELECT id, is_success,
           MIN(success_at) OVER (PARTITION BY service, environment ORDER BY finished_at DESC, is_success
                                 ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS next_success_at
    FROM (
        SELECT id, service, environment, finished_at, 0 AS is_success, CAST(NULL AS TIMESTAMP) AS success_at
        FROM failed_events
        UNION ALL
        SELECT CAST(NULL AS TEXT), service, environment, finished_at, 1, finished_at FROM later_successes
    ) timeline
)
SELECT e.id, e.deployment_ids, e.service, e.environment, e.result, e.finished_at,
       COALESCE(e.resolved_at, s.next_success_at) AS recovered_at, e.caused_incident_ids
FROM failed_events e JOIN sequenced s ON s.id = e.id AND s.is_success = 0"""
    return sql, params


@dataclass(frozen=True)
class DeploymentFrequency:
    """Successful production deployments: per day, and deployment days per week (median and mean)."""

    deployments: int
    per_day: float | None
    deployment_days: int
    median_deployment_days_per_week: float | None
    mean_deployment_days_per_week: float | None
    ratings: list[Rating] = field(default_factory=list)


def deployment_frequency(
    store: Store, window: Window, scope: Slice = Slice(), rules: DoraRules = DEFAULT_DORA_RULES
) -> DeploymentFrequency:
    """Deployment frequency: successful production deployments per day, and deployment days per week.

    docs/metrics.md, "Deployment frequency". Weeks are 7-day buckets from the window's start (the last
    may be shorter); weeks without a deployment count as 0. Rated by 2023 on deployment days per week
    (elite needs a median of at least 5; below that the mean is read against the table) and by 2021 on
    deployments per day. The results counted are `rules.deployments.frequency_results` (default success).
    One deployment stored as several rows (one per repository it ships, `deployment_rows`) counts once,
    on the day of its last finish, when one of its rows has such a result.
    """
    deployment_rows_sql, params = counted_deployment_rows(store, window, scope, rules)
    rows = store.query(
        f"""SELECT CAST(finished_at AS DATE) AS day, count(*) FROM (
    SELECT DISTINCT d.service, d.environment, {FINISHED_AT} AS finished_at FROM {deployment_rows_sql} d
    WHERE {rules.deployments.frequency_result()}
) events GROUP BY CAST(finished_at AS DATE)""",
        params,
    )
    deployments = sum(int(r[1]) for r in rows)
    weeks = max(1, -(-int(window.days) // 7))
    days_per_week = [0] * weeks
    for day, _ in rows:
        days_per_week[min(weeks - 1, (day - window.start.date()).days // 7)] += 1
    if not deployments:
        return DeploymentFrequency(0, None, 0, None, None)
    median = float(statistics.median(days_per_week))
    mean = len(rows) / window.weeks
    per_day = deployments / window.days
    ratings = [
        r
        for r in (
            rate("deployment_frequency", median if median >= 5 else mean, 2023),
            rate("deployment_frequency", per_day, 2021),
        )
        if r
    ]
    return DeploymentFrequency(deployments, per_day, len(rows), median, mean, ratings)


def shipped_change_ctes(
    scope: Slice, rules: DoraRules = DEFAULT_DORA_RULES, window: Window | None = None
) -> tuple[str, list[Any]]:
    """The CTEs ``shipped`` (each change of the slice with its first successful production deployment in
    the slice's streams and services; with a `window`, only the changes whose first one is in it),
    ``first_commits`` and ``first_reviews`` (bots and the author left out) of those changes, and their
    parameters.

    A team or flow item type selects the changes themselves (`change_conditions`: the author's team or a
    linked work item's team; a linked work item's type), not every change of a deployment that ships one.
    Rollback deployments never ship changes (they put back what was there).
    """
    deployments = Slice(value_stream_id=scope.value_stream_id, service=scope.service)
    condition, params = deployment_conditions(deployments)
    changes, change_params = change_conditions(
        Slice(team_id=scope.team_id, flow_item_type=scope.flow_item_type)
    )
    in_window = "WHERE deployed_at >= ? AND deployed_at < ?" if window else ""
    # Without a team or type the changes need no join here (every later CTE joins `changes` anyway).
    of_slice = ("JOIN changes ch ON ch.id = dc.change_id", f"AND {changes}") if change_params else ("", "")
    return (
        f"""first_deployed AS (
    SELECT dc.change_id, MIN({FINISHED_AT}) AS deployed_at
    FROM deployment_changes dc JOIN deployments d ON d.id = dc.deployment_id
    {of_slice[0]}
    WHERE d.environment_class = 'production' AND d.result = 'success' AND NOT d.is_rollback
      AND {rules.deployments.counted()} AND {condition} {of_slice[1]}
    GROUP BY dc.change_id
),
shipped AS (SELECT change_id, deployed_at FROM first_deployed {in_window}),
-- (one row per change: joined, not IN, so both engines start from the few shipped changes)
first_commits AS (
    SELECT cc.change_id, MIN(c.authored_at) AS first_commit_at
    FROM shipped s JOIN change_commits cc ON cc.change_id = s.change_id
    JOIN changes ch ON ch.id = cc.change_id
    JOIN commits c ON c.sha = cc.commit_sha AND c.repo = ch.repo
    GROUP BY cc.change_id
),
first_reviews AS (
    SELECT r.change_id, MIN(r.submitted_at) AS first_review_at
    FROM shipped s JOIN reviews r ON r.change_id = s.change_id
    JOIN changes ch ON ch.id = r.change_id
    LEFT JOIN people p ON p.id = r.reviewer_id
    WHERE (r.reviewer_id IS NULL OR r.reviewer_id <> COALESCE(ch.author_id, ''))
      AND NOT COALESCE(p.is_bot, FALSE)
    GROUP BY r.change_id
)""",
        [*params, *change_params, *([window.start, window.end] if window else [])],
    )


@dataclass(frozen=True)
class LeadTimeForChanges:
    """Per change shipped to production in the window: first commit → first production deployment."""

    lead_time: DurationSummary
    coding: DurationSummary  # first commit → change opened
    pickup: DurationSummary  # opened → first review by someone else (bots excluded)
    review: DurationSummary  # first review → merged
    deploy: DurationSummary  # merged → deployed
    ratings: list[Rating] = field(default_factory=list)


def lead_time_for_changes(
    store: Store, window: Window, scope: Slice = Slice(), rules: DoraRules = DEFAULT_DORA_RULES
) -> LeadTimeForChanges:
    """Lead time for changes: first commit authored → finish of the first successful production
    deployment that ships the change, for changes whose first production deployment is in the window.

    docs/metrics.md, "Lead time for changes". A change without known commits starts when it was opened.
    Changes of a service's first deployment have no base and are not linked (so never counted). Each
    part — coding, pickup (bots and the author excluded), review, deploy — leaves out its negative spans
    and counts them in `excluded`; a lead time that is negative is left out the same way. Sliced by team
    or flow item type, the changes of that team or type count (`shipped_change_ctes`).
    """
    shipped_ctes, params = shipped_change_ctes(scope, rules, window)
    sql = f"""
WITH {shipped_ctes},
spans AS (
    SELECT {seconds_between("COALESCE(f.first_commit_at, ch.created_at)", "s.deployed_at")} AS lead_time,
           {seconds_between("f.first_commit_at", "ch.created_at")} AS coding,
           {seconds_between("ch.created_at", "r.first_review_at")} AS pickup,
           {seconds_between("r.first_review_at", "ch.merged_at")} AS review,
           {seconds_between("ch.merged_at", "s.deployed_at")} AS deploy
    FROM shipped s JOIN changes ch ON ch.id = s.change_id
    LEFT JOIN first_commits f ON f.change_id = s.change_id
    LEFT JOIN first_reviews r ON r.change_id = s.change_id
    WHERE s.deployed_at >= ? AND s.deployed_at < ?
)
SELECT {
        ", ".join(
            f"{duration_columns(p, f'{p} >= 0')}, count(*) FILTER (WHERE {p} < 0)"
            for p in ("lead_time", "coding", "pickup", "review", "deploy")
        )
    }
FROM spans"""
    row = store.query(sql, [*params, window.start, window.end])[0]
    lead, coding, pickup, review, deploy = (
        DurationSummary.from_row(row[i * 4 : i * 4 + 3], excluded=int(row[i * 4 + 3])) for i in range(5)
    )
    ratings = [
        r
        for r in (
            rate("lead_time_for_changes", lead.p50, 2023),
            rate("lead_time_for_changes", lead.p50, 2021),
        )
        if r
    ]
    return LeadTimeForChanges(lead, coding, pickup, review, deploy, ratings)


def failed_condition(rules: DoraRules = DEFAULT_DORA_RULES) -> str:
    """A production deployment failed when its result says so or an incident is attributed to it that
    the rules count as change-caused (severe enough, not ruled out as a provider's)."""
    # The incident-causing deployments as one uncorrelated list (few), not an EXISTS per deployment:
    # both engines then probe a small hashed set instead of joining every deployment to the links.
    return (
        "(d.result IN ('failure', 'rolled_back') OR d.id IN (SELECT l.to_id FROM trace_links l "
        "JOIN incidents i ON i.id = l.from_id WHERE l.link_kind = 'caused_by' "
        f"AND {rules.incidents.change_caused()}))"
    )


@dataclass(frozen=True)
class ChangeFailureRate:
    """Production deployments that failed, were rolled back or caused an incident ÷ production deployments."""

    rate: Ratio
    failed: int
    rolled_back: int
    caused_incident: int
    ratings: list[Rating] = field(default_factory=list)


def change_failure_rate(
    store: Store, window: Window, scope: Slice = Slice(), rules: DoraRules = DEFAULT_DORA_RULES
) -> ChangeFailureRate:
    """Change failure rate: failed, rolled back or incident-causing production deployments ÷ production
    deployments (successful, failed or rolled back; canceled and running ones are not counted).

    docs/metrics.md, "Change failure rate". Incidents marked ``change_caused = false`` (a provider's
    outage) never count here, nor those the incident rules leave out; attribution comes from ``caused_by``
    trace links (explicit, then the time rule), see docs/traceability.md. One deployment stored as several
    rows (`deployment_rows`) counts once, and is failed when one of its rows is; `failed` and
    `rolled_back` count the events with such a row, `caused_incident` the others made failed by an
    incident.
    """
    rows, params = counted_deployment_rows(store, window, scope, rules)
    row = store.query(
        f"""WITH events AS (
    SELECT bool_or(failed) AS failed, bool_or(result = 'failure') AS failure,
           bool_or(result = 'rolled_back') AS rolled_back
    FROM (
        SELECT d.service, d.environment, {FINISHED_AT} AS finished_at, d.result,
               {failed_condition(rules)} AS failed
        FROM {rows} d
    ) counted
    GROUP BY {EVENT_COLUMNS}
)
SELECT count(*), count(*) FILTER (WHERE failed), count(*) FILTER (WHERE failure AND NOT rolled_back),
       count(*) FILTER (WHERE rolled_back), count(*) FILTER (WHERE failed AND NOT failure AND NOT rolled_back)
FROM events""",
        params,
    )[0]
    share = Ratio(int(row[1]), int(row[0]))
    ratings = [
        r
        for r in (
            rate("change_failure_rate", share.value, 2023),
            rate("change_failure_rate", share.value, 2021),
        )
        if r
    ]
    return ChangeFailureRate(share, int(row[2]), int(row[3]), int(row[4]), ratings)


@dataclass(frozen=True)
class RecoveryTime:
    """Failed deployment recovery time (2023) and time to restore service (2021)."""

    failed_deployment_recovery: DurationSummary
    unrecovered_deployments: int
    time_to_restore: DurationSummary
    unresolved_incidents: int
    ratings: list[Rating] = field(default_factory=list)


def recovery_time(
    store: Store, window: Window, scope: Slice = Slice(), rules: DoraRules = DEFAULT_DORA_RULES
) -> RecoveryTime:
    """Failed deployment recovery time: a failed or incident-causing production deployment's finish →
    recovery, which is the latest resolution of the incidents it caused, or (without incidents) the next
    successful production deployment of the same service and environment (`failed_deployment_events`:
    one deployment stored as several rows counts once). Time to restore service: an incident's start →
    its resolution, for incidents of the slice's services created in the window (whatever caused them,
    but severe enough for the incident rules).

    docs/metrics.md, "Failed deployment recovery time" and "Time to restore service".
    """
    events, params = failed_deployment_events(
        window, scope, rules, counted_deployment_rows(store, window, scope, rules)
    )
    deployment_row = store.query(
        f"""WITH failed AS (
    SELECT {seconds_between("finished_at", "recovered_at")} AS recovery FROM ({events}) failed_events
)
SELECT {duration_columns("recovery", "recovery >= 0")}, count(*) FILTER (WHERE recovery < 0),
       count(*) FILTER (WHERE recovery IS NULL)
FROM failed""",
        params,
    )[0]
    incident_condition, incident_params = incident_conditions(scope)
    incident_row = store.query(
        f"""WITH restored AS (
    SELECT {seconds_between("i.created_at", "i.resolved_at")} AS restore
    FROM incidents i WHERE i.created_at >= ? AND i.created_at < ? AND {incident_condition}
      AND {rules.incidents.counted()}
)
SELECT {duration_columns("restore", "restore >= 0")}, count(*) FILTER (WHERE restore < 0),
       count(*) FILTER (WHERE restore IS NULL)
FROM restored""",
        [window.start, window.end, *incident_params],
    )[0]
    recovery = DurationSummary.from_row(deployment_row[0:3], excluded=int(deployment_row[3]))
    restore = DurationSummary.from_row(incident_row[0:3], excluded=int(incident_row[3]))
    ratings = [
        r for r in (rate("recovery_time", recovery.p50, 2023), rate("recovery_time", restore.p50, 2021)) if r
    ]
    return RecoveryTime(recovery, int(deployment_row[4]), restore, int(incident_row[4]), ratings)


def rework_ctes(
    window: Window,
    scope: Slice,
    rules: DoraRules = DEFAULT_DORA_RULES,
    read: tuple[str, list[Any]] | None = None,
) -> tuple[str, list[Any]]:
    """The CTEs behind rework rate, and their parameters: ``counted`` (the production deployment rows
    deployment frequency counts, `deployment_rows`), ``events`` (one row per deployment event: service,
    environment, finished_at), ``event_changes`` (each event's shipped changes, with ``fixes_defect``:
    the change implements a ``defect`` work item), ``fix_only`` (events that ship only defect fixes) and
    ``responses`` (for each incident that may be change-caused, the service and finish of the deployment
    whose row was the first counted production deployment of its service after it started, if that row
    came before it was resolved).
    `REWORK` says, for an event ``e`` joined to ``fix_only f`` and ``responses r``, whether it is rework.
    `read`: the window's `deployment_rows` as already read (`counted_deployment_rows`), if they are.
    """
    rows, params = deployment_rows(window, scope, rules) if read is None else (read[0], list(read[1]))
    # The window's deployments first, then only their shipped changes' links: an EXISTS per deployment
    # would be decorrelated into a join of every deployment's changes and links. The first deployment
    # after an incident is the earlier of the first finished after it — a MIN of the indexed
    # finished_at, which PostgreSQL reads in the order of the (service, environment_class, finished_at)
    # index and stops at the first one counted, instead of every later deployment of the service — and
    # the first unfinished one started after it.
    counted_n = f"{rules.deployments.counted('n')} AND {rules.deployments.frequency_result('n')}"
    first_after = f"""LEAST(
        (SELECT MIN(n.finished_at) FROM deployments n
         WHERE n.service = i.service AND n.environment_class = 'production' AND {counted_n}
           AND n.finished_at > i.created_at),
        (SELECT MIN(n.started_at) FROM deployments n
         WHERE n.service = i.service AND n.environment_class = 'production' AND {counted_n}
           AND n.finished_at IS NULL AND n.started_at > i.created_at))"""
    sql = f"""counted AS (
    SELECT d.id, d.service, d.environment, {FINISHED_AT} AS finished_at, d.row_finished_at FROM {rows} d
    WHERE {rules.deployments.frequency_result()}
),
events AS (SELECT DISTINCT {EVENT_COLUMNS} FROM counted),
event_changes AS (
    SELECT DISTINCT c.service, c.environment, c.finished_at, dc.change_id FROM counted c
    JOIN deployment_changes dc ON dc.deployment_id = c.id
),
defect_fixes AS (
    SELECT DISTINCT ec.change_id FROM event_changes ec
    JOIN trace_links l ON l.to_id = ec.change_id AND l.link_kind = 'implemented_by'
    JOIN work_items w ON w.id = l.from_id
    WHERE w.flow_item_type = 'defect'
),
fix_only AS (
    SELECT ec.service, ec.environment, ec.finished_at, count(df.change_id) AS fixes
    FROM event_changes ec LEFT JOIN defect_fixes df ON df.change_id = ec.change_id
    GROUP BY ec.service, ec.environment, ec.finished_at
    HAVING count(df.change_id) = count(*)
),
responses AS (
    -- the deployment (its finish) that the first row after the incident is part of
    SELECT DISTINCT c.service, c.finished_at AS responded_at FROM (
        SELECT i.service, i.resolved_at, {first_after} AS first_at
        FROM incidents i
        WHERE i.service IS NOT NULL AND {rules.incidents.change_caused()} AND i.created_at < ?
          AND (i.resolved_at IS NULL OR i.resolved_at >= ?)
    ) first_deployments
    JOIN counted c ON c.service = first_deployments.service AND c.row_finished_at = first_deployments.first_at
    WHERE first_at IS NOT NULL AND (resolved_at IS NULL OR first_at <= resolved_at)
)"""
    return sql, [*params, window.end, window.start]


REWORK = "(f.service IS NOT NULL OR r.service IS NOT NULL)"
"""For an event ``e`` left-joined to ``fix_only f`` and ``responses r`` (`REWORK_JOINS`): it is rework."""

REWORK_JOINS = """LEFT JOIN fix_only f
    ON f.service = e.service AND f.environment = e.environment AND f.finished_at = e.finished_at
LEFT JOIN responses r ON r.service = e.service AND r.responded_at = e.finished_at"""
"""Joins an event ``e`` of `rework_ctes` to its ``fix_only`` and ``responses`` rows (at most one each)."""


def rework_rate(
    store: Store, window: Window, scope: Slice = Slice(), rules: DoraRules = DEFAULT_DORA_RULES
) -> Ratio:
    """Rework rate (DORA 2024): production deployments that were unplanned and fix a user-facing defect
    ÷ production deployments, both of the results deployment frequency counts (default: successful).

    docs/metrics.md, "Rework rate". A deployment is rework when it ships only fixes (at least one change,
    and every change it ships implements a ``defect`` work item), or when it responds to an incident (it
    is the first such production deployment of the incident's service after the incident started, made
    before it was resolved; incidents no change caused, such as a provider's outage, do not count). One
    deployment stored as several rows (`deployment_rows`) counts once.
    """
    ctes, params = rework_ctes(window, scope, rules, counted_deployment_rows(store, window, scope, rules))
    row = store.query(
        f"""WITH {ctes}
SELECT count(*), count(*) FILTER (WHERE {REWORK}) FROM events e
{REWORK_JOINS}""",
        params,
    )[0]
    return Ratio(int(row[1]), int(row[0]))


@dataclass(frozen=True)
class DoraReport:
    """The DORA figures of one slice and window, with their ratings."""

    window_start: date
    window_end: date
    deployment_frequency: DeploymentFrequency
    lead_time_for_changes: LeadTimeForChanges
    change_failure_rate: ChangeFailureRate
    recovery_time: RecoveryTime
    rework_rate: Ratio


def dora_report(
    store: Store, window: Window, scope: Slice = Slice(), rules: DoraRules = DEFAULT_DORA_RULES
) -> DoraReport:
    """All DORA figures for a slice and window, under the deployment and incident rules, each read from
    the same state of the store (`Store.reading`)."""
    with store.reading():
        return DoraReport(
            window.start.date(),
            window.end.date(),
            deployment_frequency(store, window, scope, rules),
            lead_time_for_changes(store, window, scope, rules),
            change_failure_rate(store, window, scope, rules),
            recovery_time(store, window, scope, rules),
            rework_rate(store, window, scope, rules),
        )
