"""`obeya connections test`: is each connection in obeya.yaml usable, and if not, what to fix."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from obeya.cli.format import OutputFormat, fail, print_json
from obeya.config import load_config
from obeya.connectors.check import DEFAULT_TIMEOUT, CheckResult, Status, check_connections, failed

connections_app = typer.Typer(help="Check the connections declared in obeya.yaml.", no_args_is_help=True)


@connections_app.callback()
def _group() -> None:
    """Check the connections declared in obeya.yaml."""


_STYLE = {Status.ok: "green", Status.warn: "yellow", Status.fail: "red"}


def print_results(results: list[CheckResult]) -> None:
    """The checks as a table: connection, check, result, what to do."""
    table = Table("connection", "check", "result", "what to do", title="connections", title_justify="left")
    previous = None
    for r in results:
        name = r.connection if r.connection != previous else ""
        previous = r.connection
        style = _STYLE[r.status]
        table.add_row(name, r.check, f"[{style}]{r.status.value}[/{style}]: {r.result}", r.action or "–")
    Console().print(table)


@connections_app.command("test")
def test_command(
    connection: Annotated[
        str | None, typer.Argument(help="A connection's name (default: every connection).")
    ] = None,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="table or json (csv prints the table).")
    ] = OutputFormat.table,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for each answer before calling a tool unreachable.")
    ] = DEFAULT_TIMEOUT,
) -> None:
    """Check each connection without syncing: its credential variables are set, its tool is reachable, the
    token is accepted and may read the repositories, projects, boards or jobs the connection names. Only
    GET requests, one try each, nothing is written. Exits 1 when any check fails.

    Examples:

        obeya connections test

        obeya connections test github-acme

        obeya connections test --format json
    """
    config = load_config()
    if not config.connections:
        raise fail(
            "no connections in the configuration: declare them under `connections:` in obeya.yaml "
            "(docs/connectors.md)"
        )
    if connection is None:
        chosen = list(config.connections)
    else:
        try:
            chosen = [config.connection(connection)]
        except KeyError as error:
            raise fail(str(error.args[0])) from error
    results = check_connections(chosen, timeout=timeout)
    if output is OutputFormat.json:
        print_json({"ok": not failed(results), "checks": results})
    else:
        print_results(results)
    if failed(results):
        raise typer.Exit(code=1)
