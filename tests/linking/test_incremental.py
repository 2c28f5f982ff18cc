"""`update_links` re-derives only what changed, and always ends with the links a full derivation gives.

Two stores receive the same writes, batch after batch: one derives incrementally (`update_links`), the
other from scratch (`derive_links`); after every batch both hold exactly the same derived rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pyarrow as pa
from linking_records import (
    change,
    change_request,
    commit,
    deployment,
    incident,
    item,
    links,
    rid,
    run,
    user_link,
    write,
)

from obeya.demo import load_demo
from obeya.linking import LinkingReport, derive_links, update_links
from obeya.model.records import Record
from obeya.model.schema import TABLES
from obeya.store import Store

REPO = "pay/api"


def _derived(store: Store) -> dict[str, set[tuple[Any, ...]]]:
    return {
        "trace_links": set(
            store.query(
                "SELECT id, from_kind, from_id, to_kind, to_id, link_kind, evidence, confidence "
                "FROM trace_links WHERE source = 'obeya'"
            )
        ),
        "deployment_changes": set(
            store.query("SELECT id, deployment_id, change_id FROM deployment_changes WHERE source = 'obeya'")
        ),
    }


class _Pair:
    """An incrementally derived store and a fully derived one, written alike."""

    def __init__(self, open_store: Callable[[str], Store], engine: str) -> None:
        self.incremental = open_store(engine)
        self.full = open_store(engine)
        for s in (self.incremental, self.full):
            s.migrate()

    def write(self, *records: Record | list[Record]) -> None:
        for s in (self.incremental, self.full):
            write(s, *records)

    def delete(self, kind: str, external_id: str) -> None:
        for s in (self.incremental, self.full):
            s.delete_where(kind, "id = ?", (rid(external_id),))

    def derive(self) -> LinkingReport:
        report = update_links(self.incremental)
        derive_links(self.full)
        assert _derived(self.incremental) == _derived(self.full)
        return report


def test_incremental_derivation_equals_full_after_each_change(
    open_store: Callable[[str], Store], engine: str
) -> None:
    pair = _Pair(open_store, engine)
    pair.write(
        item("PAY-1"),
        item("PAY-2", parent="PAY-1"),
        commit(REPO, "m000000", 0),
        commit(REPO, "b100000", 1, ["m000000"], message="PAY-2 refunds"),
        commit(REPO, "m100000", 2, ["m000000"], message="PAY-2 refunds (#1), prepares PAY-3"),
        change(REPO, 1, 2, merge_sha="m100000", head_sha="b100000", commits=["b100000"], title="PAY-2"),
        commit(REPO, "m200000", 4, ["m100000"], message="ledger (#2)"),
        change(REPO, 2, 4, merge_sha="m200000", title="ledger", branch="PAY-1-ledger"),
        run("r1", change_id=rid(f"{REPO}#1")),
        deployment("d1", "api", REPO, "m000000", 1),
        deployment("d2", "api", REPO, "m100000", 3, run="r1"),
        deployment("d3", "api", REPO, "m200000", 5),
        deployment("e1", "web", REPO, "m000000", 1),
        deployment("e2", "web", REPO, "m200000", 5),
        incident("i1", "api", 6),
    )
    first = pair.derive()
    assert first.mode == "full"  # never derived before
    assert pair.derive().mode == "unchanged"

    # a new item whose key an old commit already names: that commit gains a link, nothing else is read
    pair.write(item("PAY-3"))
    report = pair.derive()
    assert report.mode == "incremental"
    assert report.touched == {"work_item": 1}
    assert set(report.links) == {
        "work_item>implemented_by>commit",
        "work_item>implemented_by>change",
        "work_item>parent_of>work_item",
    }
    assert (report.added, report.changed, report.rows_removed) == (1, 0, 0)  # PAY-3 → m100000

    # a new deployment: it ships change #3, and only the whole-chain rules run again
    pair.write(
        commit(REPO, "m300000", 7, ["m200000"], message="PAY-3 statements (#3)"),
        change(REPO, 3, 7, merge_sha="m300000", head_sha="h300000", title="PAY-3 statements"),
        deployment("d4", "api", REPO, "m300000", 8),
    )
    report = pair.derive()
    assert report.links["deployment>ships>change"].added == 1
    assert report.deployment_changes.added == 1
    # only the chains deploying pay/api were derived again: api (d2, d3, d4 by graph) and web (e2)
    assert report.deployments_by_graph == 4

    # a new deployment of another service only: its chain alone (the api chain is left as it is)
    pair.write(commit("web/ui", "w000000", 0), deployment("u1", "ui", "web/ui", "w000000", 1))
    report = pair.derive()
    assert (report.deployments_without_base, report.deployments_by_graph) == (1, 0)

    # edits: a commit message loses its key, a parent is dropped, a title names another key
    pair.write(
        commit(REPO, "b100000", 1, ["m000000"], message="refunds"),
        item("PAY-2"),
        change(REPO, 2, 4, merge_sha="m200000", title="PAY-3 ledger", branch="PAY-1-ledger"),
    )
    report = pair.derive()
    assert report.rows_removed >= 2  # PAY-2 → b100000, PAY-1 parent of PAY-2

    # deletions: a change's commit row, a work item with links
    pair.delete("change_commit", f"{REPO}#1/b100000")
    pair.delete("work_item", "PAY-1")
    report = pair.derive()
    assert report.links["change>contains>commit"].removed == 1

    # a run built on a change's head, then a deployment moved to it; an incident after the last deploy
    pair.write(run("r2", sha="h300000", repo=REPO))
    pair.derive()
    pair.write(deployment("d4", "api", REPO, "m300000", 8, run="r2"), incident("i2", "api", 9))
    report = pair.derive()
    assert report.links["deployment>deployed_by>pipeline_run"].added == 1
    assert report.links["incident>caused_by>deployment"].added == 1

    # a deployment fails after the fact: the next one ships what it shipped
    pair.write(deployment("d3", "api", REPO, "m200000", 5, result="failure"))
    pair.derive()
    # a deployment is found to be of another service: both chains change
    pair.write(deployment("d2", "web", REPO, "m100000", 3, run="r1"))
    pair.derive()
    pair.delete("deployment", "e2")
    pair.derive()

    # an issue link between two work items (Jira's "Blocks") changes no derived link: no full derivation
    pair.write(user_link("work_item", rid("PAY-1"), "work_item", rid("PAY-3"), "Blocks"))
    assert pair.derive().mode == "incremental"
    # a user's own link: a full derivation (explicit links decide which derived ones are kept)
    pair.write(user_link("work_item", rid("PAY-3"), "commit", rid("m100000"), "implemented_by"))
    assert pair.derive().mode == "full"
    assert pair.derive().mode == "unchanged"


def test_a_touched_commit_of_one_repository_of_a_multi_repository_deployment(
    open_store: Callable[[str], Store], engine: str
) -> None:
    """A deployment shipping two repositories is two rows (same service, environment, finish), each in its
    own repository's chain: a commit of one repository re-derives that chain and leaves the other's links."""
    lib = "pay/lib"
    pair = _Pair(open_store, engine)
    pair.write(
        commit(REPO, "a000000", 0),
        commit(REPO, "a100000", 2, ["a000000"]),
        change(REPO, 1, 2, merge_sha="a100000"),
        commit(REPO, "a200000", 6, ["a100000"]),
        change(REPO, 2, 6, merge_sha="a200000"),
        commit(lib, "l000000", 0),
        commit(lib, "l100000", 3, ["l000000"]),
        change(lib, 1, 3, merge_sha="l100000"),
        change(lib, 2, 7, merge_sha="l200000"),  # its merge commit is not stored yet
        deployment("x1-api", "api", REPO, "a000000", 1),
        deployment("x1-lib", "api", lib, "l000000", 1),
        deployment("x2-api", "api", REPO, "a100000", 5),
        deployment("x2-lib", "api", lib, "l100000", 5),
        deployment("x3-api", "api", REPO, "a200000", 9),
        deployment("x3-lib", "api", lib, "l200000", 9),  # commit unknown: linked by time window
    )
    pair.derive()
    api_links = {
        (rid("x2-api"), rid(f"{REPO}#1"), "git graph: merge commit a100000 in a000000..a100000", 1.0),
        (rid("x3-api"), rid(f"{REPO}#2"), "git graph: merge commit a200000 in a100000..a200000", 1.0),
    }
    lib_first = (rid("x2-lib"), rid(f"{lib}#1"), "git graph: merge commit l100000 in l000000..l100000", 1.0)
    assert links(pair.incremental, "ships") == api_links | {
        lib_first,
        (
            rid("x3-lib"),
            rid(f"{lib}#2"),
            "time window: merged 2025-03-01T16:00Z, between previous deployment start 2025-03-01T14:00Z "
            "and this start 2025-03-01T18:00Z",
            0.7,
        ),
    }

    # the lib commit x3-lib deployed arrives: x3-lib now ships lib#2 by the git graph
    pair.write(commit(lib, "l200000", 7, ["l100000"]))
    report = pair.derive()
    assert report.mode == "incremental"
    assert report.touched == {"commit": 1, "commit_parent": 1}
    ships = report.links["deployment>ships>change"]
    assert (ships.added, ships.changed, ships.removed) == (0, 1, 0)
    assert (report.deployments_by_graph, report.deployments_by_time_window) == (4, 0)
    lib_graph = (rid("x3-lib"), rid(f"{lib}#2"), "git graph: merge commit l200000 in l100000..l200000", 1.0)
    assert links(pair.incremental, "ships") == api_links | {lib_first, lib_graph}

    # the lib commit between the first two deployments is deleted: that chain falls back to the time window
    pair.delete("commit", "l100000")
    pair.delete("commit_parent", "l100000/0")
    pair.delete("commit_parent", "l200000/0")
    report = pair.derive()
    assert report.touched == {"commit": 1, "commit_parent": 2}
    assert (report.deployments_by_graph, report.deployments_by_time_window) == (2, 2)
    assert links(pair.incremental, "ships") == api_links | {
        (
            rid("x2-lib"),
            rid(f"{lib}#1"),
            "time window: merged 2025-03-01T12:00Z, between previous deployment start 2025-03-01T10:00Z "
            "and this start 2025-03-01T14:00Z",
            0.7,
        ),
        (
            rid("x3-lib"),
            rid(f"{lib}#2"),
            "time window: merged 2025-03-01T16:00Z, between previous deployment start 2025-03-01T14:00Z "
            "and this start 2025-03-01T18:00Z",
            0.7,
        ),
    }


def test_change_requests_follow_their_deployments_commits_runs_and_windows(
    open_store: Callable[[str], Store], engine: str
) -> None:
    pair = _Pair(open_store, engine)
    pair.write(
        change_request("CHG0030001", "api", 2, 4),
        commit(REPO, "a000000", 0, message="deploy under CHG0030001"),
        run("r1", branch="main"),
        deployment("d1", "api", REPO, None, 2.5),  # time rule
        deployment("d2", "api", REPO, "a000000", 6),  # its commit names the change
        deployment("d3", "api", REPO, None, 7, run="r1"),
    )
    assert pair.derive().mode == "full"
    # a run's branch names the change; another commit of the repository changes
    pair.write(run("r1", branch="release/CHG0030001"), commit(REPO, "b000000", 1))
    report = pair.derive()
    assert report.links["deployment>covered_by>release"].added == 1  # d3
    # the commit stops naming it; a deployment moves out of the window; the run is deleted
    pair.write(commit(REPO, "a000000", 0, message="deploy"), deployment("d1", "api", REPO, None, 5))
    report = pair.derive()
    assert report.links["deployment>covered_by>release"].removed == 2  # d1 (time rule), d2
    pair.delete("pipeline_run", "r1")
    assert pair.derive().links["deployment>covered_by>release"].removed == 1
    # a new change whose window holds d1, then a deployment of it, then the change is deleted
    pair.write(change_request("CHG0030002", "api", 4.5, 6.5, approval=None))
    assert pair.derive().links["deployment>covered_by>release"].added == 2  # d1 and d2 by time
    pair.write(deployment("d4", "api", REPO, None, 5.5))
    assert pair.derive().links["deployment>covered_by>release"].added == 1
    pair.delete("release", "CHG0030002")
    assert pair.derive().links["deployment>covered_by>release"].removed == 3


def _copy(source: Store, batches: int) -> list[dict[str, Any]]:
    """Every model table of `source`, split into `batches` slices (row i goes to slice i % batches)."""
    slices: list[dict[str, Any]] = [{} for _ in range(batches)]
    for kind, spec in TABLES.items():
        table = source.query_arrow(f'SELECT * FROM "{spec.name}" ORDER BY id')
        for k in range(batches):
            slices[k][kind] = table.take(pa.array(range(k, table.num_rows, batches), pa.int64()))
    return slices


def test_incremental_derivation_equals_full_on_a_demo_written_in_batches(
    open_store: Callable[[str], Store], engine: str
) -> None:
    demo = open_store("duckdb")
    demo.migrate()
    load_demo(demo, seed=7, items=300, as_of=dt.date(2025, 6, 30))
    pair = _Pair(open_store, engine)
    modes = []
    # rows arrive out of order: deployments before their commits, changes before their items, ...
    for batch in _copy(demo, 3):
        for s in (pair.incremental, pair.full):
            with s.transaction():
                for kind, rows in batch.items():
                    s.upsert(kind, rows)
        modes.append(pair.derive().mode)
    assert modes == ["full", "incremental", "incremental"]
    links_before = len(_derived(pair.incremental)["trace_links"])
    assert links_before > 1000

    # then edits and deletions spread over the data (written, like every writer does, by upsert)
    tidy = demo.query_arrow("SELECT * FROM commits ORDER BY id LIMIT 20")
    tidy = tidy.set_column(tidy.schema.get_field_index("message"), "message", pa.array(["tidy"] * 20))
    failed = demo.query_arrow("SELECT * FROM deployments ORDER BY id LIMIT 10")
    failed = failed.set_column(failed.schema.get_field_index("result"), "result", pa.array(["failure"] * 10))
    for s in (pair.incremental, pair.full):
        with s.transaction():
            s.upsert("commit", tidy)
            s.upsert("deployment", failed)
            s.delete_where("change_commit", "id IN (SELECT id FROM change_commits ORDER BY id LIMIT 15)")
            s.delete_where("work_item", "id IN (SELECT id FROM work_items ORDER BY id DESC LIMIT 10)")
    report = pair.derive()
    assert report.mode == "incremental"
    assert report.rows_removed > 0
    assert pair.derive().mode == "unchanged"


def test_a_new_item_key_is_looked_for_in_changes_while_no_commit_is_stored(
    open_store: Callable[[str], Store], engine: str
) -> None:
    """Webhook data often brings changes before any commit: a new item's key is then searched in an
    empty `commits` table too (PostgreSQL answered its columns untyped, and the derivation failed)."""
    pair = _Pair(open_store, engine)
    pair.write(change(REPO, 1, 2, title="PAY-7 refunds"))
    assert pair.derive().mode == "full"
    pair.write(item("PAY-7"))
    report = pair.derive()
    assert report.mode == "incremental"
    found = {(from_id, to_id) for from_id, to_id, _, _ in links(pair.incremental, "implemented_by")}
    assert found == {(rid("PAY-7"), rid(f"{REPO}#1"))}
