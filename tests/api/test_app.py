"""The API serves the portfolio and its OpenAPI description; the landing page lists the value streams."""

from __future__ import annotations

from datetime import datetime

from fastapi.testclient import TestClient

from obeya.api import create_app
from obeya.model import Record, Scope, Stage, ValueStream, WorkItem
from obeya.store import LATEST_VERSION, Store


def _portfolio() -> list[Record]:
    records: list[Record] = [
        ValueStream(source="obeya", external_id="pay", name="Payments"),
        ValueStream(source="obeya", external_id="plat", name="Platform", stream_type="supporting"),
        Scope(
            source="obeya",
            external_id="pay-board",
            value_stream_id="obeya:pay",
            tool="jira",
            object_type="project",
            object_key="PAY",
        ),
        Scope(
            source="obeya",
            external_id="pay-repo",
            value_stream_id="obeya:pay",
            tool="github",
            object_type="repository",
            object_key="PAY",
        ),  # same key, not a board: must not double count
    ]
    for position, name in enumerate(["ideation", "integration", "verification"]):
        records.append(
            Stage(
                source="obeya",
                external_id=f"pay-{name}",
                value_stream_id="obeya:pay",
                name=name,
                position=position,
            )
        )
    for number, state in enumerate(["waiting", "active", "done", "done", "new"]):
        records.append(
            WorkItem(
                source="jira",
                external_id=str(number),
                key=f"PAY-{number}",
                title="t",
                project="PAY",
                tool_type="Story",
                flow_item_type="feature",
                status=state,
                flow_state=state,
                created_at=datetime(2025, 1, 1),
            )
        )
    return records


def test_value_streams_with_item_counts(store: Store) -> None:
    store.upsert_records(_portfolio())
    client = TestClient(create_app(store))
    response = client.get("/api/v1/value-streams")
    assert response.status_code == 200
    assert response.json() == [
        {
            "id": "obeya:pay",
            "name": "Payments",
            "stream_type": "core",
            "work_items": 5,
            "in_progress": 2,
            "done": 2,
            "stages": ["ideation", "integration", "verification"],
        },
        {
            "id": "obeya:plat",
            "name": "Platform",
            "stream_type": "supporting",
            "work_items": 0,
            "in_progress": 0,
            "done": 0,
            "stages": [],
        },
    ]
    assert client.get("/api/v1/value-streams/obeya:plat").json()["name"] == "Platform"
    missing = client.get("/api/v1/value-streams/obeya:nope")
    assert missing.status_code == 404
    assert "obeya:nope" in missing.json()["detail"]


def test_landing_page_lists_streams(store: Store) -> None:
    store.upsert_records(_portfolio())
    page = TestClient(create_app(store)).get("/")
    assert page.status_code == 200
    assert '<tr data-stream-id="obeya:pay">' in page.text
    assert "ideation → integration → verification" in page.text


def test_landing_page_on_empty_store_says_how_to_start(store: Store) -> None:
    page = TestClient(create_app(store)).get("/")
    assert "obeya demo" in page.text
    assert "<table" not in page.text


def test_health_and_openapi(store: Store) -> None:
    client = TestClient(create_app(store))
    assert client.get("/api/v1/health").json() == {
        "status": "ok",
        "version": "0.1.0",
        "database": store.dialect,
        "schema_version": LATEST_VERSION,
        "latest_schema_version": LATEST_VERSION,
    }
    spec = client.get("/openapi.json").json()
    assert {"/api/v1/health", "/api/v1/value-streams", "/api/v1/value-streams/{stream_id}"} <= set(
        spec["paths"]
    )
    assert client.get("/docs").status_code == 200


def test_a_serving_process_keeps_collector_pauses_out_of_requests() -> None:
    import gc

    from obeya.api.app import quiet_garbage_collector

    threshold = gc.get_threshold()
    try:
        quiet_garbage_collector()
        assert gc.get_threshold()[0] == 50_000
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
