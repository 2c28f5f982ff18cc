"""`/api/v1/vsm` (JSON and SVG) serves the map worked out by hand in tests/engine/test_stages.py;
`/api/v1/trace/{key}` and `/api/v1/traceability` serve the links with their evidence; OpenAPI lists all."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from obeya.api import create_app
from obeya.linking import derive_links
from obeya.store import Store
from tests.engine.test_stages import STAGES, _scenario
from tests.linking.linking_records import change, commit, deployment, incident, item, rid, stream, write

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
        "by",
        "detail",
    }
    assert {"FlowMetricsOut", "DoraMetricsOut", "EvidenceOut", "ValueStreamMapOut", "TraceOut"} <= set(
        spec["components"]["schemas"]
    )
    evidence = spec["paths"]["/api/v1/metrics/{family}/evidence"]["get"]["responses"]["200"]["content"]
    assert {"application/json", "text/csv"} <= set(evidence)
