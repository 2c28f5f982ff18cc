"""Bench of replay: normalization throughput from stored GitHub raw answers.

    .venv/bin/python bench/replay.py --events 200000

Builds `--events` synthetic GitHub raw events shaped like the recordings (pull requests with their
commits, reviews and review comments, accounts, git authors, commits, issues and issue events, workflow
runs and jobs, deployments with statuses, releases), keyed as the collector keys them, directly in a
fresh DuckDB store in a temporary folder under /tmp, removed at the end (one Arrow batch, no HTTP). Then times
`obeya.connectors.sync.replay(store, connection)` and prints raw events/s and records written/s.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa

from obeya.connectors.sync import replay
from obeya.store import Store, connect

CONNECTION = "bench"
Item = dict[str, Any]
BASE = datetime(2024, 5, 1, tzinfo=UTC)


def _t(minutes: int) -> str:
    return (BASE - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _user(uid: int) -> Item:
    return {"login": f"dev{uid}", "id": 1000 + uid, "type": "Bot" if uid % 17 == 0 else "User"}


def unit(index: int) -> Iterator[tuple[str, str, Item]]:
    """(event type, key, item) of one slice of a repository: ~40 raw events of every type."""
    repo = f"bench-org/repo-{index % 500:04d}"
    uid = index % 300
    number = index
    sha = f"{index:040x}"
    head = {"ref": f"feature-{index}", "sha": sha}
    pull = {
        "number": number,
        "state": "closed",
        "title": f"change {number}",
        "user": _user(uid),
        "head": head,
        "base": {"ref": "main", "sha": f"{index + 1:040x}"},
        "created_at": _t(900),
        "updated_at": _t(100),
        "closed_at": _t(100),
        "merged_at": _t(100),
        "merge_commit_sha": sha,
        "merged_by": _user(uid + 1),
        "additions": 10,
        "deletions": 2,
        "body": "x" * 200,
    }
    yield "pull_request", f"{repo}/{number}", pull
    yield "user", str(1000 + uid), _user(uid)
    yield "user", str(1001 + uid), _user(uid + 1)
    for c in range(3):
        commit_sha = f"{index:024x}{c:016x}"
        author = {"name": f"Dev {uid}", "email": f"Dev{uid}@example.com", "date": _t(800 - c)}
        commit = {
            "sha": commit_sha,
            "commit": {"message": f"commit {c}\n\nbody", "author": author, "committer": author},
            "author": _user(uid) if c else None,
            "committer": _user(uid),
            "parents": [{"sha": f"{index:024x}{c + 1:016x}"}],
            "stats": {"additions": 3, "deletions": 1},
        }
        yield "pull_request_commit", f"{repo}/{number}/{commit_sha}", commit
        yield "commit", f"{repo}/{commit_sha}", commit
        if not c:
            yield "git_author", author["email"].lower(), {"name": author["name"], "email": author["email"]}
    for r, state in enumerate(("COMMENTED", "CHANGES_REQUESTED", "APPROVED", "PENDING")):
        review = {"id": index * 10 + r, "user": _user(uid + 2), "state": state, "submitted_at": _t(300 - r)}
        if state == "PENDING":
            del review["submitted_at"]
        yield "review", f"{repo}/{number}/{review['id']}", review
    for c in range(2):
        comment = {
            "id": index * 10 + c,
            "user": _user(uid + 3),
            "body": "please rename",
            "path": "pool.go",
            "created_at": _t(250),
        }
        yield "review_comment", f"{repo}/{number}/{comment['id']}", comment
    issue = {
        "number": 1_000_000 + index,
        "state": "closed",
        "state_reason": "not_planned" if index % 5 == 0 else "completed",
        "title": f"issue {index}",
        "user": _user(uid),
        "assignee": _user(uid + 4),
        "labels": [{"name": "bug"}, {"name": "p2"}],
        "created_at": _t(1000),
        "updated_at": _t(90),
        "closed_at": _t(90),
    }
    yield "issue", f"{repo}/{issue['number']}", issue
    for e, kind in enumerate(("labeled", "closed", "reopened", "closed")):
        event = {"id": index * 10 + e, "event": kind, "actor": _user(uid), "created_at": _t(95 - e)}
        yield "issue_event", f"{repo}/{issue['number']}/{event['id']}", event
    for r in range(2):
        run_id = index * 10 + r
        run = {
            "id": run_id,
            "name": "CI",
            "path": ".github/workflows/ci.yml",
            "workflow_id": 7,
            "head_sha": sha,
            "head_branch": head["ref"],
            "event": "pull_request",
            "status": "completed",
            "conclusion": ("success", "failure")[r],
            "run_attempt": 1,
            "created_at": _t(500 + r),
            "run_started_at": _t(500 + r),
            "updated_at": _t(480 + r),
            "html_url": f"https://github.com/{repo}/actions/runs/{run_id}",
            "pull_requests": [{"number": number}],
            "actor": _user(uid),
            "triggering_actor": _user(uid),
        }
        yield "workflow_run", f"{repo}/{run_id}", run
        for j in range(3):
            job = {
                "id": run_id * 10 + j,
                "run_id": run_id,
                "name": f"test ({j})",
                "status": "completed",
                "conclusion": "success",
                "run_attempt": 1,
                "started_at": _t(499),
                "completed_at": _t(490),
            }
            yield "workflow_job", f"{repo}/{job['id']}", job
    deployment_id = index
    yield (
        "deployment",
        f"{repo}/{deployment_id}",
        {
            "id": deployment_id,
            "sha": sha,
            "ref": "main",
            "environment": ("production", "staging", "github-pages")[index % 3],
            "created_at": _t(400),
            "creator": _user(uid),
        },
    )
    for s, state in enumerate(("in_progress", "success", "inactive")):
        status = {"id": deployment_id * 10 + s, "state": state, "created_at": _t(399 - s), "log_url": ""}
        yield "deployment_status", f"{repo}/{deployment_id}/{status['id']}", status
    if index % 4 == 0:
        release = {
            "id": index,
            "name": f"v{index}",
            "tag_name": f"v{index}",
            "draft": False,
            "published_at": _t(300),
            "created_at": _t(300),
            "body": "notes",
            "author": _user(uid),
        }
        yield "release", f"{repo}/{index}", release


def raw_events(count: int) -> pa.Table:
    """`count` raw events (the last slice cut short) as one Arrow batch of the ``raw_events`` table."""
    columns: dict[str, list[Any]] = {
        k: []
        for k in ("id", "source", "external_id", "event_type", "connection", "received_at", "payload_hash")
    }
    payloads: list[str] = []
    received = BASE.replace(tzinfo=None)
    seen: set[str] = set()
    index = 0
    while len(payloads) < count:
        for event_type, key, item in unit(index):
            external_id = f"{event_type}:{key}"
            if external_id in seen or len(payloads) >= count:
                continue
            seen.add(external_id)
            payload = orjson.dumps(item, option=orjson.OPT_SORT_KEYS).decode()
            columns["id"].append(f"github:{external_id}")
            columns["source"].append("github")
            columns["external_id"].append(external_id)
            columns["event_type"].append(event_type)
            columns["connection"].append(CONNECTION)
            columns["received_at"].append(received)
            columns["payload_hash"].append(hashlib.sha256(payload.encode()).hexdigest())
            payloads.append(payload)
        index += 1
    nulls = pa.nulls(len(payloads), pa.string())
    return pa.table({**columns, "raw_event_id": nulls, "delivery_id": nulls, "payload": payloads})


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the replay")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="obeya-bench-replay-") as folder:  # removed, store and all
        store = connect(f"duckdb:///{folder}/obeya.duckdb")
        try:
            _run(store, args.events, args.profile)
        finally:
            store.close()


def _run(store: Store, events: int, profile: bool) -> None:
    """Store `events` synthetic raw events in `store`, replay them, print the figures."""
    store.migrate()
    began = time.perf_counter()
    batch = raw_events(events)
    store.upsert("raw_event", batch)
    built = time.perf_counter() - began
    print(f"raw events stored     {batch.num_rows} ({built:.1f} s to build and store)")

    began = time.perf_counter()
    if profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        report = profiler.runcall(replay, store, CONNECTION)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    else:
        report = replay(store, CONNECTION)
    wall = time.perf_counter() - began
    raw = sum(r.raw_events for r in report.resources.values())
    print(f"replay wall time      {wall:.2f} s")
    print(f"raw events replayed   {raw} ({raw / wall:,.0f} events/s)")
    print(f"records written       {report.normalized} ({report.normalized / wall:,.0f} records/s)")
    print(f"skipped               {dict(report.skipped)}")


if __name__ == "__main__":
    main()
