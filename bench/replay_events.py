"""The raw events `replay.py` replays: per tool, slices of synthetic answers shaped like the recordings.

A part of `bench/replay.py`, not a benchmark of its own. Each tool's ``*_unit(index)`` yields the
(event type, key, item) of one slice of a repository, project or board, keyed as that tool's collector
keys them (`obeya.connectors.{github,gitlab,jira}.collector`), its items trimmed to the fields of the
recorded answers (/work/shared/fixtures/api-recordings/{github,gitlab,jira}) the normalizer reads, plus
some it does not (bodies, URLs), as a real answer carries them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa

CONNECTION = "bench"
Item = dict[str, Any]
Answer = Item | list[Item]  # an answer item, or a list stored whole (GitLab's issue state events)
Unit = Callable[[int], Iterator[tuple[str, str, Answer]]]
BASE = datetime(2024, 5, 1, tzinfo=UTC)


def _t(minutes: int) -> str:
    return (BASE - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _github_user(uid: int) -> Item:
    return {"login": f"dev{uid}", "id": 1000 + uid, "type": "Bot" if uid % 17 == 0 else "User"}


def github_unit(index: int) -> Iterator[tuple[str, str, Item]]:
    """(event type, key, item) of one slice of a GitHub repository: ~40 raw events of every type."""
    repo = f"bench-org/repo-{index % 500:04d}"
    uid = index % 300
    number = index
    sha = f"{index:040x}"
    head = {"ref": f"feature-{index}", "sha": sha}
    pull = {
        "number": number,
        "state": "closed",
        "title": f"change {number}",
        "user": _github_user(uid),
        "head": head,
        "base": {"ref": "main", "sha": f"{index + 1:040x}"},
        "created_at": _t(900),
        "updated_at": _t(100),
        "closed_at": _t(100),
        "merged_at": _t(100),
        "merge_commit_sha": sha,
        "merged_by": _github_user(uid + 1),
        "additions": 10,
        "deletions": 2,
        "body": "x" * 200,
    }
    yield "pull_request", f"{repo}/{number}", pull
    yield "user", str(1000 + uid), _github_user(uid)
    yield "user", str(1001 + uid), _github_user(uid + 1)
    for c in range(3):
        commit_sha = f"{index:024x}{c:016x}"
        author = {"name": f"Dev {uid}", "email": f"Dev{uid}@example.com", "date": _t(800 - c)}
        commit = {
            "sha": commit_sha,
            "commit": {"message": f"commit {c}\n\nbody", "author": author, "committer": author},
            "author": _github_user(uid) if c else None,
            "committer": _github_user(uid),
            "parents": [{"sha": f"{index:024x}{c + 1:016x}"}],
            "stats": {"additions": 3, "deletions": 1},
        }
        yield "pull_request_commit", f"{repo}/{number}/{commit_sha}", commit
        yield "commit", f"{repo}/{commit_sha}", commit
        if not c:
            yield "git_author", author["email"].lower(), {"name": author["name"], "email": author["email"]}
    for r, state in enumerate(("COMMENTED", "CHANGES_REQUESTED", "APPROVED", "PENDING")):
        review = {
            "id": index * 10 + r,
            "user": _github_user(uid + 2),
            "state": state,
            "submitted_at": _t(300 - r),
        }
        if state == "PENDING":
            del review["submitted_at"]
        yield "review", f"{repo}/{number}/{review['id']}", review
    for c in range(2):
        comment = {
            "id": index * 10 + c,
            "user": _github_user(uid + 3),
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
        "user": _github_user(uid),
        "assignee": _github_user(uid + 4),
        "labels": [{"name": "bug"}, {"name": "p2"}],
        "created_at": _t(1000),
        "updated_at": _t(90),
        "closed_at": _t(90),
    }
    yield "issue", f"{repo}/{issue['number']}", issue
    for e, kind in enumerate(("labeled", "closed", "reopened", "closed")):
        event = {"id": index * 10 + e, "event": kind, "actor": _github_user(uid), "created_at": _t(95 - e)}
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
            "actor": _github_user(uid),
            "triggering_actor": _github_user(uid),
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
            "creator": _github_user(uid),
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
            "author": _github_user(uid),
        }
        yield "release", f"{repo}/{index}", release


# --- GitLab ---------------------------------------------------------------------------------------------


def _gl_t(minutes: int) -> str:
    """GitLab's REST times: ``2024-05-01T10:00:00.000Z``."""
    return (BASE - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _gitlab_user(uid: int) -> Item:
    return {
        "id": 2_000_000 + uid,
        "username": f"dev{uid}",
        "name": f"Dev {uid}",
        "state": "active",
        "avatar_url": f"https://gitlab.example/uploads/avatar/{uid}.png",
        "web_url": f"https://gitlab.example/dev{uid}",
    }


def gitlab_unit(index: int) -> Iterator[tuple[str, str, Answer]]:
    """(event type, key, item) of one slice of a GitLab project: ~35 raw events of every type."""
    project = f"bench-group/project-{index % 500:04d}"
    uid = index % 300
    iid = index
    sha = f"{index:040x}"
    author, merger = _gitlab_user(uid), _gitlab_user(uid + 1)
    merge_request = {
        "id": 30_000_000 + index,
        "iid": iid,
        "project_id": 1000 + index % 500,
        "title": f"change {iid}",
        "description": "x" * 200,
        "state": "merged",
        "created_at": _gl_t(900),
        "updated_at": _gl_t(100),
        "merged_at": _gl_t(100),
        "closed_at": None,
        "source_branch": f"feature-{index}",
        "target_branch": "main",
        "author": author,
        "merge_user": merger,
        "merged_by": merger,
        "assignees": [],
        "reviewers": [],
        "labels": [],
        "sha": sha,
        "merge_commit_sha": f"{index + 1:040x}",
        "squash_commit_sha": None,
        "squash": False,
        "web_url": f"https://gitlab.example/{project}/-/merge_requests/{iid}",
    }
    yield "merge_request", f"{project}!{iid}", merge_request
    yield "user", str(author["id"]), author
    yield "user", str(merger["id"]), merger
    for c in range(3):
        commit_sha = f"{index:024x}{c:016x}"
        commit = {
            "id": commit_sha,
            "short_id": commit_sha[:8],
            "title": f"commit {c}",
            "message": f"commit {c}\n\nbody",
            "author_name": f"Dev {uid}",
            "author_email": f"Dev{uid}@example.com",
            "authored_date": _gl_t(800 - c),
            "committer_name": f"Dev {uid}",
            "committer_email": f"Dev{uid}@example.com",
            "committed_date": _gl_t(800 - c),
            "created_at": _gl_t(800 - c),
            "parent_ids": [f"{index:024x}{c + 1:016x}"],
            "web_url": f"https://gitlab.example/{project}/-/commit/{commit_sha}",
        }
        yield "merge_request_commit", f"{project}!{iid}@{commit_sha}", commit
        yield "commit", f"{project}@{commit_sha}", commit
        if not c:
            email = commit["author_email"].lower()
            yield "git_author", email, {"name": commit["author_name"], "email": commit["author_email"]}
    reviewer = _gitlab_user(uid + 2)
    for n, (body, system) in enumerate((("please rename", False), ("approved this merge request", True))):
        note = {
            "id": index * 10 + n,
            "body": body,
            "system": system,
            "author": reviewer,
            "created_at": _gl_t(300 - n),
            "updated_at": _gl_t(300 - n),
            "noteable_id": merge_request["id"],
            "noteable_iid": iid,
            "noteable_type": "MergeRequest",
            "resolvable": not system,
        }
        yield "merge_request_note", f"{project}!{iid}/notes/{note['id']}", note
    yield "user", str(reviewer["id"]), reviewer
    approver = _gitlab_user(uid + 3)
    approvals = {
        "id": merge_request["id"],
        "iid": iid,
        "approved": True,
        "updated_at": _gl_t(200),
        "approved_by": [{"user": reviewer}, {"user": approver, "approved_at": _gl_t(210)}],
    }
    yield "merge_request_approvals", f"{project}!{iid}", approvals
    yield "user", str(approver["id"]), approver
    issue_iid = 1_000_000 + index
    issue = {
        "id": 40_000_000 + index,
        "iid": issue_iid,
        "title": f"issue {index}",
        "description": "x" * 100,
        "state": "closed",
        "issue_type": "issue",
        "labels": ["bug", "p2"],
        "author": author,
        "assignee": reviewer,
        "assignees": [reviewer],
        "closed_by": author,
        "created_at": _gl_t(1000),
        "updated_at": _gl_t(90),
        "closed_at": _gl_t(90),
        "web_url": f"https://gitlab.example/{project}/-/issues/{issue_iid}",
    }
    yield "issue", f"{project}#{issue_iid}", issue
    states = [
        {"id": index * 10 + e, "user": author, "created_at": _gl_t(95 - e), "state": state}
        for e, state in enumerate(("closed", "reopened", "closed"))
    ]
    yield "issue_state_events", f"{project}#{issue_iid}", states
    for r in range(2):
        pipeline_id = index * 10 + r
        pipeline = {
            "id": pipeline_id,
            "iid": r + 1,
            "project_id": merge_request["project_id"],
            "ref": (f"refs/merge-requests/{iid}/head", "main")[r],
            "sha": sha,
            "source": ("merge_request_event", "push")[r],
            "status": ("success", "failed")[r],
            "created_at": _gl_t(500 + r),
            "started_at": _gl_t(499 + r),
            "finished_at": _gl_t(480 + r),
            "updated_at": _gl_t(480 + r),
            "user": author,
            "web_url": f"https://gitlab.example/{project}/-/pipelines/{pipeline_id}",
        }
        yield "pipeline", f"{project}/pipelines/{pipeline_id}", pipeline
        for j, stage in enumerate(("build", "test", "deploy")):
            job = {
                "id": pipeline_id * 10 + j,
                "name": f"{stage} ({j})",
                "stage": stage,
                "status": "success",
                "created_at": _gl_t(499),
                "started_at": _gl_t(498),
                "finished_at": _gl_t(490),
                "pipeline": {
                    "id": pipeline_id,
                    "sha": sha,
                    "ref": pipeline["ref"],
                    "status": pipeline["status"],
                },
                "commit": {"id": sha, "short_id": sha[:8], "title": f"change {iid}"},
                "user": author,
                "web_url": f"https://gitlab.example/{project}/-/jobs/{pipeline_id * 10 + j}",
            }
            yield "job", f"{project}/jobs/{job['id']}", job
    environment = ("production", "staging", "review/feature")[index % 3]
    deployment = {
        "id": index,
        "iid": index,
        "ref": "main",
        "sha": sha,
        "status": "success",
        "created_at": _gl_t(400),
        "updated_at": _gl_t(390),
        "user": author,
        "environment": {"id": index % 3, "name": environment, "tier": None},
        "deployable": {
            "id": index * 100,
            "name": "deploy",
            "status": "success",
            "started_at": _gl_t(399),
            "finished_at": _gl_t(391),
            "pipeline": {"id": index * 10 + 1, "sha": sha, "ref": "main", "status": "success"},
            "web_url": f"https://gitlab.example/{project}/-/jobs/{index * 100}",
        },
    }
    yield "deployment", f"{project}/deployments/{index}", deployment
    if index < 500:  # a project's environments, once
        for e, (name, tier) in enumerate((("production", "production"), ("staging", "staging"))):
            item = {"id": index * 10 + e, "name": name, "tier": tier, "state": "available"}
            yield "environment", f"{project}/environments/{item['id']}", item


# --- Jira -----------------------------------------------------------------------------------------------

_JIRA_STATUSES = (
    ("10000", "To Do", "new"),
    ("10001", "In Progress", "indeterminate"),
    ("10002", "Done", "done"),
)


def _jira_t(minutes: int) -> str:
    """Jira's times: ``2024-05-01T10:00:00.000+0000``."""
    return (BASE - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _jira_user(uid: int) -> Item:
    return {
        "accountId": f"5fb48fe2{uid:016x}",
        "accountType": "atlassian",
        "active": True,
        "displayName": f"Dev {uid}",
        "emailAddress": "",
        "self": f"https://bench.atlassian.net/rest/api/3/user?accountId=5fb48fe2{uid:016x}",
        "timeZone": "Europe/Paris",
    }


def _jira_status(step: int) -> Item:
    status_id, name, category = _JIRA_STATUSES[step]
    return {"id": status_id, "name": name, "statusCategory": {"key": category}}


def jira_unit(index: int) -> Iterator[tuple[str, str, Item]]:
    """(event type, key, item) of one slice of a Jira board: ~30 raw events (issues with their embedded
    changelogs, one with its changelog fetched apart, accounts, a sprint, the catalogs once)."""
    if index == 0:
        for step in range(3):
            yield "status", _JIRA_STATUSES[step][0], _jira_status(step)
        yield "issue_type", "10001", {"id": "10001", "name": "Story", "untranslatedName": "Story"}
        yield "issue_type", "10004", {"id": "10004", "name": "Bug", "untranslatedName": "Bug"}
        sprint_field = {"id": "customfield_10020", "name": "Sprint", "schema": {"custom": "x:gh-sprint"}}
        yield "field", "customfield_10020", sprint_field
        points = {"id": "customfield_10016", "name": "Story point estimate", "schema": {"custom": "x:float"}}
        yield "field", "customfield_10016", points
    sprint_id = index + 1
    sprint = {
        "id": sprint_id,
        "name": f"Sprint {sprint_id}",
        "state": "closed",
        "startDate": _jira_t(20_000),
        "endDate": _jira_t(6_000),
        "completeDate": _jira_t(6_000),
        "originBoardId": 8,
        "goal": "",
    }
    yield "sprint", str(sprint_id), sprint
    for n in range(8):
        number = index * 8 + n
        uid = number % 300
        assignee, reporter = _jira_user(uid), _jira_user(uid + 1)
        histories = [
            {
                "id": str(number * 10 + step),
                "created": _jira_t(900 - 100 * step),
                "author": assignee,
                "items": [
                    {
                        "field": "status",
                        "fieldtype": "jira",
                        "fieldId": "status",
                        "from": _JIRA_STATUSES[step - 1][0],
                        "fromString": _JIRA_STATUSES[step - 1][1],
                        "to": _JIRA_STATUSES[step][0],
                        "toString": _JIRA_STATUSES[step][1],
                    },
                    {"field": "assignee", "fieldtype": "jira", "from": None, "to": assignee["accountId"]},
                ],
            }
            for step in (1, 2)
        ]
        apart = n == 7  # its changelog cut short in the search answer, fetched apart
        issue_id = str(100_000 + number)
        issue = {
            "id": issue_id,
            "key": f"BENCH-{number}",
            "self": f"https://bench.atlassian.net/rest/api/3/issue/{issue_id}",
            "fields": {
                "summary": f"story {number}",
                "description": "x" * 200,
                "project": {"id": "10000", "key": "BENCH", "name": "Bench"},
                "issuetype": {"id": ("10001", "10004")[number % 2], "name": ("Story", "Bug")[number % 2]},
                "status": _jira_status(2),
                "resolution": {"name": "Done"},
                "labels": ["backend"],
                "priority": {"name": "Medium"},
                "assignee": assignee,
                "reporter": reporter,
                "creator": reporter,
                "created": _jira_t(1000),
                "updated": _jira_t(700),
                "resolutiondate": _jira_t(700),
                "customfield_10020": [{"id": sprint_id, "name": sprint["name"], "state": "closed"}],
                "customfield_10016": float(number % 8),
            },
            "changelog": {
                "startAt": 0,
                "maxResults": 0 if apart else 2,
                "total": 2,
                "histories": [] if apart else histories,
            },
        }
        yield "issue", issue_id, issue
        yield "user", assignee["accountId"], assignee
        yield "user", reporter["accountId"], reporter
        if apart:
            for history in histories:
                yield "changelog", f"{issue_id}/{history['id']}", history


UNITS: dict[str, Unit] = {"github": github_unit, "gitlab": gitlab_unit, "jira": jira_unit}
"""Tool → its slice, for ``--tool``."""


def raw_events(tool: str, count: int) -> pa.Table:
    """`count` raw events of `tool` (the last slice cut short) as one Arrow batch of ``raw_events``."""
    columns: dict[str, list[Any]] = {
        k: []
        for k in ("id", "source", "external_id", "event_type", "connection", "received_at", "payload_hash")
    }
    payloads: list[str] = []
    received = BASE.replace(tzinfo=None)
    seen: set[str] = set()
    index = 0
    while len(payloads) < count:
        for event_type, key, item in UNITS[tool](index):
            external_id = f"{event_type}:{key}"
            if external_id in seen or len(payloads) >= count:
                continue
            seen.add(external_id)
            payload = orjson.dumps(item, option=orjson.OPT_SORT_KEYS).decode()
            columns["id"].append(f"{tool}:{external_id}")
            columns["source"].append(tool)
            columns["external_id"].append(external_id)
            columns["event_type"].append(event_type)
            columns["connection"].append(CONNECTION)
            columns["received_at"].append(received)
            columns["payload_hash"].append(hashlib.sha256(payload.encode()).hexdigest())
            payloads.append(payload)
        index += 1
    nulls = pa.nulls(len(payloads), pa.string())
    return pa.table({**columns, "raw_event_id": nulls, "delivery_id": nulls, "payload": payloads})
