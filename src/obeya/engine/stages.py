"""The value stream map, drawn from data (docs/metrics.md, "Value stream map").

A **visit** is a maximal run of an item's consecutive status periods in one stage; entering ``done`` or
``canceled`` leaves the stage (so "Done" closes the observation stage). Per stage, over the visits that
ended (the item left the stage) in the window:

- lead time (LT): entry → exit; process time (PT): the part of it in ``active``; wait = LT − PT;
- wait before: the time between the item's previous visit (an earlier stage) ending and this one starting;
- %C&A: share of those visits after which the item never came back into this stage or an earlier one
  and, for the delivery stage, whose work did not fail downstream: no change implementing the item went
  to production, after the visit began and by the window's end, in a deployment that failed
  (`obeya.engine.dora.failed_condition`), nor in a failed attempt to deploy the commit that shipped it;
- throughput (visits ended per week) and WIP (average items in the stage over the window), with the
  Little's-law check WIP ≈ throughput × mean LT;
- items still in the stage at the window's end, with their age so far (summary and oldest), shown apart.

`obeya.engine.stage_comparison.value_stream_map_with_previous` gives the map of the window beside the
map of the window of the same length just before it, and the change of each figure.

Whole stream: total LT = Σ median stage LT + Σ median wait before; total PT = Σ median PT; activity
ratio = total PT ÷ total LT; rolled %C&A = Π stage %C&A. Bottleneck: the stage with the largest share
of the stream's committed wait (time in ``new`` — an uncommitted backlog — and the observation stage,
after release, are not queues), confirmed by its queue growing (more entries than exits in the window)
or by it holding the most waiting items at the window's end (the contract's "highest utilisation"
needs a capacity the data does not hold; docs/metrics.md, "Choices").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from obeya.engine.dora import FINISHED_AT, failed_condition
from obeya.engine.dora_rules import DEFAULT_DORA_RULES, DoraRules
from obeya.engine.flow import duration_columns
from obeya.engine.results import DurationSummary, Ratio
from obeya.engine.snapshot import existing_snapshot
from obeya.engine.sql import seconds_between
from obeya.engine.timeline import WorkStart, timeline
from obeya.engine.window import Slice, Window
from obeya.model.vocabulary import StageCategory
from obeya.store import Store

_DEFAULT_STAGES = [c.value for c in StageCategory]
_NOT_QUEUES = {StageCategory.OBSERVATION.value}
_NONE = (0, None, None)  # an empty duration summary row


def _visits_sql(windows: list[Window], scope: Slice, work_start: WorkStart) -> tuple[str, list[Any]]:
    """CTEs ending in ``visits``: one row per window (``w``, its index in `windows`, with the window's
    ``window_start`` and ``window_end``), item and stage visit, cut at that window's end; ``bounds(w,
    window_start, window_end)`` holds the windows.

    Visits come from the derived ``flow_visits``; a visit that had not ended by the window's end is the
    item's current visit then (its process time is only used for visits that ended). Only items with a
    visit overlapping the window are read (with all their visits before its end, which the per-item
    judgements need): every figure of the map is about visits that left, entered or were open during the
    window.
    """
    latest = max(w.end for w in windows)
    t = timeline(scope, latest, work_start)
    # One scan of the visits serves every window (a map is shown beside the previous window's): the
    # visits of the items touching any of them, each item's touch of each window as a flag, then each
    # window's own rows.
    touches = ", ".join(
        f"bool_or(o.entered_at < ? AND (o.left_at IS NULL OR o.left_at >= ?)) AS touches_{i}"
        for i in range(len(windows))
    )
    per_window = "\n    UNION ALL\n    ".join(
        f"""SELECT {i} AS w, b.window_start, b.window_end, v.item_id, v.visit, v.stage, v.entered_at,
           CASE WHEN v.left_at IS NULL OR v.left_at >= b.window_end THEN b.window_end ELSE v.left_at END
               AS left_at,
           (v.left_at IS NULL OR v.left_at >= b.window_end) AS is_current,
           v.process_time, v.uncommitted_time, v.previous_stage, v.previous_left_at
    FROM read_visits v JOIN bounds b ON b.w = {i}
    WHERE v.touches_{i} AND v.entered_at < b.window_end AND v.created_at < b.window_end"""
        for i in range(len(windows))
    )
    rows = ", ".join("(?, CAST(? AS TIMESTAMP), CAST(? AS TIMESTAMP))" for _ in windows)
    sql = f"""WITH {t.ctes},
