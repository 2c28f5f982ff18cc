"""`obeya insights` and `obeya maturity` on an empty store: every format runs, and --help has Examples."""

from __future__ import annotations

from pathlib import Path

import orjson
import typer
from typer.testing import CliRunner

from obeya.cli.insights import insights, maturity

app = typer.Typer()
app.command("insights")(insights)
app.command("maturity")(maturity)


def test_commands_run_in_every_format(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path}/obeya.duckdb"
    runner = CliRunner()
    for command in ("insights", "maturity"):
        for fmt in ("table", "json", "csv"):
            result = runner.invoke(
                app, [command, "--as-of", "2025-06-30", "--format", fmt, "--database-url", url]
            )
            assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["insights", "--as-of", "2025-06-30", "--format", "json", "--database-url", url]
    )
    report = orjson.loads(result.output)
    assert report["bottlenecks"] == [] and report["recommendations"] == []
    assert all(w["figure"] is None and w["severity"] == "no data" for w in report["waste"])
    assert "Examples:" in (insights.__doc__ or "") and "Examples:" in (maturity.__doc__ or "")
