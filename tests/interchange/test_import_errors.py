"""A bad line rejects the whole file: the error names the line, the field and what was expected, and the
store is left exactly as it was, on every engine."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from obeya.interchange import MAX_ERRORS, ImportRejected, LineError, import_jsonl
from obeya.model import RECORD_BY_KIND
from obeya.store import Store

Snapshot = Callable[[Store], dict[str, list[tuple[Any, ...]]]]

ITEM: dict[str, Any] = {
    "kind": "work_item",
    "source": "jira",
    "external_id": "1",
    "key": "PAY-1",
    "title": "One",
    "project": "PAY",
    "tool_type": "Story",
    "flow_item_type": "feature",
    "status": "To Do",
    "flow_state": "waiting",
    "created_at": "2025-03-01T09:30:00Z",
}


def _item(**changes: Any) -> str:
    obj = {**ITEM, **changes}
    return orjson.dumps({k: v for k, v in obj.items() if v is not ...}).decode()


def _reject(store: Store, snapshot: Snapshot, lines: list[str], **options: Any) -> ImportRejected:
    """Import `lines`, expect a rejection, and check nothing changed in the store."""
    before = snapshot(store)
    with pytest.raises(ImportRejected) as caught:
        import_jsonl(store, lines, **options)
    assert snapshot(store) == before
    return caught.value


def _only(rejected: ImportRejected) -> LineError:
    assert len(rejected.errors) == 1, rejected.errors
    return rejected.errors[0]


@pytest.fixture
def seeded(store: Store) -> Store:
    """A store that already holds a record, so 'unchanged' means more than 'empty'."""
    import_jsonl(store, [_item(external_id="seed", title="Seed")])
    return store


def test_not_json(seeded: Store, snapshot: Snapshot) -> None:
    error = _only(_reject(seeded, snapshot, [_item(external_id="2"), '{"kind": "work_item",']))
    assert (error.line, error.field) == (2, None)
    assert error.problem.startswith("not valid JSON: ")
    assert error.expected == "one JSON object per line"


def test_not_an_object(seeded: Store, snapshot: Snapshot) -> None:
    error = _only(_reject(seeded, snapshot, ["", '["work_item", 1]']))
    assert (error.line, error.field) == (2, None)
    assert error.problem == 'not a JSON object but array ["work_item",1]'
    assert error.expected is not None and error.expected.startswith("a JSON object")


def test_missing_kind(seeded: Store, snapshot: Snapshot) -> None:
    line = orjson.dumps({k: v for k, v in ITEM.items() if k != "kind"}).decode()
    error = _only(_reject(seeded, snapshot, [line]))
    assert (error.line, error.field, error.problem) == (1, "kind", "missing field 'kind'")
    assert error.expected == "one of " + ", ".join(RECORD_BY_KIND)


def test_unknown_kind_lists_the_known_kinds(seeded: Store, snapshot: Snapshot) -> None:
    error = _only(_reject(seeded, snapshot, [_item(kind="workitem")]))
    assert (error.line, error.field, error.problem) == (1, "kind", 'unknown kind "workitem"')
    assert error.expected is not None
    for kind in RECORD_BY_KIND:
        assert kind in error.expected


def test_missing_required_field(seeded: Store, snapshot: Snapshot) -> None:
    error = _only(_reject(seeded, snapshot, [_item(external_id="2"), _item(external_id="3", title=...)]))
    assert (error.line, error.field, error.problem) == (2, "title", "missing required field 'title'")
    assert error.expected == "a string"


def test_unknown_field(seeded: Store, snapshot: Snapshot) -> None:
    error = _only(_reject(seeded, snapshot, [_item(colour="red")]))
    assert (error.line, error.field) == (1, "colour")
    assert error.problem == "unknown field 'colour' for kind 'work_item'"
    assert error.expected is not None and error.expected.startswith("only the fields of work_item: source,")


def test_id_is_derived_not_given(seeded: Store, snapshot: Snapshot) -> None:
    error = _only(_reject(seeded, snapshot, [_item(id="jira:1")]))
    assert (error.line, error.field) == (1, "id")
    assert "derived from its source and external_id" in error.problem


def test_string_where_a_number_is_expected(seeded: Store, snapshot: Snapshot) -> None:
    error = _only(_reject(seeded, snapshot, [_item(story_points="3")]))
    assert (error.line, error.field) == (1, "story_points")
    assert error.problem == 'wrong type: got string "3"'
    assert error.expected == "a number, or null"


def test_number_where_a_string_is_expected(seeded: Store, snapshot: Snapshot) -> None:
    error = _only(_reject(seeded, snapshot, [_item(title=42)]))
    assert (error.field, error.problem, error.expected) == ("title", "wrong type: got number 42", "a string")


def test_bad_enum_value_lists_the_allowed_values(seeded: Store, snapshot: Snapshot) -> None:
    error = _only(_reject(seeded, snapshot, [_item(flow_state="doing")]))
    assert (error.line, error.field, error.problem) == (1, "flow_state", '"doing" is not an allowed value')
    assert error.expected == 'one of "new", "waiting", "active", "done", "canceled"'


def test_bad_literal_value_lists_the_allowed_values(seeded: Store, snapshot: Snapshot) -> None:
    line = orjson.dumps(
        {
            "kind": "change",
            "source": "github",
            "external_id": "acme/pay#1",
            "repo": "acme/pay",
            "number": 1,
            "title": "x",
            "state": "draft",
            "created_at": "2025-03-01T00:00:00Z",
        }
    ).decode()
    error = _only(_reject(seeded, snapshot, [line]))
    assert (error.field, error.problem) == ("state", '"draft" is not an allowed value')
    assert error.expected == 'one of "open", "merged", "closed"'


def test_out_of_range_value(seeded: Store, snapshot: Snapshot) -> None:
    error = _only(_reject(seeded, snapshot, [_item(labels=["a", 3])]))
    assert (error.field, error.problem) == ("labels[1]", "wrong type: got number 3")


def test_unparseable_time(seeded: Store, snapshot: Snapshot) -> None:
    error = _only(_reject(seeded, snapshot, [_item(created_at="yesterday")]))
    assert (error.line, error.field) == (1, "created_at")
    assert error.problem.startswith('unparseable time "yesterday"')
    assert error.expected is not None and "ISO 8601" in error.expected


def test_time_given_as_a_number(seeded: Store, snapshot: Snapshot) -> None:
    error = _only(_reject(seeded, snapshot, [_item(created_at=1740821400)]))
    assert (error.field, error.problem) == ("created_at", "wrong type: got number 1740821400")


def test_dangling_reference_says_field_id_and_kind(seeded: Store, snapshot: Snapshot) -> None:
    lines = [_item(external_id="2"), _item(external_id="3", parent_id="jira:404")]
    error = _only(_reject(seeded, snapshot, lines))
    assert (error.line, error.field) == (2, "parent_id")
    assert error.problem == (
        "dangling reference: no work_item record has the id 'jira:404', neither in the file nor in the store"
    )
    assert error.expected == 'the id ("source:external_id") of a work_item record'


def test_reference_to_a_record_of_another_kind_dangles(seeded: Store, snapshot: Snapshot) -> None:
    team = '{"kind": "team", "source": "obeya", "external_id": "core", "name": "Core"}'
    error = _only(_reject(seeded, snapshot, [team, _item(external_id="2", assignee_id="obeya:core")]))
    assert (error.line, error.field) == (2, "assignee_id")
    assert "no person record has the id 'obeya:core'" in error.problem


def test_trace_link_to_an_unknown_kind(seeded: Store, snapshot: Snapshot) -> None:
    link = {
        "kind": "trace_link",
        "source": "obeya",
        "external_id": "l1",
        "from_kind": "ticket",
        "from_id": "jira:seed",
        "to_kind": "work_item",
        "to_id": "jira:seed",
        "link_kind": "relates",
        "evidence": "manual",
        "confidence": 1,
    }
    error = _only(_reject(seeded, snapshot, [orjson.dumps(link).decode()]))
    assert (error.line, error.field, error.problem) == (1, "from_kind", 'unknown kind "ticket"')


def test_trace_link_dangling_on_the_kind_it_names(seeded: Store, snapshot: Snapshot) -> None:
    link = {
        "kind": "trace_link",
        "source": "obeya",
        "external_id": "l1",
        "from_kind": "work_item",
        "from_id": "jira:seed",
        "to_kind": "change",
        "to_id": "jira:seed",  # a work item, not a change
        "link_kind": "relates",
        "evidence": "manual",
        "confidence": 1,
    }
    error = _only(_reject(seeded, snapshot, [orjson.dumps(link).decode()]))
    assert (error.line, error.field) == (1, "to_id")
    assert "no change record has the id 'jira:seed'" in error.problem


def test_bad_line_after_many_chunks_rolls_everything_back(seeded: Store, snapshot: Snapshot) -> None:
    good = [_item(external_id=str(i), title=f"Item {i}") for i in range(1000)]
    overwrite_seed = _item(external_id="seed", title="Overwritten")  # was imported before
    rejected = _reject(
        seeded, snapshot, [*good, overwrite_seed, _item(external_id="x", flow_state="?")], chunk_lines=100
    )
    assert [(e.line, e.field) for e in rejected.errors] == [(1002, "flow_state")]
    assert seeded.count("work_item") == 1
    assert seeded.query("SELECT title FROM work_items") == [("Seed",)]


def test_dangling_reference_found_after_the_whole_file_was_written(seeded: Store, snapshot: Snapshot) -> None:
    lines = [_item(external_id="child", parent_id="jira:missing")]
    lines += [_item(external_id=str(i)) for i in range(500)]
    rejected = _reject(seeded, snapshot, lines, chunk_lines=50)
    assert [(e.line, e.field) for e in rejected.errors] == [(1, "parent_id")]
    assert seeded.count("work_item") == 1


def test_errors_are_collected_with_their_lines_and_capped(seeded: Store, snapshot: Snapshot) -> None:
    lines = [_item(external_id="ok")] + ["nope"] * 70
    rejected = _reject(seeded, snapshot, lines)
    assert len(rejected.errors) == MAX_ERRORS
    assert rejected.truncated
    assert [e.line for e in rejected.errors] == list(range(2, 2 + MAX_ERRORS))
    assert "stopped reading after 50 errors" in str(rejected)


def test_several_errors_on_several_lines_are_all_reported(seeded: Store, snapshot: Snapshot) -> None:
    lines = [_item(title=...), "", _item(external_id="2", created_at="soon", flow_state="x"), "{"]
    rejected = _reject(seeded, snapshot, lines)
    found = [(e.line, e.field) for e in rejected.errors]
    assert found == [(1, "title"), (3, "flow_state"), (3, "created_at"), (4, None)] or found == [
        (1, "title"),
        (3, "created_at"),
        (3, "flow_state"),
        (4, None),
    ]
    assert not rejected.truncated
    text = str(rejected)
    assert text.startswith("import rejected, nothing was written: 4 errors")
    assert "line 1, field 'title': missing required field 'title' (expected a string)" in text


def test_rejected_import_keeps_no_raw_events(store: Store, snapshot: Snapshot) -> None:
    _reject(store, snapshot, [_item(external_id="2"), _item(external_id="3", title=...)])
    assert store.count("raw_event") == 0
