"""Typed results the engine returns. A figure over an empty set is None ("no data"), never 0."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True)
class DurationSummary:
    """Durations in seconds: how many, their percentiles (linear interpolation) and mean.

    `excluded` counts durations left out as data errors (negative spans).
    """

    count: int
    p50: float | None
    p70: float | None
    p85: float | None
    p95: float | None
    mean: float | None
    excluded: int = 0

    @classmethod
    def from_row(cls, row: tuple[Any, ...], excluded: int = 0) -> DurationSummary:
        """From the ``DURATION_WIDTH`` columns ``count, [p50, p70, p85, p95], mean`` (the percentiles as
        one list: one sort computes all four; see `obeya.engine.flow.duration_columns`)."""
        count = int(row[0] or 0)
        if count == 0 or row[1] is None:
            return cls(count, None, None, None, None, None, excluded)
        p50, p70, p85, p95 = (None if v is None else float(v) for v in row[1])
        return cls(count, p50, p70, p85, p95, None if row[2] is None else float(row[2]), excluded)


DURATION_WIDTH = 3
"""How many columns a duration summary takes in a result row (`DurationSummary.from_row`)."""


@dataclass(frozen=True)
class Ratio:
    """A share: numerator ÷ denominator; `value` is None when the denominator is 0."""

    numerator: float
    denominator: float

    @property
    def value(self) -> float | None:
        """The share, or None without data."""
        return self.numerator / self.denominator if self.denominator else None


@dataclass(frozen=True)
class SeriesPoint:
    """One period of a series: its start and value."""

    period: date | datetime
    value: float | None
