"""Shipped changes of a deployment (docs/metrics.md, "Shipped changes of a deployment").

Successful deployments of one service to one environment from one repository form a chain, ordered by
finish time (start time when the finish is missing). Each deployment D with a previous one P ships:

- when the git graph knows both commits: the commits reachable from D's commit and from no earlier
  deployment of the chain, and the merged changes whose merge commit, head or any commit is among them
  (a change goes to the first deployment that reaches it);
- otherwise: the changes of the repository merged after P started and at or before D started.

The first deployment of a chain has no base and ships nothing linkable. Ancestry is computed once per
chain: the deployments are walked in order and each commit is marked with the first deployment that
reaches it, never visited again, so a chain costs one pass over its repository's graph, however many
deployments it has (a recursive query per deployment would revisit the history every time). An
incremental derivation passes the deployment groups (service, environment) it re-derives: only their
deployments are read, filtered in the query itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from obeya.linking.derived import candidates, empty_candidates, fetch
from obeya.linking.rules import LinkingRules
from obeya.linking.touched import DEPLOYMENT_GROUP
from obeya.store.base import Store

GRAPH_CONFIDENCE = 1.0
TIME_WINDOW_CONFIDENCE = 0.7

_NONE = np.iinfo(np.int64).max  # "reached by no deployment of this chain"
_SEP = "\x1f"
_HOW = ("merge commit", "head commit", "commit")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class ShippedReport:
    """How the deployments were linked to the changes they ship."""

    by_graph: int = 0  # deployments whose shipped changes come from the git graph
    by_time_window: int = 0  # deployments whose shipped changes come from the time window
    without_base: int = 0  # first deployment of a chain: no previous deployment, nothing linked
    without_repo: int = 0  # successful deployments naming no repository: cannot be linked
    without_time: int = 0  # successful deployments with neither start nor finish: cannot be ordered
    chains: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class _Graph:
    """Every repository's commits as integers (one space for all repositories) with their parents."""

    indptr: list[int]
    parents: list[int]
    known: np.ndarray  # node is a commit of a repository whose graph is stored
    size: int


def _keys(repo: pa.ChunkedArray | pa.Array, sha: pa.ChunkedArray | pa.Array) -> pa.Array:
    joined = pc.binary_join_element_wise(repo, sha, _SEP)
    return joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined


def _encode(parts: Sequence[pa.Array]) -> tuple[list[np.ndarray], int]:
    """Integer node ids for several key arrays at once (-1 for a null key), and how many nodes there are."""
    lengths = [len(p) for p in parts]
    encoded = pc.dictionary_encode(pa.chunked_array(parts, pa.string())).combine_chunks()
    indices = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    out = []
    start = 0
    for length in lengths:
        out.append(indices[start : start + length])
        start += length
    return out, len(encoded.dictionary)


