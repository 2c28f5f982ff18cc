"""The maturity model: every value stream scored on five dimensions, each level justified by data.

Levels: Emerging, Learning, Practicing, Evolving. The thresholds are in docs/insights.md and below, next
to the figure each dimension reads. A dimension without data has level None ("no data").

Where a dimension can lean on an outside benchmark it does: the DevOps toolchain's upper levels need the
DORA 2023 deployment-frequency level (`obeya.engine.dora`), so a stream whose tools are all connected but
whose delivery reaches production only every other week is not scored like one that deploys on demand.
"""

from __future__ import annotations

import math
from typing import Any

from obeya.engine.dora import deployment_frequency
from obeya.engine.dora_rules import DEFAULT_DORA_RULES, DoraRules
from obeya.engine.sql import (
    change_conditions,
    deployment_conditions,
    incident_conditions,
    seconds_between,
    work_item_conditions,
)
from obeya.engine.timeline import timeline
from obeya.engine.window import Slice, Window
from obeya.insights.model import DimensionScore, MaturityLevel, StreamMaturity
from obeya.insights.scope import ITEM_CHANGES
from obeya.linking.coverage import Coverage, traceability_coverage
from obeya.store import Store

WEEKLY_SHARE = 0.8
"""Evolving needs data in at least this share of the window's weeks (7-day buckets from its start)."""

TOOL_CATEGORIES = ("planning", "code", "CI", "CD", "operations")
METRIC_FAMILIES = ("flow", "DORA", "VSM")


def _week(window: Window, column: str) -> str:
    """The 7-day bucket (0, 1, ...) of `column` from the window's start; one ``?`` (the start)."""
    return f"FLOOR({seconds_between('CAST(? AS TIMESTAMP)', column)} / 604800)"


def _weeks(window: Window) -> int:
    return max(1, math.ceil(window.days / 7))


def _by_share(figure: float, bounds: tuple[float, float, float]) -> MaturityLevel:
    """Learning from bounds[0], Practicing from bounds[1], Evolving from bounds[2] (higher is better)."""
    levels = (MaturityLevel.LEARNING, MaturityLevel.PRACTICING, MaturityLevel.EVOLVING)
    reached = [level for level, bound in zip(levels, bounds, strict=True) if figure >= bound]
    return reached[-1] if reached else MaturityLevel.EMERGING


def _production_weeks(store: Store, window: Window, scope: Slice) -> int:
    condition, params = deployment_conditions(scope)
    finished = "COALESCE(d.finished_at, d.started_at)"
    return int(
        store.query(
            f"""SELECT count(DISTINCT {_week(window, finished)}) FROM deployments d
WHERE d.environment_class = 'production' AND d.result = 'success' AND NOT d.is_rollback
  AND {finished} >= ? AND {finished} < ? AND {condition}""",
            [window.start, window.start, window.end, *params],
        )[0][0]
    )


