"""`GET /api/v1/sync/status`: the scheduled sync of `obeya serve` (the `sync:` section of obeya.yaml)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel

from obeya.connectors.schedule import SyncRun, SyncScheduler

router = APIRouter(prefix="/api/v1/sync", tags=["sync"])


class SyncRunOut(BaseModel):
    """One scheduled sync of one connection."""

    connection: str
    started_at: datetime
    finished_at: datetime
    seconds: float
    full: bool
    status: Literal["ok", "failed"]
    fetched: int
    normalized: int
    error: str | None


class ConnectionScheduleOut(BaseModel):
    """Where one scheduled connection stands."""

    connection: str
    running: bool
    runs: int
    failures: int
    consecutive_failures: int
    last_run: SyncRunOut | None
    last_success_at: datetime | None
    next_run_at: datetime | None


class SyncStatusOut(BaseModel):
    """The schedule; `enabled` is false without `sync.interval` in obeya.yaml."""

    enabled: bool
    running: bool
    interval_seconds: float | None
    full_every_seconds: float | None
    connections: list[ConnectionScheduleOut]
    recent_runs: list[SyncRunOut]


def _run(run: SyncRun | None) -> SyncRunOut | None:
    if run is None:
        return None
    return SyncRunOut(
        connection=run.connection,
        started_at=run.started_at,
        finished_at=run.finished_at,
        seconds=round(run.seconds, 3),
        full=run.full,
        status=run.status,
        fetched=run.fetched,
        normalized=run.normalized,
        error=run.error,
    )


@router.get("/status")
def sync_status(request: Request) -> SyncStatusOut:
    """The scheduled sync: interval, each connection's last run and next one, and the recent runs."""
    scheduler: SyncScheduler | None = getattr(request.app.state, "sync_scheduler", None)
    if scheduler is None:
        return SyncStatusOut(
            enabled=False,
            running=False,
            interval_seconds=None,
            full_every_seconds=None,
            connections=[],
            recent_runs=[],
        )
    status = scheduler.status()
    return SyncStatusOut(
        enabled=status.enabled,
        running=status.running,
        interval_seconds=status.interval_seconds,
        full_every_seconds=status.full_every_seconds,
        connections=[
            ConnectionScheduleOut(
                connection=c.connection,
                running=c.running,
                runs=c.runs,
                failures=c.failures,
                consecutive_failures=c.consecutive_failures,
                last_run=_run(c.last_run),
                last_success_at=c.last_success_at,
                next_run_at=c.next_run_at,
            )
            for c in status.connections
        ],
        recent_runs=[r for r in (_run(run) for run in status.recent_runs) if r is not None],
    )
