"""Small hand-built records for the traceability tests: a git history, changes, deployments, incidents.

Every record comes from source "t", so its id is ``"t:" + external_id``; times are hours after T0.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from obeya.model.records import (
    Change,
    ChangeCommit,
    Commit,
    CommitParent,
    Deployment,
    Incident,
    PipelineRun,
    Record,
    Release,
    Scope,
    TraceLink,
    ValueStream,
    WorkItem,
)
from obeya.store import Store

T0 = datetime(2025, 3, 1, 9, 0)
SOURCE = "t"


def at(hours: float) -> datetime:
    """T0 plus `hours`."""
    return T0 + timedelta(hours=hours)


def rid(external_id: str) -> str:
    """The store id of a test record."""
    return f"{SOURCE}:{external_id}"


def item(key: str, parent: str | None = None, project: str | None = None, done: bool = False) -> WorkItem:
    """A work item whose id is ``t:{key}``; `parent` is the parent's key."""
    return WorkItem(
        source=SOURCE,
        external_id=key,
        key=key,
        title=f"work on {key}",
        project=project or key.split("-")[0],
        tool_type="Story",
        flow_item_type="feature",
        status="Done" if done else "In Progress",
        flow_state="done" if done else "active",
        parent_id=rid(parent) if parent else None,
        created_at=T0,
    )


def commit(
    repo: str,
    sha: str,
    hours: float,
    parents: Sequence[str] = (),
    message: str = "",
    paths: list[str] | None = None,
) -> list[Record]:
    """A commit (id ``t:{sha}``) and its parent edges."""
    records: list[Record] = [
        Commit(
            source=SOURCE,
            external_id=sha,
            repo=repo,
            sha=sha,
            message=message or f"work {sha}",
            authored_at=at(hours),
            paths=paths,
        )
    ]
    records += [
        CommitParent(
            source=SOURCE, external_id=f"{sha}/{i}", repo=repo, commit_sha=sha, parent_sha=p, position=i
        )
        for i, p in enumerate(parents)
    ]
    return records


def change(
    repo: str,
    number: int,
    merged_hours: float | None,
    merge_sha: str | None = None,
    head_sha: str | None = None,
    commits: Sequence[str] = (),
    title: str = "",
    branch: str | None = None,
    method: str | None = "squash",
) -> list[Record]:
    """A change (id ``t:{repo}#{number}``) and its change_commits rows."""
    external_id = f"{repo}#{number}"
    records: list[Record] = [
        Change(
            source=SOURCE,
            external_id=external_id,
            repo=repo,
            number=number,
            title=title or f"change {number}",
            branch=branch,
            state="merged" if merged_hours is not None else "open",
            created_at=at((merged_hours or 0) - 5),
            merged_at=at(merged_hours) if merged_hours is not None else None,
            merge_commit_sha=merge_sha,
            head_sha=head_sha,
            merge_method=method if merged_hours is not None else None,  # type: ignore[arg-type]
        )
    ]
    records += [
        ChangeCommit(
            source=SOURCE, external_id=f"{external_id}/{sha}", change_id=rid(external_id), commit_sha=sha
        )
        for sha in commits
    ]
    return records


def deployment(
    name: str,
    service: str,
    repo: str | None,
    sha: str | None,
    start_hours: float,
    finish_hours: float | None = None,
    result: str = "success",
    environment: str = "production",
    run: str | None = None,
    release: str | None = None,
) -> Deployment:
    """A deployment (id ``t:{name}``) finishing 10 minutes after its start unless told; `run` and
    `release` are external ids."""
    return Deployment(
        source=SOURCE,
        external_id=name,
        service=service,
        environment=environment,
        environment_class="production" if environment == "production" else "staging",
        repo=repo,
        commit_sha=sha,
        pipeline_run_id=rid(run) if run else None,
        release_id=rid(release) if release else None,
        result=result,  # type: ignore[arg-type]
        started_at=at(start_hours),
        finished_at=at(finish_hours if finish_hours is not None else start_hours + 1 / 6),
    )


def change_request(
    number: str,
    service: str | None,
    start_hours: float | None,
    end_hours: float | None,
    approval: str | None = "approved",
    status: str = "released",
    correlation_id: str | None = None,
) -> Release:
    """A change request (a release, id ``t:{number}``) of `service` with its window in hours after T0."""
    return Release(
        source=SOURCE,
        external_id=number,
        name=number,
        status=status,  # type: ignore[arg-type]
        service=service,
        window_start=at(start_hours) if start_hours is not None else None,
        window_end=at(end_hours) if end_hours is not None else None,
        approval=approval,
        correlation_id=correlation_id,
    )


def run(
    name: str,
    sha: str | None = None,
    change_id: str | None = None,
    repo: str | None = None,
    branch: str | None = None,
) -> PipelineRun:
    """A successful pipeline run (id ``t:{name}``)."""
    return PipelineRun(
        source=SOURCE,
        external_id=name,
        pipeline="ci",
        repo=repo,
        branch=branch,
        commit_sha=sha,
        change_id=change_id,
        result="success",
        created_at=T0,
    )


def incident(
    name: str,
    service: str | None,
    created_hours: float,
    caused_by: str | None = None,
    evidence: str | None = None,
    change_caused: bool | None = None,
) -> Incident:
    """An incident (id ``t:{name}``); `caused_by` is a deployment name."""
    return Incident(
        source=SOURCE,
        external_id=name,
        title=f"incident {name}",
        service=service,
        status="resolved",
        created_at=at(created_hours),
        caused_by_deployment_id=rid(caused_by) if caused_by else None,
        cause_evidence=evidence,
        change_caused=change_caused,
    )


def user_link(from_kind: str, from_id: str, to_kind: str, to_id: str, link_kind: str) -> TraceLink:
    """A link a user imported (source "jira")."""
    return TraceLink(
        source="jira",
        external_id=f"{from_id}>{to_id}",
        from_kind=from_kind,
        from_id=from_id,
        to_kind=to_kind,
        to_id=to_id,
        link_kind=link_kind,
        evidence="imported from Jira's development panel",
        confidence=1.0,
    )


def stream(name: str, *scopes: tuple[str, str]) -> list[Record]:
    """A value stream (id ``t:vs/{name}``) with (object_type, object_key) scopes."""
    records: list[Record] = [ValueStream(source=SOURCE, external_id=f"vs/{name}", name=name)]
    records += [
        Scope(
            source=SOURCE,
            external_id=f"scope/{name}/{object_type}/{key}",
            value_stream_id=rid(f"vs/{name}"),
            tool="test",
            object_type=object_type,  # type: ignore[arg-type]
            object_key=key,
        )
        for object_type, key in scopes
    ]
    return records


def write(store: Store, *records: Record | list[Record]) -> None:
    """Write records (single or lists) to the store."""
    flat: list[Record] = []
    for r in records:
        flat += r if isinstance(r, list) else [r]
    store.upsert_records(flat)


def links(store: Store, link_kind: str, source: str = "obeya") -> set[tuple[Any, ...]]:
    """The links of one kind: (from_id, to_id, evidence, confidence)."""
    rows = store.query(
        "SELECT from_id, to_id, evidence, confidence FROM trace_links WHERE link_kind = ? AND source = ?",
        (link_kind, source),
    )
    return {(r[0], r[1], r[2], float(r[3])) for r in rows}


def shipped(store: Store) -> set[tuple[str, str]]:
    """The derived deployment_changes: (deployment id, change id)."""
    rows = store.query("SELECT deployment_id, change_id FROM deployment_changes WHERE source = 'obeya'")
    return {(r[0], r[1]) for r in rows}
