"""`obeya db`: the store's schema version, upgrades and row counts."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from obeya.cli.options import DatabaseURL
from obeya.model import TABLES
from obeya.settings import database_url
from obeya.store import LATEST_VERSION, connect

db_app = typer.Typer(help="Inspect and upgrade the store.", no_args_is_help=True)


@db_app.command("status")
def status(database: DatabaseURL = None) -> None:
    """Show the store's URL, engine, schema version and rows per table.

    Examples:

        obeya db status

        obeya db status --database-url postgresql://obeya@db.internal:5432/obeya
    """
    with connect(database_url(database)) as store:
        version = store.schema_version()
        console = Console()
        console.print(f"store: {store.url} ({store.dialect})")
        console.print(f"schema version: {version} (this Obeya: {LATEST_VERSION})")
        if version != LATEST_VERSION:
            console.print("run `obeya db upgrade` to bring it up to date", style="yellow")
            return
        table = Table("table", "rows")
        for kind, spec in TABLES.items():
            table.add_row(spec.name, f"{store.count(kind):,}")
        console.print(table)


@db_app.command("upgrade")
def upgrade(database: DatabaseURL = None) -> None:
    """Create the store, or migrate it in place to this Obeya's schema version; data is kept.

    Examples:

        obeya db upgrade

        OBEYA_DATABASE_URL=postgresql://obeya@db.internal:5432/obeya?schema=obeya obeya db upgrade
    """
    with connect(database_url(database)) as store:
        applied = store.migrate()
        if applied:
            typer.echo(f"upgraded {store.url} to schema version {LATEST_VERSION} (applied {applied})")
        else:
            typer.echo(f"{store.url} is already at schema version {LATEST_VERSION}")
