"""`/api/v1/vsm` (JSON and SVG) serves the map worked out by hand in tests/engine/test_stages.py;
`/api/v1/trace/{key}` and `/api/v1/traceability` serve the links with their evidence; OpenAPI lists all."""

from __future__ import annotations

import re
from xml.etree import ElementTree

import pytest
from fastapi.testclient import TestClient

from obeya.api import create_app
from obeya.linking import derive_links
from obeya.store import Store
from tests.engine.test_stages import STAGES, _deliveries, _scenario
from tests.linking.linking_records import (
    change,
    change_request,
    commit,
    deployment,
    incident,
    item,
    rid,
    stream,
    write,
)

DAY = 86400.0
MARCH = {"stream": "Payments", "window": "31d", "as_of": "2025-03-31"}
REPO = "pay/api"


def test_value_stream_map_as_json(store: Store) -> None:
    store.upsert_records(_scenario())
    body = TestClient(create_app(store)).get("/api/v1/vsm", params=MARCH).json()
    assert [s["stage"] for s in body["stages"]] == STAGES
    by = {s["stage"]: s for s in body["stages"]}
    assert by["integration"]["departures"] == 4
    assert by["verification"]["lead_time"]["mean"] == pytest.approx(10 / 3 * DAY)
    assert by["integration"]["complete_and_accurate"] == {"numerator": 3, "denominator": 4, "value": 0.75}
    assert by["observation"]["complete_and_accurate"]["value"] is None
    assert by["integration"]["age_in_stage"]["p50"] == pytest.approx(12 * DAY)
    assert body["total_lead_time"] == pytest.approx(7 * DAY)
    assert body["activity_ratio"] == pytest.approx(4 / 7)
    assert body["rolled_complete_and_accurate"] == pytest.approx(0.5)
    bottleneck = body["bottleneck"]
    assert bottleneck["stage"] == "delivery" and bottleneck["wait_share"] == pytest.approx(5 / 9)
    assert [(i["key"], i["waited"] / DAY) for i in bottleneck["items"]] == [("A", 3), ("B", 1), ("D", 1)]


def test_value_stream_map_beside_the_previous_window(store: Store) -> None:
    """[9, 17 Mar) against [1, 9 Mar): figures by hand in tests/engine/test_stages.py
    (test_previous_window_beside_the_current_one)."""
    store.upsert_records(_scenario())
    client = TestClient(create_app(store))
    body = client.get(
        "/api/v1/vsm", params={"stream": "Payments", "from": "2025-03-09", "to": "2025-03-16"}
    ).json()
    assert (body["window"]["start"], body["window"]["end"], body["window"]["window"]) == (
        "2025-03-09",
        "2025-03-17",
        "8d",
    )
    previous = body["previous"]
    assert (previous["window"]["start"], previous["window"]["as_of"]) == ("2025-03-01", "2025-03-08")
    now = {s["stage"]: s for s in body["stages"]}
    before = {s["stage"]: s for s in previous["stages"]}
    change = {s["stage"]: s for s in body["change"]["stages"]}
    assert now["verification"]["lead_time"]["p50"] == pytest.approx(4 * DAY)
    assert before["verification"]["lead_time"]["p50"] == pytest.approx(2 * DAY)
    assert change["verification"]["lead_time_p50"] == pytest.approx(2 * DAY)
    assert change["integration"]["complete_and_accurate"] == pytest.approx(0.5)
    assert change["delivery"]["lead_time_p50"] is None
    assert (previous["total_lead_time"], body["change"]["total_lead_time"]) == (
        pytest.approx(6 * DAY),
        pytest.approx(2 * DAY),
    )
    assert previous["bottleneck"] is None  # no committed wait ended in [1, 9 Mar)
    assert "window=8d&as_of=2025-03-08" in before["integration"]["evidence"]
    rows = client.get(before["integration"]["evidence"]).json()
    assert rows["departed"] == before["integration"]["departures"] == 2  # A and B's first visit