bounds(w, window_start, window_end) AS (VALUES {rows}),
touching AS (
    SELECT o.item_id, {touches} FROM flow_visits o
    WHERE o.entered_at < ? AND (o.left_at IS NULL OR o.left_at >= ?)
    GROUP BY o.item_id
),
read_visits AS (
    SELECT v.item_id, v.visit, v.stage, v.entered_at, v.left_at, v.process_time, v.uncommitted_time,
           v.previous_stage, v.previous_left_at, i.created_at,
           {", ".join(f"o.touches_{i}" for i in range(len(windows)))}
    FROM flow_visits v JOIN items i ON i.id = v.item_id JOIN touching o ON o.item_id = v.item_id
    WHERE v.entered_at < ?
),
visits AS (
    {per_window}
)"""
    earliest = min(w.start for w in windows)
    params = [
        *t.params,
        *[x for i, w in enumerate(windows) for x in (i, w.start, w.end)],
        *[x for w in windows for x in (w.end, w.start)],
        latest,
        earliest,
        latest,
    ]
    return sql, params


@dataclass(frozen=True)
class StageFigures:
    """One stage of the map."""

    stage: str
    position: int
    departures: int
    lead_time: DurationSummary
    process_time: DurationSummary
    wait_time: DurationSummary
    wait_before: DurationSummary
    complete_and_accurate: Ratio
    throughput_per_week: float | None
    average_wip: float | None
    littles_law_wip: float | None  # throughput × mean LT, to compare with average_wip
    arrivals: int
    in_stage_now: int
    in_stage_waiting_now: int
    age_in_stage: DurationSummary  # of the items still in the stage, so far
    oldest_in_stage: float | None  # the longest of those ages, seconds
    committed_wait_total: float  # Σ seconds of wait (without uncommitted time) of the visits that ended


@dataclass(frozen=True)
class Bottleneck:
    """The stage that holds the largest share of the stream's wait, and why we say so."""

    stage: str
    wait_share: float
    queue_growth: int
    waiting_now: int
    confirmed_by: list[str]
    items: list[tuple[str, float]]  # (work item key, seconds waited in the stage), longest first


@dataclass(frozen=True)
class ValueStreamMap:
    """The map of a value stream over a window: its stages, totals and bottleneck."""

    window: Window
    stages: list[StageFigures]
    total_lead_time: float | None
    total_process_time: float | None
    activity_ratio: float | None
    rolled_complete_and_accurate: float | None
    bottleneck: Bottleneck | None


def stage_order(store: Store, scope: Slice) -> list[str]:
    """The stages of the slice's value stream in order (its own, else the five defaults)."""
    if scope.value_stream_id:
        rows = store.query(
            "SELECT name FROM stages WHERE value_stream_id = ? ORDER BY position", [scope.value_stream_id]
        )
        if rows:
            return [r[0] for r in rows]
    return list(_DEFAULT_STAGES)


def delivery_stages(store: Store, scope: Slice, order: list[str]) -> list[str]:
    """The stages of `order` that deliver to production, whose %C&A also counts failures downstream:
    those of category ``delivery`` (by name, for stages without a category, and for the defaults)."""
    if scope.value_stream_id:
        rows = store.query(
            "SELECT name FROM stages WHERE value_stream_id = ? "
            "AND COALESCE(category, name) = ? ORDER BY position",
            [scope.value_stream_id, StageCategory.DELIVERY.value],
        )
        if rows:
            return [r[0] for r in rows if r[0] in order]
    return [name for name in order if name == StageCategory.DELIVERY.value]


