"""`obeya sync` and `obeya replay` from obeya.yaml, against the recorded GitHub server."""

from __future__ import annotations

from pathlib import Path

import pytest
from github_server import ANTS, FakeGitHub
from typer.testing import CliRunner

from obeya.cli import app
from obeya.connectors.config import GitHubConnectionConfig
from obeya.store import connect

runner = CliRunner()


@pytest.fixture
def configured(tmp_path: Path, connection: GitHubConnectionConfig, monkeypatch: pytest.MonkeyPatch) -> str:
    config = tmp_path / "obeya.yaml"
    config.write_text(
        f"connections:\n  - name: gh\n    tool: github\n    base_url: {connection.base_url}\n"
        f"    repositories: [{ANTS}]\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("OBEYA_CONFIG", str(config))
    return f"duckdb:///{tmp_path}/sync.duckdb"


def test_sync_prints_what_it_fetched_and_stores_it(configured: str, github: FakeGitHub) -> None:
    result = runner.invoke(app, ["sync", "--database-url", configured], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "synced gh" in result.output
    assert f"{ANTS}/pull_requests" in result.output
    with connect(configured) as store:
        changes = store.count("change")
        raw = store.count("raw_event")
    assert changes > 0 and raw > changes

    again = runner.invoke(app, ["sync", "gh", "--database-url", configured], terminal_width=200)
    assert again.exit_code == 0, again.output
    with connect(configured) as store:
        assert store.count("change") == changes  # nothing duplicated


def test_replay_rebuilds_records_from_raw_answers(configured: str, github: FakeGitHub) -> None:
    assert runner.invoke(app, ["sync", "--database-url", configured]).exit_code == 0
    with connect(configured) as store:
        before = store.query("SELECT id, title, state FROM changes ORDER BY id")
        store.execute("DELETE FROM changes")
    github.stop()  # replay must not call the API
    result = runner.invoke(app, ["replay", "gh", "--database-url", configured], terminal_width=200)
    assert result.exit_code == 0, result.output
    with connect(configured) as store:
        assert store.query("SELECT id, title, state FROM changes ORDER BY id") == before


def test_unknown_connection_is_named(configured: str) -> None:
    result = runner.invoke(app, ["sync", "gitlab", "--database-url", configured])
    assert result.exit_code == 2
    assert "no connection named 'gitlab' in the configuration; known: gh" in result.output


def test_no_connections_says_where_to_declare_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OBEYA_CONFIG", raising=False)
    result = runner.invoke(app, ["sync", "--database-url", f"duckdb:///{tmp_path}/x.duckdb"])
    assert result.exit_code == 2
    assert "declare them under `connections:` in obeya.yaml" in result.output


def test_bad_connection_config_names_line_and_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "obeya.yaml"
    config.write_text("connections:\n  - name: gh\n    tool: github\n    repos: [a/b]\n", encoding="utf-8")
    monkeypatch.setenv("OBEYA_CONFIG", str(config))
    result = runner.invoke(app, ["sync", "--database-url", f"duckdb:///{tmp_path}/x.duckdb"])
    assert result.exit_code != 0
    assert f"{config}:4: connections[0].repos: unknown key" in str(result.exception or result.output)
