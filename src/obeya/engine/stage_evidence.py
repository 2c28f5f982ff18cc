"""The rows behind one stage of the value stream map: the visits its figures count, and the items still
in it (docs/metrics.md, "Evidence"; the figures: `obeya.engine.stages`).

Two kinds of row, marked by `part` and listed in that order:

- ``departed``: every visit that left the stage in the window (``departures`` and throughput count them;
  LT is over those with a lead time ≥ 0, PT and wait beside it; %C&A counts those marked
  `complete_and_accurate`, and says why the others are not: `sent_back` (rework) or, in the delivery
  stage, `failed_downstream` (a failed production deployment of the item's work); wait before over
  those with one ≥ 0);
- ``in_stage``: every item still in the stage at the window's end (``in_stage_now``), with its age in the
  stage so far (``age_in_stage``).

The visits are those of `obeya.engine.stages` (its ``visits`` CTE, reused), judged here by the same rules;
the test suite checks that the rows give back the stage's figures on both engines.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from obeya.engine.dora_rules import DEFAULT_DORA_RULES, DoraRules
from obeya.engine.sql import seconds_between
from obeya.engine.stages import delivery_stages, judged_visits_sql, stage_order
from obeya.engine.timeline import WorkStart
from obeya.engine.window import Slice, Window
from obeya.store import Store

Part = Literal["departed", "in_stage"]


class UnknownStage(ValueError):
    """The value stream has no stage of that name."""

    def __init__(self, stage: str, known: list[str]) -> None:
        super().__init__(f"no stage {stage!r} in this value stream: use one of {', '.join(known)}")
        self.stage = stage
        self.known = known


@dataclass(frozen=True)
class StageVisitEvidence:
    """A visit of a work item to the stage; durations in seconds.

    ``departed`` rows have `left_at`, `lead_time`, `process_time`, `wait_time`, `wait_before` (None when
    the item came from a later stage or from none), `complete_and_accurate`, and why not: `sent_back`
    and `failed_downstream`; ``in_stage`` rows have `age` (window end − entry) and None for the rest.
    """

    part: Part
    key: str
    title: str
    flow_item_type: str
    entered_at: datetime
    left_at: datetime | None
    lead_time: float | None
    process_time: float | None
    wait_time: float | None
    wait_before: float | None
    complete_and_accurate: bool | None
    age: float | None
    sent_back: bool | None
    failed_downstream: bool | None


@dataclass(frozen=True)
class StageEvidencePage:
    """`rows` of the `total` rows behind a stage's figures, from `offset`; `departed` and `in_stage`
    count each part of the whole (not only of the page)."""

    stage: str
    total: int
    departed: int
    in_stage: int
    offset: int
    rows: list[StageVisitEvidence]


def _stage_evidence_sql(
    store: Store, stage: str, window: Window, scope: Slice, work_start: WorkStart, rules: DoraRules
) -> tuple[str, list[object]]:
    order = stage_order(store, scope)
    if stage not in order:
        raise UnknownStage(stage, order)
    sql, params = judged_visits_sql(
        [window], scope, work_start, order, delivery_stages(store, scope, order), rules
    )
    sql += f""",
rows_behind AS (
    SELECT CASE WHEN j.is_current THEN 'in_stage' ELSE 'departed' END AS part,
           w.key, w.title, w.flow_item_type, j.entered_at,
           CASE WHEN j.is_current THEN NULL ELSE j.left_at END AS left_at,
           CASE WHEN j.is_current THEN NULL ELSE j.lead_time END AS lead_time,
           CASE WHEN j.is_current THEN NULL ELSE j.process_time END AS process_time,
           CASE WHEN j.is_current THEN NULL ELSE j.lead_time - j.process_time END AS wait_time,
           CASE WHEN j.is_current THEN NULL ELSE j.wait_before END AS wait_before,
           CASE WHEN j.is_current THEN NULL ELSE j.accurate END AS complete_and_accurate,
           CASE WHEN j.is_current THEN {seconds_between("j.entered_at", "b.window_end")} END AS age,
           CASE WHEN j.is_current THEN NULL ELSE j.sent_back END AS sent_back,
           CASE WHEN j.is_current THEN NULL ELSE j.failed_downstream END AS failed_downstream,
           j.item_id, j.visit
    FROM judged j JOIN work_items w ON w.id = j.item_id CROSS JOIN bounds b
    WHERE j.stage = ?
      AND (j.is_current OR (j.left_at >= b.window_start AND j.left_at < b.window_end))
)"""
    return sql, [*params, stage]


_COLUMNS = (
    "part, key, title, flow_item_type, entered_at, left_at, lead_time, process_time, wait_time, "
    "wait_before, complete_and_accurate, age, sent_back, failed_downstream"
)


def stage_evidence(
    store: Store,
    stage: str,
    window: Window,
    scope: Slice = Slice(),
    limit: int | None = None,
    offset: int = 0,
    work_start: WorkStart = "active",
    rules: DoraRules = DEFAULT_DORA_RULES,
) -> StageEvidencePage:
    """The rows behind `stage`'s figures on the value stream map of a slice and window: departed visits
    (by exit, then key), then the items still in the stage (by entry, then key); all of them, or `limit`
    from `offset`.

    Raises `UnknownStage` when the slice's value stream has no such stage. `rules` say which production
    deployments failed (the delivery stage's %C&A), as for `obeya.engine.stages.value_stream_map`.
    """
    sql, params = _stage_evidence_sql(store, stage, window, scope, work_start, rules)
    counts = store.query(
        f"{sql} SELECT count(*) FILTER (WHERE part = 'departed'), count(*) FILTER (WHERE part = 'in_stage') "
        "FROM rows_behind",
        params,
    )[0]
    departed, in_stage = int(counts[0]), int(counts[1])
    select = (
        f"{sql} SELECT {_COLUMNS} FROM rows_behind "
        "ORDER BY CASE WHEN part = 'departed' THEN 0 ELSE 1 END, COALESCE(left_at, entered_at), key, "
        "item_id, visit"
    )
    if limit is None:
        rows = store.query(select, params)
    else:
        rows = store.query(f"{select} LIMIT ? OFFSET ?", [*params, limit, offset])
    return StageEvidencePage(
        stage,
        departed + in_stage,
        departed,
        in_stage,
        offset,
        [_row(r) for r in rows],
    )


def _seconds(value: object) -> float | None:
    return None if value is None else float(str(value))


def _row(r: tuple[object, ...]) -> StageVisitEvidence:
    return StageVisitEvidence(
        part="in_stage" if r[0] == "in_stage" else "departed",
        key=str(r[1]),
        title=str(r[2]),
        flow_item_type=str(r[3]),
        entered_at=r[4],  # type: ignore[arg-type]
        left_at=r[5],  # type: ignore[arg-type]
        lead_time=_seconds(r[6]),
        process_time=_seconds(r[7]),
        wait_time=_seconds(r[8]),
        wait_before=_seconds(r[9]),
        complete_and_accurate=None if r[10] is None else bool(r[10]),
        age=_seconds(r[11]),
        sent_back=None if r[12] is None else bool(r[12]),
        failed_downstream=None if r[13] is None else bool(r[13]),
    )
