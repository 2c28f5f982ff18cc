"""The portfolio: the value streams and how much work each holds."""

from __future__ import annotations

from dataclasses import dataclass

from obeya.store import Store


@dataclass(frozen=True)
class ValueStreamSummary:
    """A value stream with the counts of the work items in its scope."""

    id: str
    name: str
    stream_type: str
    work_items: int
    in_progress: int
    done: int
    stages: list[str]


# A work item belongs to a value stream when its project (or board) is in the stream's scope.
_SUMMARY_SQL = """
WITH stream_items AS (
    SELECT DISTINCT s.value_stream_id, w.id, w.flow_state
    FROM scopes s JOIN work_items w ON w.project = s.object_key
    WHERE s.object_type IN ('project', 'board')
)
SELECT v.id, v.name, v.stream_type,
       count(i.id) AS work_items,
       count(CASE WHEN i.flow_state IN ('waiting', 'active') THEN 1 END) AS in_progress,
       count(CASE WHEN i.flow_state = 'done' THEN 1 END) AS done
FROM value_streams v LEFT JOIN stream_items i ON i.value_stream_id = v.id
GROUP BY v.id, v.name, v.stream_type
ORDER BY v.stream_type, v.name
"""


def value_stream_summaries(store: Store) -> list[ValueStreamSummary]:
    """Every value stream, core before supporting, with its work item counts and ordered stages."""
    stages: dict[str, list[str]] = {}
    for stream_id, name in store.query(
        "SELECT value_stream_id, name FROM stages ORDER BY value_stream_id, position"
    ):
        stages.setdefault(stream_id, []).append(name)
    return [
        ValueStreamSummary(
            row[0], row[1], row[2], int(row[3]), int(row[4]), int(row[5]), stages.get(row[0], [])
        )
        for row in store.query(_SUMMARY_SQL)
    ]


class UnknownValueStream(LookupError):
    """No value stream has the name or id given."""


def resolve_value_stream(store: Store, name_or_id: str) -> str:
    """The id of the value stream with id `name_or_id`, else the one so named (case-insensitive).

    Two streams of one name (the demo's and one declared in obeya.yaml, say) are an error that lists
    their ids, which always tell them apart.
    """
    rows = store.query("SELECT id, name FROM value_streams ORDER BY name, id")
    for stream_id, _ in rows:
        if stream_id == name_or_id:
            return str(stream_id)
    named = [str(stream_id) for stream_id, name in rows if name.lower() == name_or_id.lower()]
    if len(named) == 1:
        return named[0]
    if named:
        raise UnknownValueStream(
            f"{len(named)} value streams are named {name_or_id!r}: give one of their ids instead "
            f"({', '.join(named)})"
        )
    known = ", ".join(repr(name) for _, name in rows) or (
        "none yet (declare value_streams in obeya.yaml, or run `obeya demo` or `obeya import`)"
    )
    raise UnknownValueStream(f"no value stream named {name_or_id!r}; known value streams: {known}")
