"""Links the records state outright: a change's commits, an item's parent, a run's change, a deployment's run.

Each is one join on the engine; the same SQL runs on DuckDB and PostgreSQL.
"""

from __future__ import annotations

import pyarrow as pa

from obeya.linking.derived import CANDIDATES, fetch
from obeya.store.base import Store

_ROWS = pa.schema([("from_id", pa.string()), ("to_id", pa.string()), ("evidence", pa.string())])


def _with_confidence(rows: pa.Table, confidence: float) -> pa.Table:
    return rows.append_column("confidence", pa.array([confidence] * rows.num_rows, pa.float64())).cast(
        CANDIDATES
    )


def _within(column: str, table: str | None, glue: str = "WHERE") -> str:
    """The condition keeping rows whose `column` is listed in SQL table `table` (nothing when None)."""
    return f" {glue} {column} IN (SELECT item_id FROM {table})" if table else ""


def change_contains_commit(store: Store, within: str | None = None) -> pa.Table:
    """change → commit (`contains`): the change's `change_commits` rows, commit of the change's repo (1.0).

    With `within` (an SQL table of change ids), only the links from those changes."""
    rows = fetch(
        store,
        "SELECT cc.change_id AS from_id, c.id AS to_id, "
        "'change_commits lists commit ' || substr(c.sha, 1, 7) AS evidence "
        "FROM change_commits cc JOIN changes ch ON ch.id = cc.change_id "
        "JOIN commits c ON c.repo = ch.repo AND c.sha = cc.commit_sha" + _within("cc.change_id", within),
        (),
        _ROWS,
    )
    return _with_confidence(rows, 1.0)


def work_item_parent(store: Store, within: str | None = None) -> pa.Table:
    """work item → work item (`parent_of`): the child's `parent_id` (1.0).

    With `within` (an SQL table of work item ids), only the links to those children."""
    rows = fetch(
        store,
        "SELECT p.id AS from_id, w.id AS to_id, 'parent_id of ' || w.key || ' is ' || p.key AS evidence "
        "FROM work_items w JOIN work_items p ON p.id = w.parent_id" + _within("w.id", within),
        (),
        _ROWS,
    )
    return _with_confidence(rows, 1.0)


def pipeline_run_built_change(store: Store, within: str | None = None) -> pa.Table:
    """pipeline run → change (`built`): the run's `change_id` (1.0), or it ran on the change's head (0.9).

    With `within` (an SQL table of pipeline run ids), only the links from those runs."""
    by_id = fetch(
        store,
        "SELECT r.id AS from_id, ch.id AS to_id, "
        "'pipeline run change_id is ' || ch.repo || '#' || CAST(ch.number AS VARCHAR) AS evidence "
        "FROM pipeline_runs r JOIN changes ch ON ch.id = r.change_id" + _within("r.id", within),
        (),
        _ROWS,
    )
    by_head = fetch(
        store,
        "SELECT r.id AS from_id, ch.id AS to_id, 'pipeline run commit ' || substr(r.commit_sha, 1, 7) "
        "|| ' is the head of ' || ch.repo || '#' || CAST(ch.number AS VARCHAR) AS evidence "
        "FROM pipeline_runs r JOIN changes ch ON ch.head_sha = r.commit_sha "
        "WHERE COALESCE(r.repo, ch.repo) = ch.repo" + _within("r.id", within, "AND"),
        (),
        _ROWS,
    )
    return pa.concat_tables([_with_confidence(by_id, 1.0), _with_confidence(by_head, 0.9)])


def deployment_deployed_by_run(store: Store, within: str | None = None) -> pa.Table:
    """deployment → pipeline run (`deployed_by`): the deployment's `pipeline_run_id` (1.0).

    With `within` (an SQL table of deployment ids), only the links from those deployments."""
    rows = fetch(
        store,
        "SELECT d.id AS from_id, r.id AS to_id, "
        "'deployment pipeline_run_id is ' || r.pipeline || ' run ' || r.external_id AS evidence "
        "FROM deployments d JOIN pipeline_runs r ON r.id = d.pipeline_run_id" + _within("d.id", within),
        (),
        _ROWS,
    )
    return _with_confidence(rows, 1.0)
