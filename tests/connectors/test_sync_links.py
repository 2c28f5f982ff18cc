"""`obeya sync` ends with the trace links of what it brought derived, and says so in its summary."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
from github_server import ANTS, FakeGitHub
from typer.testing import CliRunner

from obeya.cli import app
from obeya.connectors.config import GitHubConnectionConfig
from obeya.connectors.schedule import ScheduleConfig, SyncScheduler
from obeya.linking import update_links
from obeya.store import Store, connect

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


def _linked(output: str) -> tuple[int, int, int]:
    found = re.search(r"linked: ([\d,]+) added, ([\d,]+) changed, ([\d,]+) removed", output)
    assert found, output
    added, changed, removed = (int(g.replace(",", "")) for g in found.groups())
    return added, changed, removed


def test_sync_derives_the_links_of_what_it_stored(configured: str, github: FakeGitHub) -> None:
    result = runner.invoke(app, ["sync", "--database-url", configured], terminal_width=200)
    assert result.exit_code == 0, result.output
    added, changed, removed = _linked(result.output)
    with connect(configured) as store:
        derived = store.query("SELECT count(*) FROM trace_links WHERE source = 'obeya'")[0][0]
        shipped = store.query("SELECT count(*) FROM deployment_changes WHERE source = 'obeya'")[0][0]
        contains = store.query("SELECT count(*) FROM trace_links WHERE link_kind = 'contains'")[0][0]
    assert contains > 0  # the pull requests' commits
    assert (added, changed, removed) == (derived + shipped, 0, 0)

    # nothing new in the tool: nothing to link again
    again = runner.invoke(app, ["sync", "--database-url", configured], terminal_width=200)
    assert again.exit_code == 0, again.output
    assert "linked: nothing to do" in again.output or _linked(again.output) == (0, 0, 0)

    # a change of the links' own: `obeya link` (incremental) finds nothing, --full rewrites nothing
    link = runner.invoke(app, ["link", "--database-url", configured], terminal_width=200)
    assert link.exit_code == 0, link.output
    assert "linked: nothing to do" in link.output
    full = runner.invoke(app, ["link", "--full", "--database-url", configured], terminal_width=200)
    assert full.exit_code == 0, full.output
    assert _linked(full.output) == (0, 0, 0)


def test_a_scheduled_sync_derives_the_links_after_it(
    store: Store, connection: GitHubConnectionConfig
) -> None:
    ants = connection.model_copy(update={"repositories": [ANTS]})
    scheduler = SyncScheduler(store, ScheduleConfig(interval=timedelta(minutes=10)), [ants])
    scheduler.start()
    try:
        deadline = time.monotonic() + 60
        while not scheduler.runs() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        assert scheduler.stop(timeout=30)
    (run,) = scheduler.runs()
    assert run.status == "ok", run.error
    derived = store.query("SELECT count(*) FROM trace_links WHERE source = 'obeya'")[0][0]
    shipped = store.query("SELECT count(*) FROM deployment_changes WHERE source = 'obeya'")[0][0]
    assert derived > 0
    assert run.linked is not None and _linked(run.linked) == (derived + shipped, 0, 0)
    assert update_links(store).mode == "unchanged"
