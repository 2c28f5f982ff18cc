"""Lead time for changes end to end: a git history, changes and deployments are written, `derive_links`
finds what each deployment shipped, and `lead_time_for_changes` reads it (docs/metrics.md, "Lead time
for changes"; docs/traceability.md, "Shipped changes").

Times are hours after T0 (`tests/linking/linking_records.py`); a deployment finishes when told. Lead
time is the change's first commit (author time) → the finish of the first successful production
deployment that ships it; every figure below is worked out by hand in the test's docstring.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from obeya.engine.dora import change_failure_rate, deployment_frequency, lead_time_for_changes
from obeya.engine.window import Slice, Window
from obeya.linking import LinkingRules, derive_links
from obeya.store import Store
from tests.linking.linking_records import T0, change, commit, deployment, write

HOUR = 3600.0
WINDOW = Window(T0 - timedelta(days=200), T0 + timedelta(days=200))
REPO = "pay/api"


def test_a_squash_merge_starts_at_the_first_commit_of_its_branch(store: Store) -> None:
    """Branch b1 (1 h) ← b2 (3 h) off m0 is squashed into m1 (10 h): only m1 is on main, and the change
    lists b1 and b2. d1 deploys m0 (first, no base), d2 deploys m1 and finishes at 12 h.
    Lead time: b1 1 h → 12 h = 11 h (not m1's 10 h → 2 h); deploy: merged 10 h → 12 h = 2 h."""
    write(
        store,
        commit(REPO, "m000000", 0),
        commit(REPO, "b100000", 1, ["m000000"]),
        commit(REPO, "b200000", 3, ["b100000"]),
        commit(REPO, "m100000", 10, ["m000000"]),
        change(REPO, 1, 10, merge_sha="m100000", head_sha="b200000", commits=["b100000", "b200000"]),
        deployment("d1", "api", REPO, "m000000", 0.5),
        deployment("d2", "api", REPO, "m100000", 11, 12),
    )
    derive_links(store)
    lead = lead_time_for_changes(store, WINDOW)
    assert lead.lead_time.count == 1
    assert lead.lead_time.p50 == pytest.approx(11 * HOUR)
    assert lead.deploy.p50 == pytest.approx(2 * HOUR)


def test_a_rebase_merge_is_matched_by_its_rebased_commits(store: Store) -> None:
    """Branch b3 (2 h) ← b4 (4 h) off m0 is rebased onto main as r3 ← r4 (new shas, author times kept);
    the change's merge commit is r4, its commits b3 and b4. d2 deploys r4 and finishes at 9 h.
    Lead time: b3 2 h → 9 h = 7 h."""
    write(
        store,
        commit(REPO, "m000000", 0),
        commit(REPO, "b300000", 2, ["m000000"]),
        commit(REPO, "b400000", 4, ["b300000"]),
        commit(REPO, "r300000", 2, ["m000000"]),
        commit(REPO, "r400000", 4, ["r300000"]),
        change(
            REPO,
            2,
            6,
            merge_sha="r400000",
            head_sha="b400000",
            commits=["b300000", "b400000"],
            method="rebase",
        ),
        deployment("d1", "api", REPO, "m000000", 0.5),
        deployment("d2", "api", REPO, "r400000", 8, 9),
    )
    derive_links(store)
    lead = lead_time_for_changes(store, WINDOW)
    assert lead.lead_time.count == 1
    assert lead.lead_time.p50 == pytest.approx(7 * HOUR)


def test_changes_batched_into_one_deployment_each_keep_their_own_lead_time(store: Store) -> None:
    """Three merge commits on main: m1 (2 h, merges c1 authored 1 h), m2 (4 h, c2 at 2.5 h), m3 (6 h, c3
    at 5 h). d2 deploys m3 and finishes at 8 h: it ships all three.
    Lead times 7 h, 5.5 h, 3 h → count 3, median 5.5 h; deploy parts 6, 4, 2 h → median 4 h."""
    write(
        store,
        commit(REPO, "m000000", 0),
        commit(REPO, "c100000", 1, ["m000000"]),
        commit(REPO, "m100000", 2, ["m000000", "c100000"]),
        change(REPO, 1, 2, merge_sha="m100000", head_sha="c100000", commits=["c100000"], method="merge"),
        commit(REPO, "c200000", 2.5, ["m100000"]),
        commit(REPO, "m200000", 4, ["m100000", "c200000"]),
        change(REPO, 2, 4, merge_sha="m200000", head_sha="c200000", commits=["c200000"], method="merge"),
        commit(REPO, "c300000", 5, ["m200000"]),
        commit(REPO, "m300000", 6, ["m200000", "c300000"]),
        change(REPO, 3, 6, merge_sha="m300000", head_sha="c300000", commits=["c300000"], method="merge"),
        deployment("d1", "api", REPO, "m000000", 0.5),
        deployment("d2", "api", REPO, "m300000", 7.5, 8),
    )
    derive_links(store)
    lead = lead_time_for_changes(store, WINDOW)
    assert lead.lead_time.count == 3
    assert lead.lead_time.p50 == pytest.approx(5.5 * HOUR)
    assert lead.deploy.p50 == pytest.approx(4 * HOUR)


def test_a_services_first_deployment_has_no_base_and_its_changes_are_left_out(store: Store) -> None:
    """Change #1 (commit c1 authored 2 000 h before T0, merged as m1 at -1 990 h) goes out with the
    service's first deployment d1 (T0): with no previous deployment there is no base, so it is left out,
    not counted as 2 000 h. #2 (c2 at 1 h, merged as m2 at 3 h) is shipped by d2 (finish 5 h): 4 h."""
    write(
        store,
        commit(REPO, "c100000", -2000),
        commit(REPO, "m100000", -1990, ["c100000"]),
        change(REPO, 1, -1990, merge_sha="m100000", head_sha="c100000", commits=["c100000"]),
        commit(REPO, "c200000", 1, ["m100000"]),
        commit(REPO, "m200000", 3, ["m100000", "c200000"]),
        change(REPO, 2, 3, merge_sha="m200000", head_sha="c200000", commits=["c200000"], method="merge"),
        deployment("d1", "api", REPO, "m100000", 0, 0.5),
        deployment("d2", "api", REPO, "m200000", 4, 5),
    )
    report = derive_links(store)
    assert report.deployments_without_base == 1
    lead = lead_time_for_changes(store, WINDOW)
    assert lead.lead_time.count == 1
    assert lead.lead_time.p50 == pytest.approx(4 * HOUR)
    only_first = lead_time_for_changes(store, Window(T0 - timedelta(hours=1), T0 + timedelta(hours=1)))
    assert only_first.lead_time.count == 0 and only_first.lead_time.p50 is None  # no data, not 2 000 h


def test_one_deployment_of_several_repositories_counts_once_and_keeps_each_repositorys_lead_time(
    store: Store,
) -> None:
    """Service shop ships shop/api and shop/web together, stored as one row per repository: r1 (both
    rows finish at 1h10m, the first: no base) and r2 (both rows start 10 h, finish 11 h).
    api #1: commit a1 at 2 h, merged as a2 at 4 h; web #1: commit w1 at 5 h, merged as w2 at 6 h.
    Lead times: api 2 h → 11 h = 9 h, web 5 h → 11 h = 6 h → count 2, median 7.5 h.
    Deployment frequency: 2 deployments (r1, r2), not 4 rows; change failure rate over 2."""
    write(
        store,
        commit("shop/api", "a000000", 0),
        commit("shop/api", "a100000", 2, ["a000000"]),
        commit("shop/api", "a200000", 4, ["a000000", "a100000"]),
        change("shop/api", 1, 4, merge_sha="a200000", commits=["a100000"], method="merge"),
        commit("shop/web", "w000000", 0),
        commit("shop/web", "w100000", 5, ["w000000"]),
        commit("shop/web", "w200000", 6, ["w000000", "w100000"]),
        change("shop/web", 1, 6, merge_sha="w200000", commits=["w100000"], method="merge"),
        deployment("r1-api", "shop", "shop/api", "a000000", 1),
        deployment("r1-web", "shop", "shop/web", "w000000", 1),
        deployment("r2-api", "shop", "shop/api", "a200000", 10, 11),
        deployment("r2-web", "shop", "shop/web", "w200000", 10, 11),
    )
    derive_links(store)
    lead = lead_time_for_changes(store, WINDOW)
    assert lead.lead_time.count == 2
    assert lead.lead_time.p50 == pytest.approx(7.5 * HOUR)
    assert deployment_frequency(store, WINDOW).deployments == 2
    assert change_failure_rate(store, WINDOW).rate.denominator == 2


def test_a_monorepo_tells_services_apart_by_path(store: Store) -> None:
    """acme/mono holds services api (api/) and web (web/). #1 (a1 at 2 h, touching api/main.py) is merged
    as M1 at 4 h; #2 (w1 at 3 h, touching web/app.js) as M2 at 5 h. Both services first deploy m0 (no
    base); api's d2 deploys M2 and finishes at 8 h, web's e2 deploys M2 and finishes at 12 h.
    With the service paths: api ships #1 only (2 h → 8 h = 6 h), web #2 only (3 h → 12 h = 9 h).
    Without them, each deployment ships both, and web's lead time takes #1 too."""
    repo = "acme/mono"
    write(
        store,
        commit(repo, "m000000", 0, paths=["api/main.py", "web/app.js"]),
        commit(repo, "a100000", 2, ["m000000"], paths=["api/main.py"]),
        commit(repo, "k100000", 4, ["m000000", "a100000"]),
        change(repo, 1, 4, merge_sha="k100000", commits=["a100000"], method="merge"),
        commit(repo, "w100000", 3, ["m000000"], paths=["web/app.js"]),
        commit(repo, "k200000", 5, ["k100000", "w100000"]),
        change(repo, 2, 5, merge_sha="k200000", commits=["w100000"], method="merge"),
        deployment("d1", "api", repo, "m000000", 0.5),
        deployment("e1", "web", repo, "m000000", 0.5),
        deployment("d2", "api", repo, "k200000", 7, 8),
        deployment("e2", "web", repo, "k200000", 11, 12),
    )
    derive_links(store, LinkingRules(service_paths={"api": {repo: ("api/",)}, "web": {repo: ("web/",)}}))
    api = lead_time_for_changes(store, WINDOW, Slice(service="api"))
    web = lead_time_for_changes(store, WINDOW, Slice(service="web"))
    assert (api.lead_time.count, api.lead_time.p50) == (1, pytest.approx(6 * HOUR))
    assert (web.lead_time.count, web.lead_time.p50) == (1, pytest.approx(9 * HOUR))
    derive_links(store)  # without the paths: web ships #1 (2 h → 12 h = 10 h) and #2 (9 h)
    web = lead_time_for_changes(store, WINDOW, Slice(service="web"))
    assert (web.lead_time.count, web.lead_time.p50) == (2, pytest.approx(9.5 * HOUR))
