"""What a figure is computed over: a time window and a slice (value stream, team, service, item type)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise

from obeya.model.vocabulary import FlowItemType


class WindowError(ValueError):
    """A window could not be understood."""


@dataclass(frozen=True)
class Window:
    """A half-open time window ``[start, end)`` in UTC (naive datetimes, like the store's)."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise WindowError(f"a window must end after it starts: {self.start} .. {self.end}")

    @property
    def days(self) -> float:
        """The window's length in days."""
        return (self.end - self.start).total_seconds() / 86400

    @property
    def weeks(self) -> float:
        """The window's length in weeks."""
        return self.days / 7

    def periods(self, by: str) -> list[Window]:
        """The window cut into calendar weeks (from Monday) or months, the first and last clipped."""
        if by not in ("week", "month"):
            raise WindowError(f"cannot group by {by!r}: use week or month")
        cuts: list[datetime] = []
        day = self.start.date()
        cursor = day - timedelta(days=day.weekday()) if by == "week" else day.replace(day=1)
        while datetime.combine(cursor, time()) < self.end:
            cuts.append(datetime.combine(cursor, time()))
            if by == "week":
                cursor += timedelta(days=7)
            else:
                cursor = (cursor.replace(day=28) + timedelta(days=4)).replace(day=1)
        edges = [max(c, self.start) for c in cuts] + [self.end]
        return [Window(a, b) for a, b in pairwise(edges) if b > a]

    def previous(self) -> Window:
        """The window of the same length just before this one, for comparison."""
        return Window(self.start - (self.end - self.start), self.start)

    @classmethod
    def last(cls, spec: str, as_of: date | datetime | None = None) -> Window:
        """The window ending at the end of `as_of`'s day (default today, UTC) and lasting `spec`.

        `spec` is a number and a unit: ``90d``, ``12w``, ``6m`` (30-day months), ``1y`` (365 days).
        """
        match = re.fullmatch(r"\s*(\d+)\s*([dwmy])\s*", spec)
        if match is None:
            raise WindowError(f"cannot read window {spec!r}: use a number and d, w, m or y, e.g. 90d or 12w")
        count, unit = int(match.group(1)), match.group(2)
        if count == 0:
            raise WindowError(f"window {spec!r} is empty")
        days = count * {"d": 1, "w": 7, "m": 30, "y": 365}[unit]
        end = end_of_day(as_of)
        return cls(end - timedelta(days=days), end)

    @classmethod
    def between(cls, start: date, end: date) -> Window:
        """The window from the start of `start`'s day to the end of `end`'s day."""
        return cls(datetime.combine(start, time()), datetime.combine(end, time()) + timedelta(days=1))


def end_of_day(as_of: date | datetime | None = None) -> datetime:
    """Midnight after `as_of`'s day (default today, UTC), as a naive UTC datetime."""
    if as_of is None:
        as_of = datetime.now(UTC).date()
    if isinstance(as_of, datetime):
        as_of = as_of.date()
    return datetime.combine(as_of, time()) + timedelta(days=1)


@dataclass(frozen=True)
class Slice:
    """Which part of the organisation a figure covers; every field left None means all of it."""

    value_stream_id: str | None = None
    team_id: str | None = None
    service: str | None = None
    flow_item_type: FlowItemType | None = None


def chosen_window(
    spec: str | None = None,
    as_of: date | None = None,
    first_day: date | None = None,
    last_day: date | None = None,
    names: tuple[str, str, str, str] = ("window", "as_of", "from", "to"),
) -> Window:
    """The window a command or request names: the calendar days `first_day` to `last_day` (both
    included, UTC), or `spec` (default ``90d``) ending with `as_of`'s day (`Window.last`).

    Raises `WindowError` when only one of the days is given, when the first is after the last, or when
    the days are given together with `spec` or `as_of` (two ways of choosing one window). Messages name
    the four by `names` (the CLI's options or the API's parameters).
    """
    spec_name, as_of_name, first_name, last_name = names
    if first_day is None and last_day is None:
        return Window.last(spec or "90d", as_of)
    if spec is not None or as_of is not None:
        raise WindowError(
            f"{first_name}/{last_name} choose the window by its days: leave out {spec_name} and {as_of_name}"
        )
    if first_day is None or last_day is None:
        raise WindowError(
            f"{first_name} and {last_name} go together: give both days (YYYY-MM-DD, both included)"
        )
    if first_day > last_day:
        raise WindowError(
            f"{first_name} {first_day} is after {last_name} {last_day}: the first day comes first"
        )
    return Window.between(first_day, last_day)


def window_spec(window: Window) -> str:
    """A `Window.last` spec as long as `window` (whole days, e.g. ``30d``); with the window's last day as
    ``as_of`` it names the same window."""
    return f"{round(window.days)}d"
