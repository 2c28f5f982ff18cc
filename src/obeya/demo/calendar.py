"""The demo's two clocks: working time for the simulation, calendar time for the rows.

The simulation runs in *working days* (a float; 1.0 = one working day of nine hours, five per week), so
that effort and capacity are counted in the unit teams plan in. Rows carry calendar days since the
origin (Monday 00:00 UTC of the first week); `calendar_days` maps one onto the other, preserving order:
working day `d` is the `d % 5`-th weekday of week `d // 5`, from 09:00 to 18:00.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

HISTORY_DAYS = 365
_DAY_START_HOURS = 9.0
_DAY_LENGTH_HOURS = 9.0


def calendar_days(work_days: float) -> float:
    """Calendar days since the origin of the instant `work_days` working days after it."""
    day = int(work_days)
    week, weekday = divmod(day, 5)
    return week * 7 + weekday + (_DAY_START_HOURS + (work_days - day) * _DAY_LENGTH_HOURS) / 24.0


@dataclass(frozen=True)
class DemoCalendar:
    """The window the demo covers: about twelve months ending at `as_of` (exclusive)."""

    as_of: dt.date
    origin: dt.datetime  # Monday 00:00 on or before as_of - 365 days
    end_days: float  # as_of 00:00, in calendar days since the origin
    end_work_days: float  # the working time at which the simulation stops

    @classmethod
    def ending(cls, as_of: dt.date) -> DemoCalendar:
        """The calendar of twelve months ending at `as_of`."""
        first = as_of - dt.timedelta(days=HISTORY_DAYS)
        first -= dt.timedelta(days=first.weekday())
        days = (as_of - first).days
        weeks, weekday = divmod(days, 7)
        return cls(
            as_of=as_of,
            origin=dt.datetime(first.year, first.month, first.day),
            end_days=float(days),
            end_work_days=float(weeks * 5 + min(weekday, 5)),
        )
