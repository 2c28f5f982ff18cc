"""`obeya vsm`: the value stream map of a value stream (or a team, service or flow item type of it), beside
the previous window of the same length, as a table, JSON, CSV or an SVG."""

from __future__ import annotations

import csv
import dataclasses
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from obeya.cli.format import OutputFormat, human, print_json
from obeya.cli.options import (
    AsOfOption,
    DatabaseURL,
    Format,
    FromDay,
    ItemType,
    Service,
    Stream,
    Team,
    ToDay,
    WindowOption,
    slice_option,
    window_option,
    window_title,
)
from obeya.config import load_config
from obeya.engine.stage_comparison import MapComparison, StageChange, value_stream_map_with_previous
from obeya.engine.stages import StageFigures, ValueStreamMap
from obeya.engine.window import Window
from obeya.settings import open_store
from obeya.web.vsm_svg import value_stream_map_svg


def _days(window: Window) -> str:
    return f"{window.start.date()} to {(window.end - timedelta(days=1)).date()}"


def _change(value: float | None, unit: str) -> str:
    """A change with its sign: durations in human units, shares in percentage points."""
    if value is None:
        return "no data"
    if value == 0:
        return "0"
    sign = "+" if value > 0 else "−"
    if unit == "share":
        return f"{sign}{abs(value) * 100:.0f} pt"
    return sign + human(abs(value), unit)


def _wip(value: float | None) -> str:
    return "no data" if value is None else f"{value:.1f}"


def _table(title: str) -> Table:
    # No rules between columns, one space either side of a cell: each part fits 80 columns with every
    # header and figure whole ("no data" is the widest figure); a stage name longer than 12 wraps.
    return Table(
        title=title,
        title_justify="left",
        box=None,
        padding=(0, 1),
        pad_edge=False,
        header_style="bold underline",
        caption_justify="left",
    )


def _columns(table: Table, headers: tuple[str, ...]) -> None:
    table.add_column("stage", overflow="fold")
    for header in headers:
        table.add_column(header, justify="right", no_wrap=True)


def _left_table(vsm: ValueStreamMap) -> Table:
    table = _table(f"Left the stage, {_days(vsm.window)}")
    _columns(table, ("LT p50", "LT p85", "PT p50", "wait", "before", "%C&A", "out/wk"))
    for s in vsm.stages:
        table.add_row(
            s.stage,
            human(s.lead_time.p50, "seconds"),
            human(s.lead_time.p85, "seconds"),
            human(s.process_time.p50, "seconds"),
            human(s.wait_time.p50, "seconds"),
            human(s.wait_before.p50, "seconds"),
            human(s.complete_and_accurate.value, "share"),
            human(s.throughput_per_week, "items/week"),
        )
    table.caption = "wait = LT − PT; before = wait before the stage; out/wk = left per week"
    return table


def _previous_table(compared: MapComparison) -> Table:
    table = _table(f"Previous window, {_days(compared.previous.window)}, and the change since")
    _columns(table, ("LT p50", "Δ LT", "PT p50", "%C&A", "Δ %C&A", "out/wk", "Δ out"))
    change = {c.stage: c for c in compared.change.stages}
    for s in compared.previous.stages:
        c = change.get(s.stage) or StageChange(s.stage, None, None, None, None, None, None, None)
        table.add_row(
            s.stage,
            human(s.lead_time.p50, "seconds"),
            _change(c.lead_time_p50, "seconds"),
            human(s.process_time.p50, "seconds"),
            human(s.complete_and_accurate.value, "share"),
            _change(c.complete_and_accurate, "share"),
            human(s.throughput_per_week, "items/week"),
            _change(c.throughput_per_week, "items/week"),
        )
    return table


def _in_stage_table(vsm: ValueStreamMap) -> Table:
    table = _table(f"Still in the stage on {(vsm.window.end - timedelta(days=1)).date()} (not in LT above)")
    _columns(table, ("items", "waiting", "age p50", "age p85", "oldest", "WIP", "WIP L"))
    for s in vsm.stages:
        table.add_row(
            s.stage,
            f"{s.in_stage_now:,}",
            f"{s.in_stage_waiting_now:,}",
            human(s.age_in_stage.p50, "seconds"),
            human(s.age_in_stage.p85, "seconds"),
            human(s.oldest_in_stage, "seconds"),
            _wip(s.average_wip),
            _wip(s.littles_law_wip),
        )
    table.caption = "WIP = mean items in the stage; WIP L = throughput × mean LT (Little)"
    return table


