"""The table schema, derived from the record classes in `obeya.model.records`.

A table has the columns ``id, source, external_id, raw_event_id`` and then one column per record field,
in declaration order. Lists are kept as JSON text so the same schema works on every engine.
"""

from __future__ import annotations

import types
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum, StrEnum
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import orjson
import pyarrow as pa

from obeya.model.records import RECORD_TYPES, Record, Ref


class ColumnType(StrEnum):
    """Logical column types; each store maps them to its engine's types."""

    TEXT = "text"
    BIGINT = "bigint"
    DOUBLE = "double"
    BOOLEAN = "boolean"
    TIMESTAMP = "timestamp"
    JSON = "json"  # stored as text


ARROW_TYPES: dict[ColumnType, pa.DataType] = {
    ColumnType.TEXT: pa.string(),
    ColumnType.BIGINT: pa.int64(),
    ColumnType.DOUBLE: pa.float64(),
    ColumnType.BOOLEAN: pa.bool_(),
    ColumnType.TIMESTAMP: pa.timestamp("us"),
    ColumnType.JSON: pa.string(),
}


@dataclass(frozen=True)
class Column:
    """One column of a table."""

    name: str
    type: ColumnType
    nullable: bool
    ref: str | None = None  # kind of the referenced record; "*" for a reference to any kind


@dataclass(frozen=True)
class TableSpec:
    """A table of the common model and the record type it stores."""

    kind: str
    name: str
    columns: tuple[Column, ...]
    record_type: type[Record]

    @property
    def column_names(self) -> list[str]:
        """The names of the columns, in order."""
        return [c.name for c in self.columns]

    @property
    def references(self) -> list[Column]:
        """The columns that hold the id of another record."""
        return [c for c in self.columns if c.ref is not None]

    @property
    def arrow_schema(self) -> pa.Schema:
        """The Arrow schema of a batch of this table's rows."""
        return pa.schema([pa.field(c.name, ARROW_TYPES[c.type], c.nullable) for c in self.columns])

    def to_row(self, record: Record) -> dict[str, Any]:
        """The column values of one record."""
        row: dict[str, Any] = {"id": record.id}
        for column in self.columns[1:]:
            value = getattr(record, column.name)
            if column.type is ColumnType.JSON:
                value = orjson.dumps(value).decode()
            elif isinstance(value, Enum):
                value = value.value
            row[column.name] = value
        return row

    def to_arrow(self, records: Iterable[Record]) -> pa.Table:
        """A batch of records as an Arrow table, ready for the store's bulk upsert (built column by
        column: the same values as `to_row`, without a dict per record)."""
        batch = list(records)
        arrays = [pa.array([r.id for r in batch], pa.string())]
        for column in self.columns[1:]:
            values = [getattr(r, column.name) for r in batch]
            if column.type is ColumnType.JSON:
                values = [orjson.dumps(v).decode() for v in values]
            elif values and isinstance(next((v for v in values if v is not None), None), Enum):
                values = [v.value if isinstance(v, Enum) else v for v in values]
            arrays.append(pa.array(values, ARROW_TYPES[column.type]))
        return pa.Table.from_arrays(arrays, schema=self.arrow_schema)

    def from_row(self, row: dict[str, Any]) -> Record:
        """The record a stored row holds (the inverse of `to_row`)."""
        values = {}
        for column in self.columns[1:]:
            value = row.get(column.name)
            if value is None:
                continue
            if column.type is ColumnType.JSON:
                value = orjson.loads(value)
            values[column.name] = value
        return self.record_type.model_validate(values)


def _column_type(annotation: Any) -> tuple[ColumnType, bool]:
    """The column type for a field annotation, and whether it admits None."""
    nullable = False
    origin = get_origin(annotation)
    if origin is Annotated:
        return _column_type(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        nullable = len(args) < len(get_args(annotation))
        if len(args) != 1:
            raise TypeError(f"unsupported union annotation {annotation!r}")
        annotation = args[0]
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
        origin = get_origin(annotation)
    if origin is list or origin is dict:
        return ColumnType.JSON, nullable
    if origin is Literal:
        return ColumnType.TEXT, nullable
    if isinstance(annotation, type):
        if issubclass(annotation, bool):
            return ColumnType.BOOLEAN, nullable
        if issubclass(annotation, Enum) or issubclass(annotation, str):
            return ColumnType.TEXT, nullable
        if issubclass(annotation, int):
            return ColumnType.BIGINT, nullable
        if issubclass(annotation, float):
            return ColumnType.DOUBLE, nullable
        if issubclass(annotation, datetime):
            return ColumnType.TIMESTAMP, nullable
    raise TypeError(f"no column type for annotation {annotation!r}")


def table_spec(record_type: type[Record]) -> TableSpec:
    """Derive the table of a record type from its fields."""
    columns = [Column("id", ColumnType.TEXT, nullable=False)]
    for name, field in record_type.model_fields.items():
        column_type, nullable = _column_type(field.annotation)
        ref = next((m.kind or "*" for m in field.metadata if isinstance(m, Ref)), None)
        columns.append(Column(name, column_type, nullable, ref))
    return TableSpec(record_type.kind, record_type.table, tuple(columns), record_type)


TABLES: dict[str, TableSpec] = {t.kind: table_spec(t) for t in RECORD_TYPES}
"""Every table of the common model, by record kind, in dependency order."""

TABLE_BY_NAME: dict[str, TableSpec] = {t.name: t for t in TABLES.values()}
