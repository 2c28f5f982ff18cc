"""`/api/v1/metrics/dora` serves the figures worked out by hand in tests/engine/test_dora.py, with their
DORA levels and years, and its evidence rows are exactly the deployments, changes and incidents counted."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from obeya.api import create_app
from obeya.config import ObeyaConfig
from obeya.store import Store
from tests.engine.test_dora import _scenario

HOUR = 3600.0
MARCH = {"stream": "Payments", "window": "31d", "as_of": "2025-03-31"}


@pytest.fixture
def client(store: Store) -> TestClient:
    store.upsert_records(_scenario())
    return TestClient(create_app(store))


def _figures(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["key"]: f for f in body["figures"]}


def _evidence(client: TestClient, metric: str, **params: str) -> dict[str, Any]:
    response = client.get("/api/v1/metrics/dora/evidence", params={**MARCH, **params, "metric": metric})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_dora_figures_and_levels_equal_the_hand_computed_ones(client: TestClient) -> None:
    body = client.get("/api/v1/metrics/dora", params=MARCH).json()
    figures = _figures(body)
    assert figures["deployments"]["value"] == 4 and figures["deployments"]["previous"] == 1  # D0
    assert figures["deployment_frequency"]["value"] == pytest.approx(4 / 31)
    assert figures["deployment_frequency"]["unit"] == "per day"
    assert figures["deployment_days_per_week_median"]["value"] == 1.0
    assert figures["lead_time_for_changes_p50"]["value"] == pytest.approx(50 * HOUR)
    assert figures["coding_p50"]["value"] == pytest.approx(HOUR)
    assert figures["pickup_p50"]["value"] == pytest.approx(2.5 * HOUR)
    assert figures["review_p50"]["value"] == pytest.approx(11 * HOUR)
    assert figures["deploy_p50"]["value"] == pytest.approx(20.5 * HOUR)
    assert figures["change_failure_rate"]["value"] == 0.5
    assert figures["failed_deployment_recovery_time_p50"]["value"] == pytest.approx(6 * HOUR)
    assert figures["time_to_restore_service_p50"]["value"] == pytest.approx(3 * HOUR)
    assert figures["rework_rate"]["value"] == 0.25
    assert figures["deployment_frequency_level_dora_2023"]["value"] == "medium"
    assert figures["deployment_frequency_level_dora_2021"]["value"] == "high"
    assert figures["change_failure_rate_level_dora_2023"]["value"] == "low"

    detail = body["detail"]
    assert detail["deployment_frequency"]["ratings"] == [
        {"year": 2023, "level": "medium", "wording": "between once per week and once per month"},
        {"year": 2021, "level": "high", "wording": "between once per week and once per month"},
    ]
    lead = detail["lead_time_for_changes"]
    assert lead["lead_time"]["count"] == 3 and lead["lead_time"]["excluded"] == 1
    assert lead["coding"]["excluded"] == 1
    cfr = detail["change_failure_rate"]
    assert (cfr["rate"]["numerator"], cfr["rate"]["denominator"], cfr["rate"]["value"]) == (3, 6, 0.5)
    assert (cfr["failed"], cfr["rolled_back"], cfr["caused_incident"]) == (1, 1, 1)
    assert [(r["year"], r["level"]) for r in detail["recovery_time"]["ratings"]] == [
        (2023, "high"),
        (2021, "high"),
    ]
    assert detail["recovery_time"]["unresolved_incidents"] == 1
    assert detail["rework_rate"] == {"numerator": 1, "denominator": 4, "value": 0.25}


def test_dora_series_by_week(client: TestClient) -> None:
    body = client.get("/api/v1/metrics/dora", params={**MARCH, "by": "week", "detail": "false"}).json()
    frequency = {p["period"]: p["value"] for p in body["series"] if p["metric"] == "deployment frequency"}
    days = {p["period"]: p["days"] for p in body["series"] if p["metric"] == "deployment frequency"}
    # calendar weeks from Monday, the first and last clipped to the window: 1-2, 3-9, ..., 31 March
    assert list(frequency) == [
        "2025-03-01",
        "2025-03-03",
        "2025-03-10",
        "2025-03-17",
        "2025-03-24",
        "2025-03-31",
    ]
    assert list(days.values()) == [2, 7, 7, 7, 7, 1]
    assert frequency["2025-03-01"] == 0  # no deployment in its 2 days: a frequency of 0, not no data
    assert frequency["2025-03-03"] == pytest.approx(2 / 7)  # D1, D3
    lead = {p["period"]: p["value"] for p in body["series"] if p["metric"] == "lead time for changes p50"}
    assert lead["2025-03-01"] is None  # but no change to measure: no data


def test_dora_filters_service_and_type(client: TestClient) -> None:
    web = client.get(
        "/api/v1/metrics/dora", params={"service": "web", "window": "31d", "as_of": "2025-03-31"}
    )
    assert _figures(web.json())["deployments"]["value"] == 1
    assert web.json()["slice"]["service"] == "web"
    defects = client.get("/api/v1/metrics/dora", params={**MARCH, "type": "defect"}).json()
    assert _figures(defects)["deployments"]["value"] == 1  # D3 ships C2, which fixes BUG-1
    unknown = client.get("/api/v1/metrics/dora", params={**MARCH, "service": "billing"})
    assert unknown.status_code == 404
    assert "service" in unknown.text and "'api'" in unknown.text and "'web'" in unknown.text


def test_every_dora_figure_links_to_evidence_whose_count_is_the_figures(client: TestClient) -> None:
    body = client.get("/api/v1/metrics/dora", params=MARCH).json()
    figures, detail = _figures(body), body["detail"]
    lead = detail["lead_time_for_changes"]
    recovery = detail["recovery_time"]
    expected = {
        "deployments": detail["deployment_frequency"]["deployments"],
        "lead_time_for_changes_p50": lead["lead_time"]["count"],
        "coding_p50": lead["coding"]["count"],
        "pickup_p50": lead["pickup"]["count"],
        "review_p50": lead["review"]["count"],
        "deploy_p50": lead["deploy"]["count"],
        "change_failure_rate": detail["change_failure_rate"]["rate"]["denominator"],
        "failed_deployment_recovery_time_p50": recovery["failed_deployment_recovery"]["count"],
        "time_to_restore_service_p50": recovery["time_to_restore"]["count"],
        "rework_rate": detail["rework_rate"]["denominator"],
    }
    assert list(expected.values()) == [4, 3, 3, 2, 2, 4, 6, 3, 2, 4]
    for key, count in expected.items():
        assert client.get(figures[key]["evidence"]).json()["total"] == count, key
    assert all(f["evidence"] for f in body["figures"])  # every DORA figure, levels too, has its rows


def test_deployment_evidence_marks_failures_incidents_and_defect_fixes(client: TestClient) -> None:
    shipped = _evidence(client, "deployment_frequency")
    assert [r["id"] for r in shipped["rows"]] == ["test:D1", "test:D3", "test:D4", "test:D6"]
    cfr = _evidence(client, "change_failure_rate")
    rows = {r["id"]: r for r in cfr["rows"]}
    assert sorted(rows) == ["test:D1", "test:D2", "test:D3", "test:D4", "test:D5", "test:D6"]
    assert sorted(i for i, r in rows.items() if r["failed"]) == ["test:D2", "test:D4", "test:D5"]
    assert rows["test:D4"]["caused_incident_ids"] == ["test:I1"]
    assert rows["test:D6"]["caused_incident_ids"] == []  # I2 was a provider outage
    assert rows["test:D2"]["result"] == "failure" and rows["test:D2"]["environment"] == "production"
    rework = _evidence(client, "rework_rate")
    assert [r["id"] for r in rework["rows"] if r["fixes_defect"]] == ["test:D3"]


def test_change_and_recovery_evidence(client: TestClient) -> None:
    changes = _evidence(client, "lead_time_for_changes")
    assert [(r["number"], r["lead_time"] / HOUR) for r in changes["rows"]] == [
        (1, 51.0),
        (2, 50.0),
        (3, 24.0),
    ]
    c1 = changes["rows"][0]
    assert (c1["coding_time"], c1["pickup_time"], c1["review_time"], c1["deploy_time"]) == (
        25 * HOUR,
        4 * HOUR,
        19 * HOUR,
        3 * HOUR,
    )
    assert c1["first_commit_at"] == "2025-03-01T09:00:00" and c1["deployed_at"] == "2025-03-03T12:00:00"
    deploys = _evidence(client, "deploy_time")
    assert [r["number"] for r in deploys["rows"]] == [1, 2, 3, 5]  # C5's negative lead time still deploys
    failed = _evidence(client, "recovery")
    assert [(r["id"], r["recovery_time"] / HOUR) for r in failed["rows"]] == [
        ("test:D2", 24.0),
        ("test:D4", 6.0),
        ("test:D5", 1.0),
    ]
    incidents = _evidence(client, "time_to_restore")
    assert [
        (r["id"], r["time_to_restore"] / HOUR, r["caused_by_deployment_ids"]) for r in incidents["rows"]
    ] == [
        ("test:I1", 4.0, ["test:D4"]),
        ("test:I2", 2.0, ["test:D6"]),
    ]
    csv = client.get(
        "/api/v1/metrics/dora/evidence", params={**MARCH, "metric": "change_failure_rate", "format": "csv"}
    )
    lines = csv.text.splitlines()
    assert lines[0].split(",")[:4] == ["id", "service", "environment", "result"]
    assert len(lines) == 7 and "test:I1" in csv.text and ",true," in csv.text


def test_deployment_and_incident_rules_of_obeya_yaml_reach_figures_and_evidence(store: Store) -> None:
    store.upsert_records(_scenario())
    config = ObeyaConfig.model_validate(
        {"rules": {"deployments": {"count_rollbacks": True}, "incidents": {"min_severity": "sev1"}}}
    )
    client = TestClient(create_app(store, config))
    figures = _figures(client.get("/api/v1/metrics/dora", params=MARCH).json())
    # R5 counts as a deployment (5 of them); I1 has no severity, so it still counts: CFR 3 of 7
    assert figures["deployments"]["value"] == 5
    assert figures["change_failure_rate"]["value"] == pytest.approx(3 / 7)
    assert _evidence(client, "deployment_frequency")["total"] == 5
    assert _evidence(client, "change_failure_rate")["total"] == 7
