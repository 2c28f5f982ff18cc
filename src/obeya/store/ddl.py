"""Render schema steps as each engine's DDL."""

from __future__ import annotations

from dataclasses import dataclass

from obeya.model.schema import ColumnType
from obeya.store.migrations import (
    AddColumn,
    CreateIndex,
    CreateTable,
    DeleteRows,
    InsertRow,
    RebuildDerived,
    Step,
)


@dataclass(frozen=True)
class ColumnDecl:
    """A parsed column declaration, ``"name type [not null]"``."""

    name: str
    type: ColumnType
    nullable: bool


def parse_column(declaration: str) -> ColumnDecl:
    """Parse ``"name type"`` or ``"name type not null"``."""
    words = declaration.split()
    if len(words) == 2:
        return ColumnDecl(words[0], ColumnType(words[1]), True)
    if len(words) == 4 and words[2:] == ["not", "null"]:
        return ColumnDecl(words[0], ColumnType(words[1]), False)
    raise ValueError(f"bad column declaration {declaration!r}")


ENGINE_TYPES: dict[str, dict[ColumnType, str]] = {
    "duckdb": {
        ColumnType.TEXT: "VARCHAR",
        ColumnType.JSON: "VARCHAR",
        ColumnType.BIGINT: "BIGINT",
        ColumnType.DOUBLE: "DOUBLE",
        ColumnType.BOOLEAN: "BOOLEAN",
        ColumnType.TIMESTAMP: "TIMESTAMP",
    },
    "postgresql": {
        ColumnType.TEXT: "TEXT",
        ColumnType.JSON: "TEXT",
        ColumnType.BIGINT: "BIGINT",
        ColumnType.DOUBLE: "DOUBLE PRECISION",
        ColumnType.BOOLEAN: "BOOLEAN",
        ColumnType.TIMESTAMP: "TIMESTAMP",
    },
}


def render(step: Step, dialect: str) -> list[str]:
    """The statements that carry out one step on `dialect` (possibly none)."""
    types = ENGINE_TYPES[dialect]
    if isinstance(step, CreateTable):
        body = [
            f'"{c.name}" {types[c.type]}{"" if c.nullable else " NOT NULL"}'
            for c in map(parse_column, step.columns)
        ]
        # PostgreSQL enforces the key with an index; DuckDB's bulk loads are 6x faster without one, and
        # its upsert replaces rows by id inside one transaction (see docs/architecture.md).
        if dialect == "postgresql" and not step.derived:
            body.append("PRIMARY KEY (id)")
        return [f'CREATE TABLE "{step.table}" ({", ".join(body)})']
    if isinstance(step, AddColumn):
        column = parse_column(step.column)
        if not column.nullable:
            raise ValueError(f"an added column must be nullable: {step.column!r}")
        return [f'ALTER TABLE "{step.table}" ADD COLUMN "{column.name}" {types[column.type]}']
    if isinstance(step, CreateIndex):
        if dialect != "postgresql":
            return []
        name = f"ix_{step.table}_{'_'.join(step.columns)}"
        indexed = ", ".join(f'"{c}"' for c in step.columns)
        return [f'CREATE INDEX "{name}" ON "{step.table}" ({indexed})']
    if isinstance(step, InsertRow):
        return [f'INSERT INTO "{step.table}" VALUES ({", ".join(str(int(v)) for v in step.values)})']
    if isinstance(step, DeleteRows):
        return [f'DELETE FROM "{step.table}" WHERE {step.where}']
    if isinstance(step, RebuildDerived):
        return []  # not DDL: `Store.migrate` carries it out
    raise TypeError(f"unknown step {step!r}")
