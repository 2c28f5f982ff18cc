"""`/api/v1/vsm` (the value stream map as JSON, beside the previous window), `/api/v1/vsm.svg` (drawn as
an SVG image) and `/api/v1/vsm/stages/{stage}/evidence` (the rows behind one stage's figures, as JSON or
CSV)."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel

from obeya.api.routes.dependencies import Filters, FiltersDep, SliceOut, StoreDep, WindowOut
from obeya.api.routes.evidence import csv_text
from obeya.api.routes.models import RatioOut
from obeya.engine.results import DurationSummary
from obeya.engine.stage_comparison import MapChange, value_stream_map_with_previous
from obeya.engine.stage_evidence import StageVisitEvidence, UnknownStage, stage_evidence
from obeya.engine.stages import ValueStreamMap
from obeya.store import Store
from obeya.web.vsm_svg import value_stream_map_svg

router = APIRouter(prefix="/api/v1", tags=["value stream map"])


class StageOut(BaseModel):
    """One stage of the map, over the visits that left it in the window (durations in seconds)."""

    stage: str
    position: int
    departures: int
    lead_time: DurationSummary
    process_time: DurationSummary
    wait_time: DurationSummary
    wait_before: DurationSummary
    complete_and_accurate: RatioOut
    throughput_per_week: float | None
    average_wip: float | None
    littles_law_wip: float | None
    arrivals: int
    in_stage_now: int
    in_stage_waiting_now: int
    age_in_stage: DurationSummary
    oldest_in_stage: float | None
    committed_wait_total: float
    evidence: str  # link to the rows behind the stage's figures


class WaitingItemOut(BaseModel):
    """A work item that left the bottleneck stage in the window, and how long it waited there."""

    key: str
    waited: float


class BottleneckOut(BaseModel):
    """The stage with the largest share of the committed wait, why, and the items behind it."""

    stage: str
    wait_share: float
    queue_growth: int
    waiting_now: int
    confirmed_by: list[str]
    items: list[WaitingItemOut]


class MapFiguresOut(BaseModel):
    """The value stream map of a slice over one window."""

    window: WindowOut
    slice: SliceOut
    stages: list[StageOut]
    total_lead_time: float | None
    total_process_time: float | None
    activity_ratio: float | None
    rolled_complete_and_accurate: float | None
    bottleneck: BottleneckOut | None


class ValueStreamMapOut(MapFiguresOut):
    """The value stream map of a slice over a window; `previous`, the map of the window of the same
    length just before (its stages' evidence links name that window); `change`, this window's figures
    minus the previous window's (null where either has no data; shares as fractions)."""

    previous: MapFiguresOut
    change: MapChange


def _map_out(vsm: ValueStreamMap, filters: Filters, previous: bool = False) -> MapFiguresOut:
    b = vsm.bottleneck
    return MapFiguresOut(
        window=filters.previous_window_out() if previous else filters.window_out(),
        slice=filters.slice_out(),
        stages=[
            StageOut(
                **{k: v for k, v in vars(s).items() if k != "complete_and_accurate"},
                complete_and_accurate=RatioOut.of(s.complete_and_accurate),
                evidence=stage_evidence_link(s.stage, filters, previous=previous),
            )
            for s in vsm.stages
        ],
        total_lead_time=vsm.total_lead_time,
        total_process_time=vsm.total_process_time,
        activity_ratio=vsm.activity_ratio,
        rolled_complete_and_accurate=vsm.rolled_complete_and_accurate,
        bottleneck=None
        if b is None
        else BottleneckOut(
            stage=b.stage,
            wait_share=b.wait_share,
            queue_growth=b.queue_growth,
            waiting_now=b.waiting_now,
            confirmed_by=b.confirmed_by,
            items=[WaitingItemOut(key=k, waited=w) for k, w in b.items],
        ),
    )


def _title(store: Store, filters: Filters) -> str:
    stream = filters.scope.value_stream_id
    names = store.query("SELECT name FROM value_streams WHERE id = ?", [stream]) if stream else []
    last = (filters.window.end - timedelta(days=1)).date()
    who = str(names[0][0]) if names else "all value streams"
    return f"Value stream map — {who} — {filters.window.start.date()} to {last}"


NotByParam = Annotated[
    str | None,
    Query(
        description="Not taken: the map is over one window (choose it with `window`/`as_of` or `from`/`to`)."
    ),
]


def _no_grouping(by: str | None) -> None:
    if by is not None:
        raise HTTPException(
            status_code=422,
            detail=f"by: the value stream map takes a window, not a grouping (by={by!r}); ask for one map "
            "per period with window and as_of, or from and to",
        )


@router.get("/vsm")
def vsm_json(store: StoreDep, filters: FiltersDep, by: NotByParam = None) -> ValueStreamMapOut:
    """Per stage lead time, process time, wait, %C&A, WIP and throughput; the items still in each stage
    with their age; the stream's totals, activity ratio and rolled %C&A; the bottleneck with its evidence
    and items; all beside the previous window of the same length, with the change. Definitions:
    docs/metrics.md."""
    _no_grouping(by)
    compared = value_stream_map_with_previous(
        store, filters.window, filters.scope, filters.work_start, filters.dora_rules
    )
    return ValueStreamMapOut(
        **dict(_map_out(compared.current, filters)),
        previous=_map_out(compared.previous, filters, previous=True),
        change=compared.change,
    )


@router.get(
    "/vsm.svg",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}, "description": "The map as an SVG image."}},
)
def vsm_svg(store: StoreDep, filters: FiltersDep, by: NotByParam = None) -> Response:
    """The value stream map drawn as SVG: stages with PT, LT and %C&A, waits beneath, the bottleneck
    marked in red, the totals beside; every figure beside the previous window of the same length (in
    grey, with an arrow where it moved) and the previous window's bottleneck underneath."""
    _no_grouping(by)
    compared = value_stream_map_with_previous(
        store, filters.window, filters.scope, filters.work_start, filters.dora_rules
    )
    drawing = value_stream_map_svg(compared.current, _title(store, filters), compared.previous)
    return Response(drawing, media_type="image/svg+xml")


