"""Shipped changes of a deployment (docs/metrics.md): git graph, time window, first deployment, monorepo."""

from __future__ import annotations

import pyarrow.compute as pc
from linking_records import change, commit, deployment, rid, shipped, write

from obeya.linking import LinkingRules, derive_links
from obeya.linking.shipped import shipped_changes
from obeya.linking.touched import registered
from obeya.store import Store

REPO = "pay/api"


def _history(store: Store) -> None:
    """main: m0 ← m1 (squash of #1) ← r3 ← r4 (rebase of #2) ← m5 (merge of #3) ← m6 (#4) ← m7 (#5) ← m8 (#6).

    #1 squash: branch b1 ← b2 off m0, only the squash commit m1 is on main.
    #2 rebase: branch b3 ← b4 off m1, re-created on main as r3 ← r4 (new shas); merge_commit_sha is r4.
    #3 merge: branch b5 off r4, merge commit m5 with parents r4 and b5.
    """
    write(
        store,
        commit(REPO, "m000000", 0),
        commit(REPO, "b100000", 1, ["m000000"]),
        commit(REPO, "b200000", 1.5, ["b100000"]),
        commit(REPO, "m100000", 2, ["m000000"]),
        change(REPO, 1, 2, merge_sha="m100000", head_sha="b200000", commits=["b100000", "b200000"]),
        commit(REPO, "b300000", 3, ["m100000"]),
        commit(REPO, "b400000", 3.5, ["b300000"]),
        commit(REPO, "r300000", 4, ["m100000"]),
        commit(REPO, "r400000", 4, ["r300000"]),
        change(
            REPO,
            2,
            4,
            merge_sha="r400000",
            head_sha="b400000",
            commits=["b300000", "b400000"],
            method="rebase",
        ),
        commit(REPO, "b500000", 5, ["r400000"]),
        commit(REPO, "m500000", 6, ["r400000", "b500000"]),
        change(REPO, 3, 6, merge_sha="m500000", head_sha="b500000", commits=["b500000"], method="merge"),
        commit(REPO, "m600000", 8, ["m500000"]),
        change(REPO, 4, 8, merge_sha="m600000", head_sha="h400000"),
        commit(REPO, "m700000", 9, ["m600000"]),
        change(REPO, 5, 9, merge_sha="m700000", head_sha="h500000"),
        commit(REPO, "m800000", 11, ["m700000"]),
        change(REPO, 6, 11, merge_sha="m800000", head_sha="h600000"),
    )


def test_squash_rebase_merge_and_batched_changes_go_to_the_deployment_that_ships_them(store: Store) -> None:
    _history(store)
    write(
        store,
        deployment("d1", "api", REPO, "m000000", 1),  # first: no base, links nothing
        deployment("d2", "api", REPO, "m100000", 3),  # squash commit m1: ships #1
        deployment("d3", "api", REPO, "r400000", 5),  # rebased r4: ships #2
        deployment("d4", "api", REPO, "m500000", 7, result="failure"),  # failed: ships nothing
        deployment("d5", "api", REPO, "m700000", 10),  # ships #3 (merge commit), #4 and #5 in one batch
        deployment("s1", "api", REPO, "m000000", 0.5, environment="staging"),
        deployment("s2", "api", REPO, "m800000", 11.5, environment="staging"),  # staging: its own chain
    )
    report = derive_links(store)
    assert shipped(store) == {
        (rid("d2"), rid(f"{REPO}#1")),
        (rid("d3"), rid(f"{REPO}#2")),
        (rid("d5"), rid(f"{REPO}#3")),
        (rid("d5"), rid(f"{REPO}#4")),
        (rid("d5"), rid(f"{REPO}#5")),
        *((rid("s2"), rid(f"{REPO}#{n}")) for n in range(1, 7)),
    }
    ships = {
        (r[0], r[1]): (r[2], float(r[3]))
        for r in store.query(
            "SELECT from_id, to_id, evidence, confidence FROM trace_links WHERE link_kind = 'ships'"
        )
    }
    assert ships[(rid("d2"), rid(f"{REPO}#1"))] == (
        "git graph: merge commit m100000 in m000000..m100000",
        1.0,
    )
    assert ships[(rid("d3"), rid(f"{REPO}#2"))] == (
        "git graph: merge commit r400000 in m100000..r400000",
        1.0,
    )
    # the failed d4 is no base: d5's range starts at d3's commit
    assert ships[(rid("d5"), rid(f"{REPO}#3"))] == (
        "git graph: merge commit m500000 in r400000..m700000",
        1.0,
    )
    assert len(ships) == 11
    assert (
        report.deployments_without_base,
        report.deployments_by_graph,
        report.deployments_by_time_window,
    ) == (
        2,
        4,
        0,
    )


