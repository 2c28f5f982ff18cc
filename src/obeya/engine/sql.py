"""SQL fragments shared by the metric queries.

Every metric is written once, in the SQL that DuckDB and PostgreSQL share (window functions, FILTER,
``percentile_cont ... WITHIN GROUP``, ``generate_series``, interval arithmetic); the test suite runs
each metric on both engines. Placeholders are ``?``.
"""

from __future__ import annotations

from typing import Any

from obeya.engine.window import Slice


def seconds_between(start: str, end: str) -> str:
    """Seconds from `start` to `end` (SQL expressions), as a double on both engines."""
    return f"CAST(EXTRACT(EPOCH FROM ({end}) - ({start})) AS DOUBLE PRECISION)"


def percentile(fraction: float, expression: str, condition: str | None = None) -> str:
    """The `fraction` percentile of `expression`, linearly interpolated (``percentile_cont``)."""
    where = f" FILTER (WHERE {condition})" if condition else ""
    return f"percentile_cont({fraction}) WITHIN GROUP (ORDER BY {expression}){where}"


def work_item_conditions(scope: Slice, alias: str = "w") -> tuple[str, list[Any]]:
    """A WHERE condition selecting the work items of a slice, and its parameters.

    An item is in a value stream when its project (or board) is in the stream's scope; in a service's
    slice when a change that implements it was shipped by a deployment of that service.
    """
    conditions = ["TRUE"]
    params: list[Any] = []
    if scope.value_stream_id:
        conditions.append(
            f"{alias}.project IN (SELECT object_key FROM scopes WHERE value_stream_id = ? "
            "AND object_type IN ('project', 'board'))"
        )
        params.append(scope.value_stream_id)
    if scope.team_id:
        conditions.append(f"{alias}.team_id = ?")
        params.append(scope.team_id)
    if scope.flow_item_type:
        conditions.append(f"{alias}.flow_item_type = ?")
        params.append(scope.flow_item_type.value)
    if scope.service:
        conditions.append(
            f"{alias}.id IN (SELECT l.from_id FROM trace_links l "
            "JOIN deployment_changes dc ON dc.change_id = l.to_id "
            "JOIN deployments d ON d.id = dc.deployment_id "
            "WHERE l.link_kind = 'implemented_by' AND l.to_kind = 'change' AND d.service = ?)"
        )
        params.append(scope.service)
    return " AND ".join(conditions), params


def deployment_conditions(scope: Slice, alias: str = "d") -> tuple[str, list[Any]]:
    """A WHERE condition selecting the deployments of a slice, and its parameters.

    A deployment is in a value stream when its service or repository is in the stream's scope; in a
    team's or flow item type's slice when it ships a change of that team or type (`change_conditions`).
    A deployment that did not succeed ships nothing (``deployment_changes`` holds successful ones), so it
    counts the changes of a later successful deployment of the same service, environment and commit (the
    retry that shipped what it tried to ship); one fixed forward with another commit is in no team's or
    type's slice.
    """
    conditions = ["TRUE"]
    params: list[Any] = []
    if scope.value_stream_id:
        conditions.append(
            f"({alias}.service IN (SELECT object_key FROM scopes WHERE value_stream_id = ? "
            "AND object_type = 'service') OR "
            f"{alias}.repo IN (SELECT object_key FROM scopes WHERE value_stream_id = ? "
            "AND object_type = 'repository'))"
        )
        params += [scope.value_stream_id, scope.value_stream_id]
    if scope.service:
        conditions.append(f"{alias}.service = ?")
        params.append(scope.service)
    if scope.team_id or scope.flow_item_type:
        change_condition, change_params = change_conditions(
            Slice(team_id=scope.team_id, flow_item_type=scope.flow_item_type), "sc"
        )
        of_slice = f"dc.change_id IN (SELECT sc.id FROM changes sc WHERE {change_condition})"
        finished = "COALESCE({0}.finished_at, {0}.started_at)"
        conditions.append(
            f"({alias}.id IN (SELECT dc.deployment_id FROM deployment_changes dc WHERE {of_slice}) "
            f"OR ({alias}.result <> 'success' AND EXISTS (SELECT 1 FROM deployments rd "
            "JOIN deployment_changes dc ON dc.deployment_id = rd.id "
            f"WHERE rd.service = {alias}.service AND rd.environment = {alias}.environment "
            f"AND rd.commit_sha = {alias}.commit_sha AND rd.result = 'success' "
            f"AND {finished.format('rd')} > {finished.format(alias)} AND {of_slice})))"
        )
        params += [*change_params, *change_params]
    return " AND ".join(conditions), params


def change_conditions(scope: Slice, alias: str = "ch") -> tuple[str, list[Any]]:
    """A WHERE condition selecting the changes (pull requests) of a slice, and its parameters.

    A change is in a value stream when its repository is one of the stream's repository scopes; in a
    service's slice when a deployment of it shipped it. Its team is its author's team or the team of a
    work item it implements (``implemented_by`` trace link), so it is in every one of those teams'
    slices; its flow item type is the type of a work item it implements, so a change without a work item
    is in no type's slice, and one implementing a feature and a defect is in both (docs/metrics.md,
    "Slicing DORA by team and flow item type").
    """
    conditions, params = ["TRUE"], []
    if scope.value_stream_id:
        conditions.append(
            f"{alias}.repo IN (SELECT object_key FROM scopes WHERE value_stream_id = ? "
            "AND object_type = 'repository')"
        )
        params.append(scope.value_stream_id)
    if scope.team_id:
        conditions.append(
            f"({alias}.author_id IN (SELECT id FROM people WHERE team_id = ?) OR {alias}.id IN "
            "(SELECT l.to_id FROM trace_links l JOIN work_items w ON w.id = l.from_id "
            "WHERE l.link_kind = 'implemented_by' AND l.to_kind = 'change' AND w.team_id = ?))"
        )
        params += [scope.team_id, scope.team_id]
    if scope.flow_item_type:
        conditions.append(
            f"{alias}.id IN (SELECT l.to_id FROM trace_links l JOIN work_items w ON w.id = l.from_id "
            "WHERE l.link_kind = 'implemented_by' AND l.to_kind = 'change' AND w.flow_item_type = ?)"
        )
        params.append(scope.flow_item_type.value)
    if scope.service:
        conditions.append(
            f"{alias}.id IN (SELECT dc.change_id FROM deployment_changes dc "
            "JOIN deployments d ON d.id = dc.deployment_id WHERE d.service = ?)"
        )
        params.append(scope.service)
    return " AND ".join(conditions), params


def incident_conditions(scope: Slice, alias: str = "i") -> tuple[str, list[Any]]:
    """A WHERE condition selecting the incidents of a slice (by service), and its parameters."""
    conditions, params = ["TRUE"], []
    if scope.value_stream_id:
        conditions.append(
            f"{alias}.service IN (SELECT object_key FROM scopes WHERE value_stream_id = ? "
            "AND object_type = 'service')"
        )
        params.append(scope.value_stream_id)
    if scope.service:
        conditions.append(f"{alias}.service = ?")
        params.append(scope.service)
    return " AND ".join(conditions), params
