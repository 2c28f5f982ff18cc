"""Small builders for hand-made engine scenarios."""

from __future__ import annotations

from datetime import datetime

from obeya.model import Record, Scope, StatusTransition, ValueStream, WorkItem

STATES = {
    "Backlog": ("new", "ideation"),
    "In Progress": ("active", "integration"),
    "Blocked": ("waiting", "integration"),
    "In Review": ("active", "verification"),
    "Ready for Test": ("waiting", "verification"),
    "Testing": ("active", "verification"),
    "Ready for Release": ("waiting", "delivery"),
    "Done": ("done", "observation"),
    "Closed": ("done", "observation"),
    "Canceled": ("canceled", None),
}


def day(month: int, d: int, hour: int = 0) -> datetime:
    """A time in 2025."""
    return datetime(2025, month, d, hour)


def stream(external_id: str, name: str, projects: list[str]) -> list[Record]:
    """A value stream whose scope is the given projects."""
    records: list[Record] = [ValueStream(source="test", external_id=external_id, name=name)]
    records += [
        Scope(
            source="test",
            external_id=f"{external_id}-{p}",
            value_stream_id=f"test:{external_id}",
            tool="jira",
            object_type="project",
            object_key=p,
        )
        for p in projects
    ]
    return records


def item(
    key: str,
    created: datetime,
    history: list[tuple[datetime, str]],
    flow_item_type: str = "feature",
    project: str = "PAY",
    team: str | None = None,
) -> list[Record]:
    """A work item and its status transitions; its current status is the last one in `history`."""
    status = history[-1][1] if history else "Backlog"
    state, stage = STATES[status]
    records: list[Record] = [
        WorkItem(
            source="test",
            external_id=key,
            key=key,
            title=f"{key} title",
            project=project,
            tool_type="Story",
            flow_item_type=flow_item_type,
            status=status,
            flow_state=state,
            stage=stage,
            created_at=created,
            team_id=team,
        )
    ]
    previous: str | None = None
    for n, (at, to_status) in enumerate(history):
        to_state, to_stage = STATES[to_status]
        records.append(
            StatusTransition(
                source="test",
                external_id=f"{key}-{n}",
                work_item_id=f"test:{key}",
                at=at,
                from_status=previous,
                to_status=to_status,
                to_flow_state=to_state,
                to_stage=to_stage,
                from_flow_state=STATES[previous][0] if previous else None,
                from_stage=STATES[previous][1] if previous else None,
            )
        )
        previous = to_status
    return records