def test_the_first_deployment_of_a_service_links_nothing(store: Store) -> None:
    _history(store)
    write(store, deployment("d1", "api", REPO, "m800000", 12))
    report = derive_links(store)
    assert shipped(store) == set()  # not all six changes of history
    assert report.deployments_without_base == 1


def test_a_change_shipped_before_a_rollback_is_not_shipped_again(store: Store) -> None:
    _history(store)
    write(
        store,
        deployment("x1", "api", REPO, "m000000", 1),
        deployment("x2", "api", REPO, "m500000", 7),  # ships #1, #2, #3
        deployment("x3", "api", REPO, "m100000", 7.5),  # rollback to m1: nothing new
        deployment("x4", "api", REPO, "m700000", 10),  # ships #4 and #5 only, not #2 and #3 again
    )
    derive_links(store)
    assert shipped(store) == {
        (rid("x2"), rid(f"{REPO}#1")),
        (rid("x2"), rid(f"{REPO}#2")),
        (rid("x2"), rid(f"{REPO}#3")),
        (rid("x4"), rid(f"{REPO}#4")),
        (rid("x4"), rid(f"{REPO}#5")),
    }


def test_without_the_git_graph_the_time_window_between_starts_is_used(store: Store) -> None:
    repo = "ops/tool"  # no commit_parents: the graph is unknown
    write(
        store,
        change(repo, 1, 1),  # merged exactly at d1's start: d1's (first deployment), not linked
        change(repo, 2, 2),  # after d1's start, before d2's: d2
        change(repo, 3, 3),  # exactly at d2's start: d2 (the window includes its end)
        change(repo, 4, 5),  # d3
        change(repo, 5, 7),  # after the last deployment: not shipped yet
        change(repo, 6, None),  # open: never shipped
        deployment("d1", "tool", repo, "a000000", 1),
        deployment("d2", "tool", repo, "b000000", 3),
        deployment("d3", "tool", repo, None, 6),
    )
    report = derive_links(store)
    assert shipped(store) == {
        (rid("d2"), rid(f"{repo}#2")),
        (rid("d2"), rid(f"{repo}#3")),
        (rid("d3"), rid(f"{repo}#4")),
    }
    rows = store.query(
        "SELECT evidence, confidence FROM trace_links WHERE link_kind = 'ships' AND to_id = ?",
        (rid(f"{repo}#2"),),
    )
    assert [(r[0], float(r[1])) for r in rows] == [
        (
            "time window: merged 2025-03-01T11:00Z, between previous deployment start 2025-03-01T10:00Z "
            "and this start 2025-03-01T12:00Z",
            0.7,
        )
    ]
    assert (
        report.deployments_by_graph,
        report.deployments_by_time_window,
        report.deployments_without_base,
    ) == (
        0,
        2,
        1,
    )


def test_a_deployment_of_an_unknown_commit_falls_back_to_the_time_window(store: Store) -> None:
    _history(store)
    write(
        store,
        deployment("d1", "api", REPO, "m000000", 1),
        deployment("d2", "api", REPO, "fffffff", 3),  # commit not in the graph: window (10:00, 12:00]
        deployment("d3", "api", REPO, "m500000", 7),  # previous commit unknown: window (12:00, 16:00]
        deployment("d4", "api", REPO, "m700000", 10),  # both known: graph m5..m7
    )
    report = derive_links(store)
    assert shipped(store) == {
        (rid("d2"), rid(f"{REPO}#1")),  # merged at 11:00
        (rid("d3"), rid(f"{REPO}#2")),  # 13:00
        (rid("d3"), rid(f"{REPO}#3")),  # 15:00
        (rid("d4"), rid(f"{REPO}#4")),
        (rid("d4"), rid(f"{REPO}#5")),
    }
    assert (report.deployments_by_graph, report.deployments_by_time_window) == (1, 2)


