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

from obeya.engine.summary import FigureRow, SeriesRow


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


def print_figures(title: str, rows: Sequence[FigureRow], fmt: OutputFormat) -> None:
    """Headline figures with the previous window beside them."""
    if fmt is OutputFormat.json:
        print_json({"title": title, "figures": list(rows)})
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


def print_series(title: str, rows: Sequence[SeriesRow], units: dict[str, str], fmt: OutputFormat) -> None:
    """A series: one row per metric and period."""
    if fmt is OutputFormat.json:
        print_json({"title": title, "series": list(rows)})
        return
    if fmt is OutputFormat.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(["metric", "period", "value"])
        for r in rows:
            writer.writerow([r.metric, r.period.isoformat(), "" if r.value is None else r.value])
        return
    periods = sorted({r.period for r in rows})
    metrics = list(dict.fromkeys(r.metric for r in rows))
    values = {(r.metric, r.period): r.value for r in rows}
    table = Table("period", *metrics, title=title, title_justify="left")
    for p in periods:
        table.add_row(p.isoformat(), *(human(values.get((m, p)), units.get(m, "")) for m in metrics))
    Console().print(table)


def fail(message: str) -> typer.Exit:
    """Print a one-line error to stderr and return the exit to raise."""
    Console(stderr=True, soft_wrap=True).print(f"obeya: {message}", style="red", highlight=False)
    return typer.Exit(code=2)
