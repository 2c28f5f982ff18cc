"""Deriving is idempotent, follows data changes, and never touches what a user imported."""

from __future__ import annotations

from typing import Any

from linking_records import SOURCE, change, commit, deployment, item, links, rid, shipped, user_link, write

from obeya.linking import derive_links
from obeya.model.records import DeploymentChange
from obeya.store import Store

REPO = "pay/api"


def _rows(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    return {
        table: store.query(f"SELECT * FROM {table} ORDER BY id")
        for table in ("trace_links", "deployment_changes")
    }


def _data(store: Store) -> None:
    write(
        store,
        item("PAY-1"),
        item("PAY-2", parent="PAY-1"),
        commit(REPO, "m000000", 0),
        commit(REPO, "b100000", 1, ["m000000"], message="PAY-2 refunds"),
        commit(REPO, "m100000", 2, ["m000000"], message="PAY-2 refunds (#1)"),
        change(
            REPO, 1, 2, merge_sha="m100000", head_sha="b100000", commits=["b100000"], title="PAY-2 refunds"
        ),
        commit(REPO, "m200000", 4, ["m100000"], message="PAY-1 ledger (#2)"),
        change(REPO, 2, 4, merge_sha="m200000", title="ledger", branch="PAY-1-ledger"),
        deployment("d1", "api", REPO, "m000000", 1),
        deployment("d2", "api", REPO, "m100000", 3),
        deployment("d3", "api", REPO, "m200000", 5),
    )


def test_deriving_twice_gives_identical_tables_and_writes_nothing(store: Store) -> None:
    _data(store)
    first = derive_links(store)
    before = _rows(store)
    second = derive_links(store)
    assert _rows(store) == before
    assert first.rows_written == len(before["trace_links"]) + len(before["deployment_changes"])
    assert (second.rows_written, second.rows_removed) == (0, 0)
    assert shipped(store) == {(rid("d2"), rid(f"{REPO}#1")), (rid("d3"), rid(f"{REPO}#2"))}


def test_changed_data_removes_obsolete_links_and_keeps_imported_ones(store: Store) -> None:
    _data(store)
    write(
        store,
        user_link("work_item", rid("PAY-1"), "change", rid(f"{REPO}#1"), "implemented_by"),
        user_link(
            "work_item", rid("PAY-2"), "change", rid(f"{REPO}#1"), "implemented_by"
        ),  # same pair as derived
        DeploymentChange(
            source="spinnaker", external_id="x", deployment_id=rid("d2"), change_id=rid(f"{REPO}#2")
        ),
    )
    derive_links(store)
    # the explicit PAY-2 → #1 link wins: no derived copy of that pair
    assert (rid("PAY-2"), rid(f"{REPO}#1")) not in {(r[0], r[1]) for r in links(store, "implemented_by")}

    # the commit message is edited (amended history re-imported): its link no longer holds
    write(store, commit(REPO, "b100000", 1, ["m000000"], message="refunds"))
    # d2 turns out to have failed: d3 now ships #1 as well
    write(store, deployment("d2", "api", REPO, "m100000", 3, result="failure"))
    report = derive_links(store)

    assert (rid("PAY-2"), rid("b100000")) not in {(r[0], r[1]) for r in links(store, "implemented_by")}
    assert shipped(store) == {(rid("d3"), rid(f"{REPO}#1")), (rid("d3"), rid(f"{REPO}#2"))}
    assert links(store, "implemented_by", source="jira") == {
        (rid("PAY-1"), rid(f"{REPO}#1"), "imported from Jira's development panel", 1.0),
        (rid("PAY-2"), rid(f"{REPO}#1"), "imported from Jira's development panel", 1.0),
    }
    assert store.query(
        "SELECT deployment_id, change_id FROM deployment_changes WHERE source = 'spinnaker'"
    ) == [(rid("d2"), rid(f"{REPO}#2"))]
    # removed: PAY-2 → b100000, d2 ships #1 (link and deployment_change), d2 deployed... d2's `ships` link
    assert report.links["work_item>implemented_by>commit"].removed == 1
    assert report.links["deployment>ships>change"].removed == 1
    assert report.deployment_changes.removed == 1
    assert report.deployment_changes.written == 1  # d3 → #1
    assert SOURCE == "t"
