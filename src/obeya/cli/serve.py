"""`obeya serve` and `obeya streams`: the web app and the portfolio at a glance."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from obeya.cli.options import DatabaseURL
from obeya.config import load_config
from obeya.engine.portfolio import value_stream_summaries
from obeya.settings import open_store


def serve(
    database: DatabaseURL = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    stale_after: Annotated[
        float,
        typer.Option(
            min=0,
            help="Seconds a request waits for figures being recomputed after new data before it is "
            "answered with the previous ones, marked X-Obeya-Stale (the new ones replace them when done).",
        ),
    ] = 1.0,
) -> None:
    """Serve the web app and the REST API (OpenAPI at /docs); the store is upgraded first.

    Examples:

        obeya serve

        obeya serve --host 0.0.0.0 --port 8080 --database-url postgresql://obeya@db:5432/obeya

        obeya serve --stale-after 0.2   # a busy dashboard: previous figures after 0.2 s of recomputing
    """
    import uvicorn

    from obeya.api.app import create_app, quiet_garbage_collector

    config = load_config()
    store = open_store(database)
    typer.echo(f"Obeya on http://{host}:{port}  (store: {store.url}; API docs at /docs)")
    app = create_app(store, config, stale_after=stale_after)
    quiet_garbage_collector()
    uvicorn.run(app, host=host, port=port, log_level="info")


def streams(database: DatabaseURL = None) -> None:
    """List the value streams with their stages and work item counts.

    Examples:

        obeya streams

        OBEYA_DATABASE_URL=duckdb:///./other.duckdb obeya streams
    """
    with open_store(database) as store:
        summaries = value_stream_summaries(store)
    if not summaries:
        typer.echo("no value streams yet: run `obeya demo` or `obeya import FILE.jsonl`")
        return
    table = Table("value stream", "type", "stages", "work items", "in progress", "done")
    for s in summaries:
        table.add_row(
            s.name,
            s.stream_type,
            " → ".join(s.stages),
            f"{s.work_items:,}",
            f"{s.in_progress:,}",
            f"{s.done:,}",
        )
    Console().print(table)
