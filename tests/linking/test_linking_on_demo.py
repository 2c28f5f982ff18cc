"""derive_links on a small demo organisation: plausible coverage, and deployments ship changes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from obeya.demo import load_demo
from obeya.linking import derive_links, traceability_coverage
from obeya.store import Store


def test_demo_deployments_after_the_first_ship_changes(open_store: Callable[[str], Store]) -> None:
    store = open_store("duckdb")
    store.migrate()
    load_demo(store, seed=7, items=600, as_of=dt.date(2025, 6, 30))
    report = derive_links(store)
    assert report.deployments_without_base >= 1
    coverage = traceability_coverage(store)
    for label, share in coverage.as_rows():
        if share is coverage.deployments_with_approved_change:
            # the demo organisation keeps no change requests: none of its deployments has one
            assert share.numerator == 0 and share.denominator > 0
            continue
        assert share.share is not None and 0 < share.share <= 1, label
    after_first, shipping = store.query(
        "SELECT count(*), sum(CASE WHEN EXISTS (SELECT 1 FROM deployment_changes dc "
        "  WHERE dc.deployment_id = d.id) THEN 1 ELSE 0 END) "
        "FROM deployments d WHERE d.environment_class = 'production' AND d.result = 'success' "
        "AND EXISTS (SELECT 1 FROM deployments p WHERE p.service = d.service "
        "  AND p.environment = d.environment AND p.repo = d.repo AND p.result = 'success' "
        "  AND p.finished_at < d.finished_at)"
    )[0]
    assert after_first > 0
    assert shipping / after_first > 0.8, (shipping, after_first)
