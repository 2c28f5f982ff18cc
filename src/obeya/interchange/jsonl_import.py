"""Import records from a JSONL file, all or nothing (the format: docs/import-format.md).

Lines are parsed with orjson, validated by the record's pydantic model in strict mode, and written in
chunks with the store's bulk upsert, all inside one transaction: any bad line rolls everything back.

References are checked without keeping the file's records in memory. A chunk's references are looked up
in the store right after the chunk is written (inside the transaction, so the store holds every earlier
line of the file as well as what was there before); only those still unresolved are kept, with the first
line that made them, and looked up again once the whole file is written. A reference forward in the file
therefore costs memory until the end, a reference backward (or to a stored record) costs nothing.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
from pydantic import ValidationError

from obeya.interchange.errors import MAX_ERRORS, ImportRejected, LineError
from obeya.interchange.fields import describe_field, known_kinds, ref_kind_field
from obeya.model.ids import record_id
from obeya.model.records import RECORD_BY_KIND, Record
from obeya.model.schema import TABLES
from obeya.store.base import Store

CHUNK_LINES = 20_000
"""Lines validated and written per chunk."""

LOOKUP_IDS = 50_000
"""Ids looked up in the store per query."""

RAW_SOURCE = "import"
"""The source of the raw events an import keeps for provenance."""

_BOM = b"\xef\xbb\xbf"


@dataclass
class ImportReport:
    """What an import wrote."""

    records: dict[str, int]
    """Records imported per kind, in dependency order (a record given twice in the file counts twice)."""
    raw_events_kept: int
    """Raw events written for provenance (one per line that had no raw_event_id)."""
    lines: int
    """Lines read, blank ones included."""
    seconds: float

    @property
    def total(self) -> int:
        """Records imported, every kind together (provenance raw events not counted)."""
        return sum(self.records.values())


@dataclass(frozen=True)
class _RefField:
    name: str
    kind: str | None  # None: the kind is named by `kind_field`
    kind_field: str | None


_REF_FIELDS: dict[str, list[_RefField]] = {
    kind: [
        _RefField(c.name, None if c.ref == "*" else c.ref, ref_kind_field(c.name) if c.ref == "*" else None)
        for c in spec.references
    ]
    for kind, spec in TABLES.items()
}


def _show(value: Any, limit: int = 60) -> str:
    """A value as it would appear in JSON, shortened."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _field_name(loc: tuple[int | str, ...]) -> str | None:
    if not loc:
        return None
    return str(loc[0]) + "".join(f"[{part}]" for part in loc[1:])


def validation_errors(line: int, kind: str, error: ValidationError) -> list[LineError]:
    """Pydantic's errors for one line, in the interchange format's words."""
    record_type = RECORD_BY_KIND[kind]
    fields = record_type.model_fields
    found: list[LineError] = []
    for detail in error.errors(include_url=False):
        loc = detail["loc"]
        name = _field_name(loc)
        top = str(loc[0]) if loc else None
        expected = describe_field(record_type, top).expected if top in fields else None
        kind_of_error = detail["type"]
        value = detail.get("input")
        ctx = detail.get("ctx") or {}
        if kind_of_error == "missing":
            problem = f"missing required field {top!r}"
        elif kind_of_error == "extra_forbidden":
            if top == "id":
                problem = "'id' is not a field: a record's id is derived from its source and external_id"
                expected = "no id field"
            else:
                problem = f"unknown field {top!r} for kind {kind!r}"
                expected = f"only the fields of {kind}: {', '.join(fields)}"
        elif kind_of_error in ("literal_error", "enum"):
            problem = f"{_show(value)} is not an allowed value"
        elif kind_of_error.startswith("datetime") and isinstance(value, str):
            reason = ctx.get("error")
            problem = f"unparseable time {_show(value)}" + (f": {reason}" if reason else "")
        elif kind_of_error.endswith(("_type", "_parsing")):
            problem = f"wrong type: got {_json_type(value)} {_show(value)}"
        else:
            problem = f"invalid value {_show(value)}: {detail['msg']}"
        found.append(LineError(line, name, problem, expected))
    return found


def _lines(path_or_lines: str | os.PathLike[str] | Iterable[str | bytes]) -> Iterator[bytes]:
    if isinstance(path_or_lines, str | os.PathLike):
        with open(path_or_lines, "rb") as file:
            yield from file
    else:
        for line in path_or_lines:
            yield line.encode() if isinstance(line, str) else line


