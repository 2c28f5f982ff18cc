"""`obeya metrics flow|dora|cfd`: the figures of a value stream (or a team, service, item type) over a
window, and its cumulative flow."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from obeya.cli.format import OutputFormat, fail, print_cumulative_flow, print_figures, print_series
from obeya.cli.options import DatabaseURL
from obeya.config import load_config
from obeya.engine.flow import Grouping
from obeya.engine.slices import UnknownSliceValue, resolve_slice
from obeya.engine.summary import (
    aging_summary,
    cumulative_flow,
    dora_series,
    dora_summary,
    flow_series,
    flow_summary,
)
from obeya.engine.window import Slice, Window, WindowError
from obeya.model.vocabulary import FlowItemType
from obeya.settings import open_store
from obeya.store import Store

metrics_app = typer.Typer(help="Flow metrics and DORA metrics.", no_args_is_help=True)

Stream = Annotated[str | None, typer.Option("--stream", help="Value stream name or id (default: all).")]
WindowSpec = Annotated[str, typer.Option("--window", help="How far back: 90d, 12w, 6m, 1y.")]
AsOf = Annotated[
    str | None, typer.Option("--as-of", help="Last day of the window, YYYY-MM-DD (default today).")
]
By = Annotated[str | None, typer.Option("--by", help="Give a series per week or month instead.")]
CfdBy = Annotated[str, typer.Option("--by", help="Count per flow state or per stage: state or stage.")]
Format = Annotated[OutputFormat, typer.Option("--format", help="table, json or csv.")]
Team = Annotated[str | None, typer.Option("--team", help="Team name or id.")]
ItemType = Annotated[FlowItemType | None, typer.Option("--type", help="Flow item type.")]
Service = Annotated[str | None, typer.Option("--service", help="Service name.")]

_UNITS = {
    "flow velocity": "items",
    "flow time p50": "seconds",
    "flow efficiency": "share",
    "deployment frequency": "per day",
    "lead time for changes p50": "seconds",
    "change failure rate": "share",
    "failed deployment recovery time p50": "seconds",
}


def _slice(
    store: Store, stream: str | None, team: str | None, item_type: FlowItemType | None, service: str | None
) -> Slice:
    try:
        return resolve_slice(store, stream, team, service, item_type)
    except UnknownSliceValue as error:
        raise fail(str(error)) from error


def _window(spec: str, as_of: str | None) -> Window:
    try:
        return Window.last(spec, date.fromisoformat(as_of) if as_of else None)
    except (WindowError, ValueError) as error:
        raise fail(f"--window/--as-of: {error}") from error


def _grouping(by: str | None) -> Grouping | None:
    if by is None:
        return None
    if by not in ("week", "month"):
        raise fail(f"--by {by!r}: use week or month")
    return "week" if by == "week" else "month"


def _title(kind: str, stream: str | None, window: Window) -> str:
    end = window.end.date().fromordinal(window.end.date().toordinal() - 1)
    return f"{kind} — {stream or 'all value streams'} — {window.start.date()} to {end}"


@metrics_app.command("flow")
def flow_command(
    stream: Stream = None,
    window: WindowSpec = "90d",
    as_of: AsOf = None,
    by: By = None,
    output: Format = OutputFormat.table,
    team: Team = None,
    item_type: ItemType = None,
    service: Service = None,
    database: DatabaseURL = None,
) -> None:
    """Flow metrics: velocity, flow time, lead time, efficiency, load, distribution, predictability, age.

    Each figure is shown with the previous window of the same length beside it; "no data" means the
    window holds nothing to measure (never 0). The table (and JSON) goes on with the service level
    expectations — the p50/p70/p85/p95 flow times — with how many items in progress are older than
    each, and the oldest items in progress. With --by, every calendar week or month of the window, the
    first and last clipped to it, each labelled by its first day and given with its length in days.
    Definitions: docs/metrics.md.

    Examples:

        obeya metrics flow --stream Payments --window 90d

        obeya metrics flow --stream Payments --window 6m --by month --format csv

        obeya metrics flow --stream "Mobile App" --type defect --format json
    """
    grouping = _grouping(by)
    period = _window(window, as_of)
    with open_store(database) as store:
        scope = _slice(store, stream, team, item_type, service)
        title = _title("Flow", stream, period)
        if grouping:
            print_series(
                title,
                flow_series(store, period, scope, grouping, load_config().rules.work_start),
                _UNITS,
                output,
            )
        else:
            work_start = load_config().rules.work_start
            figures = flow_summary(store, period, scope, work_start)
            aging = (
                aging_summary(store, period, scope, work_start) if output is not OutputFormat.csv else None
            )
            print_figures(title, figures, output, aging)


@metrics_app.command("dora")
def dora_command(
    stream: Stream = None,
    window: WindowSpec = "90d",
    as_of: AsOf = None,
    by: By = None,
    output: Format = OutputFormat.table,
    team: Team = None,
    item_type: ItemType = None,
    service: Service = None,
    database: DatabaseURL = None,
) -> None:
    """DORA metrics with their levels in the 2023 and 2021 benchmark tables.

    Deployment frequency, lead time for changes (with coding, pickup, review and deploy), change failure
    rate, failed deployment recovery time, time to restore service and rework rate, with the previous
    window beside them. Shipped changes and incident causes come from `obeya link`. Definitions and the
    benchmark tables: docs/metrics.md. What counts as a deployment and as an incident comes from
    obeya.yaml (rules.deployments, rules.incidents; docs/configuration.md).

    Examples:

        obeya metrics dora --stream Platform --window 90d

        obeya metrics dora --stream Payments --window 6m --by month

        obeya metrics dora --service payments-api --format json
    """
    grouping = _grouping(by)
    period = _window(window, as_of)
    rules = load_config().rules.dora_rules()
    with open_store(database) as store:
        scope = _slice(store, stream, team, item_type, service)
        title = _title("DORA", stream, period)
        if grouping:
            print_series(title, dora_series(store, period, scope, grouping, rules), _UNITS, output)
        else:
            print_figures(title, dora_summary(store, period, scope, rules), output)


@metrics_app.command("cfd")
def cfd_command(
    stream: Stream = None,
    window: WindowSpec = "90d",
    as_of: AsOf = None,
    by: CfdBy = "state",
    output: Format = OutputFormat.table,
    team: Team = None,
    item_type: ItemType = None,
    service: Service = None,
    database: DatabaseURL = None,
) -> None:
    """Cumulative flow: per day of the window, how many items were in each flow state or stage.

    By state, the columns are new, waiting, active, done and canceled; by stage, the value stream's
    stages in order, and "(none)" for items whose status maps to no stage. A day's count is taken at
    its end. Definitions: docs/metrics.md.

    Examples:

        obeya metrics cfd --stream Payments --window 90d

        obeya metrics cfd --stream "Mobile App" --window 30d --by stage --format csv
    """
    if by not in ("state", "stage"):
        raise fail(f"--by {by!r}: use state or stage")
    period = _window(window, as_of)
    with open_store(database) as store:
        scope = _slice(store, stream, team, item_type, service)
        cfd = cumulative_flow(
            store, period, scope, "flow_state" if by == "state" else "stage", load_config().rules.work_start
        )
        print_cumulative_flow(_title(f"Cumulative flow by {by}", stream, period), cfd, output)
