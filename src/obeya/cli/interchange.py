"""`obeya import` and `obeya export`: records in and out as JSON lines (docs/import-format.md)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from obeya.cli.options import DatabaseURL
from obeya.interchange import ImportRejected, export_jsonl, import_jsonl
from obeya.model import TABLES
from obeya.settings import open_store


def import_command(
    file: Annotated[Path, typer.Argument(help="The JSONL file to import; - reads standard input.")],
    database_url: DatabaseURL = None,
    no_raw: Annotated[
        bool,
        typer.Option("--no-raw", help="Do not keep each line as a raw event (provenance)."),
    ] = False,
) -> None:
    """Import records from a JSONL file, all or nothing: one bad line and nothing is written.

    Each line is one JSON object: `kind` names the record type, the other keys are its fields
    (see docs/import-format.md). The errors (up to 50) are listed with their line numbers.

    Examples:

        obeya import records.jsonl

        obeya import export.jsonl --database-url postgresql://obeya@db.internal:5432/obeya --no-raw

        zcat records.jsonl.gz | obeya import -
    """
    err = Console(stderr=True)
    with open_store(database_url) as store:
        try:
            if str(file) == "-":
                report = import_jsonl(store, sys.stdin.buffer, keep_raw=not no_raw, connection="stdin")
            else:
                if not file.is_file():
                    err.print(f"[red]no such file: {file}[/red]")
                    raise typer.Exit(2)
                report = import_jsonl(store, file, keep_raw=not no_raw)
        except ImportRejected as rejected:
            table = Table(
                "line", "field", "problem", "expected", title="import rejected", title_justify="left"
            )
            for error in rejected.errors:
                table.add_row(str(error.line), error.field or "", error.problem, error.expected or "")
            err.print(table)
            more = " (stopped reading after 50 errors)" if rejected.truncated else ""
            err.print(f"[red]{len(rejected.errors)} error(s){more}: nothing was written to {store.url}[/red]")
            raise typer.Exit(1) from None
    console = Console()
    summary = Table("kind", "records", title=f"imported {file}", title_justify="left")
    for kind, count in report.records.items():
        summary.add_row(kind, f"{count:,}")
    if report.raw_events_kept:
        summary.add_row("raw_event (provenance)", f"{report.raw_events_kept:,}")
    console.print(summary)
    console.print(f"{report.total:,} records from {report.lines:,} lines in {report.seconds:.2f} s")


def export_command(
    file: Annotated[
        Path | None, typer.Argument(help="Where to write; standard output when omitted or -.")
    ] = None,
    kinds: Annotated[
        str | None,
        typer.Option("--kinds", help="Comma-separated kinds to export (default: every kind)."),
    ] = None,
    database_url: DatabaseURL = None,
) -> None:
    """Export stored records as JSONL, in the format `obeya import` reads.

    Kinds come in dependency order, each ordered by id; fields that are null are left out; times are
    UTC with Z. Exporting and importing the result into another store gives the same records.

    Examples:

        obeya export backup.jsonl

        obeya export --kinds work_item,status_transition > flow.jsonl

        obeya export - --database-url postgresql://obeya@db.internal:5432/obeya | gzip > obeya.jsonl.gz
    """
    selected = [k.strip() for k in kinds.split(",") if k.strip()] if kinds else None
    err = Console(stderr=True)
    unknown = [k for k in selected or [] if k not in TABLES]
    if unknown:
        err.print(f"[red]unknown kind(s) {', '.join(unknown)}: use {', '.join(TABLES)}[/red]")
        raise typer.Exit(2)
    with open_store(database_url) as store:
        if file is None or str(file) == "-":
            counts = export_jsonl(store, sys.stdout, selected)
            sys.stdout.flush()
        else:
            with file.open("w", encoding="utf-8", newline="\n") as out:
                counts = export_jsonl(store, out, selected)
    total = sum(counts.values())
    shown = ", ".join(f"{kind} {count:,}" for kind, count in counts.items() if count)
    err.print(f"exported {total:,} records{': ' + shown if shown else ''}")
