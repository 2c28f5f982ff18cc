"""`obeya sync` and `obeya replay`: pull from the tools in obeya.yaml, or rebuild from raw answers."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.table import Table

from obeya.cli.format import fail
from obeya.cli.options import DatabaseURL
from obeya.config import ObeyaConfig, load_config
from obeya.connectors.errors import ConnectorError
from obeya.connectors.scopes import apply_value_streams
from obeya.connectors.sync import SyncReport, replay, sync
from obeya.linking import LinkingRules, update_links
from obeya.settings import open_store
from obeya.store.base import Store

Connection = Annotated[str | None, typer.Argument(help="A connection's name (default: every connection).")]


def _connections(config: ObeyaConfig, name: str | None) -> list[str]:
    if not config.connections:
        raise fail(
            "no connections in the configuration: declare them under `connections:` in obeya.yaml "
            "(docs/connectors.md)"
        )
    if name is None:
        return [c.name for c in config.connections]
    try:
        return [config.connection(name).name]
    except KeyError as error:
        raise fail(str(error.args[0])) from error


def _link(store: Store, rules: LinkingRules, name: str) -> str:
    """Bring the trace links up to date after a connection's sync or replay; the summary's "linked" line."""
    try:
        return update_links(store, rules).summary()
    except Exception as error:  # the records are stored; only the links wait for the next derivation
        raise fail(f"{name} is stored, but its links were not derived: {error} (run `obeya link`)") from error


def _print_report(report: SyncReport, what: str, linked: str | None = None) -> None:
    table = Table(title=f"{what} {report.connection}", title_justify="left")
    table.add_column("resource", no_wrap=True)
    for header in ("fetched", "raw events", "normalized"):
        table.add_column(header, justify="right")
    table.add_column("skipped (why)")
    for resource, r in sorted(report.resources.items()):
        skipped = ", ".join(f"{n} {reason}" for reason, n in r.skipped.most_common()) or "–"
        table.add_row(resource, f"{r.fetched:,}", f"{r.raw_events:,}", f"{r.normalized:,}", skipped)
    console = Console()
    console.print(table)
    if linked is not None:
        console.print(linked)


class _ResourceBars:
    """A progress bar per resource of one connection, fed by the sync's progress callback."""

    def __init__(self, progress: Progress, connection: str) -> None:
        self.progress = progress
        self.connection = connection
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, resource: str, items: int) -> None:
        if resource not in self.tasks:
            self.tasks[resource] = self.progress.add_task(f"{self.connection} {resource}", total=None)
        self.progress.advance(self.tasks[resource], items)


def sync_command(
    connection: Connection = None,
    full: Annotated[
        bool, typer.Option("--full", help="Fetch everything again, not only what changed.")
    ] = False,
    database: DatabaseURL = None,
) -> None:
    """Pull from the tools declared under `connections:` in obeya.yaml; only what changed since the last
    sync unless --full. Raw answers are kept (for replay) and normalized into the common model; a sync that
    stops resumes from its cursor. After each connection, the trace links its new data changes are derived
    (the summary's "linked" line).

    Examples:

        GITHUB_TOKEN=... obeya sync

        obeya sync github-acme --full
    """
    config = load_config()
    names = _connections(config, connection)
    rules = config.rules.mapping_rules()
    linking = config.linking.linking_rules()
    with open_store(database) as store:
        apply_value_streams(store, config)  # obeya.yaml's value streams and their scopes
        for name in names:
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed:,} items"),
                transient=True,
            ) as progress:
                bars = _ResourceBars(progress, name)
                try:
                    report = sync(store, config.connection(name), full=full, progress=bars, rules=rules)
                except ConnectorError as error:
                    raise fail(
                        f"sync of {name} stopped: {error} (what was stored is kept; run again to resume)"
                    ) from error
            _print_report(report, "synced", _link(store, linking, name))


def replay_command(connection: Connection = None, database: DatabaseURL = None) -> None:
    """Rebuild the normalized records of a connection from its stored raw answers, without calling any
    API — after a change of mapping rules in obeya.yaml.

    Examples:

        obeya replay

        obeya replay github-acme
    """
    config = load_config()
    names = _connections(config, connection)
    rules = config.rules.mapping_rules()
    linking = config.linking.linking_rules()
    with open_store(database) as store:
        apply_value_streams(store, config)  # obeya.yaml's value streams and their scopes
        for name in names:
            report = replay(store, name, rules=rules)
            _print_report(report, "replayed", _link(store, linking, name))