def toolchain(
    store: Store, window: Window, scope: Slice, rules: DoraRules = DEFAULT_DORA_RULES
) -> DimensionScore:
    """DevOps toolchain: which of the five tool categories have data for the stream in the window —
    planning (work items created or moved), code (commits or changes), CI (pipeline runs), CD
    (production deployments), operations (incidents up to the window's end: incidents are rare, so a
    quiet window does not disconnect the tool) — and how far delivery runs through them, read as the
    stream's DORA 2023 deployment-frequency level.

    Emerging: 0–1 categories; Learning: 2 or more; Practicing: 4 or more and deployment frequency at
    least high (production at least weekly on average); Evolving: all 5 and deployment frequency elite
    (on demand: a median of at least 5 deployment days a week).
    """
    items, item_params = work_item_conditions(scope)
    changes, change_params = change_conditions(scope)
    commits, commit_params = change_conditions(scope, "c")
    deployments, deployment_params = deployment_conditions(scope)
    incidents, incident_params = incident_conditions(scope)
    runs = (
        "(r.repo IN (SELECT object_key FROM scopes WHERE value_stream_id = ? "
        "AND object_type = 'repository') OR r.pipeline IN (SELECT object_key FROM scopes "
        "WHERE value_stream_id = ? AND object_type = 'pipeline'))"
        if scope.value_stream_id
        else "TRUE"
    )
    run_params = [scope.value_stream_id] * 2 if scope.value_stream_id else []
    params: list[Any] = [
        *item_params,
        window.start,
        window.end,
        window.start,
        window.end,
        window.start,
        window.end,
        *change_params,
        window.start,
        window.end,
        *commit_params,
        window.start,
        window.end,
        *run_params,
        window.start,
        window.end,
        *deployment_params,
        window.end,
        *incident_params,
    ]
    row = store.query(
        f"""SELECT
  EXISTS (SELECT 1 FROM work_items w WHERE {items} AND ((w.created_at >= ? AND w.created_at < ?)
          OR EXISTS (SELECT 1 FROM status_transitions t
                     WHERE t.work_item_id = w.id AND t.at >= ? AND t.at < ?))),
  EXISTS (SELECT 1 FROM changes ch WHERE ch.created_at >= ? AND ch.created_at < ? AND {changes})
    OR EXISTS (SELECT 1 FROM commits c WHERE c.authored_at >= ? AND c.authored_at < ? AND {commits}),
  EXISTS (SELECT 1 FROM pipeline_runs r WHERE r.created_at >= ? AND r.created_at < ? AND {runs}),
  EXISTS (SELECT 1 FROM deployments d WHERE d.environment_class = 'production'
          AND COALESCE(d.finished_at, d.started_at) >= ? AND COALESCE(d.finished_at, d.started_at) < ?
          AND {deployments}),
  EXISTS (SELECT 1 FROM incidents i WHERE i.created_at < ? AND {incidents})""",
        params,
    )[0]
    connected = [name for name, has in zip(TOOL_CATEGORIES, row, strict=True) if has]
    weeks = _production_weeks(store, window, scope)
    count = len(connected)
    frequency = deployment_frequency(store, window, scope, rules)
    rated = next((r.level for r in frequency.ratings if r.year == 2023), None)
    if count == 5 and rated == "elite":
        level = MaturityLevel.EVOLVING
    elif count >= 4 and rated in ("elite", "high"):
        level = MaturityLevel.PRACTICING
    else:
        level = _by_share(count, (2, 99, 99))
    median = frequency.median_deployment_days_per_week
    cadence = (
        f"deployment frequency {rated} (DORA 2023: median {median:g}, mean "
        f"{frequency.mean_deployment_days_per_week or 0:.1f} deployment days a week)"
        if rated
        else "no successful production deployment"
    )
    return DimensionScore(
        "DevOps toolchain",
        level,
        count,
        "tool categories",
        f"{count} of 5 tool categories with data ({', '.join(connected) or 'none'}); production "
        f"deployments in {weeks} of {_weeks(window)} weeks; {cadence}",
    )


def metrics(store: Store, window: Window, scope: Slice) -> DimensionScore:
    """Metrics: which metric families have data for the stream in the window — flow (items completed),
    DORA (successful production deployments), VSM (items leaving a stage) — and in how many weeks.

    Emerging: none; Learning: 1–2 families; Practicing: all 3; Evolving: all 3, each with data in at least
    80 % of the window's weeks (the metrics can be read every week).
    """
    t = timeline(scope, window.end)
    flow_weeks = int(
        store.query(
            f"WITH {t.ctes} SELECT count(DISTINCT {_week(window, 'completed_at')}) FROM item_times "
            "WHERE completed_at >= ? AND completed_at < ?",
            [*t.params, window.start, window.start, window.end],
        )[0][0]
    )
    vsm_weeks = int(
        store.query(
            f"WITH {t.ctes} SELECT count(DISTINCT {_week(window, 's.at')}) FROM status_transitions s "
            "JOIN items i ON i.id = s.work_item_id "
            "WHERE s.from_stage IS NOT NULL AND s.from_stage IS DISTINCT FROM s.to_stage "
            "AND s.at >= ? AND s.at < ?",
            [*t.params, window.start, window.start, window.end],
        )[0][0]
    )
    dora_weeks = _production_weeks(store, window, scope)
    weekly = {"flow": flow_weeks, "DORA": dora_weeks, "VSM": vsm_weeks}
    present = [name for name in METRIC_FAMILIES if weekly[name]]
    total = _weeks(window)
    if len(present) == 3 and min(weekly.values()) >= WEEKLY_SHARE * total:
        level = MaturityLevel.EVOLVING
    else:
        level = _by_share(len(present), (1, 3, 4))
    return DimensionScore(
        "metrics",
        level,
        len(present),
        "metric families",
        f"{len(present)} of 3 metric families with data; weeks with data of {total}: "
        + ", ".join(f"{name} {weeks}" for name, weeks in weekly.items()),
    )


