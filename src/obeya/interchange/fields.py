"""What each field of each record kind accepts in the interchange format, in words.

The same descriptions serve the import's error messages ("expected ...") and the format's documentation
(docs/import-format.md), so both say the same thing.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types as at
from pydantic.fields import FieldInfo

from obeya.model.records import RECORD_BY_KIND, Record, Ref

TIME_EXAMPLE = "2025-03-01T09:30:00Z"
TIME_TEXT = f"an ISO 8601 time such as {TIME_EXAMPLE} (with Z, an offset, or naive = UTC)"


@dataclass(frozen=True)
class FieldDoc:
    """One field of a record kind as the interchange format sees it."""

    name: str
    type: str  # short type name: text, integer, number, boolean, time, list of text, one of ...
    required: bool
    default: Any
    nullable: bool
    expected: str  # what a valid value looks like, in words
    ref: str | None  # the kind referenced; "*" when named by another field
    ref_kind_field: str | None  # for "*": the field naming the kind


def known_kinds() -> str:
    """The known kinds, as a comma list."""
    return ", ".join(RECORD_BY_KIND)


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    nullable = False
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        annotation, nullable = args[0], len(args) < len(get_args(annotation))
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation, nullable


def _quoted(values: list[str]) -> str:
    return ", ".join(f'"{v}"' for v in values)


def ref_kind_field(name: str) -> str:
    """The field naming the kind of a ``Ref(None)`` field: ``from_id`` -> ``from_kind``."""
    return name.removesuffix("_id") + "_kind"


def _kind_fields(record_type: type[Record]) -> set[str]:
    """The fields naming the kind a ``Ref(None)`` field points at."""
    return {
        ref_kind_field(name)
        for name, info in record_type.model_fields.items()
        if any(isinstance(m, Ref) and m.kind is None for m in info.metadata)
    }


def describe_field(record_type: type[Record], name: str) -> FieldDoc:
    """Describe one field of a record type."""
    info: FieldInfo = record_type.model_fields[name]
    annotation, nullable = _unwrap_optional(info.annotation)
    ref = next((m for m in info.metadata if isinstance(m, Ref)), None)
    bounds: list[str] = []
    for m in info.metadata:
        if isinstance(m, at.Ge):
            bounds.append(f">= {m.ge}")
        elif isinstance(m, at.Le):
            bounds.append(f"<= {m.le}")
        elif isinstance(m, at.Gt):
            bounds.append(f"> {m.gt}")
        elif isinstance(m, at.Lt):
            bounds.append(f"< {m.lt}")
    min_len = next((m.min_length for m in info.metadata if isinstance(m, at.MinLen)), None)
    max_len = next((m.max_length for m in info.metadata if isinstance(m, at.MaxLen)), None)

    kind_field: str | None = None
    if ref is not None and ref.kind is not None:
        type_name = f"id of a {ref.kind}"
        expected = f'the id ("source:external_id") of a {ref.kind} record, in the file or in the store'
    elif ref is not None:
        kind_field = ref_kind_field(name)
        type_name = f"id of a record of kind `{kind_field}`"
        expected = (
            f'the id ("source:external_id") of a record of the kind named in {kind_field}, '
            "in the file or in the store"
        )
    elif get_origin(annotation) is Literal:
        values = [str(v) for v in get_args(annotation)]
        type_name = f"one of {_quoted(values)}"
        expected = f"one of {_quoted(values)}"
    elif isinstance(annotation, type) and issubclass(annotation, Enum):
        values = [str(v.value) for v in annotation]
        type_name = f"one of {_quoted(values)}"
        expected = f"one of {_quoted(values)}"
    elif get_origin(annotation) is list:
        type_name = "list of text"
        expected = 'a JSON array of strings, e.g. ["a", "b"]'
    elif annotation is bool:
        type_name = "boolean"
        expected = "true or false"
    elif annotation is int:
        type_name = "integer"
        expected = "a whole number" + (f" {' and '.join(bounds)}" if bounds else "")
    elif annotation is float:
        type_name = "number"
        expected = "a number" + (f" {' and '.join(bounds)}" if bounds else "")
    elif annotation is datetime:
        type_name = "time"
        expected = TIME_TEXT
    elif annotation is str and name in _kind_fields(record_type):
        type_name = "kind"
        expected = f"a record kind: one of {known_kinds()}"
    elif annotation is str:
        type_name = "text"
        if min_len and max_len:
            expected = f"a string of {min_len} to {max_len} characters"
        elif min_len:
            expected = "a non-empty string" if min_len == 1 else f"a string of at least {min_len} characters"
        else:
            expected = "a string"
    else:  # pragma: no cover - the model has no other field types
        type_name = str(annotation)
        expected = str(annotation)
    if nullable:
        expected += ", or null"
    required = info.is_required()
    default = None if required else info.get_default(call_default_factory=True)
    ref_kind = None if ref is None else (ref.kind or "*")
    return FieldDoc(name, type_name, required, default, nullable, expected, ref_kind, kind_field)


def describe_kind(kind: str) -> list[FieldDoc]:
    """Describe every field of a record kind, in declaration order."""
    record_type = RECORD_BY_KIND[kind]
    return [describe_field(record_type, name) for name in record_type.model_fields]