class StageEvidenceOut(BaseModel):
    """One page of the rows behind a stage's figures: ``departed`` visits (counted in departures,
    throughput, LT, PT, wait and %C&A), then the items still ``in_stage`` with their age so far."""

    stage: str
    window: WindowOut
    slice: SliceOut
    total: int
    departed: int
    in_stage: int
    page: int
    page_size: int
    pages: int
    next: str | None
    previous: str | None
    rows: list[StageVisitEvidence]


def stage_evidence_link(
    stage: str,
    filters: Filters,
    page: int | None = None,
    page_size: int | None = None,
    output: str = "json",
    previous: bool = False,
) -> str:
    """The link to the rows behind `stage`'s figures under the same filters (a page of them, if given),
    in the window or in the previous one."""
    extra: dict[str, str | int | None] = {"page": page, "page_size": page_size}
    if output != "json":
        extra["format"] = output
    return f"/api/v1/vsm/stages/{quote(stage, safe='')}/evidence?{filters.query(extra, previous=previous)}"


@router.get(
    "/vsm/stages/{stage}/evidence",
    response_model=StageEvidenceOut,
    responses={200: {"content": {"text/csv": {}}, "description": "The rows, as JSON or CSV."}},
)
def vsm_stage_evidence(
    stage: str,
    store: StoreDep,
    filters: FiltersDep,
    page: Annotated[int, Query(ge=1, description="Page number, from 1.")] = 1,
    page_size: Annotated[int, Query(ge=1, le=10_000, description="Rows per page.")] = 100,
    output: Annotated[Literal["json", "csv"], Query(alias="format", description="json or csv.")] = "json",
) -> StageEvidenceOut | Response:
    """The rows behind one stage of the map of the same filters: the visits that left the stage in the
    window (`departed` equals the stage's departures), then the items still in it (`in_stage` equals
    in_stage_now) with their age so far, `page_size` at a time. CSV has a header row; its `Link` header
    gives the next page and `X-Total-Count` the number of rows. docs/api.md."""
    try:
        found = stage_evidence(
            store,
            stage,
            filters.window,
            filters.scope,
            limit=page_size,
            offset=(page - 1) * page_size,
            work_start=filters.work_start,
            rules=filters.dora_rules,
        )
    except UnknownStage as error:
        raise HTTPException(status_code=404, detail=f"stage: {error}") from error
    pages = max(1, math.ceil(found.total / page_size))
    if page > pages:
        raise HTTPException(
            status_code=404, detail=f"page: page {page} is past the last page ({pages} of {page_size} rows)"
        )
    next_link = stage_evidence_link(stage, filters, page + 1, page_size, output) if page < pages else None
    previous_link = stage_evidence_link(stage, filters, page - 1, page_size, output) if page > 1 else None
    if output == "csv":
        links = [f'<{u}>; rel="{rel}"' for u, rel in ((next_link, "next"), (previous_link, "prev")) if u]
        headers = {"X-Total-Count": str(found.total)} | ({"Link": ", ".join(links)} if links else {})
        return Response(csv_text(StageVisitEvidence, found.rows), media_type="text/csv", headers=headers)
    return StageEvidenceOut(
        stage=stage,
        window=filters.window_out(),
        slice=filters.slice_out(),
        total=found.total,
        departed=found.departed,
        in_stage=found.in_stage,
        page=page,
        page_size=page_size,
        pages=pages,
        next=next_link,
        previous=previous_link,
        rows=found.rows,
    )