def insights_driven(store: Store, window: Window, scope: Slice) -> DimensionScore:
    """Insights-driven: end-to-end traceability (`obeya.linking.traceability_coverage`, over all time),
    read both ways — the share of the stream's successful production deployments that reach a work item
    (so DORA can be cut by work) and the share of its done work items with a change (so the map's delivery
    stages see the work) — and scored on the lower of the two: the weaker direction limits what the data
    can explain.

    Emerging: below 25 %; Learning: from 25 %; Practicing: from 50 %; Evolving: from 80 %.
    """
    coverage = traceability_coverage(store, scope.value_stream_id)
    deployments, items = coverage.deployments_with_work_item, coverage.work_items_with_change
    shares = [c.share for c in (deployments, items) if c.share is not None]
    share = min(shares) if shares else None

    def _said(c: Coverage, what: str) -> str:
        return f"{c.numerator} of {c.denominator} {what}"

    return DimensionScore(
        "insights-driven",
        None if share is None else _by_share(share, (0.25, 0.5, 0.8)),
        share,
        "share",
        f"{_said(deployments, 'successful production deployments reach a work item')}; "
        f"{_said(items, 'done work items have a change')}",
    )


DEPENDENT_END = {"blocks": "to", "dependency": "from", "depends on": "from"}
"""Issue-link kinds (lower case) that make one work item depend on another, and which end depends:
Jira's ``Blocks`` links go from the blocking item to the blocked one; a ``Dependency`` ("depends on")
link from the dependent item to the one it depends on (docs/connectors.md)."""

_DEPENDENCY_BOUNDS = (0.15, 0.05, 0.0)
"""Dependencies, fewer is better: Learning up to 15 %, Practicing up to 5 %, Evolving none."""

_DEPENDENCY_RULES = {
    MaturityLevel.EVOLVING: "Evolving: none",
    MaturityLevel.PRACTICING: "Practicing: up to 5 %",
    MaturityLevel.LEARNING: "Learning: over 5 %, up to 15 %",
    MaturityLevel.EMERGING: "Emerging: over 15 %",
}
"""The bound a level was read from, said in the evidence so the level can be checked from it."""


def _dependency_links() -> str:
    """CTE ``dependency_links(item_id, other_id)``: a work item and a work item it depends on."""
    ends = [
        f"SELECT l.{end}_id AS item_id, l.{'from' if end == 'to' else 'to'}_id AS other_id "
        "FROM trace_links l WHERE l.from_kind = 'work_item' AND l.to_kind = 'work_item' "
        f"AND lower(l.link_kind) IN ({', '.join(repr(k) for k, e in DEPENDENT_END.items() if e == end)})"
        for end in ("to", "from")
    ]
    return "dependency_links AS (\n    " + "\n    UNION ALL\n    ".join(ends) + "\n)"


