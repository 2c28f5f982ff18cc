"""Scheduled sync in `obeya serve`: the `sync:` section of obeya.yaml and the thread that runs it.

One background thread walks the scheduled connections one after another, each every `interval` (from the
start of its previous run). Connections never sync side by side, so one connection is never synced twice at
once and concurrent writers never conflict on the store; a run still under way when its next one is due
simply makes that one wait. A failing run is logged and recorded, and the schedule goes on. Every
`full_every`, a connection's run is a full sync (everything fetched again) instead of an incremental one.
After each successful run the trace links are brought up to date (`obeya.linking.update_links`, which
re-derives only what the sync changed); a failure there is logged and recorded, the sync stays stored.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from obeya.connectors.config import ConnectionConfig
from obeya.connectors.sync import SyncReport, sync
from obeya.linking import LinkingRules, update_links
from obeya.normalize.rules import MappingRules
from obeya.store.base import Store

logger = logging.getLogger("obeya.sync.schedule")


def _duration(value: object) -> object:
    """``15m``, ``1h``, ``1d`` as `obeya.config.model.Duration` reads them.

    Imported here, not at the top: `obeya.config.model` imports this module for `ObeyaConfig.sync`.
    """
    from obeya.config import model

    return model._duration(value)


Duration = Annotated[timedelta, BeforeValidator(_duration)]
"""`obeya.config.model.Duration`: 30m, 24h, 2d, 1w, ISO 8601 (PT15M) or seconds."""


class ScheduleConfig(BaseModel):
    """The ``sync:`` section: what `obeya serve` syncs on its own, and how often."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interval: Duration | None = None
    """How often each connection is synced (from the start of its previous run); none: no schedule."""
    connections: list[str] = Field(default_factory=list)
    """The connections to sync, by name; empty: every connection."""
    full_every: Duration | None = None
    """How often a run is a full sync instead of an incremental one; none: never."""

    @field_validator("interval", "full_every")
    @classmethod
    def _positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("must be a positive duration, e.g. 15m or 1h")
        return value


@dataclass(frozen=True)
class SyncRun:
    """One scheduled sync of one connection."""

    connection: str
    started_at: datetime
    finished_at: datetime
    full: bool
    status: Literal["ok", "failed"]
    fetched: int = 0
    normalized: int = 0
    error: str | None = None
    linked: str | None = None  # what deriving the links did after the sync (`LinkingReport.summary`)

    @property
    def seconds(self) -> float:
        """How long the run took."""
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class ConnectionStatus:
    """Where one scheduled connection stands."""

    connection: str
    running: bool
    runs: int
    failures: int
    consecutive_failures: int
    last_run: SyncRun | None
    last_success_at: datetime | None
    next_run_at: datetime | None


@dataclass(frozen=True)
class ScheduleStatus:
    """The schedule as `GET /api/v1/sync/status` shows it."""

    enabled: bool
    running: bool
    interval_seconds: float | None
    full_every_seconds: float | None
    connections: list[ConnectionStatus]
    recent_runs: list[SyncRun]  # newest first


@dataclass
class _State:
    next_due: float  # time.monotonic()
    last_full: float
    running: bool = False
    runs: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    last_run: SyncRun | None = None
    last_success_at: datetime | None = None


SyncRunner = Callable[[ConnectionConfig, bool], SyncReport]
"""Runs one sync of a connection (full or not); `sync` on the scheduler's store unless a test says."""


