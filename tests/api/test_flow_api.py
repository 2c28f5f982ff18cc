"""`/api/v1/metrics/flow` serves the figures worked out by hand in tests/engine/test_flow.py, and its
evidence rows are exactly the items each figure counts."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from obeya.api import create_app
from obeya.model import Plan, PlanItem, Team
from obeya.store import Store
from tests.engine.builders import day
from tests.engine.test_flow import _scenario

DAY = 86400.0
MARCH = {"stream": "Payments", "window": "31d", "as_of": "2025-03-31"}


@pytest.fixture
def client(store: Store) -> TestClient:
    store.upsert_records([*_scenario(), Team(source="test", external_id="core", name="Core")])
    return TestClient(create_app(store))


def _figures(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["key"]: f for f in body["figures"]}


def test_flow_figures_equal_the_hand_computed_ones(client: TestClient) -> None:
    response = client.get("/api/v1/metrics/flow", params=MARCH)
    assert response.status_code == 200
    body = response.json()
    assert body["window"] == {
        "start": "2025-03-01",
        "end": "2025-04-01",
        "as_of": "2025-03-31",
        "days": 31.0,
        "window": "31d",
    }
    assert body["slice"]["value_stream_id"] == "test:pay"
    figures = _figures(body)
    assert figures["items_completed"]["value"] == 3 and figures["items_completed"]["previous"] == 1  # F
    assert figures["items_completed"]["unit"] == "items"
    assert figures["flow_velocity"]["value"] == pytest.approx(3 / (31 / 7))
    assert figures["flow_time_p50"]["value"] == pytest.approx(5 * DAY)
    assert figures["flow_time_p85"]["value"] == pytest.approx(7.8 * DAY)
    assert figures["lead_time_p50"]["value"] == pytest.approx(13 * DAY)
    assert figures["flow_efficiency"]["value"] == pytest.approx(14 / 19)
    assert figures["flow_load_at_window_end"]["value"] == 2
    assert figures["work_item_age_p50"]["value"] == pytest.approx(21 * DAY)
    assert figures["flow_predictability_items"]["value"] == pytest.approx(2 / 3)

    detail = body["detail"]
    assert detail["flow_time"]["p70"] == pytest.approx(6.6 * DAY)
    assert detail["flow_time"]["p95"] == pytest.approx(8.6 * DAY)
    assert detail["lead_time"]["count"] == 2 and detail["lead_time"]["excluded"] == 1
    assert detail["efficiency"]["efficiency"]["numerator"] == pytest.approx(14 * DAY)
    assert detail["efficiency"]["median_item_efficiency"] == pytest.approx(0.8)
    assert detail["distribution"]["wip"]["risk"]["value"] == 0.5
    assert len(detail["load"]["daily"]) == 31
    assert [(i["key"], i["age"] / DAY, i["beyond_sle"]) for i in detail["age"]["oldest"]] == [
        ("E", 30.0, "p95"),
        ("D", 12.0, "p95"),
    ]
    assert detail["predictability"]["plans"][0]["name"] == "Sprint 1"
    assert detail["age"]["beyond"] == {"p50": 2, "p70": 2, "p85": 2, "p95": 2}  # E (30 d), D (12 d)
    assert body["series"] == [] and body["by"] is None


def test_flow_series_by_month(client: TestClient) -> None:
    body = client.get("/api/v1/metrics/flow", params={**MARCH, "by": "month", "detail": "false"}).json()
    assert body["detail"] is None
    series = {(p["metric"], p["period"]): p["value"] for p in body["series"]}
    assert series[("flow velocity", "2025-03-01")] == 3
    assert series[("flow time p50", "2025-03-01")] == pytest.approx(5 * DAY)


def test_flow_series_by_week_has_every_week_labelled_by_its_first_day_in_the_window(
    client: TestClient,
) -> None:
    # 28 days ending 31 March start on Tuesday 4 March: weeks 4-9 (6 days), 10-16, 17-23, 24-30, 31.
    params = {**MARCH, "window": "28d", "by": "week", "detail": "false"}
    body = client.get("/api/v1/metrics/flow", params=params).json()
    velocity = [
        (p["period"], p["days"], p["value"]) for p in body["series"] if p["metric"] == "flow velocity"
    ]
    assert velocity == [
        ("2025-03-04", 6, 1),  # A, done 7 Mar
        ("2025-03-10", 7, 2),  # B and G
        ("2025-03-17", 7, 0),
        ("2025-03-24", 7, 0),
        ("2025-03-31", 1, 0),
    ]
    median = [p["value"] for p in body["series"] if p["metric"] == "flow time p50"]
    assert median == [5 * DAY, 7 * DAY, None, None, None]  # no data where nothing completed


def test_flow_filters_type_team_stream_id_and_no_stream(client: TestClient) -> None:
    defects = _figures(client.get("/api/v1/metrics/flow", params={**MARCH, "type": "defect"}).json())
    assert defects["items_completed"]["value"] == 1
    by_id = client.get("/api/v1/metrics/flow", params={**MARCH, "stream": "test:pay"}).json()
    assert _figures(by_id)["items_completed"]["value"] == 3
    everything = client.get("/api/v1/metrics/flow", params={"window": "31d", "as_of": "2025-03-31"}).json()
    assert _figures(everything)["items_completed"]["value"] == 4  # X of project OTHER too
    team = client.get("/api/v1/metrics/flow", params={**MARCH, "team": "core"}).json()
    assert team["slice"]["team_id"] == "test:core"
    assert _figures(team)["items_completed"]["value"] == 0
    assert _figures(team)["flow_velocity"]["value"] is None  # no data, not 0
    early = client.get("/api/v1/metrics/flow", params={**MARCH, "window": "7d", "as_of": "2025-03-07"})
    assert _figures(early.json())["items_completed"]["value"] == 3  # A, B and E were done on 7 Mar


@pytest.mark.parametrize(
    ("params", "status", "words"),
    [
        ({"stream": "Nope"}, 404, ["stream", "'Nope'", "'Payments'"]),
        ({"team": "Nobody"}, 404, ["team", "'Nobody'", "'Core'"]),
        ({"service": "nope"}, 404, ["service", "'nope'"]),
        ({"window": "ninety"}, 422, ["window", "'ninety'", "90d"]),
        ({"window": "0d"}, 422, ["window", "empty"]),
        ({"as_of": "31/03/2025"}, 422, ["as_of", "date"]),
        ({"type": "epic"}, 422, ["type", "feature", "defect", "risk", "debt"]),
        ({"by": "year"}, 422, ["by", "week", "month"]),
    ],
)
def test_bad_filters_say_which_and_what_is_accepted(
    client: TestClient, params: dict[str, str], status: int, words: list[str]
) -> None:
    response = client.get("/api/v1/metrics/flow", params=params)
    assert response.status_code == status
    text = response.text
    assert all(w in text for w in words), text


def test_every_flow_figure_links_to_evidence_whose_count_is_the_figures(client: TestClient) -> None:
    body = client.get("/api/v1/metrics/flow", params=MARCH).json()
    figures, detail = _figures(body), body["detail"]
    expected = {
        "items_completed": figures["items_completed"]["value"],
        "flow_time_p50": detail["flow_time"]["count"],
        "lead_time_p50": detail["lead_time"]["count"],
        "flow_efficiency": 3,  # A, B, G: every completed item with a positive flow time
        "flow_load_at_window_end": figures["flow_load_at_window_end"]["value"],
        "work_item_age_p50": detail["age"]["age"]["count"],
        "flow_predictability_items": detail["predictability"]["items"]["denominator"],
    }
    for key, count in expected.items():
        link = figures[key]["evidence"]
        assert link.startswith("/api/v1/metrics/flow/evidence?")
        assert "as_of=2025-03-31" in link and "stream=test%3Apay" in link
        assert client.get(link).json()["total"] == count, key
    assert expected["lead_time_p50"] == 2 and expected["work_item_age_p50"] == 2
    previous = client.get(figures["items_completed"]["previous_evidence"]).json()
    assert [r["key"] for r in previous["rows"]] == ["F"]
    assert expected["flow_predictability_items"] == 3  # A, B, C committed to Sprint 1


def test_average_flow_load_evidence_gives_each_items_days_in_progress(client: TestClient) -> None:
    # Days whose end (the next midnight) finds the item waiting or active: A 1-5 Mar (5; at the end of
    # 6 Mar it is done), B 2-4 and 9-10 Mar (5), C 1-6 Mar (6), D 19-31 Mar (13), E 1-3 and 24-31 Mar
    # (11), G 9-13 Mar (5): 45 item-days over 31 days.
    body = client.get("/api/v1/metrics/flow", params=MARCH).json()
    average = _figures(body)["flow_load_average_wip"]
    assert average["value"] == pytest.approx(45 / 31)
    assert sum(p["value"] for p in body["detail"]["load"]["daily"]) == 45
    rows = client.get(average["evidence"]).json()["rows"]
    assert [(r["key"], r["first_day"], r["last_day"], r["days"]) for r in rows] == [
        ("A", "2025-03-01", "2025-03-05", 5),
        ("C", "2025-03-01", "2025-03-06", 6),
        ("E", "2025-03-01", "2025-03-31", 11),
        ("B", "2025-03-02", "2025-03-10", 5),
        ("G", "2025-03-09", "2025-03-13", 5),
        ("D", "2025-03-19", "2025-03-31", 13),
    ]
    assert sum(r["days"] for r in rows) / body["window"]["days"] == pytest.approx(average["value"])
    csv_text = client.get(average["evidence"] + "&format=csv").text.splitlines()
    assert csv_text[0] == "key,title,flow_item_type,first_day,last_day,days"
    assert csv_text[1] == "A,A title,feature,2025-03-01,2025-03-05,5"
    previous = client.get(average["previous_evidence"]).json()
    assert sum(r["days"] for r in previous["rows"]) / 31 == pytest.approx(average["previous"])


def test_predictability_evidence_is_the_commitment_of_the_plans(client: TestClient) -> None:
    # Sprint 1 (1-15 Mar) committed A (5), B (3) and C (2) at its start; D (8) was added later.
    # A and B were done by 15 Mar, C was canceled: 2 of 3 items, 8 of 10 in value.
    figures = _figures(client.get("/api/v1/metrics/flow", params=MARCH).json())
    items = client.get(figures["flow_predictability_items"]["evidence"]).json()
    assert [(r["plan"], r["key"], r["delivered"], r["planned_value"]) for r in items["rows"]] == [
        ("Sprint 1", "A", True, 5.0),
        ("Sprint 1", "B", True, 3.0),
        ("Sprint 1", "C", False, 2.0),
    ]
    delivered = sum(r["delivered"] for r in items["rows"])
    assert delivered / items["total"] == pytest.approx(figures["flow_predictability_items"]["value"])
    value = client.get(figures["flow_predictability_business_value"]["evidence"]).json()
    assert [r["delivered_value"] for r in value["rows"]] == [5.0, 3.0, None]
    planned = sum(r["planned_value"] for r in value["rows"])
    delivered_value = sum(r["delivered_value"] or 0 for r in value["rows"])
    assert (delivered_value, planned) == (8.0, 10.0)
    assert delivered_value / planned == pytest.approx(figures["flow_predictability_business_value"]["value"])
    assert all(f["evidence"] for f in figures.values())  # every flow figure now has its rows


def test_predictability_value_evidence_leaves_out_plans_without_values(store: Store) -> None:
    # Sprint 2 (16-31 Mar) commits E and D without values: it counts for items, not for value.
    store.upsert_records(
        [
            *_scenario(),
            Plan(
                source="test",
                external_id="s2",
                name="Sprint 2",
                plan_type="sprint",
                starts_at=day(3, 16),
                ends_at=day(3, 31),
            ),
            *[
                PlanItem(source="test", external_id=f"s2-{k}", plan_id="test:s2", work_item_id=f"test:{k}")
                for k in ("D", "E")
            ],
        ]
    )
    client = TestClient(create_app(store))
    figures = _figures(client.get("/api/v1/metrics/flow", params=MARCH).json())
    assert figures["flow_predictability_items"]["value"] == pytest.approx(2 / 5)
    assert figures["flow_predictability_business_value"]["value"] == pytest.approx(8 / 10)
    items = client.get(figures["flow_predictability_items"]["evidence"]).json()
    assert [(r["plan"], r["key"]) for r in items["rows"]][-2:] == [("Sprint 2", "D"), ("Sprint 2", "E")]
    assert items["total"] == 5
    value = client.get(figures["flow_predictability_business_value"]["evidence"]).json()
    assert [r["key"] for r in value["rows"]] == ["A", "B", "C"]


def test_flow_evidence_rows(client: TestClient) -> None:
    completed = client.get("/api/v1/metrics/flow/evidence", params={**MARCH, "metric": "velocity"}).json()
    assert completed["description"] == "work items completed in the window"
    assert [(r["key"], r["flow_item_type"]) for r in completed["rows"]] == [
        ("A", "feature"),
        ("B", "defect"),
        ("G", "debt"),
    ]
    a = completed["rows"][0]
    assert (a["flow_time"], a["lead_time"], a["active_time"]) == (5 * DAY, 15 * DAY, 4 * DAY)
    assert (a["started_at"], a["completed_at"]) == ("2025-03-02T00:00:00", "2025-03-07T00:00:00")
    lead = client.get("/api/v1/metrics/flow/evidence", params={**MARCH, "metric": "lead_time"}).json()
    assert [r["key"] for r in lead["rows"]] == ["A", "B"]  # G's negative lead time is a data error
    efficiency = client.get("/api/v1/metrics/flow/evidence", params={**MARCH, "metric": "efficiency"})
    rows = efficiency.json()["rows"]
    assert sum(r["active_time"] for r in rows) / sum(r["flow_time"] for r in rows) == pytest.approx(14 / 19)
    age = client.get("/api/v1/metrics/flow/evidence", params={**MARCH, "metric": "age"}).json()
    assert [(r["key"], r["flow_state"], r["age"] / DAY) for r in age["rows"]] == [
        ("E", "active", 30.0),
        ("D", "active", 12.0),
    ]


def test_evidence_pagination_follows_next_links_to_the_last_page(client: TestClient) -> None:
    first = client.get(
        "/api/v1/metrics/flow/evidence", params={**MARCH, "metric": "velocity", "page_size": 2}
    ).json()
    assert (first["total"], first["page"], first["page_size"], first["pages"]) == (3, 1, 2, 2)
    assert first["previous"] is None and [r["key"] for r in first["rows"]] == ["A", "B"]
    assert "page=2" in first["next"] and "page_size=2" in first["next"]
    last = client.get(first["next"]).json()
    assert [r["key"] for r in last["rows"]] == ["G"]
    assert last["next"] is None and "page=1" in last["previous"]
    past = client.get("/api/v1/metrics/flow/evidence", params={**MARCH, "metric": "velocity", "page": 9})
    assert past.status_code == 404 and "page" in past.json()["detail"]
    too_big = client.get("/api/v1/metrics/flow/evidence", params={**MARCH, "metric": "velocity", "page": 0})
    assert too_big.status_code == 422


def test_evidence_as_csv_has_a_header_and_the_rows(client: TestClient) -> None:
    response = client.get(
        "/api/v1/metrics/flow/evidence",
        params={**MARCH, "metric": "velocity", "format": "csv", "page_size": 2},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["x-total-count"] == "3"
    assert 'rel="next"' in response.headers["link"] and "format=csv" in response.headers["link"]
    lines = response.text.splitlines()
    assert lines[0] == (
        "key,title,flow_item_type,created_at,started_at,completed_at,flow_time,lead_time,active_time"
    )
    assert lines[1].startswith(
        "A,A title,feature,2025-02-20T00:00:00,2025-03-02T00:00:00,2025-03-07T00:00:00,"
    )
    assert [line.split(",")[0] for line in lines[1:]] == ["A", "B"]
    empty = client.get(
        "/api/v1/metrics/flow/evidence",
        params={**MARCH, "metric": "velocity", "format": "csv", "team": "Core"},
    )
    assert empty.text.splitlines() == [lines[0]]  # the header, even without rows


def test_unknown_evidence_metric_or_family_lists_the_accepted_ones(client: TestClient) -> None:
    response = client.get("/api/v1/metrics/flow/evidence", params={**MARCH, "metric": "speed"})
    assert response.status_code == 422
    assert "metric" in response.text and "velocity" in response.text and "'speed'" in response.text
    wrong_family = client.get("/api/v1/metrics/flow/evidence", params={"metric": "rework_rate"})
    assert wrong_family.status_code == 422 and "lead_time" in wrong_family.text
    assert client.get("/api/v1/metrics/okr/evidence", params={"metric": "x"}).status_code == 422


def _cfd(client: TestClient, **params: str) -> dict[str, Any]:
    response = client.get("/api/v1/metrics/flow/cumulative", params={**MARCH, **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_cumulative_flow_by_state_per_day(client: TestClient) -> None:
    body = _cfd(client)
    assert body["by"] == "state" and body["window"]["start"] == "2025-03-01"
    assert body["groups"] == ["new", "waiting", "active", "done", "canceled"]
    days = {d["day"]: d["counts"] for d in body["days"]}
    assert len(days) == 31
    # end of 1 Mar (2 Mar 00:00): B new; A, C, E In Progress; F done
    assert days["2025-03-01"] == {"new": 1, "waiting": 0, "active": 3, "done": 1, "canceled": 0}
    # end of 3 Mar: A blocked from 4 Mar 00:00; B, C, E active
    assert days["2025-03-03"] == {"new": 0, "waiting": 1, "active": 3, "done": 1, "canceled": 0}
    # end of 31 Mar: D, E active; A, B, F, G done; C canceled
    assert days["2025-03-31"] == {"new": 0, "waiting": 0, "active": 2, "done": 4, "canceled": 1}
    features = {d["day"]: d["counts"] for d in _cfd(client, type="feature")["days"]}
    assert features["2025-03-31"] == {"new": 0, "waiting": 0, "active": 1, "done": 2, "canceled": 1}


def test_cumulative_flow_by_stage_and_as_csv(client: TestClient) -> None:
    body = _cfd(client, by="stage", window="7d")
    assert body["groups"] == ["ideation", "integration", "verification", "delivery", "observation", "(none)"]
    assert body["days"][-1] == {  # end of 31 Mar
        "day": "2025-03-31",
        "counts": {
            "ideation": 0,
            "integration": 2,
            "verification": 0,
            "delivery": 0,
            "observation": 4,
            "(none)": 1,
        },
    }
    response = client.get(
        "/api/v1/metrics/flow/cumulative", params={**MARCH, "window": "3d", "format": "csv"}
    )
    assert response.headers["content-type"].startswith("text/csv")
    assert response.text.splitlines() == [
        "day,new,waiting,active,done,canceled",
        "2025-03-29,0,0,2,4,1",  # D and E active since 20 and 25 Mar
        "2025-03-30,0,0,2,4,1",
        "2025-03-31,0,0,2,4,1",
    ]
    bad = client.get("/api/v1/metrics/flow/cumulative", params={**MARCH, "by": "team"})
    assert bad.status_code == 422 and "state" in bad.text and "stage" in bad.text
    unknown = client.get("/api/v1/metrics/flow/cumulative", params={"stream": "Nope"})
    assert unknown.status_code == 404 and "'Payments'" in unknown.text
