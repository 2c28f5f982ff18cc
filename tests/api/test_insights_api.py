"""`/api/v1/insights` and `/api/v1/maturity` serve what `obeya insights` and `obeya maturity` compute,
under the rules of obeya.yaml, on the map worked out by hand in tests/engine/test_stages.py."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime

from fastapi.testclient import TestClient

from obeya.api import create_app
from obeya.config.model import ObeyaConfig, RulesConfig
from obeya.engine.window import Slice, Window
from obeya.insights import insights_report, maturity
from obeya.store import Store
from tests.engine.builders import day, item
from tests.engine.test_stages import _scenario

MARCH = {"stream": "Payments", "window": "31d", "as_of": "2025-03-31"}
WINDOW = Window(datetime(2025, 3, 1), datetime(2025, 4, 1))
PAY = Slice(value_stream_id="test:pay")


def _plain(value: object) -> object:
    """A dataclass result as the JSON the API serves."""
    return json.loads(json.dumps(dataclasses.asdict(value)))  # type: ignore[call-overload]


def test_insights_name_the_bottleneck_and_every_waste_category(store: Store) -> None:
    store.upsert_records(_scenario())
    body = TestClient(create_app(store)).get("/api/v1/insights", params=MARCH).json()
    assert body["slice"]["value_stream_id"] == "test:pay"
    [bottleneck] = body["bottlenecks"]
    assert bottleneck["kind"] == "bottleneck" and "delivery" in bottleneck["title"]
    assert bottleneck["items"] == ["A", "B", "D"]
    assert [w["category"] for w in body["waste"]] == [
        "defects",
        "overproduction",
        "waiting",
        "non-utilized talent",
        "transportation",
        "inventory",
        "motion",
        "extra-processing",
    ]
    report = insights_report(store, WINDOW, PAY)
    assert body["waste"] == [_plain(w) for w in report.waste]
    assert body["recommendations"] == [_plain(r) for r in report.recommendations]


def test_insights_follow_the_configured_work_start(store: Store) -> None:
    # Z waits (committed) from 2 March and works from 10 to 12 March: its flow time, hence the waiting
    # signal, depends on whether work starts at commitment or at the first active status.
    store.upsert_records(_scenario())
    store.upsert_records(
        item(
            "Z",
            day(3, 1),
            [
                (day(3, 1), "Backlog"),
                (day(3, 2), "Blocked"),
                (day(3, 10), "In Progress"),
                (day(3, 12), "Done"),
            ],
        )
    )
    active = insights_report(store, WINDOW, PAY, work_start="active")
    config = ObeyaConfig(rules=RulesConfig(work_start="committed"))
    body = TestClient(create_app(store, config)).get("/api/v1/insights", params=MARCH).json()
    committed = insights_report(store, WINDOW, PAY, work_start="committed")
    assert body["waste"] == [_plain(w) for w in committed.waste]
    assert body["waste"] != [_plain(w) for w in active.waste]


def test_maturity_scores_every_stream_on_five_dimensions(store: Store) -> None:
    store.upsert_records(_scenario())
    body = (
        TestClient(create_app(store))
        .get("/api/v1/maturity", params={"window": "31d", "as_of": "2025-03-31"})
        .json()
    )
    [stream] = body["streams"]
    assert stream["name"] == "Payments"
    assert [d["dimension"] for d in stream["dimensions"]] == [
        d.dimension for d in maturity(store, WINDOW)[0].dimensions
    ]
    assert body["streams"] == [_plain(s) for s in maturity(store, WINDOW)]