class _Import:
    """The state of one import: buffered records, pending references, errors."""

    def __init__(self, store: Store, keep_raw: bool, connection: str | None) -> None:
        self.store = store
        self.keep_raw = keep_raw
        self.connection = connection
        self.received_at = datetime.now(UTC).replace(tzinfo=None)
        self.errors: list[LineError] = []
        self.truncated = False
        self.written: Counter[str] = Counter()
        self.raw_events = 0
        self.buffered: dict[str, list[Record]] = {}
        self.buffered_raw: list[tuple[str, str, bytes]] = []  # (raw event id, kind, line)
        # references not yet looked up (this chunk's) and still unresolved (earlier chunks'):
        # target kind -> referenced id -> (first line, field)
        self.fresh: dict[str, dict[str, tuple[int, str]]] = {}
        self.pending: dict[str, dict[str, tuple[int, str]]] = {}

    # --- errors -----------------------------------------------------------------------------------

    def fail(self, *errors: LineError) -> None:
        room = MAX_ERRORS - len(self.errors)
        self.errors.extend(errors[:room])
        if len(errors) > room:
            self.truncated = True

    @property
    def full(self) -> bool:
        return self.truncated or len(self.errors) >= MAX_ERRORS

    # --- lines ------------------------------------------------------------------------------------

    def add(self, number: int, line: bytes) -> None:
        """Validate one line and buffer its record."""
        line = line.rstrip(b"\r\n")
        if number == 1 and line.startswith(_BOM):
            line = line[len(_BOM) :]
        if not line.strip():
            return
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            self.fail(LineError(number, None, f"not valid JSON: {error}", "one JSON object per line"))
            return
        if not isinstance(obj, dict):
            self.fail(
                LineError(
                    number,
                    None,
                    f"not a JSON object but {_json_type(obj)} {_show(obj)}",
                    'a JSON object such as {"kind": "work_item", "source": "jira", ...}',
                )
            )
            return
        if "kind" not in obj:
            self.fail(LineError(number, "kind", "missing field 'kind'", f"one of {known_kinds()}"))
            return
        kind = obj.pop("kind")
        if not isinstance(kind, str) or kind not in RECORD_BY_KIND:
            self.fail(LineError(number, "kind", f"unknown kind {_show(kind)}", f"one of {known_kinds()}"))
            return
        raw_id: str | None = None
        if self.keep_raw and kind != "raw_event" and obj.get("raw_event_id") is None:
            digest = hashlib.sha256(line).hexdigest()
            raw_id = record_id(RAW_SOURCE, digest)
            obj["raw_event_id"] = raw_id
        try:
            record = RECORD_BY_KIND[kind].model_validate_json(orjson.dumps(obj), strict=True)
        except ValidationError as error:
            self.fail(*validation_errors(number, kind, error))
            return
        except orjson.JSONEncodeError as error:  # e.g. an integer beyond 64 bits
            self.fail(LineError(number, None, f"unsupported JSON value: {error}", None))
            return
        if not self.note_references(number, record, raw_id):
            return
        if self.errors:  # the import is rejected already: keep validating, stop buffering
            return
        self.buffered.setdefault(kind, []).append(record)
        if raw_id is not None:
            self.buffered_raw.append((raw_id, kind, line))

    def note_references(self, number: int, record: Record, raw_id: str | None) -> bool:
        """Remember the record's references for lookup; False (and an error) if one names no kind.

        `raw_id` is the raw event this import keeps for the line, which needs no lookup.
        """
        for ref in _REF_FIELDS[record.kind]:
            value = getattr(record, ref.name)
            if value is None or value == raw_id:
                continue
            target = ref.kind
            if target is None:
                assert ref.kind_field is not None
                target = getattr(record, ref.kind_field)
                if target not in RECORD_BY_KIND:
                    self.fail(
                        LineError(
                            number, ref.kind_field, f"unknown kind {_show(target)}", f"one of {known_kinds()}"
                        )
                    )
                    return False
            self.fresh.setdefault(target, {}).setdefault(value, (number, ref.name))
        return True

    # --- writes and lookups -----------------------------------------------------------------------

    def flush(self) -> None:
        """Write the buffered chunk, then look up the chunk's references."""
        buffered, raw = self.buffered, self.buffered_raw
        self.buffered, self.buffered_raw = {}, []
        if self.errors:
            self.fresh.clear()
            return
        for kind, spec in TABLES.items():
            records = buffered.get(kind)
            if records:
                self.store.upsert(kind, spec.to_arrow(records))
                self.written[kind] += len(records)
        if raw:
            self.store.upsert("raw_event", self.raw_events_table(raw))
            self.raw_events += len(raw)
        fresh, self.fresh = self.fresh, {}
        for kind, refs in fresh.items():
            pending = self.pending.setdefault(kind, {})
            new = [ref for ref in refs if ref not in pending]
            for ref in self.missing(kind, new):
                pending[ref] = refs[ref]

    def raw_events_table(self, raw: list[tuple[str, str, bytes]]) -> pa.Table:
        """The raw events kept for a chunk's lines, built column by column."""
        schema = TABLES["raw_event"].arrow_schema
        n = len(raw)
        ids = [r[0] for r in raw]
        digests = [i[len(RAW_SOURCE) + 1 :] for i in ids]
        columns = {
            "id": ids,
            "source": [RAW_SOURCE] * n,
            "external_id": digests,
            "raw_event_id": [None] * n,
            "event_type": [r[1] for r in raw],
            "delivery_id": [None] * n,
            "connection": [self.connection] * n,
            "received_at": [self.received_at] * n,
            "payload_hash": digests,
            "payload": [r[2].decode() for r in raw],
        }
        return pa.Table.from_arrays([pa.array(columns[f.name], f.type) for f in schema], schema=schema)

    def missing(self, kind: str, ids: list[str]) -> list[str]:
        """Those of `ids` that no record of `kind` in the store has (one query per LOOKUP_IDS ids)."""
        table = TABLES[kind].name
        absent: list[str] = []
        for start in range(0, len(ids), LOOKUP_IDS):
            batch = ids[start : start + LOOKUP_IDS]
            rows = self.store.query(
                f'SELECT id FROM "{table}" WHERE id IN (SELECT unnest(CAST(? AS TEXT[])))', [batch]
            )
            found = {row[0] for row in rows}
            absent.extend(i for i in batch if i not in found)
        return absent

    def check_references(self) -> None:
        """After the whole file is written: every reference still pending must now resolve."""
        dangling: list[LineError] = []
        for kind, refs in self.pending.items():
            for ref in self.missing(kind, list(refs)):
                line, name = refs[ref]
                dangling.append(
                    LineError(
                        line,
                        name,
                        f"dangling reference: no {kind} record has the id {ref!r}, neither in the file "
                        "nor in the store",
                        f'the id ("source:external_id") of a {kind} record',
                    )
                )
        dangling.sort(key=lambda e: e.line)
        self.fail(*dangling)


