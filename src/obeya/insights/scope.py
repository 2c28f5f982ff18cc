"""SQL pieces the insights share: which changes a slice holds, stage positions, items' changes."""

from __future__ import annotations

from obeya.engine import stages
from obeya.engine.window import Slice
from obeya.store import Store

ITEM_CHANGES = """item_changes AS (
    SELECT l.from_id AS item_id, l.to_id AS change_id FROM trace_links l
    WHERE l.link_kind = 'implemented_by' AND l.to_kind = 'change'
    UNION
    SELECT i.from_id, c.from_id FROM trace_links i
    JOIN trace_links c ON c.to_id = i.to_id AND c.link_kind = 'contains' AND c.to_kind = 'commit'
    WHERE i.link_kind = 'implemented_by' AND i.to_kind = 'commit'
)"""
"""CTE: a work item and a change that implements it (named in the change or in one of its commits)."""


def stage_positions(store: Store, scope: Slice) -> str:
    """A ``positions(stage, position)`` CTE for the slice's value stream (default: the five stages)."""
    return stages.stage_positions(stages.stage_order(store, scope))


def stream_slices(store: Store, scope: Slice) -> list[tuple[Slice, str]]:
    """The slice per value stream with its name: the scope's own stream, or every stream."""
    if scope.value_stream_id:
        rows = store.query("SELECT id, name FROM value_streams WHERE id = ?", [scope.value_stream_id])
    else:
        rows = store.query("SELECT id, name FROM value_streams ORDER BY name")
    return [(Slice(str(r[0]), scope.team_id, scope.service, scope.flow_item_type), str(r[1])) for r in rows]


def change_label(repo: str, number: int) -> str:
    """How a change is named in an insight's items: ``repo#number``."""
    return f"{repo}#{number}"
