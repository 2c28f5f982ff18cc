"""`trace`: the chain of one work item, from its parent and children to the change requests its deployments
were made under and the incidents they caused.

It reads the links `derive_links` (or an import) stored: a handful of queries for one item, each over the
ids found one hop before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from obeya.linking.errors import AmbiguousWorkItemKey, UnknownWorkItemKey
from obeya.store.base import Store


@dataclass(frozen=True)
class TraceNode:
    """A record in a chain: its kind, id, a one-line label and its main time."""

    kind: str
    id: str
    label: str
    at: datetime | None = None


@dataclass(frozen=True)
class TraceStep:
    """A record reached by one link: `via` is the id of the record it hangs from in the chain."""

    node: TraceNode
    via: str
    link_kind: str
    evidence: str
    confidence: float
    source: str


@dataclass
class TraceChain:
    """The chain of one work item; every list is ordered by time, then id."""

    item: TraceNode
    parent: TraceStep | None = None
    children: list[TraceStep] = field(default_factory=list)
    commits: list[TraceStep] = field(default_factory=list)  # naming the item, or contained in its changes
    changes: list[TraceStep] = field(default_factory=list)  # naming the item, or holding a commit that does
    pipeline_runs: list[TraceStep] = field(default_factory=list)
    deployments: list[TraceStep] = field(default_factory=list)
    incidents: list[TraceStep] = field(default_factory=list)
    change_requests: list[TraceStep] = field(default_factory=list)  # covering the deployments

    def steps_from(self, record_id: str) -> list[TraceStep]:
        """The steps hanging from `record_id` (its commits, runs, deployments, change requests, incidents)."""
        every = [
            *self.commits,
            *self.changes,
            *self.pipeline_runs,
            *self.deployments,
            *self.change_requests,
            *self.incidents,
        ]
        return [s for s in every if s.via == record_id]


_LABELS = {
    "work_item": "SELECT id, key || ' ' || title, created_at FROM work_items",
    "commit": "SELECT id, substr(sha, 1, 7) || ' ' || message, authored_at FROM commits",
    "change": "SELECT id, repo || '#' || CAST(number AS VARCHAR) || ' ' || title || ' (' || state || ')', "
    "COALESCE(merged_at, created_at) FROM changes",
    "pipeline_run": "SELECT id, pipeline || ' ' || result || ' on ' || COALESCE(branch, 'no branch'), "
    "created_at FROM pipeline_runs",
    "deployment": "SELECT id, service || ' to ' || environment || ' ' || result, "
    "COALESCE(finished_at, started_at) FROM deployments",
    "incident": "SELECT id, COALESCE(severity || ' ', '') || title, created_at FROM incidents",
    "release": "SELECT id, name || COALESCE(' ' || description, '') || ' (' || status "
    "|| COALESCE(', ' || approval, '') || ')', COALESCE(window_start, planned_at) FROM releases",
}


def _marks(values: Sequence[str]) -> str:
    return ", ".join("?" * len(values))


def _nodes(store: Store, kind: str, ids: Sequence[str]) -> dict[str, TraceNode]:
    if not ids:
        return {}
    rows = store.query(f"{_LABELS[kind]} WHERE id IN ({_marks(ids)})", list(ids))
    return {r[0]: TraceNode(kind, r[0], " ".join(str(r[1]).split())[:120], r[2]) for r in rows}


def _links(
    store: Store, link_kind: str, end: str, ids: Sequence[str], other_kind: str
) -> list[tuple[str, ...]]:
    """Links of `link_kind` with their `end` ("from" or "to") in `ids` and the other end of `other_kind`."""
    if not ids:
        return []
    other = "to" if end == "from" else "from"
    return store.query(
        f"SELECT {end}_id, {other}_id, evidence, confidence, source FROM trace_links "
        f"WHERE link_kind = ? AND {other}_kind = ? AND {end}_id IN ({_marks(ids)}) "
        f"ORDER BY {other}_id, source",
        [link_kind, other_kind, *ids],
    )


def _steps(store: Store, kind: str, rows: list[tuple[str, ...]]) -> list[TraceStep]:
    """Steps to the records at `rows`' second column, hanging from the first; one per record and via."""
    nodes = _nodes(store, kind, sorted({r[1] for r in rows}))
    seen: set[tuple[str, str]] = set()
    steps = []
    for via, to, evidence, confidence, source in rows:
        if to in nodes and (via, to) not in seen:
            seen.add((via, to))
            steps.append(TraceStep(nodes[to], via, "", str(evidence), float(confidence), str(source)))
    return sorted(steps, key=lambda s: (s.node.at or datetime.min, s.node.id, s.via))


