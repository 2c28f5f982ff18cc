"""`obeya metrics flow|dora|cfd`: the figures of a value stream (or a team, service, item type) over a
window, and its cumulative flow."""

from __future__ import annotations

from typing import Annotated

import typer

from obeya.cli.format import OutputFormat, fail, print_cumulative_flow, print_figures, print_series
from obeya.cli.options import (
    AsOfOption,
    DatabaseURL,
    Format,
    FromDay,
    ItemType,
    Service,
    Stream,
    Team,
    ToDay,
    WindowOption,
    slice_option,
    window_option,
    window_title,
)
from obeya.config import load_config
from obeya.engine.flow import Grouping
from obeya.engine.summary import (
    aging_summary,
    cumulative_flow,
    dora_series,
    dora_summary,
    flow_series,
    flow_summary,
)
from obeya.settings import open_store

metrics_app = typer.Typer(help="Flow metrics and DORA metrics.", no_args_is_help=True)

By = Annotated[str | None, typer.Option("--by", help="Give a series per week or month instead.")]
CfdBy = Annotated[str, typer.Option("--by", help="Count per flow state or per stage: state or stage.")]

_UNITS = {
    "flow velocity": "items",
    "flow time p50": "seconds",
    "flow efficiency": "share",
    "deployment frequency": "per day",
    "lead time for changes p50": "seconds",
    "change failure rate": "share",
    "failed deployment recovery time p50": "seconds",
}


def _grouping(by: str | None) -> Grouping | None:
    if by is None:
        return None
    if by not in ("week", "month"):
        raise fail(f"--by {by!r}: use week or month")
    return "week" if by == "week" else "month"


@metrics_app.command("flow")
def flow_command(
    stream: Stream = None,
    window: WindowOption = None,
    as_of: AsOfOption = None,
    first_day: FromDay = None,
    last_day: ToDay = None,
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

        obeya metrics flow --stream Payments --from 2026-04-01 --to 2026-04-30

        obeya metrics flow --stream "Mobile App" --type defect --format json
    """
    grouping = _grouping(by)
    period = window_option(window, as_of, first_day, last_day)
    with open_store(database) as store:
        scope = slice_option(store, stream, team, item_type, service)
        title = window_title("Flow", stream, period)
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
    window: WindowOption = None,
    as_of: AsOfOption = None,
    first_day: FromDay = None,
    last_day: ToDay = None,
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
    period = window_option(window, as_of, first_day, last_day)
    rules = load_config().rules.dora_rules()
    with open_store(database) as store:
        scope = slice_option(store, stream, team, item_type, service)
        title = window_title("DORA", stream, period)
        if grouping:
            print_series(title, dora_series(store, period, scope, grouping, rules), _UNITS, output)
        else:
            print_figures(title, dora_summary(store, period, scope, rules), output)


@metrics_app.command("cfd")
def cfd_command(
    stream: Stream = None,
    window: WindowOption = None,
    as_of: AsOfOption = None,
    first_day: FromDay = None,
    last_day: ToDay = None,
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
    period = window_option(window, as_of, first_day, last_day)
    with open_store(database) as store:
        scope = slice_option(store, stream, team, item_type, service)
        cfd = cumulative_flow(
            store, period, scope, "flow_state" if by == "state" else "stage", load_config().rules.work_start
        )
        print_cumulative_flow(window_title(f"Cumulative flow by {by}", stream, period), cfd, output)
