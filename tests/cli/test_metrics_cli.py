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
    velocity = {r["period"][:10]: float(r["value"]) for r in rows if r["metric"] == "flow velocity"}
    assert velocity == {"2025-03-03": 1.0, "2025-03-10": 2.0}  # A on 7 Mar; B 12 Mar and G 15 Mar


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


def test_unknown_stream_lists_the_known_ones(database: str) -> None:
    result = runner.invoke(app, ["metrics", "flow", "--stream", "Payroll", "--database-url", database])
    assert result.exit_code == 2
    assert "no value stream named 'Payroll'; known value streams: 'Payments'" in result.output


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
