"""`obeya vsm` prints the map of tests/engine/test_stages.py (figures worked out there) beside the previous
window, sliced by team, service and type, for a window of calendar days, readable at 80 and 120 columns."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from obeya.cli import app
from obeya.model import Team
from obeya.store import connect
from tests.engine import test_stages

runner = CliRunner()
DAY = 86400.0
SECOND_WEEK = ["--from", "2025-03-09", "--to", "2025-03-16"]  # against 1–8 March


@pytest.fixture
def database(tmp_path: Path) -> str:
    url = f"duckdb:///{tmp_path}/vsm.duckdb"
    with connect(url) as store:
        store.migrate()
        store.upsert_records(test_stages._scenario())
    return url


def _run(*args: str, columns: int = 120) -> str:
    result = runner.invoke(app, list(args), env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result.output


def _fails(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 2, result.output
    return " ".join(result.output.split())


@pytest.mark.parametrize("columns", [80, 120])
def test_table_is_whole_at_80_and_120_columns(database: str, columns: int) -> None:
    out = _run("vsm", "--stream", "Payments", *SECOND_WEEK, "--database-url", database, columns=columns)
    assert "…" not in out  # rich marks a cut cell with an ellipsis
    assert max(len(line) for line in out.splitlines()) <= columns
    for header in ("LT p50", "LT p85", "PT p50", "wait", "before", "%C&A", "out/wk"):
        assert header in out
    for header in ("Δ LT", "Δ %C&A", "Δ out", "items", "waiting", "age p50", "age p85", "oldest", "WIP L"):
        assert header in out
    assert "Previous window, 2025-03-01 to 2025-03-08" in out
    # verification: LT p50 4 d (A 6, B 2) now; 2 d before (B), so +2 d
    assert re.search(r"^verification +4\.0 d ", out, re.M)
    assert re.search(r"^verification +2\.0 d +\+2\.0 d ", out, re.M)
    # still in ideation: C, 16 days old on 16 March (items 1, waiting 0, age p50, p85, oldest)
    assert re.search(r"^ideation +1 +0 +16\.0 d +16\.0 d +16\.0 d ", out, re.M)
    assert "total lead time: 8.0 d (previous 6.0 d, change +2.0 d)" in out


def test_json_carries_the_previous_window_and_the_change(database: str) -> None:
    out = _run("vsm", "--stream", "Payments", *SECOND_WEEK, "--format", "json", "--database-url", database)
    body = json.loads(out)
    now = {s["stage"]: s for s in body["stages"]}
    before = {s["stage"]: s for s in body["previous"]["stages"]}
    change = {s["stage"]: s for s in body["change"]["stages"]}
    assert body["window"] == {"start": "2025-03-09T00:00:00", "end": "2025-03-17T00:00:00"}
    assert body["previous"]["window"] == {"start": "2025-03-01T00:00:00", "end": "2025-03-09T00:00:00"}
    assert now["verification"]["lead_time"]["p50"] == pytest.approx(4 * DAY)
    assert before["verification"]["lead_time"]["p50"] == pytest.approx(2 * DAY)
    assert change["verification"]["lead_time_p50"] == pytest.approx(2 * DAY)
    assert change["integration"]["complete_and_accurate"] == pytest.approx(0.5)
    assert now["ideation"]["in_stage_now"] == 1 and now["ideation"]["oldest_in_stage"] == pytest.approx(
        16 * DAY
    )
    assert body["change"]["total_lead_time"] == pytest.approx(2 * DAY)


def test_csv_has_previous_and_change_columns(database: str) -> None:
    out = _run("vsm", "--stream", "Payments", *SECOND_WEEK, "--format", "csv", "--database-url", database)
    rows = {r["stage"]: r for r in csv.DictReader(io.StringIO(out))}
    assert float(rows["verification"]["lead_time_p50"]) == pytest.approx(4 * DAY)
    assert float(rows["verification"]["previous_lead_time_p50"]) == pytest.approx(2 * DAY)
    assert float(rows["verification"]["change_lead_time_p50"]) == pytest.approx(2 * DAY)
    assert rows["delivery"]["previous_lead_time_p50"] == "" and rows["delivery"]["change_lead_time_p50"] == ""
    assert float(rows["ideation"]["age_in_stage_p50"]) == pytest.approx(16 * DAY)
    assert float(rows["ideation"]["oldest_in_stage"]) == pytest.approx(16 * DAY)


def test_calendar_days_give_the_same_map_as_window_and_as_of(database: str) -> None:
    by_days = _run(
        "vsm",
        "--stream",
        "Payments",
        "--from",
        "2025-03-01",
        "--to",
        "2025-03-31",
        "--format",
        "json",
        "--database-url",
        database,
    )
    by_window = _run(
        "vsm",
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
    assert by_days == by_window
    assert json.loads(by_days)["window"]["start"] == "2025-03-01T00:00:00"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2025-03-31", "--to", "2025-03-01"], "--from 2025-03-31 is after --to 2025-03-01"),
        (["--from", "2025-03-01"], "--from and --to go together"),
        (["--to", "2025-03-31"], "--from and --to go together"),
        (["--window", "31d", "--from", "2025-03-01", "--to", "2025-03-31"], "leave out --window and --as-of"),
        (["--as-of", "2025-03-31", "--from", "2025-03-01", "--to", "2025-03-31"], "leave out --window"),
        (["--from", "1 March", "--to", "2025-03-31"], "--from '1 March': not a day; use YYYY-MM-DD"),
        (["--window", "a month"], "--window/--as-of: cannot read window 'a month'"),
    ],
)
def test_bad_window_options_say_what_to_use(database: str, args: list[str], message: str) -> None:
    assert message in _fails("vsm", "--stream", "Payments", *args, "--database-url", database)


@pytest.fixture
def sliced(tmp_path: Path) -> str:
    url = f"duckdb:///{tmp_path}/sliced.duckdb"
    with connect(url) as store:
        store.migrate()
        store.upsert_records(test_stages._sliced())
        store.upsert_records([Team(source="test", external_id=t, name=t.title()) for t in ("core", "web")])
    return url


@pytest.mark.parametrize(
    ("option", "value", "integration", "delivery"),
    [
        ("--team", "core", 5, 2),
        ("--team", "Web", 4, 1),
        ("--type", "feature", 6, 1),
        ("--type", "defect", 2, 3),
        ("--service", "api", 3, 2),
        ("--service", "web", 8, 1),
    ],
)
def test_map_by_team_type_and_service(
    sliced: str, option: str, value: str, integration: float, delivery: float
) -> None:
    """The slices of tests/engine/test_stages.py `_sliced` (figures worked out there)."""
    out = _run(
        "vsm",
        "--stream",
        "Payments",
        "--from",
        "2025-03-01",
        "--to",
        "2025-03-31",
        option,
        value,
        "--format",
        "csv",
        "--database-url",
        sliced,
    )
    rows = {r["stage"]: r for r in csv.DictReader(io.StringIO(out))}
    assert float(rows["integration"]["lead_time_p50"]) == pytest.approx(integration * DAY)
    assert float(rows["delivery"]["lead_time_p50"]) == pytest.approx(delivery * DAY)


def test_unknown_team_lists_the_known_ones(sliced: str) -> None:
    assert "'Core', 'Web'" in _fails("vsm", "--team", "ops", "--database-url", sliced)
