"""PagerDuty v3 webhooks become the incident a sync makes from the same incident and its log entries."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from obeya.connectors.pagerduty.normalizer import normalize
from obeya.connectors.raw import raw_event
from obeya.model.records import Incident, Person, RawEvent, Record
from obeya.store import Store
from tests.api.webhooks.deliveries import CASES, SECRET, client_for, declare_scopes, post, settled

PAGERDUTY = next(c for c in CASES if c.tool == "pagerduty")
INCIDENT_FIELDS = (
    "id",
    "title",
    "service",
    "severity",
    "status",
    "created_at",
    "acknowledged_at",
    "resolved_at",
    "labels",
    "url",
)
AGENT = {
    "id": "PUSER1",
    "type": "user_reference",
    "summary": "Alice",
    "html_url": "https://acme.pagerduty.com/users/PUSER1",
}
ACKNOWLEDGED = "2025-01-01T10:05:00.000Z"
RESOLVED = "2025-01-01T10:42:00.000Z"


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PAGERDUTY.secret_env, SECRET)


def _incident(status: str) -> dict[str, Any]:
    return {
        "id": "PINC7",
        "type": "incident",
        "number": 7,
        "status": status,
        "title": "Checkout is down",
        "created_at": "2025-01-01T10:00:00Z",
        "urgency": "high",
        "priority": {"id": "PPRIO1", "type": "priority_reference", "summary": "P1"},
        "service": {"id": "PSERVICE1", "type": "service_reference", "summary": "checkout"},
        "teams": [{"id": "PTEAM1", "type": "team_reference", "summary": "Payments"}],
        "html_url": "https://acme.pagerduty.com/incidents/PINC7",
    }


def _webhook(event_type: str, status: str, occurred_at: str) -> dict[str, Any]:
    return {
        "event": {
            "id": f"01{uuid.uuid4().hex[:24].upper()}",
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": occurred_at,
            "agent": AGENT,
            "data": _incident(status),
        }
    }


def _rest_incident() -> Incident:
    """What a sync makes of the resolved incident and its log entries."""
    now = datetime.now(UTC)
    entries = [
        {
            "id": "L1",
            "type": "acknowledge_log_entry",
            "created_at": ACKNOWLEDGED,
            "incident": {"id": "PINC7"},
        },
        {"id": "L2", "type": "resolve_log_entry", "created_at": RESOLVED, "incident": {"id": "PINC7"}},
    ]
    events = [
        raw_event("pagerduty", "incident", "PINC7", _incident("resolved"), connection=None, received_at=now)
    ]
    events += [
        raw_event("pagerduty", "log_entry", str(e["id"]), e, connection=None, received_at=now)
        for e in entries
    ]
    (incident,) = [r for r in normalize(events).records if isinstance(r, Incident)]
    return incident


def _fields(record: Record, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(record, name) for name in names}


def test_triggered_acknowledged_resolved_make_the_incident_a_sync_makes(store: Store) -> None:
    declare_scopes(store)
    client = client_for(store)
    for event_type, status, at in [
        ("incident.triggered", "triggered", "2025-01-01T10:00:00.000Z"),
        ("incident.acknowledged", "acknowledged", ACKNOWLEDGED),
        ("incident.resolved", "resolved", RESOLVED),
    ]:
        payload = _webhook(event_type, status, at)
        response, _ = post(client, PAGERDUTY, payload, event_type)
        assert response.status_code == 202, response.text
        assert settled(client, response)["outcome"] == "normalized"
        assert settled(client, response)["records"]["incident"] == 1
    (incident,) = store.fetch_records("incident")
    assert isinstance(incident, Incident)
    assert _fields(incident, INCIDENT_FIELDS) == _fields(_rest_incident(), INCIDENT_FIELDS)
    assert incident.status == "resolved"
    assert incident.resolved_at == datetime(2025, 1, 1, 10, 42)  # the store gives UTC back naive
    assert incident.acknowledged_at == datetime(2025, 1, 1, 10, 5)  # kept from the earlier delivery
    assert incident.raw_event_id == f"pagerduty:{payload['event']['id']}"
    (person,) = store.fetch_records("person", "id = ?", ["pagerduty:user/PUSER1"])
    assert isinstance(person, Person) and person.display_name == "Alice"


def test_resolved_webhook_alone_gives_resolved_at(store: Store) -> None:
    declare_scopes(store)
    client = client_for(store)
    response, _ = post(
        client, PAGERDUTY, _webhook("incident.resolved", "resolved", RESOLVED), "incident.resolved"
    )
    assert response.status_code == 202, response.text
    assert settled(client, response)["outcome"] == "normalized"
    (incident,) = store.fetch_records("incident")
    assert isinstance(incident, Incident)
    assert (incident.status, incident.resolved_at, incident.acknowledged_at) == (
        "resolved",
        datetime(2025, 1, 1, 10, 42),
        None,
    )


def test_malformed_incident_is_stored_raw_with_the_reason(store: Store) -> None:
    declare_scopes(store)
    client = client_for(store)
    payload = _webhook("incident.resolved", "resolved", RESOLVED)
    payload["event"]["data"] = {"type": "incident", "title": "no id"}
    response, _ = post(client, PAGERDUTY, payload, "incident.resolved")
    assert response.status_code == 202, response.text
    answer = settled(client, response)
    assert answer["outcome"] == "stored"
    assert "body.event.data" in answer["reason"]
    assert store.count("incident") == 0
    (event,) = store.fetch_records(
        "raw_event", "source = 'pagerduty' AND delivery_id = ?", [payload["event"]["id"]]
    )
    assert isinstance(event, RawEvent) and json.loads(event.payload) == payload
    status = client.get("/api/v1/webhooks/status").json()["sources"]["pagerduty"]
    assert (status["received"], status["stored_raw_only"], status["pending"]) == (1, 1, 0)
