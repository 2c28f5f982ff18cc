"""`derive_links`: every rule of docs/traceability.md, run in bulk and written idempotently."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pyarrow as pa

from obeya.linking.derived import SyncCount, remove_stale, sync_deployment_changes, sync_trace_links
from obeya.linking.incidents import incident_causes
from obeya.linking.keys import change_links, commit_links, item_ids_by_key
from obeya.linking.rules import LinkingRules
from obeya.linking.shipped import shipped_changes
from obeya.linking.structural import (
    change_contains_commit,
    deployment_deployed_by_run,
    pipeline_run_built_change,
    work_item_parent,
)
from obeya.store.base import Store

LINKS: tuple[tuple[str, str, str], ...] = (
    ("work_item", "implemented_by", "commit"),
    ("work_item", "implemented_by", "change"),
    ("change", "contains", "commit"),
    ("work_item", "parent_of", "work_item"),
    ("pipeline_run", "built", "change"),
    ("deployment", "deployed_by", "pipeline_run"),
    ("deployment", "ships", "change"),
    ("incident", "caused_by", "deployment"),
)
"""Every (from kind, link kind, to kind) `derive_links` writes."""


@dataclass
class LinkingReport:
    """What a `derive_links` run did."""

    links: dict[str, SyncCount] = field(default_factory=dict)  # by "from_kind>link_kind>to_kind"
    deployment_changes: SyncCount = field(default_factory=lambda: SyncCount("deployment_change", 0, 0, 0))
    deployments_by_graph: int = 0
    deployments_by_time_window: int = 0
    deployments_without_base: int = 0  # first successful deployment of a service/environment/repo
    deployments_without_repo: int = 0
    deployments_without_time: int = 0
    stale_removed: int = 0  # derived links of kinds no rule produces any more
    seconds: float = 0.0

    @property
    def rows_written(self) -> int:
        """Rows added or rewritten, over every link kind and the deployment changes."""
        return sum(c.written for c in self.links.values()) + self.deployment_changes.written

    @property
    def rows_removed(self) -> int:
        """Derived rows deleted because they no longer hold."""
        return (
            sum(c.removed for c in self.links.values()) + self.deployment_changes.removed + self.stale_removed
        )

    @property
    def total_links(self) -> int:
        """Derived trace links in the store after the run."""
        return sum(c.total for c in self.links.values())


def derive_links(store: Store, rules: LinkingRules | None = None) -> LinkingReport:
    """Derive every trace link and the shipped changes of every deployment, in one transaction.

    Idempotent: a second run over the same data writes nothing. Derived rows (``source = "obeya"``) that
    no longer hold are removed; rows from any other source are never touched, and where one links the same
    pair (for `caused_by`: the same incident) the derived row is left out.
    """
    rules = rules or LinkingRules()
    started = time.perf_counter()
    report = LinkingReport()
    with store.transaction():
        by_key = item_ids_by_key(store)

        def sync(
            from_kind: str, link_kind: str, to_kind: str, links: pa.Table, by_from: bool = False
        ) -> None:
            count = sync_trace_links(store, link_kind, from_kind, to_kind, links, explicit_by_from=by_from)
            report.links[count.name] = count

        sync("work_item", "implemented_by", "commit", commit_links(store, rules, by_key))
        sync("work_item", "implemented_by", "change", change_links(store, rules, by_key))
        sync("change", "contains", "commit", change_contains_commit(store))
        sync("work_item", "parent_of", "work_item", work_item_parent(store))
        sync("pipeline_run", "built", "change", pipeline_run_built_change(store))
        sync("deployment", "deployed_by", "pipeline_run", deployment_deployed_by_run(store))
        shipped, shipped_report = shipped_changes(store, rules)
        sync("deployment", "ships", "change", shipped)
        report.deployment_changes = sync_deployment_changes(store, shipped)
        sync("incident", "caused_by", "deployment", incident_causes(store, rules), by_from=True)
        report.stale_removed = remove_stale(store, LINKS)
    report.deployments_by_graph = shipped_report.by_graph
    report.deployments_by_time_window = shipped_report.by_time_window
    report.deployments_without_base = shipped_report.without_base
    report.deployments_without_repo = shipped_report.without_repo
    report.deployments_without_time = shipped_report.without_time
    report.seconds = time.perf_counter() - started
    return report
