"""The model validates what tools send and derives one identity per tool object."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from obeya.model import TABLES, Incident, StatusTransition, TraceLink, WorkItem
from obeya.model.schema import ColumnType


def _work_item(**overrides: Any) -> WorkItem:
    fields: dict[str, Any] = {
        "source": "jira",
        "external_id": "10042",
        "key": "PAY-42",
        "title": "Refund webhook retries",
        "project": "PAY",
        "tool_type": "Story",
        "flow_item_type": "feature",
        "status": "In Progress",
        "flow_state": "active",
        "created_at": "2025-03-01T09:30:00Z",
    }
    fields.update(overrides)
    return WorkItem.model_validate(fields)


def test_record_id_is_source_and_external_id() -> None:
    assert _work_item().id == "jira:10042"


def test_times_are_stored_as_naive_utc() -> None:
    item = _work_item(created_at=datetime(2025, 3, 1, 11, 30, tzinfo=timezone(timedelta(hours=2))))
    assert item.created_at == datetime(2025, 3, 1, 9, 30)
    assert item.created_at.tzinfo is None
    assert _work_item(created_at="2025-03-01T09:30:00Z").created_at == datetime(2025, 3, 1, 9, 30)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("flow_item_type", "epic", "'feature', 'defect', 'risk' or 'debt'"),
        ("flow_state", "in progress", "'new', 'waiting', 'active', 'done' or 'canceled'"),
        ("created_at", "last tuesday", "valid datetime"),
        ("source", "", "at least 1 character"),
        ("story_points", "many", "valid number"),
    ],
)
def test_work_item_rejects_bad_values_naming_the_field(field: str, value: Any, message: str) -> None:
    with pytest.raises(ValidationError) as error:
        _work_item(**{field: value})
    assert error.value.errors()[0]["loc"] == (field,)
    assert message in str(error.value)


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError) as error:
        _work_item(sprint="Sprint 12")
    assert error.value.errors()[0]["loc"] == ("sprint",)


def test_missing_required_field_is_named() -> None:
    with pytest.raises(ValidationError) as error:
        StatusTransition(source="jira", external_id="1", work_item_id="jira:10042", to_flow_state="active")  # type: ignore[call-arg]
    missing = {e["loc"][0] for e in error.value.errors() if e["type"] == "missing"}
    assert missing == {"at", "to_status"}


def test_trace_link_confidence_is_a_probability() -> None:
    fields: dict[str, Any] = {
        "source": "obeya",
        "external_id": "x",
        "from_kind": "commit",
        "from_id": "github:abc",
        "to_kind": "work_item",
        "to_id": "jira:1",
        "link_kind": "mentions",
        "evidence": "message contains PAY-1",
    }
    assert TraceLink(**fields, confidence=0.9).confidence == 0.9
    with pytest.raises(ValidationError):
        TraceLink(**fields, confidence=1.5)


def test_row_round_trip_keeps_lists_and_enums() -> None:
    spec = TABLES["incident"]
    incident = Incident(
        source="pagerduty",
        external_id="Q1",
        title="Checkout errors",
        status="resolved",
        created_at=datetime(2025, 1, 1, tzinfo=UTC),
        labels=["provider-outage", "sev2"],
        change_caused=False,
    )
    row = spec.to_row(incident)
    assert row["id"] == "pagerduty:Q1"
    assert row["labels"] == '["provider-outage","sev2"]'
    assert spec.from_row(row) == incident


def test_schema_maps_field_types_to_columns() -> None:
    columns = {c.name: c for c in TABLES["work_item"].columns}
    assert [c.name for c in TABLES["work_item"].columns[:4]] == [
        "id",
        "source",
        "external_id",
        "raw_event_id",
    ]
    assert columns["created_at"].type is ColumnType.TIMESTAMP and not columns["created_at"].nullable
    assert columns["done_at"].nullable
    assert columns["labels"].type is ColumnType.JSON
    assert columns["story_points"].type is ColumnType.DOUBLE
    assert columns["parent_id"].ref == "work_item"
    assert TABLES["trace_link"].columns[-3].name == "link_kind"
    assert {c.name: c.ref for c in TABLES["trace_link"].references} == {
        "raw_event_id": "raw_event",
        "from_id": "*",
        "to_id": "*",
    }
