"""A valid file lands whole: records field by field, references in any order, duplicates, provenance."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from interchange_samples import SAMPLE, dump_lines

from obeya.interchange import import_jsonl
from obeya.model import (
    RECORD_BY_KIND,
    TABLES,
    Identity,
    PipelineJob,
    RawEvent,
    Stage,
    StatusTransition,
    WorkItem,
)
from obeya.store import Store


def _sha(line: str) -> str:
    return hashlib.sha256(line.encode()).hexdigest()


def test_the_sample_covers_every_kind() -> None:
    assert {o["kind"] for o in SAMPLE} == set(RECORD_BY_KIND)


def test_records_land_field_by_field(store: Store, sample_lines: list[str]) -> None:
    report = import_jsonl(store, sample_lines, keep_raw=False)

    [item] = store.fetch_records("work_item", "id = ?", ["jira:10042"])
    assert item == WorkItem(
        source="jira",
        external_id="10042",
        key="PAY-42",
        title="Refund webhook retries ✓",
        project="PAY",
        tool_type="Story",
        flow_item_type="feature",
        status="In Progress",
        flow_state="active",
        stage="integration",
        parent_id="jira:10000",
        team_id="obeya:core",
        assignee_id="github:ada",
        labels=["payments", "webhooks"],
        priority="High",
        story_points=3.0,
        created_at=datetime(2025, 3, 1, 9, 30),
        started_at=datetime(2025, 3, 2, 9, 0, 0, 250000),
        updated_at=datetime(2025, 3, 2, 9, 0),  # naive = UTC
    )
    [transition] = store.fetch_records("status_transition")
    assert transition == StatusTransition(
        source="jira",
        external_id="10042-1",
        work_item_id="jira:10042",
        at=datetime(2025, 3, 2, 9, 0),  # +01:00 converted to UTC
        from_status="To Do",
        to_status="In Progress",
        from_flow_state="waiting",
        to_flow_state="active",
        from_stage="ideation",
        to_stage="integration",
        author_id="github:ada",
    )
    assert store.query(
        "SELECT labels, story_points, raw_event_id FROM work_items WHERE id = 'jira:10042'"
    ) == [('["payments","webhooks"]', 3.0, None)]
    [stage] = store.fetch_records("stage")
    assert isinstance(stage, Stage)
    assert (stage.id, stage.position, stage.wip_limit, stage.category) == (
        "obeya:pay-integration",
        1,
        5,
        "integration",
    )
    [job] = store.fetch_records("pipeline_job")
    assert isinstance(job, PipelineJob)
    assert (job.attempt, job.stage, job.run_id) == (2, None, "github:run-1")

    expected: dict[str, int] = {}
    for o in SAMPLE:
        expected[o["kind"]] = expected.get(o["kind"], 0) + 1
    assert report.records == {kind: expected[kind] for kind in TABLES if kind in expected}
    assert report.total == len(SAMPLE)
    assert report.raw_events_kept == 0
    assert report.lines == len(SAMPLE)
    for kind in TABLES:
        assert store.count(kind) == expected[kind]


def test_forward_references_resolve_across_chunks(store: Store) -> None:
    transition = {
        "kind": "status_transition",
        "source": "jira",
        "external_id": "t",
        "work_item_id": "jira:later",
        "at": "2025-03-02T10:00:00Z",
        "to_status": "Done",
        "to_flow_state": "done",
    }
    filler = [{**SAMPLE[9], "external_id": f"f{i}", "key": f"F-{i}"} for i in range(30)]
    target = {**SAMPLE[9], "external_id": "later"}
    report = import_jsonl(store, dump_lines([transition, *filler, target]), chunk_lines=7)
    assert report.records == {"work_item": 31, "status_transition": 1}
    [stored] = store.fetch_records("status_transition")
    assert isinstance(stored, StatusTransition)
    assert stored.work_item_id == "jira:later"


def test_references_to_records_already_in_the_store(store: Store) -> None:
    import_jsonl(store, dump_lines([SAMPLE[2], SAMPLE[5], SAMPLE[6]]))  # value stream, team, person
    import_jsonl(store, dump_lines([{**SAMPLE[3]}, {**SAMPLE[7]}]))  # a stage, an identity
    [identity] = store.fetch_records("identity")
    assert isinstance(identity, Identity)
    assert identity.person_id == "github:ada"
    assert store.count("stage") == 1


def test_the_same_record_twice_last_wins(store: Store) -> None:
    first = {**SAMPLE[9], "title": "first"}
    last = {**SAMPLE[9], "title": "last"}
    report = import_jsonl(store, dump_lines([first, SAMPLE[2], last]), chunk_lines=2)
    assert store.count("work_item") == 1
    assert [r.title for r in store.fetch_records("work_item")] == ["last"]  # type: ignore[attr-defined]
    assert report.records["work_item"] == 2  # lines imported, the duplicate included


def test_the_same_record_twice_in_one_chunk_last_wins(store: Store) -> None:
    lines = dump_lines([{**SAMPLE[9], "title": "first"}, {**SAMPLE[9], "title": "last"}])
    import_jsonl(store, lines)
    assert store.query("SELECT title FROM work_items") == [("last",)]


def test_reimporting_updates_in_place(store: Store) -> None:
    import_jsonl(store, dump_lines([SAMPLE[9]]))
    import_jsonl(store, dump_lines([{**SAMPLE[9], "status": "Closed", "flow_state": "done"}]))
    assert store.query("SELECT status, flow_state FROM work_items") == [("Closed", "done")]


def test_each_line_is_kept_as_a_raw_event(store: Store, tmp_path: Path) -> None:
    line = dump_lines([SAMPLE[9]])[0]
    path = tmp_path / "epics.jsonl"
    path.write_text(line + "\r\n\n", encoding="utf-8")
    report = import_jsonl(store, path)

    [item] = store.fetch_records("work_item")
    assert item.raw_event_id == f"import:{_sha(line)}"
    [raw] = store.fetch_records("raw_event")
    assert isinstance(raw, RawEvent)
    assert raw.id == item.raw_event_id
    assert raw.payload == line
    assert raw.payload_hash == _sha(line)
    assert raw.event_type == "work_item"
    assert raw.connection == "epics.jsonl"
    assert raw.raw_event_id is None
    assert (datetime.now() - raw.received_at).total_seconds() < 3600 * 24  # "now", naive UTC
    assert report.raw_events_kept == 1
    assert report.lines == 2


def test_lines_with_a_raw_event_and_raw_events_themselves_keep_none(store: Store) -> None:
    # a raw event, a comment pointing at it, the change commented on, a value stream ... an identity
    comment = next(o for o in SAMPLE if o.get("raw_event_id"))
    lines = dump_lines([_object("raw_event"), comment, _object("change"), *SAMPLE[2:8]])
    report = import_jsonl(store, lines)
    assert report.raw_events_kept == 7
    [stored] = store.fetch_records("change_comment")
    assert stored.raw_event_id == "github:delivery-1"
    ids = {r[0] for r in store.query("SELECT id FROM raw_events")}
    assert "github:delivery-1" in ids
    assert len(ids) == 8
    assert all(r.raw_event_id is None for r in store.fetch_records("raw_event"))


def test_without_keep_raw_no_raw_event_is_written(store: Store, sample_lines: list[str]) -> None:
    report = import_jsonl(store, sample_lines, keep_raw=False)
    assert report.raw_events_kept == 0
    assert store.count("raw_event") == 1  # the one raw event of the file
    assert store.query("SELECT count(*) FROM work_items WHERE raw_event_id IS NOT NULL") == [(0,)]


def test_blank_lines_are_skipped_and_counted(store: Store) -> None:
    lines = ["", "   ", *dump_lines([SAMPLE[2]]), "\t"]
    report = import_jsonl(store, lines)
    assert report.lines == 4
    assert report.records == {"value_stream": 1}


def test_lines_as_bytes_and_a_bom(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + orjson.dumps(SAMPLE[2]) + b"\n")
    assert import_jsonl(store, path).records == {"value_stream": 1}
    assert import_jsonl(store, [orjson.dumps(SAMPLE[5])]).records == {"team": 1}


def test_empty_file_writes_nothing(store: Store) -> None:
    report = import_jsonl(store, [])
    assert (report.records, report.lines, report.total) == ({}, 0, 0)


def _object(kind: str) -> dict[str, Any]:
    return next(o for o in SAMPLE if o["kind"] == kind)
