"""`/api/v1/trace/{key}` (one work item's chain through delivery) and `/api/v1/traceability` (coverage)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from obeya.api.routes.dependencies import StoreDep, StreamParam, resolve_or_404
from obeya.linking import (
    AmbiguousWorkItemKey,
    TraceNode,
    TraceStep,
    UnknownWorkItemKey,
    traceability_coverage,
)
from obeya.linking import trace as trace_chain

router = APIRouter(prefix="/api/v1", tags=["traceability"])


class TraceOut(BaseModel):
    """The chain of one work item; each step names the record it hangs from (`via`), the link's kind,
    its evidence and confidence. Lists are ordered by time, then id."""

    item: TraceNode
    parent: TraceStep | None
    children: list[TraceStep]
    commits: list[TraceStep]
    changes: list[TraceStep]
    pipeline_runs: list[TraceStep]
    deployments: list[TraceStep]
    incidents: list[TraceStep]
    change_requests: list[TraceStep]


class CoverageOut(BaseModel):
    """`numerator` of `denominator` records are traced; `share` is null when there is nothing to trace."""

    key: str
    label: str
    numerator: int
    denominator: int
    share: float | None


class StreamCoverageOut(BaseModel):
    """The traceability of one value stream (id and name null: everything in the store)."""

    value_stream_id: str | None
    name: str | None
    coverage: list[CoverageOut]


_KEYS = [
    "deployments_with_work_item",
    "commits_in_change",
    "changes_with_work_item",
    "work_items_with_change",
    "incidents_attributed",
    "deployments_with_approved_change",
]


@router.get("/trace/{key}", responses={404: {"description": "No work item has the key."}})
def trace(key: str, store: StoreDep) -> TraceOut:
    """The chain of the work item with `key` (or id): parent, children, commits, changes, pipeline runs,
    deployments, the change requests they were made under and the incidents they caused, each link with
    its evidence and confidence."""
    try:
        chain = trace_chain(store, key)
    except UnknownWorkItemKey as error:
        raise HTTPException(status_code=404, detail=f"key: {error}") from error
    except AmbiguousWorkItemKey as error:
        raise HTTPException(status_code=409, detail=f"key: {error}") from error
    return TraceOut(**vars(chain))


@router.get("/traceability")
def traceability(store: StoreDep, stream: StreamParam = None) -> list[StreamCoverageOut]:
    """How much of the delivery is traced, per value stream (or just `stream`), then for everything."""
    streams = store.query("SELECT id, name FROM value_streams ORDER BY name, id")
    if stream:
        wanted = resolve_or_404(store, stream).value_stream_id
        streams = [r for r in streams if r[0] == wanted]
    out = []
    for stream_id, name in [*streams, *([(None, None)] if not stream else [])]:
        coverage = traceability_coverage(store, stream_id)
        out.append(
            StreamCoverageOut(
                value_stream_id=stream_id,
                name=name,
                coverage=[
                    CoverageOut(
                        key=k, label=label, numerator=c.numerator, denominator=c.denominator, share=c.share
                    )
                    for k, (label, c) in zip(_KEYS, coverage.as_rows(), strict=True)
                ],
            )
        )
    return out