def dependencies(store: Store, window: Window, scope: Slice) -> DimensionScore:
    """Dependencies: share of the stream's open items (not done or canceled at the window's end) that
    depend on another value stream — through an issue link to another stream's item (``Blocks``: blocked
    by it; ``Dependency``: depends on it; the item created before the window's end), a parent in another
    stream's project, or a change implementing it in another stream's repository. Fewer is better.
    The evidence names the streams depended on and how many items still wait on work not finished there
    at the window's end (the other item not done or canceled then, by its last status before the window's
    end; the change not merged or closed).

    Evolving: none; Practicing: up to 5 %; Learning: up to 15 %; Emerging: more.
    """
    t = timeline(scope, window.end)
    stream = scope.value_stream_id or ""
    keys = "'project', 'board'"
    not_own = (
        "object_key NOT IN (SELECT object_key FROM scopes WHERE value_stream_id = ? AND object_type IN ({}))"
    )
    unfinished = (
        "COALESCE((SELECT t.to_flow_state FROM status_transitions t WHERE t.work_item_id = {0}.id "
        "AND t.at < ? ORDER BY t.at DESC LIMIT 1), {0}.flow_state) NOT IN ('done', 'canceled')"
    )
    row = store.query(
        f"""WITH {t.ctes},
{ITEM_CHANGES},
{_dependency_links()},
open_items AS (SELECT id, key FROM item_times WHERE state_now NOT IN ('done', 'canceled')),
other_projects AS (SELECT object_key, value_stream_id FROM scopes WHERE value_stream_id <> ?
    AND object_type IN ({keys}) AND {not_own.format(keys)}),
other_repos AS (SELECT object_key, value_stream_id FROM scopes WHERE value_stream_id <> ?
    AND object_type = 'repository' AND {not_own.format("'repository'")}),
crossings AS (
    SELECT o.id AS item_id, sp.value_stream_id AS stream_id, {unfinished.format("w")} AS waiting
    FROM open_items o JOIN dependency_links d ON d.item_id = o.id
    JOIN work_items w ON w.id = d.other_id AND w.created_at < ?
    JOIN other_projects sp ON sp.object_key = w.project
    UNION ALL
    SELECT o.id, sp.value_stream_id, {unfinished.format("p")}
    FROM open_items o JOIN work_items c ON c.id = o.id JOIN work_items p ON p.id = c.parent_id
    JOIN other_projects sp ON sp.object_key = p.project
    UNION ALL
    SELECT o.id, sr.value_stream_id,
        (ch.merged_at IS NULL OR ch.merged_at >= ?) AND (ch.closed_at IS NULL OR ch.closed_at >= ?)
    FROM open_items o JOIN item_changes ic ON ic.item_id = o.id
    JOIN changes ch ON ch.id = ic.change_id AND ch.created_at < ?
    JOIN other_repos sr ON sr.object_key = ch.repo
),
per_stream AS (SELECT vs.name, count(DISTINCT c.item_id) AS items FROM crossings c
    JOIN value_streams vs ON vs.id = c.stream_id GROUP BY vs.name),
waiting_keys AS (SELECT o.key FROM open_items o
    WHERE o.id IN (SELECT item_id FROM crossings WHERE waiting) ORDER BY o.key LIMIT 5)
SELECT (SELECT count(*) FROM open_items),
    (SELECT count(DISTINCT item_id) FROM crossings),
    (SELECT count(DISTINCT item_id) FROM crossings WHERE waiting),
    (SELECT string_agg(name || ' ' || CAST(items AS VARCHAR), ', ' ORDER BY items DESC, name)
     FROM per_stream),
    (SELECT string_agg(key, ', ' ORDER BY key) FROM waiting_keys)""",
        [*t.params, *[stream] * 4, *[window.end] * 6],
    )[0]
    total, crossing, waiting = int(row[0]), int(row[1]), int(row[2])
    share = crossing / total if total else None
    level = None if share is None else _dependency_level(share)
    on = f" (on {row[3]})" if crossing else ""
    still = f" ({row[4]})" if waiting else ""
    rule = f"; {_DEPENDENCY_RULES[level]}" if level else ""
    return DimensionScore(
        "dependencies",
        level,
        share,
        "share",
        f"{crossing} of {total} open items ({(share or 0) * 100:.1f} %) depend on another value stream{on}, "
        f"{waiting} still waiting on work not finished there at the window's end{still}{rule}",
    )


def _dependency_level(share: float) -> MaturityLevel:
    learning, practicing, evolving = _DEPENDENCY_BOUNDS
    if share <= evolving:
        return MaturityLevel.EVOLVING
    if share <= practicing:
        return MaturityLevel.PRACTICING
    return MaturityLevel.LEARNING if share <= learning else MaturityLevel.EMERGING


def organizational(store: Store, window: Window, scope: Slice) -> DimensionScore:
    """Organizational: team alignment, the share of the items completed in the window (with a team) that
    were done by a team aligned to the stream (``teams.value_stream_id``).

    Emerging: below 50 %; Learning: from 50 %; Practicing: from 70 %; Evolving: from 90 %.
    """
    t = timeline(scope, window.end)
    aligned, total = store.query(
        f"""WITH {t.ctes}
SELECT count(*) FILTER (WHERE tm.value_stream_id = ?), count(*)
FROM item_times c JOIN teams tm ON tm.id = c.team_id
WHERE c.completed_at >= ? AND c.completed_at < ?""",
        [*t.params, scope.value_stream_id or "", window.start, window.end],
    )[0]
    share = int(aligned) / int(total) if total else None
    return DimensionScore(
        "organizational",
        None if share is None else _by_share(share, (0.5, 0.7, 0.9)),
        share,
        "share",
        f"{aligned} of {total} items completed in the window were done by teams aligned to the stream",
    )


DIMENSIONS = (insights_driven, dependencies, toolchain, metrics, organizational)


def maturity(store: Store, window: Window, rules: DoraRules = DEFAULT_DORA_RULES) -> list[StreamMaturity]:
    """Every value stream scored on the five dimensions over the window, streams by name (the toolchain's
    deployment frequency under the deployment `rules`)."""
    scored = []
    for stream_id, name in store.query("SELECT id, name FROM value_streams ORDER BY name"):
        scope = Slice(value_stream_id=str(stream_id))
        dimensions = [
            dimension(store, window, scope, rules)
            if dimension is toolchain
            else dimension(store, window, scope)
            for dimension in DIMENSIONS
        ]
        scored.append(StreamMaturity(str(stream_id), str(name), dimensions))
    return scored
