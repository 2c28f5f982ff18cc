"""Keys in messages, titles and branches; the links records state outright (contains, parent_of, ...)."""

from __future__ import annotations

from linking_records import change, commit, deployment, item, links, rid, run, write

from obeya.linking import LinkingRules, derive_links
from obeya.store import Store


def test_commit_message_keys_link_known_work_items_only(store: Store) -> None:
    write(
        store,
        item("PAY-1"),
        item("PAY-2"),
        commit("pay/api", "c100000", 1, message="PAY-1 add refunds"),
        commit("pay/api", "c200000", 2, message="fix typo in README"),  # no key: no link
        commit("pay/api", "c300000", 3, message="OPS-9 tune alerts"),  # OPS-9 is no known item: no link
        commit("pay/api", "c400000", 4, message="PAY-1 and PAY-2: share the ledger"),
    )
    derive_links(store)
    assert links(store, "implemented_by") == {
        (rid("PAY-1"), rid("c100000"), "commit message mentions PAY-1", 0.9),
        (rid("PAY-1"), rid("c400000"), "commit message mentions PAY-1", 0.9),
        (rid("PAY-2"), rid("c400000"), "commit message mentions PAY-2", 0.9),
    }


def test_change_title_beats_branch_and_one_link_per_pair(store: Store) -> None:
    write(
        store,
        item("PAY-1"),
        item("PAY-2"),
        item("PAY-3"),
        change("pay/api", 1, 10, title="PAY-1: refunds", branch="feature/PAY-2-ledger"),
        change("pay/api", 2, 11, title="PAY-3 retries", branch="feature/PAY-3-retries"),
        change("pay/api", 3, 12, title="bump deps", branch="chore/deps"),
    )
    derive_links(store)
    assert links(store, "implemented_by") == {
        (rid("PAY-1"), rid("pay/api#1"), "change title mentions PAY-1", 0.95),
        (rid("PAY-2"), rid("pay/api#1"), "change branch mentions PAY-2", 0.9),
        (rid("PAY-3"), rid("pay/api#2"), "change title mentions PAY-3", 0.95),  # title (0.95) beats branch
    }


def test_github_issue_numbers_match_repo_scoped_and_bare_keys(store: Store) -> None:
    write(
        store,
        item("shop/web#12", project="web"),
        item("#7", project="web"),
        commit("shop/web", "c100000", 1, message="Fixes #12: null cart"),
        commit("shop/web", "c200000", 2, message="see #7"),
        commit("shop/web", "c300000", 3, message="closes #99"),  # no item #99
        commit("shop/api", "c400000", 4, message="fix #12"),  # other repo: shop/api#12 is no item
    )
    derive_links(store)
    assert links(store, "implemented_by") == {
        (rid("shop/web#12"), rid("c100000"), "commit message mentions #12", 0.9),
        (rid("#7"), rid("c200000"), "commit message mentions #7", 0.9),
    }


def test_custom_key_pattern(store: Store) -> None:
    write(store, item("PAY-1"), commit("pay/api", "c100000", 1, message="[pay-1] lower-case key"))
    derive_links(store, LinkingRules(key_patterns=(r"\[([a-z]+-\d+)\]",)))
    assert links(store, "implemented_by") == set()  # pay-1 is not PAY-1: keys are case-sensitive
    derive_links(store, LinkingRules(key_patterns=(r"(?i)\b([A-Z]+-\d+)\b",)))
    assert links(store, "implemented_by") == set()  # captures "pay-1" as written
    write(store, commit("pay/api", "c200000", 2, message="[PAY-1] upper"))
    derive_links(store, LinkingRules(key_patterns=(r"\[([A-Z]+-\d+)\]",)))
    assert links(store, "implemented_by") == {
        (rid("PAY-1"), rid("c200000"), "commit message mentions PAY-1", 0.9)
    }


def test_change_contains_its_commits_of_its_repository(store: Store) -> None:
    write(
        store,
        commit("pay/api", "b100000", 1),
        commit("pay/api", "b200000", 2, ["b100000"]),
        commit("pay/web", "b300000", 2),  # same change_commits sha in another repo: not this change's
        change("pay/api", 1, 5, commits=["b100000", "b200000", "b300000"]),
    )
    derive_links(store)
    assert links(store, "contains") == {
        (rid("pay/api#1"), rid("b100000"), "change_commits lists commit b100000", 1.0),
        (rid("pay/api#1"), rid("b200000"), "change_commits lists commit b200000", 1.0),
    }


def test_parent_of_from_parent_id(store: Store) -> None:
    write(store, item("PAY-1"), item("PAY-2", parent="PAY-1"), item("PAY-3", parent="PAY-1"))
    derive_links(store)
    assert links(store, "parent_of") == {
        (rid("PAY-1"), rid("PAY-2"), "parent_id of PAY-2 is PAY-1", 1.0),
        (rid("PAY-1"), rid("PAY-3"), "parent_id of PAY-3 is PAY-1", 1.0),
    }


def test_pipeline_run_built_change_by_id_or_head_and_deployment_deployed_by_run(store: Store) -> None:
    write(
        store,
        change("pay/api", 1, 5, merge_sha="m100000", head_sha="h100000"),
        run("r1", change_id=rid("pay/api#1")),
        run("r2", sha="h100000", repo="pay/api"),  # ran on the change's head
        run("r3", sha="h100000", change_id=rid("pay/api#1")),  # both: the change_id (1.0) wins
        run("r4", sha="h100000", repo="pay/web"),  # same sha in another repo: not this change
        run("deploy-1", sha="m100000"),
        deployment("d1", "api", "pay/api", "m100000", 6, run="deploy-1"),
    )
    derive_links(store)
    assert links(store, "built") == {
        (rid("r1"), rid("pay/api#1"), "pipeline run change_id is pay/api#1", 1.0),
        (rid("r2"), rid("pay/api#1"), "pipeline run commit h100000 is the head of pay/api#1", 0.9),
        (rid("r3"), rid("pay/api#1"), "pipeline run change_id is pay/api#1", 1.0),
    }
    assert links(store, "deployed_by") == {
        (rid("d1"), rid("deploy-1"), "deployment pipeline_run_id is ci run deploy-1", 1.0)
    }