def stage_positions(order: list[str]) -> str:
    """A ``positions(stage, position)`` CTE for stages in `order`."""
    values = ", ".join(f"({_literal(name)}, {i})" for i, name in enumerate(order))
    return f"positions(stage, position) AS (VALUES {values})"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _last_failed_sql(delivery: list[str], rules: DoraRules) -> str:
    """CTEs ending in ``last_failed(w, item_id, failed_at)``: for each window of ``bounds`` and item, the
    last time before the window's end a change that implements the item went to production in a
    deployment that failed (`failed_condition`: failed, rolled back, or caused a change-caused incident)
    — either a deployment that shipped it (``deployment_changes``) or a failed attempt before it at the
    same service, environment and commit (the retry rule of `obeya.engine.sql.deployment_conditions`).
    Without a `delivery` stage it is empty."""
    if not delivery:
        return (
            "last_failed AS (SELECT CAST(NULL AS INTEGER) AS w, CAST(NULL AS VARCHAR) AS item_id, "
            "CAST(NULL AS TIMESTAMP) AS failed_at WHERE FALSE)"
        )
    # From the failed production deployments (a few percent of them), never from every shipment of the
    # map's items: first the shipments they are (incident-causing ones) or that retried their commit
    # (only rows that shipped something: copies redeploying a commit ship nothing), then those
    # shipments' last failure per window (many failed copies retried by one shipment) and the items
    # their changes implement. Items without a delivery visit in the map are never read (the visits
    # join only their own items).
    return f"""failed_deployments AS (
    SELECT d.id, d.service, d.environment, d.commit_sha, d.result, {FINISHED_AT} AS failed_at
    FROM deployments d
    WHERE d.environment_class = 'production' AND {rules.deployments.counted()}
      AND {FINISHED_AT} < (SELECT MAX(window_end) FROM bounds) AND {failed_condition(rules)}
),
failed_shipments AS (
    SELECT f.id, f.failed_at FROM failed_deployments f
    UNION ALL
    SELECT s.id, f.failed_at FROM failed_deployments f
    JOIN deployments s ON s.service = f.service AND s.environment = f.environment
                      AND s.commit_sha = f.commit_sha
    WHERE f.result IN ('failure', 'rolled_back') AND s.environment_class = 'production'
      AND f.failed_at < COALESCE(s.finished_at, s.started_at)
      AND s.id IN (SELECT deployment_id FROM deployment_changes)
),
shipment_failures AS (
    SELECT b.w, m.id, MAX(m.failed_at) AS failed_at
    FROM failed_shipments m JOIN bounds b ON m.failed_at < b.window_end
    GROUP BY b.w, m.id
),
change_failures AS MATERIALIZED (
    SELECT m.w, dc.change_id, MAX(m.failed_at) AS failed_at
    FROM shipment_failures m JOIN deployment_changes dc ON dc.deployment_id = m.id
    GROUP BY m.w, dc.change_id
),
last_failed AS (
    SELECT m.w, l.from_id AS item_id, MAX(m.failed_at) AS failed_at
    FROM change_failures m JOIN trace_links l ON l.to_id = m.change_id
    WHERE l.link_kind = 'implemented_by' AND l.to_kind = 'change'
    GROUP BY m.w, l.from_id
)"""


def judged_visits_sql(
    windows: list[Window],
    scope: Slice,
    work_start: WorkStart,
    order: list[str],
    delivery: list[str] | None = None,
    rules: DoraRules = DEFAULT_DORA_RULES,
) -> tuple[str, list[Any]]:
    """CTEs ending in ``judged``: for each of `windows` (column ``w``, its index, with ``window_start``
    and ``window_end``; ``bounds`` holds them), each visit (`_visits_sql`) of a stage in `order` with its
    position, lead time, the wait before it (from the item's previous visit, when that was an earlier
    stage) and whether it was complete and accurate: the item never came back into this stage or an
    earlier one (by that window's end) and, for a stage in `delivery`, did not fail downstream
    (``failed_downstream``: a failed production deployment of its work after the visit began and before
    the window's end, `_last_failed_sql`)."""
    sql, params = _visits_sql(windows, scope, work_start)
    delivery = delivery or []
    in_delivery = f"v.stage IN ({', '.join(_literal(name) for name in delivery)})" if delivery else "FALSE"
    sql += f""",
{stage_positions(order)},
{_last_failed_sql(delivery, rules)},
placed AS (
    SELECT v.*, p.position, q.position AS previous_position,
           {seconds_between("v.entered_at", "v.left_at")} AS lead_time,
           -- a failure after the visit began: the item's last failure (by the window's end) is after it
           COALESCE({in_delivery} AND f.failed_at >= v.entered_at, FALSE) AS failed_downstream
    FROM visits v JOIN positions p ON p.stage = v.stage
    LEFT JOIN positions q ON q.stage = v.previous_stage
    LEFT JOIN last_failed f ON f.w = v.w AND f.item_id = v.item_id
),
reworked AS (
    SELECT pl.*,
           COALESCE(MIN(pl.position) OVER (PARTITION BY pl.w, pl.item_id ORDER BY pl.entered_at
                                           ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING), 999999)
               <= pl.position AS sent_back
    FROM placed pl
),
judged AS (
    SELECT pl.*, NOT pl.sent_back AND NOT pl.failed_downstream AS accurate,
           CASE WHEN pl.previous_position < pl.position
                THEN {seconds_between("pl.previous_left_at", "pl.entered_at")} END AS wait_before
    FROM reworked pl
)"""
    return sql, params


