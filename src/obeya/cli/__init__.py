"""The `obeya` command line."""

from __future__ import annotations

import sys

import typer

from obeya.cli.connections import connections_app
from obeya.cli.db import db_app
from obeya.cli.demo import demo
from obeya.cli.insights import insights, maturity
from obeya.cli.interchange import export_command, import_command
from obeya.cli.metrics import metrics_app
from obeya.cli.serve import serve, streams
from obeya.cli.sync import replay_command, sync_command
from obeya.cli.trace import link, trace
from obeya.cli.vsm import vsm
from obeya.config import ConfigError
from obeya.store import StoreError

app = typer.Typer(
    name="obeya",
    help="Obeya: connect your DevOps toolchain, measure flow and DORA, see your value stream.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    add_completion=False,
)
app.command("demo")(demo)
app.command("import")(import_command)
app.command("export")(export_command)
app.command("sync")(sync_command)
app.command("replay")(replay_command)
app.command("link")(link)
app.command("trace")(trace)
app.command("serve")(serve)
app.command("streams")(streams)
app.command("vsm")(vsm)
app.command("insights")(insights)
app.command("maturity")(maturity)
app.add_typer(metrics_app, name="metrics")
app.add_typer(connections_app, name="connections")
app.add_typer(db_app, name="db")


def main() -> None:
    """Entry point of the `obeya` console script."""
    try:
        app()
    except (StoreError, ConfigError) as error:
        print(f"obeya: {error}", file=sys.stderr)
        sys.exit(2)
