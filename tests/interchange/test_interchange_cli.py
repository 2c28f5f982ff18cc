"""`obeya import` and `obeya export`: exit codes, what they print, files and standard output."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import typer
from interchange_samples import SAMPLE, dump_lines
from typer.testing import CliRunner

from obeya.cli.interchange import export_command, import_command

app = typer.Typer()
app.command("import")(import_command)
app.command("export")(export_command)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"duckdb:///{tmp_path}/cli.duckdb"


def test_import_then_export(tmp_path: Path, url: str) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(dump_lines(SAMPLE)) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["import", str(source), "--database-url", url, "--no-raw"])
    assert result.exit_code == 0, result.output
    assert "work_item" in result.stdout and f"{len(SAMPLE)} records" in result.stdout

    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, ["export", str(out), "--database-url", url])
    assert result.exit_code == 0, result.output
    assert len(out.read_text(encoding="utf-8").splitlines()) == len(SAMPLE)

    result = CliRunner().invoke(app, ["export", "--kinds", "team,value_stream", "--database-url", url])
    assert result.exit_code == 0, result.output
    assert [orjson.loads(line)["kind"] for line in result.stdout.splitlines()] == ["value_stream", "team"]


def test_rejected_import_prints_the_errors_and_exits_1(tmp_path: Path, url: str) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_text(dump_lines([SAMPLE[2]])[0] + '\n{"kind": "team"}\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["import", str(source), "--database-url", url])
    assert result.exit_code == 1
    assert "missing required field 'source'" in result.stderr
    assert "nothing was written" in result.stderr
    result = CliRunner().invoke(app, ["export", "--database-url", url])
    assert result.stdout == ""


def test_unknown_kind_to_export(url: str) -> None:
    result = CliRunner().invoke(app, ["export", "--kinds", "work_items", "--database-url", url])
    assert result.exit_code == 2
    assert "unknown kind(s) work_items" in result.stderr