def _micros(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Timestamps as int64 microseconds since the epoch; null as the largest int64 (after every time)."""
    as_int = pc.cast(column.cast(pa.timestamp("us")), pa.int64())
    return np.asarray(as_int.fill_null(_NONE).to_numpy(zero_copy_only=False), dtype=np.int64)


def _stamp(micros: int) -> str:
    return (_EPOCH + timedelta(microseconds=micros)).strftime("%Y-%m-%dT%H:%MZ")


def _touches(paths_json: str | None, prefixes: tuple[str, ...]) -> bool:
    if not paths_json:
        return False
    paths = orjson.loads(paths_json)
    return any(isinstance(p, str) and p.startswith(prefixes) for p in paths or ())


def shipped_changes(
    store: Store, rules: LinkingRules, groups: str | None = None
) -> tuple[pa.Table, ShippedReport]:
    """deployment → change candidates (the `ships` links and the `deployment_changes` rows), and a report.

    `groups`: the name of an SQL table of deployment groups (column ``item_id``, values
    `obeya.linking.touched.DEPLOYMENT_GROUP`, see `obeya.linking.touched.registered`); when given, only the
    deployments of those groups are read, and only their candidates returned (and counted in the report).
    A chain (service, environment, repository) lies within one group, so each chain is read whole and its
    candidates are those a run over every deployment gives.
    """
    report = ShippedReport()
    in_groups = ""
    if groups is not None:
        in_groups = f" AND {DEPLOYMENT_GROUP.format(t='d.')} IN (SELECT item_id FROM {groups})"
    deployments = fetch(
        store,
        "SELECT d.id, d.service, d.environment, d.repo, d.commit_sha, d.started_at, d.finished_at "
        f"FROM deployments d WHERE d.result = 'success'{in_groups}",
        (),
        pa.schema(
            [
                ("id", pa.string()),
                ("service", pa.string()),
                ("environment", pa.string()),
                ("repo", pa.string()),
                ("commit_sha", pa.string()),
                ("started_at", pa.timestamp("us")),
                ("finished_at", pa.timestamp("us")),
            ]
        ),
    )
    has_repo = pc.is_valid(deployments["repo"])
    deployments = deployments.filter(has_repo)
    report.without_repo = len(has_repo) - deployments.num_rows
    order_time = pc.coalesce(deployments["finished_at"], deployments["started_at"])
    report.without_time = int(pc.sum(pc.cast(pc.is_null(order_time), pa.int64())).as_py() or 0)
    deployments = deployments.append_column("order_time", order_time).filter(pc.is_valid(order_time))
    if deployments.num_rows == 0:
        return empty_candidates(), report
    deployments = deployments.sort_by(
        [
            ("service", "ascending"),
            ("environment", "ascending"),
            ("repo", "ascending"),
            ("order_time", "ascending"),
            ("id", "ascending"),
        ]
    )
    repos = pc.unique(deployments["repo"]).to_pylist()
    marks = ", ".join("?" * len(repos))

    edges = fetch(
        store,
        f"SELECT repo, commit_sha, parent_sha FROM commit_parents WHERE repo IN ({marks})",
        repos,
        pa.schema([("repo", pa.string()), ("commit_sha", pa.string()), ("parent_sha", pa.string())]),
    )
    monorepo = {
        (service, repo): prefixes
        for service, by_repo in rules.service_paths.items()
        for repo, prefixes in by_repo.items()
        if prefixes
    }
    commits = fetch(
        store,
        f"SELECT repo, sha, {'paths' if monorepo else 'NULL AS paths'} FROM commits WHERE repo IN ({marks})",
        repos,
        pa.schema([("repo", pa.string()), ("sha", pa.string()), ("paths", pa.string())]),
    )
    changes = fetch(
        store,
        f"SELECT id, repo, merged_at, merge_commit_sha, head_sha FROM changes "
        f"WHERE state = 'merged' AND repo IN ({marks})",
        repos,
        pa.schema(
            [
                ("id", pa.string()),
                ("repo", pa.string()),
                ("merged_at", pa.timestamp("us")),
                ("merge_commit_sha", pa.string()),
                ("head_sha", pa.string()),
            ]
        ),
    ).sort_by([("repo", "ascending"), ("merged_at", "ascending"), ("id", "ascending")])
    change_commits = fetch(
        store,
        f"SELECT cc.change_id, cc.commit_sha FROM change_commits cc JOIN changes ch ON ch.id = cc.change_id "
        f"WHERE ch.state = 'merged' AND ch.repo IN ({marks})",
        repos,
        pa.schema([("change_id", pa.string()), ("commit_sha", pa.string())]),
    )

    # change "sha rows": (change index, sha, how) for merge commit, head and every commit of a change
    cc_index = pc.index_in(change_commits["change_id"], value_set=changes["id"])
    cc_valid = pc.is_valid(cc_index)
    cc_index = cc_index.filter(cc_valid)
    n_changes = changes.num_rows
    row_change = np.concatenate(
        [np.arange(n_changes), np.arange(n_changes), cc_index.to_numpy(zero_copy_only=False).astype(np.int64)]
    )
    row_how = np.concatenate(
        [np.zeros(n_changes, np.int64), np.ones(n_changes, np.int64), np.full(len(cc_index), 2, np.int64)]
    )
    change_repo = changes["repo"].combine_chunks()
    row_sha = pa.concat_arrays(
        [
            changes["merge_commit_sha"].combine_chunks(),
            changes["head_sha"].combine_chunks(),
            change_commits["commit_sha"].filter(cc_valid).combine_chunks(),
        ]
    )
    row_repo = change_repo.take(pa.array(row_change)) if len(row_change) else pa.array([], pa.string())

    (child, parent, commit_nodes, deploy_nodes, row_nodes), size = _encode(
        [
            _keys(edges["repo"], edges["commit_sha"]),
            _keys(edges["repo"], edges["parent_sha"]),
            _keys(commits["repo"], commits["sha"]),
            _keys(deployments["repo"], deployments["commit_sha"]),
            _keys(row_repo, row_sha),
        ]
    )
    graph = _build_graph(child, parent, commit_nodes, size)
    repos_with_graph = set(pc.unique(edges["repo"]).to_pylist())

    # per repository: its merged changes (sorted by merge time) and its change sha rows
    change_merged = _micros(changes["merged_at"])
    change_ids = changes["id"].to_pylist()
    repo_of_change = change_repo.to_pylist()
    change_span: dict[str, tuple[int, int]] = {}
    for i, repo in enumerate(repo_of_change):
        lo, _ = change_span.get(repo, (i, i))
        change_span[repo] = (lo, i + 1)
    row_order = np.argsort(row_change, kind="stable")
    row_change, row_how, row_nodes = row_change[row_order], row_how[row_order], row_nodes[row_order]
    row_sha_list = row_sha.take(pa.array(row_order)).to_pylist() if len(row_order) else []
    touching_by_pair = {
        pair: _touching(commits, commit_nodes, pair[1], prefixes, size) for pair, prefixes in monorepo.items()
    }

    out_from: list[str] = []
    out_to: list[str] = []
    out_evidence: list[str] = []
    out_confidence: list[float] = []
    scratch = np.full(size, _NONE, dtype=np.int64)

    ids = deployments["id"].to_pylist()
    services = deployments["service"].to_pylist()
    envs = deployments["environment"].to_pylist()
    dep_repos = deployments["repo"].to_pylist()
    shas = deployments["commit_sha"].to_pylist()
    starts = _micros(pc.coalesce(deployments["started_at"], deployments["finished_at"]))
    start = 0
    while start < len(ids):
        end = start
        chain_key = (services[start], envs[start], dep_repos[start])
        while end < len(ids) and (services[end], envs[end], dep_repos[end]) == chain_key:
            end += 1
        report.chains += 1
        service, _, repo = chain_key
        chain = range(start, end)
        nodes = [int(deploy_nodes[i]) for i in chain]
        graph_repo = repo in repos_with_graph
        known = [graph_repo and n >= 0 and bool(graph.known[n]) for n in nodes]
        report.without_base += 1
        graph_mode = [False] + [known[k] and known[k - 1] for k in range(1, len(nodes))]
        report.by_graph += sum(graph_mode)
        report.by_time_window += len(nodes) - 1 - sum(graph_mode[1:])

        lo, hi = change_span.get(repo, (0, 0))
        touching = touching_by_pair.get((service, repo))

        # claims: (change index, ordinal, how (0-2 graph, 3 time window), sha row or -1)
        claims: list[tuple[int, int, int, int]] = []
        if hi > lo:
            r_lo, r_hi = np.searchsorted(row_change, [lo, hi])
            first = _first_reaching(graph, [n if known[k] else -1 for k, n in enumerate(nodes)])
            if first:
                keys = np.fromiter(first.keys(), dtype=np.int64, count=len(first))
                scratch[keys] = np.fromiter(first.values(), dtype=np.int64, count=len(first))
                sub = row_nodes[r_lo:r_hi]
                ords = np.where(sub >= 0, scratch[np.maximum(sub, 0)], _NONE)
                if touching is not None:
                    ords = np.where((sub >= 0) & touching[np.maximum(sub, 0)], ords, _NONE)
                scratch[keys] = _NONE
                hit = np.nonzero(ords != _NONE)[0]
                for j in hit.tolist():
                    ordinal = int(ords[j])
                    if graph_mode[ordinal] or ordinal == 0:
                        claims.append((int(row_change[r_lo + j]), ordinal, int(row_how[r_lo + j]), r_lo + j))
            window_changes = np.arange(lo, hi)
            if touching is not None:
                sub = row_nodes[r_lo:r_hi]
                touched = (sub >= 0) & touching[np.maximum(sub, 0)]
                window_changes = np.unique(row_change[r_lo:r_hi][touched])
            merged = change_merged[window_changes]
            for ordinal in range(1, len(nodes)):
                if graph_mode[ordinal]:
                    continue
                after, until = starts[chain[ordinal - 1]], starts[chain[ordinal]]
                a = np.searchsorted(merged, after, side="right")
                b = np.searchsorted(merged, until, side="right")
                claims += [(int(c), ordinal, 3, -1) for c in window_changes[a:b].tolist()]

        # a change goes to the first deployment that ships it (ties: merge commit, head, commit)
        best: dict[int, tuple[int, int, int]] = {}
        for change, ordinal, how, row in claims:
            current = best.get(change)
            if current is None or (ordinal, how) < current[:2]:
                best[change] = (ordinal, how, row)
        for change, (ordinal, how, row) in sorted(best.items()):
            if ordinal == 0:
                continue
            this, previous = chain[ordinal], chain[ordinal - 1]
            out_from.append(ids[this])
            out_to.append(change_ids[change])
            if how < 3:
                out_evidence.append(
                    f"git graph: {_HOW[how]} {str(row_sha_list[row])[:7]} in "
                    f"{str(shas[previous])[:7]}..{str(shas[this])[:7]}"
                )
                out_confidence.append(GRAPH_CONFIDENCE)
            else:
                out_evidence.append(
                    f"time window: merged {_stamp(int(change_merged[change]))}, between previous deployment "
                    f"start {_stamp(int(starts[previous]))} and this start {_stamp(int(starts[this]))}"
                )
                out_confidence.append(TIME_WINDOW_CONFIDENCE)
        start = end
    if not out_from:
        return empty_candidates(), report
    return candidates(out_from, out_to, out_evidence, np.array(out_confidence)), report


def _touching(
    commits: pa.Table, commit_nodes: np.ndarray, repo: str, prefixes: tuple[str, ...], size: int
) -> np.ndarray:
    """Which nodes are commits of `repo` touching a path under one of `prefixes` (unknown paths: no)."""
    touching = np.zeros(size, dtype=bool)
    in_repo = np.nonzero(pc.equal(commits["repo"], repo).to_numpy(zero_copy_only=False))[0]
    paths = commits["paths"].take(pa.array(in_repo)).to_pylist()
    for node, paths_json in zip(commit_nodes[in_repo].tolist(), paths, strict=True):
        if _touches(paths_json, prefixes):
            touching[node] = True
    return touching


def _build_graph(child: np.ndarray, parent: np.ndarray, commit_nodes: np.ndarray, size: int) -> _Graph:
    order = np.argsort(child, kind="stable")
    counts = np.bincount(child, minlength=size) if len(child) else np.zeros(size, dtype=np.int64)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    known = np.zeros(size, dtype=bool)
    known[child] = True
    known[parent] = True
    known[commit_nodes] = True
    return _Graph(indptr.tolist(), parent[order].tolist(), known, size)


def _first_reaching(graph: _Graph, nodes: list[int]) -> dict[int, int]:
    """For each commit reachable from the chain's deployments: the ordinal of the first one reaching it."""
    first: dict[int, int] = {}
    indptr, parents = graph.indptr, graph.parents
    for ordinal, node in enumerate(nodes):
        if node < 0 or node in first:
            continue
        first[node] = ordinal
        stack = [node]
        while stack:
            current = stack.pop()
            for k in range(indptr[current], indptr[current + 1]):
                p = parents[k]
                if p not in first:
                    first[p] = ordinal
                    stack.append(p)
    return first
