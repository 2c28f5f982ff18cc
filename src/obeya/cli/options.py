"""Options shared by the commands that print figures: the store, the window and the slice."""

from datetime import date
from typing import Annotated

import typer

from obeya.cli.format import OutputFormat, fail
from obeya.engine.slices import UnknownSliceValue, resolve_slice
from obeya.engine.window import Slice, Window, WindowError, chosen_window
from obeya.model.vocabulary import FlowItemType
from obeya.store import Store

DatabaseURL = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="Store to use; default $OBEYA_DATABASE_URL, else duckdb:///./obeya.duckdb.",
        show_default=False,
    ),
]

WindowOption = Annotated[
    str | None,
    typer.Option("--window", help="How far back: 90d, 12w, 6m, 1y (default 90d).", show_default=False),
]
AsOfOption = Annotated[
    str | None, typer.Option("--as-of", help="Last day of the window, YYYY-MM-DD (default today).")
]
FromDay = Annotated[
    str | None,
    typer.Option(
        "--from", help="First day of a calendar window, YYYY-MM-DD (UTC, included); with --to, not --window."
    ),
]
ToDay = Annotated[
    str | None, typer.Option("--to", help="Last day of a calendar window, YYYY-MM-DD (UTC, included).")
]


def _day(option: str, text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise fail(f"{option} {text!r}: not a day; use YYYY-MM-DD, e.g. 2026-04-30") from error


def window_option(
    window: str | None, as_of: str | None = None, first_day: str | None = None, last_day: str | None = None
) -> Window:
    """The window of `--window`/`--as-of` (default 90 days to today) or of `--from`/`--to` (calendar
    days, both included); a clear error naming the options when they are unreadable or conflict."""
    days = (_day("--as-of", as_of), _day("--from", first_day), _day("--to", last_day))
    try:
        return chosen_window(window, *days, names=("--window", "--as-of", "--from", "--to"))
    except WindowError as error:
        # The calendar errors name their options already; the others are about --window/--as-of.
        raise fail(str(error) if first_day or last_day else f"--window/--as-of: {error}") from error


Stream = Annotated[str | None, typer.Option("--stream", help="Value stream name or id (default: all).")]
Team = Annotated[str | None, typer.Option("--team", help="Team name or id.")]
ItemType = Annotated[FlowItemType | None, typer.Option("--type", help="Flow item type.")]
Service = Annotated[str | None, typer.Option("--service", help="Service name.")]
Format = Annotated[OutputFormat, typer.Option("--format", help="table, json or csv.")]


def slice_option(
    store: Store,
    stream: str | None,
    team: str | None = None,
    item_type: FlowItemType | None = None,
    service: str | None = None,
) -> Slice:
    """The slice `--stream/--team/--type/--service` name, resolved in `store`; a clear error listing the
    known values when one is unknown."""
    try:
        return resolve_slice(store, stream, team, service, item_type)
    except UnknownSliceValue as error:
        raise fail(str(error)) from error


def window_title(kind: str, stream: str | None, window: Window) -> str:
    """A figure table's title: what, of which stream, over which days (the last one included)."""
    end = window.end.date().fromordinal(window.end.date().toordinal() - 1)
    return f"{kind} — {stream or 'all value streams'} — {window.start.date()} to {end}"
