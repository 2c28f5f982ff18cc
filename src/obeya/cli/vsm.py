"""`obeya vsm`: the value stream map of a value stream, as a table or an SVG."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from obeya.cli.format import OutputFormat, human, print_json
from obeya.cli.metrics import AsOf, Format, Stream, WindowSpec, _slice, _title, _window
from obeya.cli.options import DatabaseURL
from obeya.config import load_config
from obeya.engine.stages import ValueStreamMap, value_stream_map
from obeya.settings import open_store
from obeya.web.vsm_svg import value_stream_map_svg


def _print_table(title: str, vsm: ValueStreamMap) -> None:
    table = Table(title=title, title_justify="left")
    table.add_column("stage", no_wrap=True)
    for header in ("LT p50", "LT p85", "PT p50", "wait before", "%C&A", "WIP", "out/wk", "in now"):
        table.add_column(header, justify="right", no_wrap=True)
    for s in vsm.stages:
        table.add_row(
            s.stage,
            human(s.lead_time.p50, "seconds"),
            human(s.lead_time.p85, "seconds"),
            human(s.process_time.p50, "seconds"),
            human(s.wait_before.p50, "seconds"),
            human(s.complete_and_accurate.value, "share"),
            "–" if s.average_wip is None else f"{s.average_wip:.1f}",
            human(s.throughput_per_week, "items/week"),
            f"{s.in_stage_now:,}",
        )
    console = Console()
    console.print(table)
    console.print(
        f"total lead time {human(vsm.total_lead_time, 'seconds')} · total process time "
        f"{human(vsm.total_process_time, 'seconds')} · activity ratio {human(vsm.activity_ratio, 'share')} · "
        f"rolled %C&A {human(vsm.rolled_complete_and_accurate, 'share')}"
    )
    b = vsm.bottleneck
    if b is None:
        console.print("bottleneck: no data (no committed wait in the window)")
        return
    console.print(f"[bold red]bottleneck: {b.stage}[/] — {b.wait_share * 100:.0f} % of the committed wait")
    for reason in b.confirmed_by:
        console.print(f"  confirmed by {reason}")
    console.print("  longest waits: " + ", ".join(f"{k} ({human(w, 'seconds')})" for k, w in b.items[:5]))


def vsm(
    stream: Stream = None,
    window: WindowSpec = "90d",
    as_of: AsOf = None,
    output: Format = OutputFormat.table,
    svg: Annotated[Path | None, typer.Option("--svg", help="Also write the map as an SVG file.")] = None,
    database: DatabaseURL = None,
) -> None:
    """The value stream map, drawn from data: per stage lead time, process time, wait, %C&A, WIP and
    throughput; the stream's total lead and process time, activity ratio, rolled %C&A; the bottleneck
    with its evidence and the items behind it. Definitions: docs/metrics.md.

    Examples:

        obeya vsm --stream Payments --window 90d

        obeya vsm --stream "Mobile App" --window 6m --svg mobile-vsm.svg

        obeya vsm --stream Platform --format json
    """
    period = _window(window, as_of)
    with open_store(database) as store:
        scope = _slice(store, stream, None, None, None)
        vsm_ = value_stream_map(store, period, scope, load_config().rules.work_start)
    title = _title("Value stream map", stream, period)
    if svg:
        svg.write_text(value_stream_map_svg(vsm_, title), encoding="utf-8")
    if output is OutputFormat.table:
        _print_table(title, vsm_)
    else:
        print_json(vsm_) if output is OutputFormat.json else _print_csv(vsm_)
    if svg:
        Console(stderr=True).print(f"wrote {svg}")


def _print_csv(vsm_: ValueStreamMap) -> None:
    import csv
    import sys

    writer = csv.writer(sys.stdout)
    writer.writerow(
        [
            "stage",
            "lead_time_p50",
            "lead_time_p85",
            "process_time_p50",
            "wait_before_p50",
            "complete_and_accurate",
            "average_wip",
            "throughput_per_week",
            "departures",
            "in_stage_now",
        ]
    )
    for s in vsm_.stages:
        writer.writerow(
            [
                s.stage,
                s.lead_time.p50,
                s.lead_time.p85,
                s.process_time.p50,
                s.wait_before.p50,
                s.complete_and_accurate.value,
                s.average_wip,
                s.throughput_per_week,
                s.departures,
                s.in_stage_now,
            ]
        )
