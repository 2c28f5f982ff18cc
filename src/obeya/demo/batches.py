"""Columnar batch building: rows are appended as tuples and turned into Arrow tables in chunks.

Times are kept as floats (days since the demo's origin, midnight UTC of its first day) while the
simulation runs; NaN stands for "no time". They become ``timestamp[us]`` columns when a chunk is flushed,
in one vectorised step, so no `datetime` object is created per row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from obeya.model.schema import ARROW_TYPES, TABLES, ColumnType

SOURCE = "demo"
NO_TIME = float("nan")
_MICROS_PER_DAY = 86_400_000_000


FIELDS: dict[str, tuple[str, ...]] = {
    "work_item": (
        "key",
        "title",
        "project",
        "tool_type",
        "flow_item_type",
        "status",
        "flow_state",
        "stage",
        "parent_id",
        "team_id",
        "assignee_id",
        "labels",
        "priority",
        "story_points",
        "created_at",
        "started_at",
        "done_at",
        "canceled_at",
        "updated_at",
    ),
    "status_transition": (
        "work_item_id",
        "at",
        "from_status",
        "to_status",
        "from_flow_state",
        "to_flow_state",
        "from_stage",
        "to_stage",
        "author_id",
    ),
    "plan": ("name", "plan_type", "value_stream_id", "team_id", "starts_at", "ends_at"),
    "plan_item": ("plan_id", "work_item_id", "added_after_start", "planned_value", "delivered_value"),
    "commit": (
        "repo",
        "sha",
        "message",
        "author_id",
        "authored_at",
        "committed_at",
        "additions",
        "deletions",
    ),
    "commit_parent": ("repo", "commit_sha", "parent_sha", "position"),
    "change": (
        "repo",
        "number",
        "title",
        "branch",
        "base_branch",
        "author_id",
        "state",
        "created_at",
        "merged_at",
        "closed_at",
        "merge_commit_sha",
        "head_sha",
        "merge_method",
        "additions",
        "deletions",
    ),
    "change_commit": ("change_id", "commit_sha", "position"),
    "review": ("change_id", "reviewer_id", "state", "submitted_at"),
    "change_comment": ("change_id", "author_id", "created_at", "body", "path"),
    "pipeline_run": (
        "pipeline",
        "repo",
        "commit_sha",
        "branch",
        "change_id",
        "trigger",
        "result",
        "attempt",
        "created_at",
        "started_at",
        "finished_at",
        "url",
    ),
    "pipeline_job": (
        "run_id",
        "name",
        "stage",
        "result",
        "attempt",
        "environment",
        "started_at",
        "finished_at",
    ),
    "release": (
        "name",
        "version",
        "value_stream_id",
        "status",
        "planned_at",
        "released_at",
        "description",
    ),
    "deployment": (
        "service",
        "environment",
        "environment_class",
        "repo",
        "commit_sha",
        "pipeline_run_id",
        "release_id",
        "result",
        "is_rollback",
        "started_at",
        "finished_at",
        "url",
    ),
    "incident": (
        "title",
        "service",
        "severity",
        "status",
        "created_at",
        "acknowledged_at",
        "resolved_at",
        "caused_by_deployment_id",
        "cause_evidence",
        "change_caused",
        "labels",
        "url",
    ),
    "trace_link": (
        "from_kind",
        "from_id",
        "to_kind",
        "to_id",
        "link_kind",
        "evidence",
        "confidence",
    ),
}
"""The columns the demo fills for each kind, in the order `BatchSink.add` takes them (after the id).

Named rather than positional, so a column added to the model later (nullable) is simply left empty.
"""

_ID_COLUMNS = ("id", "source", "external_id", "raw_event_id")


class BatchSink:
    """Buffers rows per record kind and hands them out as Arrow batches of at most `chunk_rows` rows."""

    def __init__(self, origin: dt.datetime, chunk_rows: int = 100_000) -> None:
        self.origin_us = int((origin - dt.datetime(1970, 1, 1)).total_seconds()) * 1_000_000
        self.chunk_rows = chunk_rows
        self._rows: dict[str, list[tuple[object, ...]]] = {kind: [] for kind in TABLES}
        self._ready: list[tuple[str, pa.Table]] = []

    def add(self, kind: str, external_id: str, *fields: object) -> str:
        """Append one row of `kind` (its fields in table order, after the id columns); return its id."""
        row_id = f"{SOURCE}:{external_id}"
        rows = self._rows[kind]
        rows.append((row_id, SOURCE, external_id, None, *fields))
        if len(rows) >= self.chunk_rows:
            self._ready.append((kind, self.to_table(kind, rows)))
            self._rows[kind] = []
        return row_id

    def drain(self) -> Iterator[tuple[str, pa.Table]]:
        """Yield the full chunks collected so far."""
        ready, self._ready = self._ready, []
        yield from ready

    def flush(self) -> Iterator[tuple[str, pa.Table]]:
        """Yield every buffered row, full chunks first, then what is left of each kind."""
        yield from self.drain()
        for kind in TABLES:
            rows = self._rows[kind]
            if rows:
                self._rows[kind] = []
                yield kind, self.to_table(kind, rows)

    def to_table(self, kind: str, rows: list[tuple[object, ...]]) -> pa.Table:
        """The Arrow table of `rows`, with exactly the schema of the kind's table."""
        spec = TABLES[kind]
        names = _ID_COLUMNS + FIELDS[kind]
        if len(rows[0]) != len(names):
            raise ValueError(f"{kind}: a row has {len(rows[0])} values, the demo fills {len(names)} columns")
        values_of = dict(zip(names, zip(*rows, strict=True), strict=True))
        arrays = []
        for column in spec.columns:
            arrow_type = ARROW_TYPES[column.type]
            values = values_of.get(column.name)
            if values is None:
                if not column.nullable:
                    raise ValueError(f"{kind}: the demo does not fill the required column {column.name!r}")
                arrays.append(pa.nulls(len(rows), arrow_type))
            elif column.type is ColumnType.TIMESTAMP:
                days = np.asarray(values, dtype=np.float64)
                missing = np.isnan(days)
                micros = np.rint(np.where(missing, 0.0, days) * _MICROS_PER_DAY).astype(np.int64)
                arrays.append(pa.array(self.origin_us + micros, type=arrow_type, mask=missing))
            else:
                arrays.append(pa.array(values, type=arrow_type))
        return pa.Table.from_arrays(arrays, schema=spec.arrow_schema)
