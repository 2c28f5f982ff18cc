"""Export writes the import format; export -> import -> export gives the same bytes and the same records."""

from __future__ import annotations

import io
from collections.abc import Callable

import orjson
import pytest
from interchange_samples import SAMPLE, dump_lines

from obeya.interchange import export_jsonl, import_jsonl
from obeya.model import RECORD_BY_KIND, TABLES
from obeya.store import Store


def _export(store: Store, kinds: list[str] | None = None, chunk_rows: int = 20_000) -> str:
    out = io.StringIO()
    export_jsonl(store, out, kinds, chunk_rows=chunk_rows)
    return out.getvalue()


def test_export_format(store: Store) -> None:
    item = next(o for o in SAMPLE if o["kind"] == "work_item" and o["external_id"] == "10000")
    import_jsonl(store, dump_lines([{**item, "labels": ["x", "y"], "story_points": 2}]), keep_raw=False)
    text = _export(store, ["work_item"])
    assert text == (
        '{"kind":"work_item","source":"jira","external_id":"10000","key":"PAY-1","title":"Payments epic",'
        '"project":"PAY","tool_type":"Epic","flow_item_type":"feature","status":"Open","flow_state":"new",'
        '"labels":["x","y"],"story_points":2.0,"created_at":"2025-01-01T00:00:00Z"}\n'
    )


def test_times_are_utc_with_z_and_keep_microseconds(store: Store) -> None:
    transition = next(o for o in SAMPLE if o["kind"] == "status_transition")
    item = next(o for o in SAMPLE if o["external_id"] == "10000")
    lines = dump_lines([{**transition, "work_item_id": "jira:10000", "author_id": None}, item])
    lines[0] = lines[0].replace('"2025-03-02T10:00:00+01:00"', '"2025-03-02T10:00:00.000123+01:00"')
    import_jsonl(store, lines, keep_raw=False)
    [line] = _export(store, ["status_transition"]).splitlines()
    obj = orjson.loads(line)
    assert obj["at"] == "2025-03-02T09:00:00.000123Z"
    assert "author_id" not in obj  # null fields are left out
    assert "raw_event_id" not in obj
    assert list(obj)[:3] == ["kind", "source", "external_id"]


def test_kinds_in_dependency_order_each_by_id_across_pages(store: Store) -> None:
    base = next(o for o in SAMPLE if o["external_id"] == "10000")
    ids = ["b", "a", "Z", "_", "a1", "B", "aa"]
    items = [{**base, "external_id": i} for i in ids]
    import_jsonl(store, dump_lines([*items, SAMPLE[2]]), keep_raw=False)
    lines = _export(store, ["work_item", "value_stream"], chunk_rows=2).splitlines()
    kinds = [orjson.loads(line)["kind"] for line in lines]
    assert kinds == ["value_stream"] + ["work_item"] * len(ids)
    exported = [orjson.loads(line)["external_id"] for line in lines[1:]]
    assert exported == sorted(ids, key=lambda i: f"jira:{i}".encode())  # byte order on every engine


def test_counts_and_unknown_kinds(store: Store, sample_lines: list[str]) -> None:
    import_jsonl(store, sample_lines)
    counts = export_jsonl(store, io.StringIO())
    assert list(counts) == list(TABLES)
    assert counts == {kind: store.count(kind) for kind in TABLES}
    with pytest.raises(ValueError, match="unknown kind"):
        export_jsonl(store, io.StringIO(), ["work_items"])


def test_round_trip(
    store: Store, open_store: Callable[[str], Store], engine: str, sample_lines: list[str]
) -> None:
    import_jsonl(store, sample_lines)
    first = _export(store, chunk_rows=3)
    assert len(first.splitlines()) == 2 * len(SAMPLE) - 2  # every line kept as a raw event but two

    fresh = open_store(engine)
    fresh.migrate()
    report = import_jsonl(fresh, first.splitlines())
    assert report.raw_events_kept == 0  # exported records carry their raw_event_id
    second = _export(fresh)
    assert second == first

    for kind in RECORD_BY_KIND:
        assert fresh.fetch_records(kind) == store.fetch_records(kind), kind

    # and the records are the originals (plus the raw event each line was kept as)
    originals = {}
    for obj, line in zip(SAMPLE, sample_lines, strict=True):
        fields = {k: v for k, v in obj.items() if k != "kind"}
        record_type = RECORD_BY_KIND[obj["kind"]]
        if obj["kind"] != "raw_event" and "raw_event_id" not in fields:
            stored = fresh.query(
                f'SELECT raw_event_id FROM "{record_type.table}" WHERE id = ?',
                [f"{obj['source']}:{obj['external_id']}"],
            )
            fields["raw_event_id"] = stored[0][0]
            [payload] = fresh.query("SELECT payload FROM raw_events WHERE id = ?", [stored[0][0]])[0]
            assert payload == line
        record = record_type.model_validate(fields)
        originals[(obj["kind"], record.id)] = record
    for (kind, record_id), record in originals.items():
        assert fresh.fetch_records(kind, "id = ?", [record_id]) == [record]