def import_jsonl(
    store: Store,
    path_or_lines: str | os.PathLike[str] | Iterable[str | bytes],
    *,
    keep_raw: bool = True,
    connection: str | None = None,
    chunk_lines: int = CHUNK_LINES,
) -> ImportReport:
    """Import a JSONL file (a path) or an iterable of lines into the store, all or nothing.

    With `keep_raw`, each line without a ``raw_event_id`` (other than a raw event itself) is kept as a
    raw event too, and the record points at it. `connection` names the raw events' origin (default: the
    file's name). Raises `ImportRejected`, with up to 50 errors, when any line is bad; the store is then
    exactly as it was.
    """
    started = time.perf_counter()
    if connection is None and isinstance(path_or_lines, str | os.PathLike):
        connection = Path(path_or_lines).name
    state = _Import(store, keep_raw, connection)
    lines = 0
    with store.transaction():
        for number, line in enumerate(_lines(path_or_lines), start=1):
            lines = number
            state.add(number, line)
            if state.full:
                state.truncated = True
                break
            if number % chunk_lines == 0:
                state.flush()
        state.flush()
        if not state.errors:
            state.check_references()
        if state.errors:
            raise ImportRejected(state.errors, truncated=state.truncated)
    records = {kind: state.written[kind] for kind in TABLES if state.written[kind]}
    return ImportReport(records, state.raw_events, lines, time.perf_counter() - started)