def test_calendar_days_name_the_same_window_on_every_figure(store: Store) -> None:
    store.upsert_records(_scenario())
    client = TestClient(create_app(store))
    days = {"stream": "Payments", "from": "2025-03-01", "to": "2025-03-31"}
    for path in ("/api/v1/vsm", "/api/v1/metrics/flow", "/api/v1/metrics/dora"):
        by_days, by_window = client.get(path, params=days), client.get(path, params=MARCH)
        assert by_days.status_code == 200, by_days.text
        assert by_days.json() == by_window.json(), path


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": "2025-03-31", "to": "2025-03-01"}, "from/to: from 2025-03-31 is after to 2025-03-01"),
        ({"from": "2025-03-01"}, "from/to: from and to go together"),
        ({"from": "2025-03-01", "to": "2025-03-31", "window": "31d"}, "leave out window and as_of"),
        ({"to": "2025-03-31", "as_of": "2025-03-31"}, "leave out window and as_of"),
    ],
)
def test_calendar_window_errors_say_what_to_do(store: Store, params: dict[str, str], message: str) -> None:
    client = TestClient(create_app(store))
    for path in ("/api/v1/vsm", "/api/v1/metrics/flow"):
        response = client.get(path, params=params)
        assert response.status_code == 422 and message in response.json()["detail"], path


def test_value_stream_map_refuses_a_grouping(store: Store) -> None:
    store.upsert_records(_scenario())
    client = TestClient(create_app(store))
    for path in ("/api/v1/vsm", "/api/v1/vsm.svg"):
        response = client.get(path, params={**MARCH, "by": "week"})
        assert response.status_code == 422
        assert response.json()["detail"].startswith("by: the value stream map takes a window, not a grouping")


def test_delivery_evidence_says_which_items_failed_downstream(store: Store) -> None:
    """Delivery %C&A 1/3 in March: A and B failed downstream (tests/engine/test_stages.py `_deliveries`)."""
    store.upsert_records([*_scenario(), *_deliveries()])
    client = TestClient(create_app(store))
    delivery = next(
        s for s in client.get("/api/v1/vsm", params=MARCH).json()["stages"] if s["stage"] == "delivery"
    )
    assert delivery["complete_and_accurate"] == {
        "numerator": 1,
        "denominator": 3,
        "value": pytest.approx(1 / 3),
    }
    rows = client.get(delivery["evidence"]).json()["rows"]
    assert [(r["key"], r["complete_and_accurate"], r["failed_downstream"]) for r in rows] == [
        ("B", False, True),
        ("A", False, True),
        ("D", True, False),
    ]


def test_stage_evidence_pages_equal_the_stage_figures(store: Store) -> None:
    store.upsert_records(_scenario())
    client = TestClient(create_app(store))
    stages = {s["stage"]: s for s in client.get("/api/v1/vsm", params=MARCH).json()["stages"]}
    for name, figures in stages.items():
        assert figures["evidence"].startswith(f"/api/v1/vsm/stages/{name}/evidence?stream=test%3Apay")
        body = client.get(figures["evidence"]).json()
        assert body["departed"] == figures["departures"], name
        assert body["in_stage"] == figures["in_stage_now"], name
        assert body["total"] == len(body["rows"]) == figures["departures"] + figures["in_stage_now"]
    # integration: 4 departed visits (A, B, B, D) then C, still in it 12 days; two pages of 3
    first = client.get("/api/v1/vsm/stages/integration/evidence", params={**MARCH, "page_size": 3}).json()
    assert [(r["part"], r["key"]) for r in first["rows"]] == [
        ("departed", "A"),
        ("departed", "B"),
        ("departed", "B"),
    ]
    assert first["pages"] == 2 and first["next"].startswith("/api/v1/vsm/stages/integration/evidence?")
    second = client.get(first["next"]).json()
    assert [(r["part"], r["key"], r["age"]) for r in second["rows"]] == [
        ("departed", "D", None),
        ("in_stage", "C", pytest.approx(12 * DAY)),
    ]
    csv_response = client.get("/api/v1/vsm/stages/integration/evidence", params={**MARCH, "format": "csv"})
    assert csv_response.headers["content-type"].startswith("text/csv")
    assert csv_response.headers["x-total-count"] == "5"
    lines = csv_response.text.splitlines()
    assert lines[0].startswith("part,key,title,flow_item_type,entered_at,left_at,lead_time")
    assert lines[1].startswith("departed,A,A title,feature,2025-03-03T00:00:00,2025-03-05T00:00:00,172800.0")
    assert lines[-1].startswith("in_stage,C,")


def test_stage_evidence_of_an_unknown_stage_is_404_naming_the_stages(store: Store) -> None:
    store.upsert_records(_scenario())
    response = TestClient(create_app(store)).get("/api/v1/vsm/stages/testing/evidence", params=MARCH)
    assert response.status_code == 404
    assert "stage: no stage 'testing'" in response.json()["detail"]
    assert "ideation, integration" in response.json()["detail"]


