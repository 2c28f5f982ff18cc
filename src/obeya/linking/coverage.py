"""How much of the delivery is traced: six shares, each with its numerator and denominator.

A share over an empty set is None ("no data"), never 0 (docs/metrics.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from obeya.engine.dora import FINISHED_AT, deployment_rows
from obeya.engine.dora_rules import DeploymentRules, DoraRules
from obeya.engine.window import Slice
from obeya.linking.errors import UnknownValueStream
from obeya.store.base import Store

_EVERY_DEPLOYMENT = DoraRules(DeploymentRules(count_rollbacks=True))
"""Coverage counts every successful production deployment, rollbacks too (whatever obeya.yaml leaves
out of the DORA figures): a deployment that reaches no work item is untraced delivery either way."""

_LINKED_CHANGES = """
    SELECT to_id AS change_id FROM trace_links WHERE link_kind = 'implemented_by' AND to_kind = 'change'
    UNION
    SELECT c.from_id FROM trace_links c JOIN trace_links i ON i.to_id = c.to_id
      AND i.link_kind = 'implemented_by' AND i.to_kind = 'commit'
      WHERE c.link_kind = 'contains' AND c.to_kind = 'commit'
    UNION
    SELECT ch.id FROM trace_links i JOIN commits cm ON cm.id = i.to_id
      JOIN changes ch ON ch.repo = cm.repo AND ch.merge_commit_sha = cm.sha
      WHERE i.link_kind = 'implemented_by' AND i.to_kind = 'commit'
"""
"""Changes with a work item: named in the change, in one of its commits, or in its merge commit."""

_ITEMS_WITH_CHANGE = """
    SELECT from_id AS work_item_id FROM trace_links WHERE link_kind = 'implemented_by' AND to_kind = 'change'
    UNION
    SELECT i.from_id FROM trace_links i JOIN trace_links c ON c.to_id = i.to_id
      AND c.link_kind = 'contains' AND c.to_kind = 'commit'
      WHERE i.link_kind = 'implemented_by' AND i.to_kind = 'commit'
    UNION
    SELECT i.from_id FROM trace_links i JOIN commits cm ON cm.id = i.to_id
      JOIN changes ch ON ch.repo = cm.repo AND ch.merge_commit_sha = cm.sha
      WHERE i.link_kind = 'implemented_by' AND i.to_kind = 'commit'
"""
"""Work items with a change: named in a change, in one of its commits, or in its merge commit."""


@dataclass(frozen=True)
class Coverage:
    """`numerator` of `denominator` records are traced; `share` is None when there is nothing to trace."""

    numerator: int
    denominator: int

    @property
    def share(self) -> float | None:
        """numerator ÷ denominator, or None ("no data") when the denominator is 0."""
        return self.numerator / self.denominator if self.denominator else None


@dataclass(frozen=True)
class TraceabilityCoverage:
    """The traceability of one value stream (or of everything)."""

    deployments_with_work_item: Coverage  # successful production deployments reaching a work item
    commits_in_change: Coverage  # commits that belong to a change (listed in it, or its merge commit)
    changes_with_work_item: Coverage  # merged changes with a work item
    work_items_with_change: Coverage  # done work items with a change
    incidents_attributed: Coverage  # incidents not ruled out (change_caused = false) with a caused_by link
    deployments_with_approved_change: Coverage  # successful production deployments covered by an approved
    # change request (a `covered_by` link to a release whose approval is "approved")

    def as_rows(self) -> list[tuple[str, Coverage]]:
        """(label, coverage) pairs, in display order."""
        return [
            ("production deployments reaching a work item", self.deployments_with_work_item),
            ("commits in a change", self.commits_in_change),
            ("merged changes with a work item", self.changes_with_work_item),
            ("done work items with a change", self.work_items_with_change),
            ("incidents attributed to a deployment", self.incidents_attributed),
            ("production deployments with an approved change", self.deployments_with_approved_change),
        ]


def _scopes(value_stream_id: str | None, object_types: tuple[str, ...]) -> tuple[str, list[str]]:
    """A subquery of the stream's scope keys of those object types, with its parameters."""
    marks = ", ".join("?" * len(object_types))
    sql = f"SELECT object_key FROM scopes WHERE value_stream_id = ? AND object_type IN ({marks})"
    return sql, [value_stream_id or "", *object_types]


def _coverage(store: Store, sql: str, params: list[str]) -> Coverage:
    numerator, denominator = store.query(sql, params)[0]
    return Coverage(int(numerator or 0), int(denominator or 0))


