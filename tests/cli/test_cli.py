"""The `obeya` command: discoverable help, clear errors, and a server that really serves."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from obeya.cli import app
from obeya.store import LATEST_VERSION

runner = CliRunner()


def _command_paths(group: typer.Typer, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [(*prefix, str(c.name)) for c in group.registered_commands]
    for sub in group.registered_groups:
        assert sub.typer_instance is not None
        paths += _command_paths(sub.typer_instance, (*prefix, str(sub.name)))
    return paths


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for path in _command_paths(app):
        assert path[0] in result.output


@pytest.mark.parametrize("path", _command_paths(app), ids=" ".join)
def test_every_command_has_help_with_examples(path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Examples" in result.output
    assert f"obeya {' '.join(path)}" in result.output


def test_db_upgrade_then_status(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path}/cli.duckdb"
    upgraded = runner.invoke(app, ["db", "upgrade", "--database-url", url])
    assert upgraded.exit_code == 0
    assert f"schema version {LATEST_VERSION}" in upgraded.output
    status = runner.invoke(app, ["db", "status", "--database-url", url])
    assert f"schema version: {LATEST_VERSION} (this Obeya: {LATEST_VERSION})" in status.output
    assert "work_items" in status.output


def test_bad_database_url_is_one_clear_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "obeya", "db", "status", "--database-url", "sqlite:///x.db"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "obeya: unsupported database URL 'sqlite:///x.db': use duckdb:///PATH (embedded) or "
        "postgresql://... (server)"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_answers_over_http(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "OBEYA_DATABASE_URL": f"duckdb:///{tmp_path}/serve.duckdb"}
    server = subprocess.Popen(
        [sys.executable, "-m", "obeya", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1)
                break
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        server.stdout.read().decode() if server.stdout else "no output"
                    ) from None
                time.sleep(0.2)
        assert response.json()["status"] == "ok"
        assert "Value streams" in httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text
    finally:
        server.terminate()
        server.wait(timeout=10)