def value_stream_map(
    store: Store,
    window: Window,
    scope: Slice = Slice(),
    work_start: WorkStart = "active",
    rules: DoraRules = DEFAULT_DORA_RULES,
) -> ValueStreamMap:
    """The value stream map of a slice (normally one value stream, or a team, service or flow item type
    of it) over a window; see the module doc and docs/metrics.md, "The value stream map". `rules` say
    which production deployments failed, for the delivery stage's %C&A."""
    return value_stream_maps(store, [window], scope, work_start, rules)[0]


def value_stream_maps(
    store: Store,
    windows: list[Window],
    scope: Slice = Slice(),
    work_start: WorkStart = "active",
    rules: DoraRules = DEFAULT_DORA_RULES,
) -> list[ValueStreamMap]:
    """The value stream map (`value_stream_map`) of each of `windows`, in order, from one pass over the
    visits: each map is the one `value_stream_map` draws for its window alone. Its statements (the
    visits, the items waiting now) all read one state of the store (`Store.reading`)."""
    with store.reading():
        return _value_stream_maps(store, windows, scope, work_start, rules)


def _value_stream_maps(
    store: Store, windows: list[Window], scope: Slice, work_start: WorkStart, rules: DoraRules
) -> list[ValueStreamMap]:
    order = stage_order(store, scope)
    sql, params = judged_visits_sql(
        windows, scope, work_start, order, delivery_stages(store, scope, order), rules
    )
    # One pass over the visits: per window and stage, the departures' figures (FILTER on "left in the
    # window") and the stage's presence over the window (WIP, arrivals, items still in it).
    departed = "NOT j.is_current AND j.left_at >= j.window_start AND j.left_at < j.window_end"
    wait = "j.lead_time - j.process_time"
    overlap = seconds_between("GREATEST(j.entered_at, j.window_start)", "LEAST(j.left_at, j.window_end)")
    rows: dict[tuple[int, str], tuple[Any, ...]] = {
        (int(r[0]), r[1]): r[1:]
        for r in store.query(
            f"""{sql}
SELECT j.w, j.stage, count(*) FILTER (WHERE {departed}),
       {duration_columns("j.lead_time", f"{departed} AND j.lead_time >= 0")},
       {duration_columns("j.process_time", departed)},
       {duration_columns(wait, f"{departed} AND j.lead_time >= 0")},
       {duration_columns("j.wait_before", f"{departed} AND j.wait_before >= 0")},
       count(*) FILTER (WHERE {departed} AND j.accurate),
       SUM(GREATEST({wait} - j.uncommitted_time, 0)) FILTER (WHERE {departed}),
       avg(j.lead_time) FILTER (WHERE {departed} AND j.lead_time >= 0),
       SUM(GREATEST({overlap}, 0)),
       count(*) FILTER (WHERE j.entered_at >= j.window_start AND j.entered_at < j.window_end),
       count(*) FILTER (WHERE j.is_current),
       {duration_columns(seconds_between("j.entered_at", "j.window_end"), "j.is_current")},
       MAX({seconds_between("j.entered_at", "j.window_end")}) FILTER (WHERE j.is_current)
FROM judged j GROUP BY j.w, j.stage""",
            params,
        )
    }
    return [
        _stage_map(
            store,
            window,
            scope,
            work_start,
            order,
            {stage: row for (w, stage), row in rows.items() if w == i},
        )
        for i, window in enumerate(windows)
    ]