@dataclass
class SyncScheduler:
    """Syncs `connections` every `schedule.interval` in a background thread, between `start` and `stop`.

    `connections` are all the declared ones; `schedule.connections` picks among them (an unknown name is
    a `ValueError` naming the known ones).
    """

    store: Store
    schedule: ScheduleConfig
    connections: Sequence[ConnectionConfig]
    rules: MappingRules | None = None
    runner: SyncRunner | None = None
    history: int = 100
    linking: LinkingRules | None = None
    """The rules links are derived by after each run (defaults without it)."""
    _scheduled: list[ConnectionConfig] = field(init=False, default_factory=list)
    _states: dict[str, _State] = field(init=False, default_factory=dict)
    _runs: deque[SyncRun] = field(init=False)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)
    _stop: threading.Event = field(init=False, default_factory=threading.Event)
    _thread: threading.Thread | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self._runs = deque(maxlen=self.history)
        by_name = {c.name: c for c in self.connections}
        unknown = [n for n in self.schedule.connections if n not in by_name]
        if unknown:
            known = ", ".join(by_name) or "none"
            raise ValueError(
                f"sync.connections names {', '.join(unknown)}, not declared under connections:; "
                f"known: {known}"
            )
        names = self.schedule.connections or list(by_name)
        self._scheduled = [by_name[n] for n in dict.fromkeys(names)]

    # --- control ---------------------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """Whether there is anything to schedule (an interval and at least one connection)."""
        return self.schedule.interval is not None and bool(self._scheduled)

    @property
    def running(self) -> bool:
        """Whether the background thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the background thread (nothing without an interval or connections; twice is once)."""
        if not self.enabled or self.running:
            return
        now = time.monotonic()
        with self._lock:
            self._states = {c.name: _State(next_due=now, last_full=now) for c in self._scheduled}
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="obeya-sync-scheduler", daemon=True)
        self._thread.start()
        interval = self.schedule.interval
        assert interval is not None
        logger.info(
            "sync schedule: %s every %s%s",
            ", ".join(c.name for c in self._scheduled),
            interval,
            f", full every {self.schedule.full_every}" if self.schedule.full_every else "",
        )

    def stop(self, timeout: float | None = 60.0) -> bool:
        """Stop after the run under way (a sync stops only at its end); False if it outlasted `timeout`."""
        self._stop.set()
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        if thread.is_alive():
            logger.warning("sync schedule: a sync is still running after %s s; leaving it", timeout)
            return False
        self._thread = None
        return True

    # --- status ----------------------------------------------------------------------------------------

    def status(self) -> ScheduleStatus:
        """The schedule, each connection's last run, and the recent runs (newest first)."""
        interval, full_every = self.schedule.interval, self.schedule.full_every
        now_wall, now = datetime.now(UTC), time.monotonic()
        with self._lock:
            connections = []
            for c in self._scheduled:
                state = self._states.get(c.name)
                next_at = None
                if state is not None and self.running:
                    next_at = now_wall + timedelta(seconds=max(state.next_due - now, 0.0))
                connections.append(
                    ConnectionStatus(
                        connection=c.name,
                        running=state.running if state else False,
                        runs=state.runs if state else 0,
                        failures=state.failures if state else 0,
                        consecutive_failures=state.consecutive_failures if state else 0,
                        last_run=state.last_run if state else None,
                        last_success_at=state.last_success_at if state else None,
                        next_run_at=next_at,
                    )
                )
            recent = list(reversed(self._runs))
        return ScheduleStatus(
            enabled=self.enabled,
            running=self.running,
            interval_seconds=interval.total_seconds() if interval else None,
            full_every_seconds=full_every.total_seconds() if full_every else None,
            connections=connections,
            recent_runs=recent,
        )

    def runs(self) -> list[SyncRun]:
        """The recorded runs, oldest first."""
        with self._lock:
            return list(self._runs)

    # --- the thread ------------------------------------------------------------------------------------

    def _loop(self) -> None:
        interval = self.schedule.interval
        assert interval is not None
        seconds = interval.total_seconds()
        while not self._stop.is_set():
            now = time.monotonic()
            with self._lock:
                due = [c for c in self._scheduled if self._states[c.name].next_due <= now]
                wait = min(s.next_due for s in self._states.values()) - now
            if not due:
                self._stop.wait(max(wait, 0.01))
                continue
            for connection in due:
                if self._stop.is_set():
                    return
                started = time.monotonic()
                self._run(connection, started)
                with self._lock:
                    self._states[connection.name].next_due = started + seconds

    def _run(self, connection: ConnectionConfig, started: float) -> None:
        full_every = self.schedule.full_every
        with self._lock:
            state = self._states[connection.name]
            if state.running:  # never two syncs of one connection at once
                return
            full = full_every is not None and started - state.last_full >= full_every.total_seconds()
            state.running = True
        began = datetime.now(UTC)
        try:
            report = self._sync(connection, full)
        except Exception as error:
            run = SyncRun(connection.name, began, datetime.now(UTC), full, "failed", error=str(error)[:2000])
            logger.warning(
                "sync %s: failed after %.1f s (%s): %s",
                connection.name,
                run.seconds,
                "full" if full else "incremental",
                run.error,
            )
        else:
            linked = self._link(connection.name)
            run = SyncRun(
                connection.name,
                began,
                datetime.now(UTC),
                full,
                "ok",
                fetched=report.fetched,
                normalized=report.normalized,
                linked=linked,
            )
            logger.info(
                "sync %s: ok in %.1f s (%s), %d fetched, %d normalized; %s",
                connection.name,
                run.seconds,
                "full" if full else "incremental",
                run.fetched,
                run.normalized,
                linked,
            )
        with self._lock:
            state.running = False
            state.runs += 1
            state.last_run = run
            if full:
                state.last_full = started
            if run.status == "ok":
                state.consecutive_failures = 0
                state.last_success_at = run.finished_at
            else:
                state.failures += 1
                state.consecutive_failures += 1
            self._runs.append(run)

    def _link(self, connection: str) -> str:
        try:
            return update_links(self.store, self.linking).summary()
        except Exception as error:
            logger.warning("sync %s: links not derived: %s", connection, error)
            return f"links not derived: {str(error)[:2000]}"

    def _sync(self, connection: ConnectionConfig, full: bool) -> SyncReport:
        if self.runner is not None:
            return self.runner(connection, full)
        return sync(self.store, connection, full=full, rules=self.rules)
