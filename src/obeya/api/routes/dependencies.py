"""What every route shares: the store, and the filters (slice and window) read from the query string."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, HTTPException, Query, Request
from pydantic import BaseModel

from obeya.config import ObeyaConfig
from obeya.engine.dora_rules import DEFAULT_DORA_RULES, DoraRules
from obeya.engine.slices import UnknownSliceValue, resolve_slice
from obeya.engine.timeline import WorkStart
from obeya.engine.window import Slice, Window, WindowError, chosen_window, window_spec
from obeya.model.vocabulary import FlowItemType
from obeya.store import Store


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


StoreDep = Annotated[Store, Depends(_store)]

StreamParam = Annotated[
    str | None, Query(description="Value stream name (case-insensitive) or id, e.g. `Payments`.")
]
TeamParam = Annotated[str | None, Query(description="Team name (case-insensitive) or id.")]
ServiceParam = Annotated[str | None, Query(description="Service name, as deployments and incidents give it.")]
TypeParam = Annotated[FlowItemType | None, Query(alias="type", description="Flow item type.")]
WindowParam = Annotated[
    str | None,
    Query(
        description="How far back: a number and d, w, m (30 days) or y (365 days), e.g. `90d` (the default)."
    ),
]
AsOfParam = Annotated[
    date | None, Query(description="Last day of the window, YYYY-MM-DD (default: today, UTC).")
]
FromParam = Annotated[
    date | None,
    Query(
        alias="from",
        description="First day of a calendar window, YYYY-MM-DD (UTC, included); with `to`, instead of "
        "`window` and `as_of`.",
    ),
]
ToParam = Annotated[
    date | None,
    Query(alias="to", description="Last day of a calendar window, YYYY-MM-DD (UTC, included); with `from`."),
]


class WindowOut(BaseModel):
    """The window figures are computed over: ``[start, end)`` in UTC."""

    start: date
    end: date  # exclusive: the day after `as_of`
    as_of: date
    days: float
    window: str


class SliceOut(BaseModel):
    """The part of the organisation figures cover; null means all of it."""

    value_stream_id: str | None
    team_id: str | None
    service: str | None
    flow_item_type: FlowItemType | None


@dataclass(frozen=True)
class Filters:
    """The resolved filters of a request: the slice (ids, not names) and the window."""

    scope: Slice
    window: Window
    window_spec: str
    work_start: WorkStart = "active"  # from obeya.yaml (rules.work_start), not a request parameter
    dora_rules: DoraRules = DEFAULT_DORA_RULES  # from obeya.yaml (rules.deployments, rules.incidents)

    @property
    def as_of(self) -> date:
        """The last day of the window."""
        return (self.window.end - timedelta(days=1)).date()

    def previous_window_out(self) -> WindowOut:
        """The previous window of the same length, as served."""
        previous = self.window.previous()
        return WindowOut(
            start=previous.start.date(),
            end=previous.end.date(),
            as_of=(previous.end - timedelta(days=1)).date(),
            days=previous.days,
            window=self.window_spec,
        )

    def query(self, extra: dict[str, str | int | None] | None = None, previous: bool = False) -> str:
        """A query string naming the same slice and window (or the previous window), plus `extra`.

        The window's last day is always given, so a link means the same thing tomorrow.
        """
        as_of = (self.window.start - timedelta(days=1)).date() if previous else self.as_of
        params: dict[str, str | int | None] = {
            **(extra or {}),
            "stream": self.scope.value_stream_id,
            "team": self.scope.team_id,
            "service": self.scope.service,
            "type": self.scope.flow_item_type.value if self.scope.flow_item_type else None,
            "window": self.window_spec,
            "as_of": as_of.isoformat(),
        }
        return urlencode({k: v for k, v in params.items() if v is not None})

    def window_out(self) -> WindowOut:
        """The window as served."""
        return WindowOut(
            start=self.window.start.date(),
            end=self.window.end.date(),
            as_of=self.as_of,
            days=self.window.days,
            window=self.window_spec,
        )

    def slice_out(self) -> SliceOut:
        """The slice as served."""
        return SliceOut(
            value_stream_id=self.scope.value_stream_id,
            team_id=self.scope.team_id,
            service=self.scope.service,
            flow_item_type=self.scope.flow_item_type,
        )


def resolve_or_404(
    store: Store,
    stream: str | None = None,
    team: str | None = None,
    service: str | None = None,
    item_type: FlowItemType | None = None,
) -> Slice:
    """The slice the names select; a 404 naming the parameter and the known values when one is unknown."""
    try:
        return resolve_slice(store, stream, team, service, item_type)
    except UnknownSliceValue as error:
        raise HTTPException(status_code=404, detail=f"{error.parameter}: {error}") from error


def window_or_422(
    spec: str | None, as_of: date | None, first_day: date | None = None, last_day: date | None = None
) -> Window:
    """The window `spec` long (default 90 days) ending with `as_of`'s day, or the calendar days
    `first_day` to `last_day` (both included); a 422 naming the parameters when unreadable or when the
    two ways of choosing a window are mixed (`obeya.engine.window.chosen_window`)."""
    try:
        return chosen_window(spec, as_of, first_day, last_day)
    except WindowError as error:
        parameter = "from/to" if first_day or last_day else "window"
        raise HTTPException(status_code=422, detail=f"{parameter}: {error}") from error


def _filters(
    request: Request,
    store: StoreDep,
    stream: StreamParam = None,
    team: TeamParam = None,
    service: ServiceParam = None,
    item_type: TypeParam = None,
    window: WindowParam = None,
    as_of: AsOfParam = None,
    first_day: FromParam = None,
    last_day: ToParam = None,
) -> Filters:
    period = window_or_422(window, as_of, first_day, last_day)
    config: ObeyaConfig = request.app.state.config
    # A calendar window is served, and linked, as its length in days ending on its last day: the same
    # window, so every link (and the previous window) keeps one form.
    spec = (window or "90d").strip() if first_day is None else window_spec(period)
    return Filters(
        resolve_or_404(store, stream, team, service, item_type),
        period,
        spec,
        config.rules.work_start,
        config.rules.dora_rules(),
    )


FiltersDep = Annotated[Filters, Depends(_filters)]
"""The filters every figure takes: stream, team, service, type, and window with as_of or from with to."""
