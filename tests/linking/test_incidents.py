"""Incident attribution: explicit first (deployment id, then a commit sha named in the cause), else the time
rule in the window; never if change_caused=false."""

from __future__ import annotations

from datetime import timedelta

from linking_records import change, commit, deployment, incident, links, rid, user_link, write

from obeya.linking import LinkingRules, derive_links
from obeya.store import Store

REPO = "pay/api"


def _deployments(store: Store) -> None:
    write(
        store,
        deployment("p1", "pay", "pay/api", "m000000", 0.5, 1),
        deployment("p2", "pay", "pay/api", "m100000", 1.5, 2, result="rolled_back"),  # counts: it ran
        deployment("f1", "pay", "pay/api", "m200000", 2.5, 3, result="failure"),  # failed: changed nothing
        deployment("s1", "pay", "pay/api", "m200000", 3, 3.5, environment="staging"),  # not production
        deployment("w1", "web", "pay/web", "w000000", 3, 3.8),  # another service
    )


def test_explicit_attribution_wins_and_time_rule_takes_the_latest_production_deployment(store: Store) -> None:
    _deployments(store)
    write(
        store,
        incident("i1", "pay", 4 + 1 / 6),  # 2h10m after p2 finished
        incident("i2", "pay", 4, caused_by="p1", evidence="postmortem: PR #41 broke refunds"),
        incident("i3", "pay", 4, caused_by="p1"),
        incident("i4", "pay", 32),  # 30 h after p2: outside the 24 h window
        incident("i5", "pay", 4, caused_by="p1", change_caused=False),  # ruled out, even with an id
        incident("i6", "pay", 4, change_caused=False),
        incident("i7", "pay", 5, change_caused=True),
        incident("i8", None, 4),  # no service: nothing to match
    )
    derive_links(store)
    assert links(store, "caused_by") == {
        (
            rid("i1"),
            rid("p2"),
            "time rule: latest production deployment of pay finished 2h10m before the incident (window 24h)",
            0.6,
        ),
        (rid("i2"), rid("p1"), "postmortem: PR #41 broke refunds", 1.0),
        (rid("i3"), rid("p1"), "explicit: caused_by_deployment_id", 1.0),
        (
            rid("i7"),
            rid("p2"),
            "time rule: latest production deployment of pay finished 3h before the incident (window 24h)",
            0.6,
        ),
    }


def test_the_window_is_a_rule(store: Store) -> None:
    _deployments(store)
    write(store, incident("i1", "pay", 4 + 1 / 6))
    derive_links(store, LinkingRules(incident_attribution_window=timedelta(hours=2)))
    assert links(store, "caused_by") == set()  # 2h10m > 2h
    derive_links(store, LinkingRules(incident_attribution_window=timedelta(hours=3)))
    assert links(store, "caused_by") == {
        (
            rid("i1"),
            rid("p2"),
            "time rule: latest production deployment of pay finished 2h10m before the incident (window 3h)",
            0.6,
        )
    }


def test_an_imported_attribution_of_the_incident_wins_over_the_time_rule(store: Store) -> None:
    _deployments(store)
    write(
        store,
        incident("i1", "pay", 4),
        user_link("incident", rid("i1"), "deployment", rid("p1"), "caused_by"),
    )
    derive_links(store)
    assert links(store, "caused_by") == set()
    assert {r[1] for r in links(store, "caused_by", source="jira")} == {rid("p1")}


FULL_SHA = "3f2a1bc9d4e5f60718293a4b5c6d7e8f90a1b2c3"


def test_a_commit_sha_named_in_the_cause_attributes_the_incident_to_the_deployment_of_that_commit(
    store: Store,
) -> None:
    """pay/api: a0 ← a1 (merge of #7, whose commit is b1) ← FULL_SHA. d1 deploys a0 (0.5 h), d2 a1 (3 h,
    ships #7), d3 FULL_SHA (6 h).
    i1 (10 h) names B100000 (upper case, short): b1 is in #7, which d2 shipped → d2, not the later d3
      the time rule would take.
    i2 (40 h) names the full sha of d3: d3, with no window (34 h after it).
    i3 (8 h) names deadbee, a commit nobody deployed: the time rule → d3 (1h50m before).
    i4 (3 h) names a1, but d2 finished at 3h10m, after the incident started: the time rule → d1.
    i5 (10 h, service web) names a1: d2 is not web's → nothing (web has no deployment)."""
    write(
        store,
        commit(REPO, "a000000", 0),
        commit(REPO, "b100000", 1, ["a000000"]),
        commit(REPO, "a100000", 2, ["a000000", "b100000"]),
        change(REPO, 7, 2, merge_sha="a100000", head_sha="b100000", commits=["b100000"], method="merge"),
        commit(REPO, FULL_SHA, 5, ["a100000"]),
        deployment("d1", "pay", REPO, "a000000", 0.5),
        deployment("d2", "pay", REPO, "a100000", 3),
        deployment("d3", "pay", REPO, FULL_SHA, 6),
        incident("i1", "pay", 10, evidence="Rollback of B100000: null pointer in refunds"),
        incident("i2", "pay", 40, evidence=f"postmortem: {FULL_SHA} broke the ledger"),
        incident("i3", "pay", 8, evidence="suspected deadbee"),
        incident("i4", "pay", 3, evidence="a100000 looks wrong"),
        incident("i5", "web", 10, evidence="a100000 again"),
    )
    derive_links(store)
    assert links(store, "caused_by") == {
        (
            rid("i1"),
            rid("d2"),
            "commit sha: the cause names b100000, in pay/api#7, which this deployment shipped",
            0.9,
        ),
        (rid("i2"), rid("d3"), "commit sha: the cause names 3f2a1bc9d4e5, this deployment's commit", 0.9),
        (
            rid("i3"),
            rid("d3"),
            "time rule: latest production deployment of pay finished 1h50m before the incident (window 24h)",
            0.6,
        ),
        (
            rid("i4"),
            rid("d1"),
            "time rule: latest production deployment of pay finished 2h20m before the incident (window 24h)",
            0.6,
        ),
    }
