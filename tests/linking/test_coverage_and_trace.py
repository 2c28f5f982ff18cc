"""Traceability coverage (numerator, denominator, share; None for no data), `trace` and the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from linking_records import change, commit, deployment, incident, item, rid, run, stream, write
from typer.testing import CliRunner

from obeya.cli.trace import link, trace
from obeya.linking import (
    Coverage,
    UnknownValueStream,
    UnknownWorkItemKey,
    derive_links,
    traceability_coverage,
)
from obeya.linking import trace as trace_chain
from obeya.store import Store, connect

REPO = "pay/api"


def _data(store: Store) -> None:
    write(
        store,
        stream("payments", ("project", "PAY"), ("repository", REPO), ("service", "api")),
        stream("web", ("project", "WEB"), ("repository", "shop/web"), ("service", "web")),
        item("PAY-1", done=True),
        item("PAY-2", parent="PAY-1", done=True),
        item("PAY-3"),
        item("WEB-1", done=True),
        commit(REPO, "m000000", 0, message="init"),
        commit(REPO, "b100000", 1, ["m000000"], message="PAY-2 refunds"),
        commit(REPO, "m100000", 2, ["m000000"], message="refunds (#1)"),
        change(REPO, 1, 2, merge_sha="m100000", head_sha="b100000", commits=["b100000"], title="refunds"),
        commit(REPO, "m200000", 3, ["m100000"], message="hotfix pushed to main"),
        commit(REPO, "m300000", 4, ["m200000"], message="bump deps (#2)"),
        change(REPO, 2, 4, merge_sha="m300000", title="bump deps"),
        change(REPO, 3, None, title="PAY-3 draft"),
        run("r1", change_id=rid(f"{REPO}#1")),
        deployment("d1", "api", REPO, "m000000", 1),
        deployment("d2", "api", REPO, "m100000", 2.5),
        deployment("d3", "api", REPO, "m300000", 5),
        deployment("f1", "api", REPO, "m300000", 4.5, result="failure"),
        deployment("s1", "api", REPO, "m300000", 4.2, environment="staging"),
        incident("i1", "api", 3),  # time rule: d2
        incident("i2", "api", 6, change_caused=False),
        incident("i3", "web", 6),  # no web deployment
    )


def test_coverage_counts_by_hand(store: Store) -> None:
    _data(store)
    derive_links(store)
    everything = traceability_coverage(store)
    # successful production deployments d1, d2, d3: only d2 ships a change (#1) that reaches a work item
    assert everything.deployments_with_work_item == Coverage(1, 3)
    # m0 and m2 belong to no change; b1 is in #1, m1 and m3 are the merge commits of #1 and #2
    assert everything.commits_in_change == Coverage(3, 5)
    # #1 has PAY-2 through its commit b1; #2 has none; #3 is not merged
    assert everything.changes_with_work_item == Coverage(1, 2)
    # done: PAY-1, PAY-2, WEB-1; only PAY-2 has a change
    assert everything.work_items_with_change == Coverage(1, 3)
    # i2 is ruled out; i1 is attributed to d2, i3 to nothing
    assert everything.incidents_attributed == Coverage(1, 2)
    assert everything.incidents_attributed.share == 0.5

    payments = traceability_coverage(store, rid("vs/payments"))
    assert payments.work_items_with_change == Coverage(1, 2)
    assert payments.incidents_attributed == Coverage(1, 1)
    web = traceability_coverage(store, rid("vs/web"))
    assert web.commits_in_change == Coverage(0, 0)
    assert web.commits_in_change.share is None  # no data, not 0
    assert web.work_items_with_change == Coverage(0, 1)
    assert web.work_items_with_change.share == 0.0
    with pytest.raises(UnknownValueStream, match="vs/nope"):
        traceability_coverage(store, "vs/nope")


def test_coverage_of_an_empty_store_is_no_data(store: Store) -> None:
    coverage = traceability_coverage(store)
    assert [c.share for _, c in coverage.as_rows()] == [None] * 6


def test_trace_follows_one_work_item(store: Store) -> None:
    _data(store)
    derive_links(store)
    chain = trace_chain(store, "PAY-2")
    assert chain.item.id == rid("PAY-2")
    assert chain.parent is not None and chain.parent.node.id == rid("PAY-1")
    assert chain.children == []
    # #1's title names no item: it is PAY-2's through its commit b1, which names PAY-2
    assert [(s.node.id, s.via, s.link_kind) for s in chain.changes] == [
        (rid(f"{REPO}#1"), rid("b100000"), "contained_in")
    ]
    assert [(s.node.id, s.via, s.link_kind) for s in chain.commits] == [
        (rid("b100000"), rid("PAY-2"), "implemented_by")
    ]
    assert [(s.node.id, s.via) for s in chain.pipeline_runs] == [(rid("r1"), rid(f"{REPO}#1"))]
    assert [(s.node.id, s.via, s.evidence, s.confidence) for s in chain.deployments] == [
        (rid("d2"), rid(f"{REPO}#1"), "git graph: merge commit m100000 in m000000..m100000", 1.0)
    ]
    assert [(s.node.id, s.via, s.confidence) for s in chain.incidents] == [(rid("i1"), rid("d2"), 0.6)]
    assert trace_chain(store, "PAY-1").children[0].node.id == rid("PAY-2")


def test_trace_of_an_unknown_key_names_it(store: Store) -> None:
    with pytest.raises(UnknownWorkItemKey, match="'PAY-404'"):
        trace_chain(store, "PAY-404")


def test_link_and_trace_commands(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path}/cli.duckdb"
    with connect(url) as store:
        store.migrate()
        _data(store)
    app = typer.Typer()
    app.command("trace")(trace)
    app.command("link")(link)
    runner = CliRunner()
    for command in ("trace", "link"):
        helped = runner.invoke(app, [command, "--help"])
        assert helped.exit_code == 0 and "Examples" in helped.output and f"obeya {command}" in helped.output
    linked = runner.invoke(app, ["link", "--database-url", url])
    assert linked.exit_code == 0, linked.output
    assert "deployment_changes" in linked.output and "1 of 3" in linked.output
    traced = runner.invoke(app, ["trace", "PAY-2", "--database-url", url], terminal_width=200)
    assert traced.exit_code == 0, traced.output
    assert "PAY-2" in traced.output and "git graph: merge commit m100000" in traced.output
    missing = runner.invoke(app, ["trace", "PAY-404", "--database-url", url])
    assert missing.exit_code == 1 and "PAY-404" in missing.output
