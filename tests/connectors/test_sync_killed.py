"""A sync whose process is killed halfway through resumes from its cursors on the next run, with no
record missing or duplicated: the stored result equals that of a sync that was never interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from github_server import ANTS, TOKEN, FakeGitHub

from obeya.model import TABLES
from obeya.store import connect

ROOT = Path(__file__).resolve().parents[2]


def _sync(url: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "obeya", "sync", "gh", "--database-url", url],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _contents(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every normalized table's rows (raw events by id and payload: their receipt time differs)."""
    with connect(url) as store:
        found = {}
        for spec in TABLES.values():
            if spec.kind in ("sync_cursor",):
                continue
            columns = "id, payload_hash" if spec.kind == "raw_event" else "*"
            found[spec.kind] = store.query(f'SELECT {columns} FROM "{spec.name}" ORDER BY id')
        return found


def test_a_sync_killed_halfway_resumes_with_nothing_missing_or_twice(
    tmp_path: Path, github: FakeGitHub
) -> None:
    config = tmp_path / "obeya.yaml"
    config.write_text(
        f"connections:\n  - name: gh\n    tool: github\n    base_url: {github.base_url}\n"
        f"    repositories: [{ANTS}]\n",
        encoding="utf-8",
    )
    env = {**os.environ, "OBEYA_CONFIG": str(config), "GITHUB_TOKEN": TOKEN}
    killed = f"duckdb:///{tmp_path}/killed.duckdb"
    github.fail("/repos/", status=200, times=1_000_000, delay=0.02)  # slow answers, same data

    process = _sync(killed, env)
    deadline = time.monotonic() + 60
    while len(github.requests) < 100 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process.poll() is None, "the sync ended before it could be killed halfway"
    os.kill(process.pid, signal.SIGKILL)  # no clean-up, no rollback: the process just stops
    process.wait()
    served_before_kill = len(github.requests)
    assert 100 <= served_before_kill < 261  # a whole sync of the repository makes 261 requests

    resumed = _sync(killed, env)
    assert resumed.wait(timeout=120) == 0, resumed.stderr.read().decode() if resumed.stderr else ""
    # The resumed run started from the cursors, not from scratch.
    assert len(github.requests) - served_before_kill < 261

    github.faults.clear()
    clean = f"duckdb:///{tmp_path}/clean.duckdb"
    whole = _sync(clean, env)
    assert whole.wait(timeout=120) == 0

    resumed_rows, clean_rows = _contents(killed), _contents(clean)
    assert resumed_rows["change"] and resumed_rows["review"] and resumed_rows["commit"]
    for kind, rows in clean_rows.items():
        assert resumed_rows[kind] == rows, kind
        ids = [row[0] for row in resumed_rows[kind]]
        assert len(ids) == len(set(ids)), f"{kind} stored twice"
