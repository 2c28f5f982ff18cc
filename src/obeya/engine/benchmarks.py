"""The DORA benchmark tables (State of DevOps 2021; Accelerate State of DevOps 2023) as data.

The reports give each performance level as a range, with gaps and overlaps between levels (2023 lists
the same range for medium and low on two metrics). Obeya rates a figure with the first level, from elite
down, whose bound it meets; the bounds below are the reports' ranges read that way (docs/metrics.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Level = Literal["elite", "high", "medium", "low"]
Year = Literal[2021, 2023]
Metric = Literal["deployment_frequency", "lead_time_for_changes", "change_failure_rate", "recovery_time"]

HOUR = 3600.0
DAY = 24 * HOUR
WEEK = 7 * DAY
MONTH = 30 * DAY


@dataclass(frozen=True)
class Bound:
    """`level` is reached when the figure is at most (or at least, for frequencies) `limit`."""

    level: Level
    limit: float
    wording: str


# deployment_frequency is rated on deployments per day (higher is better); the others are "at most".
TABLES: dict[Year, dict[Metric, tuple[Bound, ...]]] = {
    2021: {
        "deployment_frequency": (
            Bound("elite", 1.0, "on demand (multiple deploys per day)"),
            Bound("high", 1 / 30, "between once per week and once per month"),
            Bound("medium", 1 / 182, "between once per month and once every six months"),
            Bound("low", 0.0, "fewer than once every six months"),
        ),
        "lead_time_for_changes": (
            Bound("elite", HOUR, "less than one hour"),
            Bound("high", WEEK, "between one day and one week"),
            Bound("medium", 182 * DAY, "between one month and six months"),
            Bound("low", float("inf"), "more than six months"),
        ),
        "change_failure_rate": (
            Bound("elite", 0.15, "0-15%"),
            Bound("high", 0.30, "16-30%"),
            Bound("low", float("inf"), "above 30%"),
        ),
        "recovery_time": (  # time to restore service
            Bound("elite", HOUR, "less than one hour"),
            Bound("high", DAY, "less than one day"),
            Bound("medium", WEEK, "between one day and one week"),
            Bound("low", float("inf"), "more than one week"),
        ),
    },
    2023: {
        "deployment_frequency": (
            Bound("elite", 5.0, "on demand (deploys on at least 5 days a week)"),
            Bound("high", 1.0, "between once per day and once per week"),
            Bound("medium", 12 / 52, "between once per week and once per month"),
            Bound("low", 0.0, "less than once per month"),
        ),
        "lead_time_for_changes": (
            Bound("elite", DAY, "less than one day"),
            Bound("high", WEEK, "between one day and one week"),
            Bound("medium", MONTH, "between one week and one month"),
            Bound("low", float("inf"), "more than one month"),
        ),
        "change_failure_rate": (
            Bound("elite", 0.05, "5%"),
            Bound("high", 0.10, "10%"),
            Bound("medium", 0.15, "15%"),
            Bound("low", float("inf"), "64%"),
        ),
        "recovery_time": (  # failed deployment recovery time
            Bound("elite", HOUR, "less than one hour"),
            Bound("high", DAY, "less than one day"),
            Bound("medium", WEEK, "between one day and one week"),
            Bound("low", float("inf"), "between one month and six months"),
        ),
    },
}


@dataclass(frozen=True)
class Rating:
    """A figure's level in one year's table, with the table's wording for that level."""

    year: Year
    level: Level
    wording: str


def rate(metric: Metric, value: float | None, year: Year) -> Rating | None:
    """The level of `value` for `metric` in `year`'s table; None without data.

    Deployment frequency is given in the unit the year's table reads: deployments per day for 2021,
    median deployment days per week for 2023.
    """
    if value is None:
        return None
    higher_is_better = metric == "deployment_frequency"
    for bound in TABLES[year][metric]:
        if (value >= bound.limit) if higher_is_better else (value <= bound.limit):
            return Rating(year, bound.level, bound.wording)
    raise AssertionError(f"the {year} table for {metric} has no catch-all level")