def _print_table(title: str, compared: MapComparison, console: Console) -> None:
    vsm, previous, change = compared.current, compared.previous, compared.change
    console.print(title, style="bold")
    for part in (_left_table(vsm), _previous_table(compared), _in_stage_table(vsm)):
        console.print()
        console.print(part)
    console.print()
    for label, now, before, delta, unit in (
        ("total lead time", vsm.total_lead_time, previous.total_lead_time, change.total_lead_time, "seconds"),
        (
            "total process time",
            vsm.total_process_time,
            previous.total_process_time,
            change.total_process_time,
            "seconds",
        ),
        ("activity ratio", vsm.activity_ratio, previous.activity_ratio, change.activity_ratio, "share"),
        (
            "rolled %C&A",
            vsm.rolled_complete_and_accurate,
            previous.rolled_complete_and_accurate,
            change.rolled_complete_and_accurate,
            "share",
        ),
    ):
        console.print(
            f"{label}: {human(now, unit)} (previous {human(before, unit)}, change {_change(delta, unit)})"
        )
    b, was = vsm.bottleneck, previous.bottleneck
    if b is None:
        console.print("bottleneck: no data (no committed wait in the window)")
    else:
        console.print(
            f"[bold red]bottleneck: {b.stage}[/] — {b.wait_share * 100:.0f} % of the committed wait"
        )
        for reason in b.confirmed_by:
            console.print(f"  confirmed by {reason}")
        waits = ", ".join(f"{k} ({human(w, 'seconds')})" for k, w in b.items[:5])
        console.print(f"  longest waits: {waits}")
    then = "no data" if was is None else f"{was.stage}, {was.wait_share * 100:.0f} % of the committed wait"
    console.print(f"  previous window's bottleneck: {then}")


def vsm(
    stream: Stream = None,
    window: WindowOption = None,
    as_of: AsOfOption = None,
    first_day: FromDay = None,
    last_day: ToDay = None,
    team: Team = None,
    service: Service = None,
    item_type: ItemType = None,
    output: Format = OutputFormat.table,
    svg: Annotated[Path | None, typer.Option("--svg", help="Also write the map as an SVG file.")] = None,
    database: DatabaseURL = None,
) -> None:
    """The value stream map, drawn from data: per stage lead time, process time, wait, %C&A and
    throughput of the visits that left it; apart from them, the items still in it with their age so far
    and the stage's WIP; the stream's total lead and process time, activity ratio, rolled %C&A; the
    bottleneck with its evidence and the items behind it. Every figure is shown beside the previous
    window of the same length. Definitions: docs/metrics.md.

    Examples:

        obeya vsm --stream Payments --window 90d

        obeya vsm --stream Payments --from 2026-04-01 --to 2026-04-30

        obeya vsm --stream "Mobile App" --team "Mobile Growth" --type defect --format csv

        obeya vsm --stream "Mobile App" --window 6m --svg mobile-vsm.svg
    """
    period = window_option(window, as_of, first_day, last_day)
    config = load_config()
    with open_store(database) as store:
        scope = slice_option(store, stream, team, item_type, service)
        compared = value_stream_map_with_previous(
            store, period, scope, config.rules.work_start, config.rules.dora_rules()
        )
    title = window_title("Value stream map", stream, period)
    if svg:
        svg.write_text(value_stream_map_svg(compared.current, title, compared.previous), encoding="utf-8")
    if output is OutputFormat.table:
        _print_table(title, compared, Console())
    elif output is OutputFormat.json:
        current = {f.name: getattr(compared.current, f.name) for f in dataclasses.fields(compared.current)}
        print_json({**current, "previous": compared.previous, "change": compared.change})
    else:
        _print_csv(compared)
    if svg:
        Console(stderr=True).print(f"wrote {svg}")


_CSV_FIGURES = (
    "lead_time_p50",
    "lead_time_p85",
    "process_time_p50",
    "wait_time_p50",
    "wait_before_p50",
    "complete_and_accurate",
    "throughput_per_week",
)


def _figures(s: StageFigures) -> list[float | None]:
    return [
        s.lead_time.p50,
        s.lead_time.p85,
        s.process_time.p50,
        s.wait_time.p50,
        s.wait_before.p50,
        s.complete_and_accurate.value,
        s.throughput_per_week,
    ]


def _print_csv(compared: MapComparison) -> None:
    """One row per stage: this window's figures, the items still in the stage, then the previous
    window's figures and the change (``previous_*``, ``change_*``); no data is an empty cell."""
    writer = csv.writer(sys.stdout)
    writer.writerow(
        [
            "stage",
            *_CSV_FIGURES,
            "departures",
            "average_wip",
            "littles_law_wip",
            "in_stage_now",
            "in_stage_waiting_now",
            "age_in_stage_p50",
            "oldest_in_stage",
            *(f"previous_{name}" for name in _CSV_FIGURES),
            "previous_departures",
            *(f"change_{name}" for name in _CSV_FIGURES),
        ]
    )
    before = {s.stage: s for s in compared.previous.stages}
    change = {c.stage: c for c in compared.change.stages}
    for s in compared.current.stages:
        p, c = before[s.stage], change[s.stage]
        deltas = [getattr(c, name) for name in _CSV_FIGURES]
        row = [
            *_figures(s),
            s.departures,
            s.average_wip,
            s.littles_law_wip,
            s.in_stage_now,
            s.in_stage_waiting_now,
            s.age_in_stage.p50,
            s.oldest_in_stage,
            *_figures(p),
            p.departures,
            *deltas,
        ]
        writer.writerow([s.stage, *("" if v is None else v for v in row)])