def test_monorepo_services_are_told_apart_by_path(store: Store) -> None:
    repo = "acme/mono"
    write(
        store,
        commit(repo, "k000000", 0, paths=["README.md"]),
        commit(repo, "a100000", 1, ["k000000"], paths=["api/pay.py"]),
        commit(repo, "k100000", 2, ["k000000"], paths=["api/pay.py"]),  # squash of #1 (api)
        change(repo, 1, 2, merge_sha="k100000", head_sha="a100000", commits=["a100000"]),
        commit(repo, "w100000", 3, ["k100000"], paths=["web/cart.ts", "apidocs/x.md"]),
        commit(repo, "k200000", 4, ["k100000"], paths=["web/cart.ts", "apidocs/x.md"]),  # squash of #2 (web)
        change(repo, 2, 4, merge_sha="k200000", head_sha="w100000", commits=["w100000"]),
        deployment("api-1", "api", repo, "k000000", 1),
        deployment("api-2", "api", repo, "k200000", 5),
        deployment("web-1", "web", repo, "k000000", 1),
        deployment("web-2", "web", repo, "k200000", 5),
    )
    rules = LinkingRules(service_paths={"api": {repo: ("api/",)}, "web": {repo: ("web/",)}})
    derive_links(store, rules)
    assert shipped(store) == {(rid("api-2"), rid(f"{repo}#1")), (rid("web-2"), rid(f"{repo}#2"))}
    derive_links(store)  # without the paths, both deployments ship both changes
    assert len(shipped(store)) == 4


def test_a_deployment_of_several_repositories_is_linked_within_each_repository(store: Store) -> None:
    write(
        store,
        commit("shop/api", "a000000", 0),
        commit("shop/api", "a100000", 2, ["a000000"]),
        change("shop/api", 1, 2, merge_sha="a100000"),
        commit("shop/web", "w000000", 0),
        commit("shop/web", "w100000", 2, ["w000000"]),
        change("shop/web", 1, 2, merge_sha="w100000"),
        deployment("r1-api", "shop", "shop/api", "a000000", 1),
        deployment("r1-web", "shop", "shop/web", "w000000", 1),
        deployment("r2-api", "shop", "shop/api", "a100000", 3),
        deployment("r2-web", "shop", "shop/web", "w100000", 3),
    )
    derive_links(store)
    assert shipped(store) == {(rid("r2-api"), rid("shop/api#1")), (rid("r2-web"), rid("shop/web#1"))}


def test_limited_to_deployment_groups_the_rule_reads_only_their_chains(store: Store) -> None:
    """`shipped_changes(..., groups=)`: the chains of the groups named, each as a run over all gives."""
    _history(store)
    write(
        store,
        deployment("d1", "api", REPO, "m000000", 1),
        deployment("d2", "api", REPO, "m100000", 3),  # ships #1
        deployment("d3", "api", REPO, "m500000", 7),  # ships #2 and #3
        deployment("s1", "api", REPO, "m000000", 0.5, environment="staging"),
        deployment("s2", "api", REPO, "m800000", 11.5, environment="staging"),  # ships #1 to #6
        deployment("w1", "web", REPO, "m100000", 3),
        deployment("w2", "web", REPO, "m600000", 9),  # ships #2, #3 and #4
    )
    everything, _ = shipped_changes(store, LinkingRules())
    assert everything.num_rows == 3 + 6 + 3
    with registered(store, {"_test_groups": ["api|production", "web|production"]}):
        within, report = shipped_changes(store, LinkingRules(), "_test_groups")
    pairs = set(zip(within["from_id"].to_pylist(), within["to_id"].to_pylist(), strict=True))
    assert pairs == {
        (rid("d2"), rid(f"{REPO}#1")),
        (rid("d3"), rid(f"{REPO}#2")),
        (rid("d3"), rid(f"{REPO}#3")),
        (rid("w2"), rid(f"{REPO}#2")),
        (rid("w2"), rid(f"{REPO}#3")),
        (rid("w2"), rid(f"{REPO}#4")),
    }
    assert within.sort_by("from_id").equals(
        everything.filter(pc.invert(pc.starts_with(everything["from_id"], rid("s")))).sort_by("from_id")
    )
    assert (report.chains, report.without_base, report.by_graph) == (2, 2, 3)  # staging not read