def test_value_stream_map_as_svg_marks_the_bottleneck(store: Store) -> None:
    store.upsert_records(_scenario())
    response = TestClient(create_app(store)).get("/api/v1/vsm.svg", params=MARCH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert response.text.startswith("<svg xmlns='http://www.w3.org/2000/svg'")
    assert "Value stream map — Payments — 2025-03-01 to 2025-03-31" in response.text
    boxes = dict(re.findall(r"<g class='stage' data-stage='([^']+)'>(.*?)</g>", response.text, re.S))
    assert list(boxes) == STAGES
    assert [name for name, box in boxes.items() if "bottleneck" in box] == ["delivery"]
    assert "Bottleneck: delivery holds 56 % of the committed wait" in response.text
    unknown = TestClient(create_app(store)).get("/api/v1/vsm.svg", params={"stream": "Nope"})
    assert unknown.status_code == 404 and "'Payments'" in unknown.json()["detail"]


SVG = "{http://www.w3.org/2000/svg}"


def _figures(element: ElementTree.Element, now_class: str, previous_class: str) -> dict[str, tuple[str, ...]]:
    """Per figure of a stage box (or of the totals): (now, arrow, arrow colour, previous), as drawn."""
    texts = list(element.iter(f"{SVG}text"))
    figures: dict[str, tuple[str, ...]] = {}
    for n, text in enumerate(texts):
        if text.get("class") == now_class:
            moved = texts[n + 1].find(f"{SVG}tspan")
            previous = next(t for t in texts[n:] if t.get("class") == previous_class)
            figures[str(text.get("data-figure"))] = (
                "".join(text.itertext()),
                "" if moved is None else "".join(moved.itertext()),
                "" if moved is None else str(moved.get("fill")),
                "".join(previous.itertext()),
            )
    return figures


def test_value_stream_map_as_svg_beside_the_previous_window(store: Store) -> None:
    """[9, 17 Mar) against [1, 9 Mar), the figures of test_value_stream_map_beside_the_previous_window:
    verification LT 4 d now, 2 d before (▲, red: worse); integration LT 2 d both (no arrow), %C&A 100 %
    against 50 % (▲, green: better); delivery has no previous figure (–); nothing left ideation now.
    Totals: LT 8 d against 6 d, rolled %C&A 100 % against 0 %. The previous window had no committed wait."""
    store.upsert_records(_scenario())
    params = {"stream": "Payments", "from": "2025-03-09", "to": "2025-03-16"}
    drawing = TestClient(create_app(store)).get("/api/v1/vsm.svg", params=params).text
    root = ElementTree.fromstring(drawing)
    boxes = {
        str(g.get("data-stage")): _figures(g, "now", "previous")
        for g in root.iter(f"{SVG}g")
        if g.get("class") == "stage"
    }
    red, green = "#c81e1e", "#1f7a4d"
    assert boxes["verification"]["LT"] == ("4.0 d", "▲", red, "2.0 d")
    assert boxes["verification"]["%C&A"] == ("100 %", "▲", green, "0 %")
    assert boxes["integration"]["LT"] == ("2.0 d", "", "", "2.0 d")
    assert boxes["integration"]["%C&A"] == ("100 %", "▲", green, "50 %")
    assert boxes["delivery"]["LT"] == ("2.0 d", "", "", "–")
    assert boxes["ideation"]["LT"] == ("–", "", "", "2.0 d")
    totals = _figures(root, "total", "previous-total")
    assert totals["total LT"] == ("8.0 d", "▲", red, "6.0 d")
    assert totals["rolled %C&A"] == ("100 %", "▲", green, "0 %")
    texts = {str(t.get("class")): "".join(t.itertext()) for t in root.iter(f"{SVG}text")}
    assert "the 8 days before, 2025-03-01 to 2025-03-08" in texts["previous-window"]
    assert texts["previous-bottleneck"] == (
        "Previous 8 days (2025-03-01 to 2025-03-08): no bottleneck (no committed wait)"
    )
    waits = {
        str(t.get("data-stage")): "".join(t.itertext())
        for t in root.iter(f"{SVG}text")
        if t.get("class") == "wait"
    }
    assert waits["delivery"].endswith("prev –")


def _linked(store: Store) -> None:
    write(
        store,
        stream("payments", ("project", "PAY"), ("repository", REPO), ("service", "api")),
        item("PAY-1", done=True),
        item("PAY-2", parent="PAY-1", done=True),
        commit(REPO, "m000000", 0, message="init"),
        commit(REPO, "b100000", 1, ["m000000"], message="PAY-2 refunds"),
        commit(REPO, "m100000", 2, ["m000000"], message="refunds (#1)"),
        change(REPO, 1, 2, merge_sha="m100000", head_sha="b100000", commits=["b100000"], title="refunds"),
        deployment("d1", "api", REPO, "m000000", 1),
        deployment("d2", "api", REPO, "m100000", 2.5),
        incident("i1", "api", 3),  # attributed to d2 by the time rule
        change_request("CHG0030001", "api", 2, 4),  # its window holds d2's finish
    )
    derive_links(store)


def test_trace_serves_the_chain_with_evidence_and_confidence(store: Store) -> None:
    _linked(store)
    client = TestClient(create_app(store))
    body = client.get("/api/v1/trace/PAY-2").json()
    assert body["item"]["id"] == rid("PAY-2") and body["item"]["kind"] == "work_item"
    assert body["parent"]["node"]["id"] == rid("PAY-1")
    assert [(s["node"]["id"], s["via"], s["link_kind"]) for s in body["changes"]] == [
        (rid(f"{REPO}#1"), rid("b100000"), "contained_in")
    ]
    [shipped] = body["deployments"]
    assert shipped["node"]["id"] == rid("d2") and shipped["confidence"] == 1.0
    assert shipped["evidence"] == "git graph: merge commit m100000 in m000000..m100000"
    assert [(s["node"]["id"], s["via"], s["confidence"]) for s in body["incidents"]] == [
        (rid("i1"), rid("d2"), 0.6)
    ]
    assert [(s["node"]["label"], s["via"], s["link_kind"]) for s in body["change_requests"]] == [
        ("CHG0030001 (released, approved)", rid("d2"), "covered_by")
    ]
    missing = client.get("/api/v1/trace/PAY-404")
    assert missing.status_code == 404 and "'PAY-404'" in missing.json()["detail"]


def test_traceability_per_stream_and_overall(store: Store) -> None:
    _linked(store)
    client = TestClient(create_app(store))
    body = client.get("/api/v1/traceability").json()
    assert [(s["value_stream_id"], s["name"]) for s in body] == [
        (rid("vs/payments"), "payments"),
        (None, None),
    ]
    coverage = {c["key"]: c for c in body[0]["coverage"]}
    assert (
        coverage["deployments_with_work_item"]["numerator"],
        coverage["deployments_with_work_item"]["denominator"],
    ) == (1, 2)
    assert coverage["incidents_attributed"]["share"] == 1.0
    approved = coverage["deployments_with_approved_change"]
    assert (approved["numerator"], approved["denominator"]) == (1, 2)  # d2, by CHG0030001
    one = client.get("/api/v1/traceability", params={"stream": "payments"}).json()
    assert len(one) == 1 and one[0]["coverage"] == body[0]["coverage"]
    assert client.get("/api/v1/traceability", params={"stream": "nope"}).status_code == 404


def test_openapi_lists_every_route(store: Store) -> None:
    spec = TestClient(create_app(store)).get("/openapi.json").json()
    assert {
        "/api/v1/metrics/flow",
        "/api/v1/metrics/dora",
        "/api/v1/metrics/{family}/evidence",
        "/api/v1/vsm",
        "/api/v1/vsm.svg",
        "/api/v1/trace/{key}",
        "/api/v1/traceability",
    } <= set(spec["paths"])
    flow = spec["paths"]["/api/v1/metrics/flow"]["get"]
    assert {p["name"] for p in flow["parameters"]} == {
        "stream",
        "team",
        "service",
        "type",
        "window",
        "as_of",
        "from",
        "to",
        "by",
        "detail",
    }
    assert {"FlowMetricsOut", "DoraMetricsOut", "EvidenceOut", "ValueStreamMapOut", "TraceOut"} <= set(
        spec["components"]["schemas"]
    )
    evidence = spec["paths"]["/api/v1/metrics/{family}/evidence"]["get"]["responses"]["200"]["content"]
    assert {"application/json", "text/csv"} <= set(evidence)
