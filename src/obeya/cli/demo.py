"""`obeya demo`: load a realistic synthetic organisation into the store (docs/demo.md)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from obeya.demo import load_demo
from obeya.demo.generator import DEFAULT_ITEMS, DEFAULT_SEED, MAX_ITEMS, MIN_ITEMS
from obeya.model.schema import TABLES
from obeya.settings import open_store
from obeya.store.base import Store


def _parse_as_of(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date: use YYYY-MM-DD, e.g. 2025-06-30", param_hint="--as-of"
        ) from None


def delete_demo_rows(store: Store) -> None:
    """Delete every row whose source is 'demo', from every table, in one transaction."""
    with store.transaction():
        for kind in reversed(list(TABLES)):
            store.delete_where(kind, "source = ?", ["demo"])


def demo(
    seed: Annotated[
        int, typer.Option(help="Random seed: the same seed, items and as-of give the same data.")
    ] = (DEFAULT_SEED),
    items: Annotated[
        int,
        typer.Option(min=MIN_ITEMS, max=MAX_ITEMS, help="Work items to simulate, across the three streams."),
    ] = DEFAULT_ITEMS,
    as_of: Annotated[
        str | None,
        typer.Option(
            help="Last day of the twelve months of history (YYYY-MM-DD); default today (UTC).",
            show_default=False,
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Store to use; default $OBEYA_DATABASE_URL, else duckdb:///./obeya.duckdb.",
            show_default=False,
        ),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="First delete every row with source 'demo' from every table.")
    ] = False,
) -> None:
    """Load a demo organisation: three value streams, a simulated year of work, code, CI/CD, incidents.

    Payments waits for manual testing, Mobile App for its two-week release train, Platform for a team

    drowning in interruptions (though it deploys on every merge). The story is told in docs/demo.md.

    Examples:

        obeya demo

        obeya demo --replace --seed 42 --as-of 2025-06-30

        obeya demo --items 100000 --database-url duckdb:///./big.duckdb

        obeya demo --replace --database-url postgresql://obeya@db.internal:5432/obeya
    """
    day = _parse_as_of(as_of)
    console = Console()
    with open_store(database_url) as store:
        if replace:
            delete_demo_rows(store)
        with console.status(f"Simulating {items:,} work items (seed {seed})..."):
            report = load_demo(store, seed=seed, items=items, as_of=day)
        table = Table(
            "kind", "rows", title=f"demo organisation loaded into {store.url}", title_justify="left"
        )
        for kind, rows in report.rows.items():
            table.add_row(kind, f"{rows:,}")
        table.add_row("[bold]total[/bold]", f"[bold]{report.total_rows:,}[/bold]")
        console.print(table)
        console.print(
            f"{report.seconds:.1f} s ({report.generate_seconds:.1f} s generating, "
            f"{report.write_seconds:.1f} s writing), peak memory {report.peak_memory_mib:,.0f} MiB"
        )
