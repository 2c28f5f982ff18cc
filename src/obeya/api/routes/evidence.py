"""`/api/v1/metrics/{family}/evidence`: the rows behind a figure, paginated, as JSON or CSV."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import astuple, fields
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel

from obeya.api.routes.dependencies import Filters, FiltersDep, SliceOut, StoreDep, WindowOut
from obeya.engine.evidence import (
    METRICS,
    CompletedItemEvidence,
    DailyLoadItemEvidence,
    DeploymentEvidence,
    EvidencePage,
    FailedDeploymentEvidence,
    IncidentEvidence,
    InProgressItemEvidence,
    PlanItemEvidence,
    ShippedChangeEvidence,
    UnknownEvidenceMetric,
    evidence,
)

router = APIRouter(prefix="/api/v1/metrics", tags=["evidence"])

_ACCEPTED = "; ".join(f"{family}: {', '.join(metrics)}" for family, metrics in METRICS.items())


class EvidenceOut(BaseModel):
    """One page of the rows behind a figure; `next` and `previous` are links to the pages around it."""

    family: Literal["flow", "dora"]
    metric: str
    description: str
    window: WindowOut
    slice: SliceOut
    total: int
    page: int
    page_size: int
    pages: int
    next: str | None
    previous: str | None
    rows: list[
        CompletedItemEvidence
        | InProgressItemEvidence
        | DailyLoadItemEvidence
        | PlanItemEvidence
        | DeploymentEvidence
        | ShippedChangeEvidence
        | FailedDeploymentEvidence
        | IncidentEvidence
    ]


def _link(family: str, filters: Filters, metric: str, page: int, page_size: int, output: str) -> str:
    extra: dict[str, str | int | None] = {"metric": metric, "page": page, "page_size": page_size}
    if output != "json":
        extra["format"] = output
    return f"/api/v1/metrics/{family}/evidence?{filters.query(extra)}"


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return str(value)


def csv_text(row_type: type[Any], rows: Sequence[Any]) -> str:
    """Rows of a dataclass type as CSV text with a header row of its field names (lists joined by ``;``,
    times in ISO 8601, booleans as true/false, None as empty)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([f.name for f in fields(row_type)])
    for row in rows:
        writer.writerow([_cell(v) for v in astuple(row)])
    return buffer.getvalue()


def _csv(found: EvidencePage) -> str:
    return csv_text(found.row_type, found.rows)


@router.get(
    "/{family}/evidence",
    response_model=EvidenceOut,
    responses={200: {"content": {"text/csv": {}}, "description": "The rows, as JSON or CSV."}},
)
def metric_evidence(
    family: Annotated[Literal["flow", "dora"], "the metric family"],
    metric: Annotated[str, Query(description=f"Which figure's rows. {_ACCEPTED}.")],
    store: StoreDep,
    filters: FiltersDep,
    page: Annotated[int, Query(ge=1, description="Page number, from 1.")] = 1,
    page_size: Annotated[int, Query(ge=1, le=10_000, description="Rows per page.")] = 100,
    output: Annotated[Literal["json", "csv"], Query(alias="format", description="json or csv.")] = "json",
) -> EvidenceOut | Response:
    """The rows behind a figure of the same filters: exactly the records the figure counts, in a stable
    order, `page_size` at a time. CSV has a header row; its `Link` header gives the next page and
    `X-Total-Count` the number of rows. The evidence of each figure: docs/api.md.
    """
    try:
        found = evidence(
            store,
            family,
            metric,
            filters.window,
            filters.scope,
            limit=page_size,
            offset=(page - 1) * page_size,
            work_start=filters.work_start,
            rules=filters.dora_rules,
        )
    except UnknownEvidenceMetric as error:
        raise HTTPException(status_code=422, detail=f"metric: {error}") from error
    pages = max(1, math.ceil(found.total / page_size))
    if page > pages:
        raise HTTPException(
            status_code=404, detail=f"page: page {page} is past the last page ({pages} of {page_size} rows)"
        )
    next_link = _link(family, filters, metric, page + 1, page_size, output) if page < pages else None
    previous_link = _link(family, filters, metric, page - 1, page_size, output) if page > 1 else None
    if output == "csv":
        links = [f'<{u}>; rel="{rel}"' for u, rel in ((next_link, "next"), (previous_link, "prev")) if u]
        headers = {"X-Total-Count": str(found.total)} | ({"Link": ", ".join(links)} if links else {})
        return Response(_csv(found), media_type="text/csv", headers=headers)
    return EvidenceOut(
        family=family,
        metric=metric,
        description=found.description,
        window=filters.window_out(),
        slice=filters.slice_out(),
        total=found.total,
        page=page,
        page_size=page_size,
        pages=pages,
        next=next_link,
        previous=previous_link,
        rows=found.rows,
    )
