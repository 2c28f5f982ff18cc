"""Incident attribution: explicit first, else the time rule in the window; never if change_caused=false."""

from __future__ import annotations

from datetime import timedelta

from linking_records import deployment, incident, links, rid, user_link, write

from obeya.linking import LinkingRules, derive_links
from obeya.store import Store


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
