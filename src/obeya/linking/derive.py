"""`derive_links` and `update_links`: every rule of docs/traceability.md, run in bulk, written idempotently.

`derive_links` derives every link from scratch. `update_links` re-derives only what the records added,
changed or deleted since the last derivation can affect (`obeya.linking.touched` finds them), and gives
the same links as `derive_links` would: each rule's links are recomputed for the records in its *scope*
(the touched records and their neighbours, below) and left alone everywhere else.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa

from obeya.linking.changes import change_requests
from obeya.linking.derived import (
    DERIVED_SOURCE,
    Scope,
    SyncCount,
    remove_stale,
    sync_deployment_changes,
    sync_trace_links,
)
from obeya.linking.incidents import incident_causes
from obeya.linking.keys import (
    change_links,
    change_links_within,
    commit_links,
    commit_links_within,
    item_ids_by_key,
)
from obeya.linking.rules import LinkingRules
from obeya.linking.shipped import shipped_changes
from obeya.linking.structural import (
    change_contains_commit,
    deployment_deployed_by_run,
    pipeline_run_built_change,
    work_item_parent,
)
from obeya.linking.touched import (
    DEPLOYMENT_GROUP,
    EXPLICIT,
    Touched,
    find_touched,
    read_state,
    record_seen,
    registered,
    rules_fingerprint,
    write_state,
)
from obeya.store.base import Store

_LOCK = threading.Lock()
"""One derivation at a time in a process (the scheduled sync and the webhook worker of `obeya serve`)."""

LINKS: tuple[tuple[str, str, str], ...] = (
    ("work_item", "implemented_by", "commit"),
    ("work_item", "implemented_by", "change"),
    ("change", "contains", "commit"),
    ("work_item", "parent_of", "work_item"),
    ("pipeline_run", "built", "change"),
    ("deployment", "deployed_by", "pipeline_run"),
    ("deployment", "ships", "change"),
    ("incident", "caused_by", "deployment"),
    ("deployment", "covered_by", "release"),
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
    mode: Literal["full", "incremental", "unchanged"] = "full"
    touched: dict[str, int] = field(default_factory=dict)  # records touched since the last derivation

    @property
    def added(self) -> int:
        """Derived rows (trace links and deployment changes) that were not stored before."""
        return sum(c.added for c in self.links.values()) + self.deployment_changes.added

    @property
    def changed(self) -> int:
        """Derived rows rewritten in place (another evidence or confidence)."""
        return sum(c.changed for c in self.links.values()) + self.deployment_changes.changed

    def summary(self) -> str:
        """One line: what the derivation did (``linked: 12 added, 0 changed, 3 removed (incremental…)``)."""
        if self.mode == "unchanged":
            return "linked: nothing to do, no data changed since the last derivation"
        return (
            f"linked: {self.added:,} added, {self.changed:,} changed, {self.rows_removed:,} removed "
            f"({self.mode}, {self.seconds:.1f} s)"
        )

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
        """Derived trace links in the store after the run (of the rules that ran, when incremental)."""
        return sum(c.total for c in self.links.values())


def derive_links(store: Store, rules: LinkingRules | None = None) -> LinkingReport:
    """Derive every trace link and the shipped changes of every deployment, in one transaction.

    Idempotent: a second run over the same data writes nothing. Derived rows (``source = "obeya"``) that
    no longer hold are removed; rows from any other source are never touched, and where one links the same
    pair (for `caused_by`: the same incident) the derived row is left out. Records the watermark
    `update_links` starts from.
    """
    rules = rules or LinkingRules()
    started = time.perf_counter()
    with _LOCK, store.transaction():
        report = _derive_full(store, rules)
    report.seconds = time.perf_counter() - started
    return report


def update_links(store: Store, rules: LinkingRules | None = None) -> LinkingReport:
    """Re-derive the links the data written since the last derivation can change; the same links as
    `derive_links`, at the cost of what changed.

    Nothing changed (the store's data version is the one the links were derived at): returns at once,
    mode ``unchanged``. Never derived before, other rules than last time, or a user's own trace link or
    deployment change added or changed: a full derivation. Otherwise each rule runs for its scope only
    (docs/traceability.md, "When links are derived").
    """
    rules = rules or LinkingRules()
    started = time.perf_counter()
    with _LOCK:
        version, fingerprint = read_state(store)
        if version >= 0 and fingerprint == rules_fingerprint(rules) and version == store.data_version():
            return LinkingReport(mode="unchanged", seconds=time.perf_counter() - started)
        with store.transaction():
            if version < 0 or fingerprint != rules_fingerprint(rules):
                report = _derive_full(store, rules)
            else:
                before = store.data_version()
                touched = find_touched(store)
                if touched.any(*EXPLICIT):
                    report = _derive_full(store, rules)
                else:
                    report = _derive_touched(store, rules, touched)
                    record_seen(store, touched)
                    wrote = report.rows_written + report.rows_removed > 0
                    write_state(store, before + (1 if wrote else 0), rules)
                report.touched = touched.counts()
    report.seconds = time.perf_counter() - started
    return report


def _derive_full(store: Store, rules: LinkingRules) -> LinkingReport:
    """Every rule over every record, then the watermark (inside the caller's transaction)."""
    before = store.data_version()
    report = LinkingReport()
    by_key = item_ids_by_key(store)

    def sync(from_kind: str, link_kind: str, to_kind: str, links: pa.Table, by_from: bool = False) -> None:
        count = sync_trace_links(store, link_kind, from_kind, to_kind, links, explicit_by_from=by_from)
        report.links[count.name] = count

    sync("work_item", "implemented_by", "commit", commit_links(store, rules, by_key))
    sync("work_item", "implemented_by", "change", change_links(store, rules, by_key))
    sync("change", "contains", "commit", change_contains_commit(store))
    sync("work_item", "parent_of", "work_item", work_item_parent(store))
    sync("pipeline_run", "built", "change", pipeline_run_built_change(store))
    sync("deployment", "deployed_by", "pipeline_run", deployment_deployed_by_run(store))
    _shipped(store, rules, report)
    sync("incident", "caused_by", "deployment", incident_causes(store, rules), by_from=True)
    sync("deployment", "covered_by", "release", change_requests(store, rules), by_from=True)
    report.stale_removed = remove_stale(store, LINKS)
    record_seen(store, None)
    write_state(store, before + 1, rules)  # `remove_stale` deletes: the transaction bumps the version
    return report


def _shipped(
    store: Store,
    rules: LinkingRules,
    report: LinkingReport,
    scope: Scope | None = None,
    groups: str | None = None,
) -> None:
    """The shipped-changes rule: of every deployment, or of the deployment groups in SQL table `groups`
    (then `scope` holds their deployments: the derived rows left alone outside it)."""
    shipped, shipped_report = shipped_changes(store, rules, groups)
    count = sync_trace_links(store, "ships", "deployment", "change", shipped, scope=scope)
    report.links[count.name] = count
    report.deployment_changes = sync_deployment_changes(store, shipped, scope)
    report.deployments_by_graph = shipped_report.by_graph
    report.deployments_by_time_window = shipped_report.by_time_window
    report.deployments_without_base = shipped_report.without_base
    report.deployments_without_repo = shipped_report.without_repo
    report.deployments_without_time = shipped_report.without_time


_SHIPPED_READS = ("deployment", "commit", "commit_parent", "change", "change_commit")
"""What the shipped changes of a deployment depend on: when none changed, they are left alone."""
_CAUSES_READS = ("incident", "deployment", "commit", "change")
"""What incident attribution reads (commits and changes: for attribution by commit)."""
_COVERED_READS = ("deployment", "commit", "pipeline_run", "release")
"""What the change requests of a deployment depend on."""


def _derive_touched(store: Store, rules: LinkingRules, touched: Touched) -> LinkingReport:
    """Each rule whose inputs were touched, within its scope (inside the caller's transaction)."""
    report = LinkingReport(mode="incremental")
    t = {kind: f"_obeya_touched_{kind}" for kind in touched.ids}
    with ExitStack() as stack:
        stack.enter_context(registered(store, {t[k]: touched.of(k) for k in t}))
        scopes = 0

        def ids(sql: str) -> list[str]:
            return [row[0] for row in store.query(sql, (DERIVED_SOURCE,) if "?" in sql else ())]

        def derived_links(
            link_kind: str, from_kind: str, to_kind: str, select: str, where: str, kind: str
        ) -> str:
            return (
                f"SELECT {select} FROM trace_links WHERE source = ? AND link_kind = '{link_kind}' "
                f"AND from_kind = '{from_kind}' AND to_kind = '{to_kind}' "
                f"AND {where} IN (SELECT item_id FROM {t[kind]})"
            )

        def scope(column: str, members: Sequence[str]) -> Scope:
            nonlocal scopes
            scopes += 1
            name = f"_obeya_link_scope_{scopes}"
            unique = sorted(set(members))
            stack.enter_context(registered(store, {name: unique}))
            return Scope(column, name, pa.array(unique, pa.string()))

        def sync(
            from_kind: str,
            link_kind: str,
            to_kind: str,
            links: Callable[[Scope], pa.Table],
            within: Scope,
            by_from: bool = False,
        ) -> None:
            count = sync_trace_links(
                store, link_kind, from_kind, to_kind, links(within), explicit_by_from=by_from, scope=within
            )
            report.links[count.name] = count

        by_key = item_ids_by_key(store) if touched.any("work_item", "commit", "change") else {}
        keys = ids(f"SELECT key FROM work_items WHERE id IN (SELECT item_id FROM {t['work_item']})")

        # work item → commit: touched commits, those linked to a touched item, those naming its key
        if touched.any("work_item", "commit"):
            listed = touched.of("commit") + ids(
                derived_links("implemented_by", "work_item", "commit", "to_id", "from_id", "work_item")
            )
            first = scope("to_id", listed)
            links, found = commit_links_within(store, rules, by_key, first.table, keys)
            within = scope("to_id", listed + found.to_pylist())
            sync("work_item", "implemented_by", "commit", lambda _: links, within)
        # work item → change: the same for changes (title and branch)
        if touched.any("work_item", "change"):
            listed = touched.of("change") + ids(
                derived_links("implemented_by", "work_item", "change", "to_id", "from_id", "work_item")
            )
            first = scope("to_id", listed)
            change_found, found = change_links_within(store, rules, by_key, first.table, keys)
            within = scope("to_id", listed + found.to_pylist())
            sync("work_item", "implemented_by", "change", lambda _: change_found, within)
        # change → commit: touched changes, changes of touched change_commits (now and before), changes
        # listing a touched commit (now, and those linked to it before)
        if touched.any("change", "change_commit", "commit"):
            members = (
                touched.of("change")
                + touched.old_refs.get("change_commit", [])
                + ids(
                    "SELECT change_id FROM change_commits WHERE id IN "
                    f"(SELECT item_id FROM {t['change_commit']})"
                )
                + ids(derived_links("contains", "change", "commit", "from_id", "to_id", "commit"))
                + ids(
                    "SELECT ch.id FROM commits c JOIN change_commits cc ON cc.commit_sha = c.sha "
                    "JOIN changes ch ON ch.id = cc.change_id AND ch.repo = c.repo "
                    f"WHERE c.id IN (SELECT item_id FROM {t['commit']})"
                )
            )
            sync(
                "change",
                "contains",
                "commit",
                lambda s: change_contains_commit(store, s.table),
                scope("from_id", members),
            )
        # parent → child: touched children, children of touched parents (now and before)
        if touched.any("work_item"):
            members = (
                touched.of("work_item")
                + ids(f"SELECT id FROM work_items WHERE parent_id IN (SELECT item_id FROM {t['work_item']})")
                + ids(derived_links("parent_of", "work_item", "work_item", "to_id", "from_id", "work_item"))
            )
            sync(
                "work_item",
                "parent_of",
                "work_item",
                lambda s: work_item_parent(store, s.table),
                scope("to_id", members),
            )
        # run → change: touched runs, runs naming or building a touched change (now and before)
        if touched.any("pipeline_run", "change"):
            members = (
                touched.of("pipeline_run")
                + ids(f"SELECT id FROM pipeline_runs WHERE change_id IN (SELECT item_id FROM {t['change']})")
                + ids(
                    "SELECT r.id FROM pipeline_runs r JOIN changes ch ON ch.head_sha = r.commit_sha "
                    f"WHERE ch.id IN (SELECT item_id FROM {t['change']})"
                )
                + ids(derived_links("built", "pipeline_run", "change", "from_id", "to_id", "change"))
            )
            sync(
                "pipeline_run",
                "built",
                "change",
                lambda s: pipeline_run_built_change(store, s.table),
                scope("from_id", members),
            )
        # deployment → run: touched deployments, deployments naming a touched run
        if touched.any("deployment", "pipeline_run"):
            members = (
                touched.of("deployment")
                + ids(
                    "SELECT id FROM deployments WHERE pipeline_run_id IN "
                    f"(SELECT item_id FROM {t['pipeline_run']})"
                )
                + ids(
                    derived_links(
                        "deployed_by", "deployment", "pipeline_run", "from_id", "to_id", "pipeline_run"
                    )
                )
            )
            sync(
                "deployment",
                "deployed_by",
                "pipeline_run",
                lambda s: deployment_deployed_by_run(store, s.table),
                scope("from_id", members),
            )
        # shipped changes: the deployment groups (service, environment) of touched deployments (now and
        # before), and the groups deploying a repository whose commits or changes were touched
        if touched.any(*_SHIPPED_READS):
            repos = [
                *touched.old_refs.get("commit", []),
                *touched.old_refs.get("commit_parent", []),
                *touched.old_refs.get("change", []),
            ]
            for kind, table in (
                ("commit", "commits"),
                ("commit_parent", "commit_parents"),
                ("change", "changes"),
            ):
                repos += ids(f"SELECT repo FROM {table} WHERE id IN (SELECT item_id FROM {t[kind]})")
            moved = scope("to_id", touched.old_refs.get("change_commit", []))
            repos += ids(
                "SELECT ch.repo FROM changes ch WHERE ch.id IN (SELECT change_id FROM change_commits "
                f"WHERE id IN (SELECT item_id FROM {t['change_commit']})) "
                f"OR ch.id IN (SELECT item_id FROM {moved.table})"
            )
            repo_scope = scope("to_id", [r for r in repos if r is not None])
            group = DEPLOYMENT_GROUP.format(t="")
            groups = [
                *touched.old_refs.get("deployment", []),
                *ids(f"SELECT {group} FROM deployments WHERE id IN (SELECT item_id FROM {t['deployment']})"),
                *ids(
                    f"SELECT {group} FROM deployments WHERE repo IN (SELECT item_id FROM {repo_scope.table})"
                ),
            ]
            if groups:
                group_scope = scope("from_id", groups)
                in_groups = f"{group} IN (SELECT item_id FROM {group_scope.table})"
                members = touched.of("deployment") + ids(f"SELECT id FROM deployments WHERE {in_groups}")
                _shipped(store, rules, report, scope("from_id", members), group_scope.table)
        # change requests: every deployment when a release was touched (few; the rule is one pass);
        # else touched deployments, those deploying a touched commit or run, and those of a touched
        # commit's repository (now and before) that a change covered (its message may have named it)
        if touched.any("release"):
            count = sync_trace_links(
                store,
                "covered_by",
                "deployment",
                "release",
                change_requests(store, rules),
                explicit_by_from=True,
            )
            report.links[count.name] = count
        elif touched.any(*_COVERED_READS):
            commit_repos = scope(
                "to_id",
                touched.old_refs.get("commit", [])
                + ids(f"SELECT repo FROM commits WHERE id IN (SELECT item_id FROM {t['commit']})"),
            )
            members = (
                touched.of("deployment")
                + ids(
                    "SELECT d.id FROM deployments d JOIN commits c ON c.repo = d.repo "
                    f"AND c.sha = d.commit_sha WHERE c.id IN (SELECT item_id FROM {t['commit']})"
                )
                + ids(
                    "SELECT id FROM deployments WHERE pipeline_run_id IN "
                    f"(SELECT item_id FROM {t['pipeline_run']})"
                )
                + ids(
                    "SELECT from_id FROM trace_links WHERE source = ? AND link_kind = 'covered_by' "
                    "AND from_kind = 'deployment' AND from_id IN (SELECT id FROM deployments "
                    f"WHERE repo IN (SELECT item_id FROM {commit_repos.table}))"
                )
            )
            sync(
                "deployment",
                "covered_by",
                "release",
                lambda s: change_requests(store, rules, s.table),
                scope("from_id", members),
                by_from=True,
            )
    # incident causes: the whole rule, run again when what it reads changed
    if touched.any(*_CAUSES_READS):
        count = sync_trace_links(
            store, "caused_by", "incident", "deployment", incident_causes(store, rules), explicit_by_from=True
        )
        report.links[count.name] = count
    return report