def _stage_map(
    store: Store,
    window: Window,
    scope: Slice,
    work_start: WorkStart,
    order: list[str],
    rows: dict[str, tuple[Any, ...]],
) -> ValueStreamMap:
    """The map of one window from its rows of the stage query (stage, then its figures)."""
    presence = {stage: (stage, *row[17:]) for stage, row in rows.items()}
    # The dashboard's snapshot of the items at the window's end when there is one; for a window no flow
    # figure read (the previous window), building a snapshot of every item for one count costs more
    # than the count.
    now = timeline(scope, window.end, work_start, existing_snapshot(store, scope, window.end, work_start))
    waiting_now = dict(
        store.query(
            f"WITH {now.ctes} "
            "SELECT stage_now, count(*) FROM item_times WHERE state_now = 'waiting' GROUP BY stage_now",
            now.params,
        )
    )
    window_seconds = window.days * 86400
    stages = []
    for position, name in enumerate(order):
        row = rows.get(name)
        present = presence.get(name)
        departures = int(row[1]) if row else 0
        mean_lead = float(row[16]) if row and row[16] is not None else None
        throughput = departures / window.weeks if departures else None
        stages.append(
            StageFigures(
                stage=name,
                position=position,
                departures=departures,
                lead_time=DurationSummary.from_row(row[2:5] if row else _NONE),
                process_time=DurationSummary.from_row(row[5:8] if row else _NONE),
                wait_time=DurationSummary.from_row(row[8:11] if row else _NONE),
                wait_before=DurationSummary.from_row(row[11:14] if row else _NONE),
                complete_and_accurate=Ratio(int(row[14]) if row else 0, departures),
                throughput_per_week=throughput,
                average_wip=float(present[1]) / window_seconds if present and present[1] else None,
                littles_law_wip=(departures / window_seconds) * mean_lead if mean_lead is not None else None,
                arrivals=int(present[2]) if present else 0,
                in_stage_now=int(present[3]) if present else 0,
                in_stage_waiting_now=int(waiting_now.get(name, 0)),
                age_in_stage=DurationSummary.from_row(present[4:7] if present else _NONE),
                oldest_in_stage=float(present[7]) if present and present[7] is not None else None,
                committed_wait_total=float(row[15] or 0) if row else 0.0,
            )
        )
    return _with_totals(store, window, scope, stages)


def _with_totals(store: Store, window: Window, scope: Slice, stages: list[StageFigures]) -> ValueStreamMap:
    measured = [s for s in stages if s.lead_time.p50 is not None]
    total_lead = (
        sum(s.lead_time.p50 or 0 for s in measured) + sum(s.wait_before.p50 or 0 for s in measured)
        if measured
        else None
    )
    total_process = sum(s.process_time.p50 or 0 for s in measured) if measured else None
    ratios = [s.complete_and_accurate.value for s in measured]
    rolled = math.prod(r for r in ratios if r is not None) if measured else None
    return ValueStreamMap(
        window=window,
        stages=stages,
        total_lead_time=total_lead,
        total_process_time=total_process,
        activity_ratio=(total_process / total_lead) if total_lead and total_process is not None else None,
        rolled_complete_and_accurate=rolled,
        bottleneck=_bottleneck(store, window, scope, stages),
    )


def _bottleneck(store: Store, window: Window, scope: Slice, stages: list[StageFigures]) -> Bottleneck | None:
    candidates = [s for s in stages if s.stage not in _NOT_QUEUES]
    total_wait = sum(s.committed_wait_total for s in candidates)
    if not total_wait:
        return None
    worst = max(candidates, key=lambda s: s.committed_wait_total)
    confirmed_by = []
    growth = worst.arrivals - worst.departures
    if growth > 0:
        confirmed_by.append(f"queue growth: {worst.arrivals} entered, {worst.departures} left in the window")
    if worst.in_stage_waiting_now and worst.in_stage_waiting_now == max(
        s.in_stage_waiting_now for s in candidates
    ):
        confirmed_by.append(f"most items waiting at the window's end: {worst.in_stage_waiting_now}")
    # The visits that left the stage in the window, longest committed wait first (what a departure's
    # wait needs — lead, process and uncommitted time — is in the visit itself: no per-item judging).
    t = timeline(scope, window.end)
    lead_time = seconds_between("v.entered_at", "v.left_at")
    items = store.query(
        f"""WITH {t.ctes}
SELECT i.key, SUM({lead_time} - v.process_time - v.uncommitted_time) AS waited
FROM flow_visits v JOIN items i ON i.id = v.item_id
WHERE v.stage = ? AND v.left_at >= ? AND v.left_at < ?
GROUP BY i.key ORDER BY waited DESC, i.key LIMIT 10""",
        [*t.params, worst.stage, window.start, window.end],
    )
    return Bottleneck(
        stage=worst.stage,
        wait_share=worst.committed_wait_total / total_wait,
        queue_growth=growth,
        waiting_now=worst.in_stage_waiting_now,
        confirmed_by=confirmed_by,
        items=[(r[0], float(r[1])) for r in items],
    )