def traceability_coverage(
    store: Store, value_stream_id: str | None = None, production_class: str = "production"
) -> TraceabilityCoverage:
    """The six traceability shares, for one value stream or (None) for everything in the store.

    A work item is in a stream when its project is one of the stream's project or board scopes; a commit
    or change when its repository is a repository scope; a deployment when its repository is, or its
    service is a service scope; an incident when its service is. A deployment stored as several rows (one
    per repository it ships: `obeya.engine.dora.deployment_rows`, as the DORA figures count it) is one
    deployment, which reaches a work item when one of its successful rows does.
    """
    if value_stream_id is not None and not store.query(
        "SELECT 1 FROM value_streams WHERE id = ?", (value_stream_id,)
    ):
        raise UnknownValueStream(value_stream_id)

    def where(column_sql: list[tuple[str, tuple[str, ...]]]) -> tuple[str, list[str]]:
        if value_stream_id is None:
            return "", []
        parts, params = [], []
        for column, object_types in column_sql:
            sub, sub_params = _scopes(value_stream_id, object_types)
            parts.append(f"{column} IN ({sub})")
            params += sub_params
        return " AND (" + " OR ".join(parts) + ")", params

    repo_where, repo_params = where([("repo", ("repository",))])
    item_where, item_params = where([("project", ("project", "board"))])
    incident_where, incident_params = where([("i.service", ("service",))])

    rows, rows_params = deployment_rows(
        None, Slice(value_stream_id=value_stream_id), _EVERY_DEPLOYMENT, production_class
    )

    def deployment_share(row_condition: str, ctes: str = "") -> Coverage:
        # a deployment (event) counts when one of its successful rows meets the condition
        return _coverage(
            store,
            f"""WITH {ctes}marked_rows AS (
    SELECT d.service, d.environment, {FINISHED_AT} AS finished_at,
           CASE WHEN {row_condition} THEN 1 ELSE 0 END AS marked
    FROM {rows} d WHERE d.result = 'success'
),
events AS (SELECT MAX(marked) AS marked FROM marked_rows GROUP BY service, environment, finished_at)
SELECT sum(marked), count(*) FROM events""",
            rows_params,
        )

    deployments = deployment_share(
        "EXISTS (SELECT 1 FROM deployment_changes dc JOIN linked l ON l.change_id = dc.change_id "
        "WHERE dc.deployment_id = d.id)",
        ctes=f"linked AS ({_LINKED_CHANGES}),\n",
    )
    commits = _coverage(
        store,
        "SELECT sum(CASE WHEN EXISTS (SELECT 1 FROM change_commits cc "
        "  JOIN changes ch ON ch.id = cc.change_id WHERE cc.commit_sha = c.sha AND ch.repo = c.repo) "
        "  OR EXISTS (SELECT 1 FROM changes ch WHERE ch.repo = c.repo AND ch.merge_commit_sha = c.sha) "
        f"THEN 1 ELSE 0 END), count(*) FROM commits c WHERE 1 = 1{repo_where}",
        repo_params,
    )
    changes = _coverage(
        store,
        f"WITH linked AS ({_LINKED_CHANGES}) "
        "SELECT sum(CASE WHEN ch.id IN (SELECT change_id FROM linked) THEN 1 ELSE 0 END), count(*) "
        f"FROM changes ch WHERE ch.state = 'merged'{repo_where}",
        repo_params,
    )
    items = _coverage(
        store,
        f"WITH linked AS ({_ITEMS_WITH_CHANGE}) "
        "SELECT sum(CASE WHEN w.id IN (SELECT work_item_id FROM linked) THEN 1 ELSE 0 END), count(*) "
        f"FROM work_items w WHERE w.flow_state = 'done'{item_where}",
        item_params,
    )
    incidents = _coverage(
        store,
        "SELECT sum(CASE WHEN EXISTS (SELECT 1 FROM trace_links t WHERE t.from_id = i.id "
        "  AND t.link_kind = 'caused_by') THEN 1 ELSE 0 END), count(*) "
        f"FROM incidents i WHERE (i.change_caused IS NULL OR i.change_caused = TRUE){incident_where}",
        incident_params,
    )
    approved = deployment_share(
        "EXISTS (SELECT 1 FROM trace_links t JOIN releases r ON r.id = t.to_id "
        "WHERE t.from_id = d.id AND t.link_kind = 'covered_by' AND t.to_kind = 'release' "
        "AND r.approval = 'approved')"
    )
    return TraceabilityCoverage(deployments, commits, changes, items, incidents, approved)
