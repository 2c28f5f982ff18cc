"""`obeya insights` and `obeya maturity`: bottlenecks, waste, recommendations, and the maturity model."""

from __future__ import annotations

import csv
import sys

from rich.console import Console
from rich.table import Table

from obeya.cli.format import OutputFormat, human, print_json
from obeya.cli.options import (
    AsOfOption,
    DatabaseURL,
    Format,
    FromDay,
    Stream,
    ToDay,
    WindowOption,
    slice_option,
    window_option,
    window_title,
)
from obeya.config import load_config
from obeya.insights import InsightsReport, StreamMaturity, insights_report
from obeya.insights import maturity as maturity_model
from obeya.settings import open_store

_SHOWN_ITEMS = 5


def _figure(value: float | None, unit: str) -> str:
    return human(value, unit) if unit in ("seconds", "share") else human(value, "") + f" {unit}"


def _items(items: list[str]) -> str:
    more = f" (+{len(items) - _SHOWN_ITEMS})" if len(items) > _SHOWN_ITEMS else ""
    return ", ".join(items[:_SHOWN_ITEMS]) + more


def _print_report_table(title: str, report: InsightsReport) -> None:
    console = Console()
    found = Table(title=f"{title} — bottlenecks and recommendations", title_justify="left")
    found.add_column("insight", no_wrap=True)
    found.add_column("figure", justify="right", no_wrap=True)
    found.add_column("evidence")
    found.add_column("items")
    for i in [*report.bottlenecks, *report.recommendations]:
        found.add_row(i.title, _figure(i.figure, i.unit), f"{i.evidence}. Rule: {i.rule}", _items(i.items))
    if not report.bottlenecks and not report.recommendations:
        found.add_row("nothing fired", "", "no rule found evidence in the window", "")
    console.print(found)
    waste = Table(title=f"{title} — waste (DOWNTIME)", title_justify="left")
    waste.add_column("category", no_wrap=True)
    for header in ("figure", "threshold", "severity"):
        waste.add_column(header, justify="right", no_wrap=True)
    waste.add_column("explanation")
    waste.add_column("items")
    for w in report.waste:
        waste.add_row(
            w.category,
            _figure(w.figure, w.unit),
            _figure(w.threshold, w.unit),
            w.severity.value,
            w.explanation,
            _items(w.items),
        )
    console.print(waste)


def _print_report_csv(report: InsightsReport) -> None:
    writer = csv.writer(sys.stdout)
    writer.writerow(["kind", "title", "figure", "unit", "threshold", "severity", "explanation", "items"])
    for i in [*report.bottlenecks, *report.recommendations]:
        writer.writerow(
            [i.kind, i.title, i.figure, i.unit, "", "", f"{i.evidence}; rule: {i.rule}", " ".join(i.items)]
        )
    for w in report.waste:
        writer.writerow(
            [
                "waste",
                w.category,
                "" if w.figure is None else w.figure,
                w.unit,
                w.threshold,
                w.severity.value,
                w.explanation,
                " ".join(w.items),
            ]
        )


def insights(
    stream: Stream = None,
    window: WindowOption = None,
    as_of: AsOfOption = None,
    first_day: FromDay = None,
    last_day: ToDay = None,
    output: Format = OutputFormat.table,
    database: DatabaseURL = None,
) -> None:
    """Insights: the bottleneck of each value stream, waste by the eight lean DOWNTIME categories, and
    the recommendations whose rules fire on the evidence — each with its figure and the items behind it.

    A waste signal with nothing to measure says "no data" (never 0); a rule that does not fire shows
    nothing. Signals, rules and thresholds: docs/insights.md.

    Examples:

        obeya insights --stream Payments --window 90d

        obeya insights --window 6m --as-of 2025-06-30 --format json

        obeya insights --stream "Mobile App" --format csv
    """
    period = window_option(window, as_of, first_day, last_day)
    config = load_config().rules
    with open_store(database) as store:
        scope = slice_option(store, stream)
        report = insights_report(store, period, scope, config.dora_rules(), config.work_start)
    if output is OutputFormat.table:
        _print_report_table(window_title("Insights", stream, period), report)
    elif output is OutputFormat.json:
        print_json(report)
    else:
        _print_report_csv(report)


def _print_maturity_table(title: str, streams: list[StreamMaturity]) -> None:
    table = Table(title=title, title_justify="left")
    table.add_column("value stream", no_wrap=True)
    table.add_column("dimension", no_wrap=True)
    table.add_column("level", no_wrap=True)
    table.add_column("evidence")
    for s in streams:
        for d in s.dimensions:
            table.add_row(s.name, d.dimension, d.level.value if d.level else "no data", d.evidence)
    Console().print(table)


def maturity(
    window: WindowOption = None,
    as_of: AsOfOption = None,
    first_day: FromDay = None,
    last_day: ToDay = None,
    output: Format = OutputFormat.table,
    database: DatabaseURL = None,
) -> None:
    """The maturity model: every value stream at Emerging, Learning, Practicing or Evolving on five
    dimensions — insights-driven, dependencies, DevOps toolchain, metrics, organizational — each level
    with the data that justifies it. Thresholds: docs/insights.md.

    Examples:

        obeya maturity

        obeya maturity --window 6m --as-of 2025-06-30 --format json

        obeya maturity --format csv
    """
    period = window_option(window, as_of, first_day, last_day)
    rules = load_config().rules.dora_rules()
    with open_store(database) as store:
        streams = maturity_model(store, period, rules)
    if output is OutputFormat.table:
        _print_maturity_table(window_title("Maturity", None, period), streams)
    elif output is OutputFormat.json:
        print_json(streams)
    else:
        writer = csv.writer(sys.stdout)
        writer.writerow(["value_stream", "dimension", "level", "score", "figure", "unit", "evidence"])
        for s in streams:
            for d in s.dimensions:
                writer.writerow(
                    [
                        s.name,
                        d.dimension,
                        d.level.value if d.level else "",
                        d.level.score if d.level else "",
                        "" if d.figure is None else d.figure,
                        d.unit,
                        d.evidence,
                    ]
                )