def _with_kind(steps: list[TraceStep], link_kind: str) -> list[TraceStep]:
    return [TraceStep(s.node, s.via, link_kind, s.evidence, s.confidence, s.source) for s in steps]


def trace(store: Store, key: str) -> TraceChain:
    """The chain of the work item with `key` (or with that id), through the stored links.

    Raises `UnknownWorkItemKey` when no item has it, `AmbiguousWorkItemKey` when several sources do.
    """
    ids = [
        r[0] for r in store.query("SELECT id FROM work_items WHERE key = ? OR id = ? ORDER BY id", (key, key))
    ]
    if not ids:
        raise UnknownWorkItemKey(key)
    if len(ids) > 1:
        raise AmbiguousWorkItemKey(key, ids)
    item_id = ids[0]
    chain = TraceChain(_nodes(store, "work_item", [item_id])[item_id])

    parents = _steps(store, "work_item", _links(store, "parent_of", "to", [item_id], "work_item"))
    chain.parent = _with_kind(parents, "parent_of")[0] if parents else None
    chain.children = _with_kind(
        _steps(store, "work_item", _links(store, "parent_of", "from", [item_id], "work_item")), "child_of"
    )

    named = _with_kind(
        _steps(store, "commit", _links(store, "implemented_by", "from", [item_id], "commit")),
        "implemented_by",
    )
    direct = _with_kind(
        _steps(store, "change", _links(store, "implemented_by", "from", [item_id], "change")),
        "implemented_by",
    )
    # a change is the item's too when it contains, or was merged as, a commit that names the item
    named_ids = [s.node.id for s in named]
    through: list[TraceStep] = []
    if named_ids:
        merged_as = store.query(
            "SELECT c.id, ch.id, 'merge commit ' || substr(c.sha, 1, 7) || ' of the change', 1.0, 'obeya' "
            "FROM changes ch JOIN commits c ON c.repo = ch.repo AND c.sha = ch.merge_commit_sha "
            f"WHERE c.id IN ({_marks(named_ids)}) ORDER BY ch.id",
            named_ids,
        )
        through = _with_kind(
            _steps(store, "change", _links(store, "contains", "to", named_ids, "change")), "contained_in"
        )
        through += _with_kind(_steps(store, "change", merged_as), "merged_as")
    direct_ids = {s.node.id for s in direct}
    reached: set[str] = set(direct_ids)
    chain.changes = list(direct)
    for step in through:
        if step.node.id not in reached:
            reached.add(step.node.id)
            chain.changes.append(step)
    change_ids = [s.node.id for s in chain.changes]
    entered_by = {(s.node.id, s.via) for s in chain.changes}
    contained = [
        s
        for s in _with_kind(
            _steps(store, "commit", _links(store, "contains", "from", change_ids, "commit")), "contains"
        )
        if (s.via, s.node.id) not in entered_by
    ]
    chain.commits = named + contained

    built = _links(store, "built", "to", change_ids, "pipeline_run")
    chain.pipeline_runs = _with_kind(_steps(store, "pipeline_run", built), "built")

    shipped = _links(store, "ships", "to", change_ids, "deployment")
    if change_ids:
        imported = store.query(
            "SELECT change_id, deployment_id, 'deployment_changes row', 1.0, source FROM deployment_changes "
            f"WHERE source <> 'obeya' AND change_id IN ({_marks(change_ids)})",
            change_ids,
        )
        shipped += [(str(r[0]), str(r[1]), *r[2:]) for r in imported]
    chain.deployments = _with_kind(_steps(store, "deployment", shipped), "ships")

    deployment_ids = sorted({s.node.id for s in chain.deployments})
    caused = _links(store, "caused_by", "to", deployment_ids, "incident")
    chain.incidents = _with_kind(_steps(store, "incident", caused), "caused_by")
    covered = _links(store, "covered_by", "from", deployment_ids, "release")
    chain.change_requests = _with_kind(_steps(store, "release", covered), "covered_by")
    return chain
