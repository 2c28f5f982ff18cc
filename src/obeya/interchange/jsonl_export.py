"""Export stored records as JSONL, in the format `import_jsonl` reads (docs/import-format.md).

Each kind is read in pages of `CHUNK_ROWS` rows by keyset pagination on the id (``WHERE id > last``), so
a table is never held in memory whole; the pages are read inside one transaction, so the export is one
consistent snapshot. Ids are compared and ordered byte by byte (``COLLATE "C"``) on every engine, so the
same records export to the same bytes from DuckDB and from PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TextIO

import orjson

from obeya.interchange.fields import known_kinds
from obeya.model.schema import TABLES, ColumnType
from obeya.store.base import Store

CHUNK_ROWS = 20_000
"""Rows read per query."""

_DUMP_OPTIONS = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z


def _parse_json(text: str) -> Any:
    return orjson.loads(text)


def export_jsonl(
    store: Store, out: TextIO, kinds: Sequence[str] | None = None, *, chunk_rows: int = CHUNK_ROWS
) -> dict[str, int]:
    """Write the stored records of `kinds` (default: every kind) to `out`, one JSON object per line.

    Kinds come in dependency order, each ordered by id; a line holds ``kind`` and then the record's fields
    in declaration order, without those that are null; times are ISO 8601 in UTC with ``Z``. Returns the
    records written per kind.
    """
    if kinds is None:
        selected = list(TABLES)
    else:
        unknown = [k for k in kinds if k not in TABLES]
        if unknown:
            raise ValueError(f"unknown kind(s) {', '.join(map(repr, unknown))}: use {known_kinds()}")
        selected = [k for k in TABLES if k in set(kinds)]
    written: dict[str, int] = {}
    with store.transaction():
        for kind in selected:
            written[kind] = _export_kind(store, out, kind, chunk_rows)
    return written


def _export_kind(store: Store, out: TextIO, kind: str, chunk_rows: int) -> int:
    spec = TABLES[kind]
    columns = ", ".join(f'"{c}"' for c in spec.column_names)
    head = f'SELECT {columns} FROM "{spec.name}"'
    tail = f'ORDER BY id COLLATE "C" LIMIT {int(chunk_rows)}'
    # (position in the row, field name, conversion) of every column but the id
    fields: list[tuple[int, str, Callable[[Any], Any] | None]] = [
        (i, c.name, _parse_json if c.type is ColumnType.JSON else None)
        for i, c in enumerate(spec.columns)
        if c.name != "id"
    ]
    count = 0
    last: str | None = None
    while True:
        if last is None:
            rows = store.query(f"{head} {tail}")
        else:
            rows = store.query(f'{head} WHERE (id COLLATE "C") > ? {tail}', [last])
        if not rows:
            break
        lines = []
        for row in rows:
            obj: dict[str, Any] = {"kind": kind}
            for i, name, convert in fields:
                value = row[i]
                if value is not None:
                    obj[name] = convert(value) if convert else value
            lines.append(orjson.dumps(obj, option=_DUMP_OPTIONS))
        out.write(b"\n".join(lines).decode() + "\n")
        count += len(rows)
        if len(rows) < chunk_rows:
            break
        last = rows[-1][0]
    return count
