"""Figures in human units, and the three output formats of the metric commands."""

from __future__ import annotations

import csv
import dataclasses
import sys
from collections.abc import Sequence
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from obeya.engine.flow import CumulativeFlow
from obeya.engine.summary import AgingSummary, FigureRow, SeriesRow


class OutputFormat(StrEnum):
    """How a command prints its figures."""

    table = "table"
    json = "json"
    csv = "csv"


def human(value: float | str | None, unit: str) -> str:
    """A figure as a person reads it: durations in minutes/hours/days, shares in %, "no data"."""
    if value is None:
        return "no data"
    if isinstance(value, str):
        return value
    if unit == "seconds":
        if abs(value) >= 86400:
            return f"{value / 86400:.1f} d"
        if abs(value) >= 3600:
            return f"{value / 3600:.1f} h"
        return f"{value / 60:.0f} min"
    if unit == "share":
        return f"{value * 100:.1f} %"
    if unit == "items" and float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def print_json(payload: Any) -> None:
    """Any result (dataclasses, lists, dates) as indented JSON on stdout."""
    sys.stdout.write(orjson.dumps(_plain(payload), option=orjson.OPT_INDENT_2).decode() + "\n")


def print_figures(
    title: str, rows: Sequence[FigureRow], fmt: OutputFormat, aging: AgingSummary | None = None
) -> None:
    """Headline figures with the previous window beside them; with `aging`, the service level
    expectations and the oldest items in progress after them (in JSON and tables; CSV is one table)."""
    if fmt is OutputFormat.json:
        print_json({"title": title, "figures": list(rows)} | ({"aging": aging} if aging else {}))
        return
    if fmt is OutputFormat.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(["metric", "value", "unit", "previous"])
        for r in rows:
            writer.writerow(
                [
                    r.metric,
                    "" if r.value is None else r.value,
                    r.unit,
                    "" if r.previous is None else r.previous,
                ]
            )
        return
    table = Table("metric", "this window", "previous window", title=title, title_justify="left")
    for r in rows:
        table.add_row(r.metric, human(r.value, r.unit), human(r.previous, r.unit))
    Console().print(table)
    if aging:
        print_aging(aging)


def _days(days: float) -> str:
    return f"{days:g}"


def print_series(title: str, rows: Sequence[SeriesRow], units: dict[str, str], fmt: OutputFormat) -> None:
    """A series: one row per metric and period, each period by its first day and its length in days."""
    if fmt is OutputFormat.json:
        print_json({"title": title, "series": list(rows)})
        return
    if fmt is OutputFormat.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(["metric", "period", "days", "value"])
        for r in rows:
            writer.writerow(
                [r.metric, r.period.isoformat(), _days(r.days), "" if r.value is None else r.value]
            )
        return
    periods = dict(sorted({r.period: r.days for r in rows}.items()))
    metrics = list(dict.fromkeys(r.metric for r in rows))
    values = {(r.metric, r.period): r.value for r in rows}
    table = Table(title=title, title_justify="left")
    table.add_column("period", no_wrap=True)
    table.add_column("days", justify="right")
    for metric in metrics:
        table.add_column(metric)
    for p, days in periods.items():
        table.add_row(
            p.isoformat(), _days(days), *(human(values.get((m, p)), units.get(m, "")) for m in metrics)
        )
    Console().print(table)


def print_aging(aging: AgingSummary) -> None:
    """The service level expectations with the items in progress beyond each, and the oldest items."""
    console = Console()
    table = Table(
        "expectation",
        "flow time",
        "items in progress older",
        title=f"Service level expectations (flow times of the items completed) — {aging.in_progress:,} "
        "items in progress",
        title_justify="left",
    )
    for row in aging.expectations:
        table.add_row(row.expectation, human(row.flow_time, "seconds"), human(row.items_beyond, "items"))
    console.print(table)
    oldest = Table(
        "key",
        "title",
        "state",
        "stage",
        "age",
        "beyond",
        title="Oldest items in progress",
        title_justify="left",
    )
    for item in aging.oldest:
        oldest.add_row(
            item.key,
            item.title,
            item.flow_state,
            item.stage or "",
            human(item.age, "seconds"),
            item.beyond_sle or "",
        )
    console.print(oldest if aging.oldest else "Oldest items in progress: none")


def print_cumulative_flow(title: str, cfd: CumulativeFlow, fmt: OutputFormat) -> None:
    """The cumulative flow: one row per day, one column per flow state or stage."""
    groups = list(cfd.counts)
    if fmt is OutputFormat.json:
        days = [{"day": d, "counts": {g: cfd.counts[g][i] for g in groups}} for i, d in enumerate(cfd.days)]
        print_json({"title": title, "by": cfd.by, "groups": groups, "days": days})
        return
    if fmt is OutputFormat.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(["day", *groups])
        for i, d in enumerate(cfd.days):
            writer.writerow([d.isoformat(), *(cfd.counts[g][i] for g in groups)])
        return
    table = Table(title=title, title_justify="left")
    table.add_column("day", no_wrap=True)
    for group in groups:
        table.add_column(group, justify="right")
    for i, d in enumerate(cfd.days):
        table.add_row(d.isoformat(), *(f"{cfd.counts[g][i]:,}" for g in groups))
    Console().print(table)


def fail(message: str) -> typer.Exit:
    """Print a one-line error to stderr and return the exit to raise."""
    Console(stderr=True, soft_wrap=True).print(f"obeya: {message}", style="red", highlight=False)
    return typer.Exit(code=2)
