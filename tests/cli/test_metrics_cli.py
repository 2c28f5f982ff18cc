"""`obeya metrics` and `obeya vsm` print the engine's figures in every format, and say clearly what
they cannot find. The stores hold the hand-made scenarios of tests/engine (figures worked out there)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from xml.etree import ElementTree

import pytest
from typer.testing import CliRunner

from obeya.cli import app
from obeya.model.records import ValueStream
from obeya.store import connect
from tests.engine import test_dora, test_flow, test_stages

runner = CliRunner()
DAY = 86400.0


@pytest.fixture
def database(tmp_path: Path) -> str:
    url = f"duckdb:///{tmp_path}/cli.duckdb"
    with connect(url) as store:
        store.migrate()
        store.upsert_records(test_flow._scenario())
        store.upsert_records(test_dora._scenario())
        store.upsert_records(r for r in test_stages._scenario() if r.kind in ("stage",))
    return url


def _run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_flow_as_json_carries_the_figures_and_the_previous_window(database: str) -> None:
    out = _run(
        "metrics",
        "flow",
        "--stream",
        "Payments",
        "--window",
        "31d",
        "--as-of",
        "2025-03-31",
        "--format",
        "json",
        "--database-url",
        database,
    )
    figures = {f["metric"]: f for f in json.loads(out)["figures"]}
    assert figures["items completed"]["value"] == 3
    assert figures["flow time p50"]["value"] == pytest.approx(5 * DAY)
    assert figures["flow efficiency"]["value"] == pytest.approx(14 / 19)
    assert figures["items completed"]["previous"] == 1  # F, done 10 Feb
    assert figures["flow time p50"]["unit"] == "seconds"


def test_flow_table_shows_human_units_and_no_data(database: str) -> None:
    out = _run(
        "metrics",
        "flow",
        "--stream",
        "payments",
        "--window",
        "31d",
        "--as-of",
        "2025-03-31",
        "--database-url",
        database,
    )
    assert "5.0 d" in out  # flow time p50
    assert "73.7 %" in out  # flow efficiency 14/19
    assert "no data" in out  # e.g. predictability in February


def test_flow_series_by_week_as_csv(database: str) -> None:
    out = _run(
        "metrics",
        "flow",
        "--stream",
        "Payments",
        "--window",
        "31d",
        "--as-of",
        "2025-03-31",
        "--by",
        "week",
        "--format",
        "csv",
        "--database-url",
        database,
    )
    rows = list(csv.DictReader(io.StringIO(out)))
    velocity = [(r["period"], r["days"], r["value"]) for r in rows if r["metric"] == "flow velocity"]
    assert velocity == [  # every week, the first (1-2 Mar) and last (31 Mar) clipped to the window
        ("2025-03-01", "2", "0.0"),
        ("2025-03-03", "7", "1.0"),  # A on 7 Mar
        ("2025-03-10", "7", "2.0"),  # B 12 Mar and G 15 Mar
        ("2025-03-17", "7", "0.0"),
        ("2025-03-24", "7", "0.0"),
        ("2025-03-31", "1", "0.0"),
    ]
    median = [r["value"] for r in rows if r["metric"] == "flow time p50"]
    assert median == ["", str(5 * DAY), str(7 * DAY), "", "", ""]  # no data is empty, never 0


def test_series_periods_read_the_same_in_flow_and_dora(database: str) -> None:
    common = ["--stream", "Payments", "--window", "31d", "--as-of", "2025-03-31", "--by", "week"]
    flow = json.loads(_run("metrics", "flow", *common, "--format", "json", "--database-url", database))
    dora = json.loads(_run("metrics", "dora", *common, "--format", "json", "--database-url", database))
    flow_periods = list(dict.fromkeys(p["period"] for p in flow["series"]))
    dora_periods = list(dict.fromkeys(p["period"] for p in dora["series"]))
    assert flow_periods == dora_periods
    assert flow_periods == [
        "2025-03-01",
        "2025-03-03",
        "2025-03-10",
        "2025-03-17",
        "2025-03-24",
        "2025-03-31",
    ]
    table = _run("metrics", "flow", *common, "--database-url", database)
    assert "2025-03-01" in table and "T00:00:00" not in table


def _table_rows(out: str) -> list[list[str]]:
    return [[c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines() if line.startswith("│")]


def test_flow_table_shows_the_service_level_expectations_and_the_oldest_items(database: str) -> None:
    # Completed in March: A, B, G (flow times 5, 5, 9 d: p50 5, p70 6.6, p85 7.8, p95 8.6 d). In
    # progress at its end: E (30 d), BUG-1 of the DORA scenario (active since 3 Mar: 29 d) and D (12 d),
    # each older than every expectation.
    out = _run(
        "metrics",
        "flow",
        "--stream",
        "Payments",
        "--window",
        "31d",
        "--as-of",
        "2025-03-31",
        "--database-url",
        database,
    )
    assert "Service level expectations" in out and "3 items in progress" in out
    rows = _table_rows(out)
    assert [r for r in rows if r[0] in ("p50", "p70", "p85", "p95")] == [
        ["p50", "5.0 d", "3"],
        ["p70", "6.6 d", "3"],
        ["p85", "7.8 d", "3"],
        ["p95", "8.6 d", "3"],
    ]
    oldest = [(r[0], r[2], r[4], r[5]) for r in rows if len(r) == 6]
    assert oldest == [
        ("E", "active", "30.0 d", "p95"),
        ("BUG-1", "active", "29.0 d", "p95"),
        ("D", "active", "12.0 d", "p95"),
    ]
    as_json = json.loads(
        _run(
            "metrics",
            "flow",
            "--stream",
            "Payments",
            "--type",
            "feature",
            "--window",
            "31d",
            "--as-of",
            "2025-03-31",
            "--format",
            "json",
            "--database-url",
            database,
        )
    )
    # features: A completed (5 d), E in progress (30 d)
    assert as_json["aging"]["expectations"][2] == {
        "expectation": "p85",
        "flow_time": 5 * DAY,
        "items_beyond": 1,
    }
    assert [i["key"] for i in as_json["aging"]["oldest"]] == ["E"]


def _cfd(database: str, *args: str) -> str:
    common = ["--stream", "Payments", "--type", "feature", "--window", "31d", "--as-of", "2025-03-31"]
    return _run("metrics", "cfd", *common, *args, "--database-url", database)


def test_cfd_counts_the_items_of_each_state_per_day(database: str) -> None:
    # Features of Payments: A (active 2 Mar, blocked 4 Mar, active 5 Mar, done 7 Mar), C (active 2 Mar,
    # canceled 8 Mar), E (active 2 Mar, done 5 Mar, active again 25 Mar), F (done 10 Feb).
    rows = list(csv.DictReader(io.StringIO(_cfd(database, "--format", "csv"))))
    assert list(rows[0]) == ["day", "new", "waiting", "active", "done", "canceled"]
    assert len(rows) == 31
    days = {r.pop("day"): {k: int(v) for k, v in r.items()} for r in rows}
    assert days["2025-03-03"] == {"new": 0, "waiting": 1, "active": 2, "done": 1, "canceled": 0}
    assert days["2025-03-05"] == {"new": 0, "waiting": 0, "active": 2, "done": 2, "canceled": 0}
    assert days["2025-03-31"] == {"new": 0, "waiting": 0, "active": 1, "done": 2, "canceled": 1}
    table = _table_rows(_cfd(database))
    assert table[-1] == ["2025-03-31", "0", "0", "1", "2", "1"]


def test_cfd_by_stage_as_json(database: str) -> None:
    body = json.loads(_cfd(database, "--by", "stage", "--format", "json"))
    assert body["by"] == "stage"
    assert body["groups"] == ["ideation", "integration", "verification", "delivery", "observation", "(none)"]
    assert body["days"][-1] == {
        "day": "2025-03-31",
        "counts": {  # E in progress; A, F done; C canceled, in no stage
            "ideation": 0,
            "integration": 1,
            "verification": 0,
            "delivery": 0,
            "observation": 2,
            "(none)": 1,
        },
    }


def test_dora_table_has_levels_from_both_years(database: str) -> None:
    out = _run(
        "metrics",
        "dora",
        "--stream",
        "Payments",
        "--window",
        "31d",
        "--as-of",
        "2025-03-31",
        "--format",
        "csv",
        "--database-url",
        database,
    )
    rows = {r["metric"]: r for r in csv.DictReader(io.StringIO(out))}
    assert float(rows["change failure rate"]["value"]) == pytest.approx(0.5)
    assert rows["change failure rate level (DORA 2023)"]["value"] == "low"
    assert rows["deployment frequency level (DORA 2021)"]["value"] == "high"
    assert float(rows["lead time for changes p50"]["value"]) == pytest.approx(50 * 3600)


def test_dora_follows_the_deployment_rules_of_obeya_yaml(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "obeya.yaml"
    config.write_text("rules:\n  deployments:\n    exclude_services: [api]\n", encoding="utf-8")
    monkeypatch.setenv("OBEYA_CONFIG", str(config))
    out = _run(
        "metrics",
        "dora",
        "--window",
        "31d",
        "--as-of",
        "2025-03-31",
        "--format",
        "csv",
        "--database-url",
        database,
    )
    rows = {r["metric"]: r for r in csv.DictReader(io.StringIO(out))}
    assert rows["deployments"]["value"] == "1"  # only W1 of web; every api deployment is excluded


def test_vsm_writes_an_svg_with_the_bottleneck_marked(database: str, tmp_path: Path) -> None:
    svg = tmp_path / "map.svg"
    out = _run(
        "vsm",
        "--stream",
        "Payments",
        "--window",
        "31d",
        "--as-of",
        "2025-03-31",
        "--svg",
        str(svg),
        "--database-url",
        database,
    )
    assert "bottleneck:" in out
    drawing = svg.read_text()
    root = ElementTree.fromstring(drawing)  # well-formed XML, or this raises
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    labels = {"".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")}
    assert {"PT", "LT", "%C&A", "WIP"} <= labels
    assert "data-stage='verification'" in drawing
    assert "▼ bottleneck" in drawing
    assert {"now", "prev"} <= labels  # each figure beside the previous 31 days
    assert any(label.startswith("Previous 31 days (2025-01-29 to 2025-02-28): ") for label in labels)


def test_unknown_stream_lists_the_known_ones(database: str) -> None:
    result = runner.invoke(app, ["metrics", "flow", "--stream", "Payroll", "--database-url", database])
    assert result.exit_code == 2
    assert "no value stream named 'Payroll'; known value streams: 'Payments'" in result.output


def test_two_streams_of_one_name_are_told_apart_by_id(database: str) -> None:
    with connect(database) as store:
        store.upsert_records([ValueStream(source="config", external_id="payments", name="payments")])
    result = runner.invoke(app, ["metrics", "flow", "--stream", "Payments", "--database-url", database])
    assert result.exit_code == 2
    assert "2 value streams are named 'Payments': give one of their ids instead" in result.output
    assert "config:payments" in result.output
    out = _run(
        "metrics", "flow", "--stream", "config:payments", "--format", "json", "--database-url", database
    )
    by_id = json.loads(out)
    assert by_id["title"].startswith("Flow — config:payments — "), by_id["title"]
    completed = next(f for f in by_id["figures"] if f["metric"] == "items completed")
    assert completed["value"] == 0  # the declared stream has no scopes yet, so none of the scenario's items


@pytest.mark.parametrize("command", ["flow", "dora", "cfd"])
def test_a_calendar_window_is_the_same_as_its_days_back_from_its_last_day(
    database: str, command: str
) -> None:
    common = ["metrics", command, "--stream", "Payments", "--format", "json", "--database-url", database]
    by_days = json.loads(_run(*common, "--from", "2025-03-01", "--to", "2025-03-31"))
    by_window = json.loads(_run(*common, "--window", "31d", "--as-of", "2025-03-31"))
    assert by_days == by_window
    if command == "flow":  # March: A, B and D completed (the scenario of tests/engine/test_flow.py)
        figures = {f["metric"]: f["value"] for f in by_days["figures"]}
        assert figures["items completed"] == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2025-03-01"], "--from and --to go together"),
        (["--from", "2025-03-31", "--to", "2025-03-01"], "--from 2025-03-31 is after --to 2025-03-01"),
        (["--from", "2025-03-01", "--to", "2025-03-31", "--window", "30d"], "leave out --window and --as-of"),
        (["--from", "1 March", "--to", "2025-03-31"], "--from '1 March': not a day; use YYYY-MM-DD"),
    ],
)
def test_calendar_window_errors_name_the_options(database: str, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["metrics", "flow", *args, "--database-url", database])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--window", "ninety days", "cannot read window 'ninety days'"),
        ("--by", "quarter", "--by 'quarter': use week or month"),
    ],
)
def test_bad_options_say_what_to_use(database: str, option: str, value: str, message: str) -> None:
    result = runner.invoke(app, ["metrics", "flow", option, value, "--database-url", database])
    assert result.exit_code == 2
    assert message in result.output


def test_cfd_by_must_be_state_or_stage(database: str) -> None:
    result = runner.invoke(app, ["metrics", "cfd", "--by", "week", "--database-url", database])
    assert result.exit_code == 2
    assert "--by 'week': use state or stage" in result.output
