"""Opsgenie sync against the recorded Opsgenie API on a local server, on DuckDB and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from opsgenie_server import KEY, RECORDINGS, SERVICE_ID, SERVICE_NAME, FakeOpsgenie, load

from obeya.config.loader import ConfigError, parse_config
from obeya.connectors.errors import AuthenticationError
from obeya.connectors.incidents import NotChangeCaused
from obeya.connectors.opsgenie.config import OpsgenieConnectionConfig
from obeya.connectors.sync import load_cursor, replay, sync
from obeya.model.records import Identity, Incident, Person
from obeya.store import Store

NOW = datetime(2023, 9, 20, tzinfo=UTC)
OPEN, RESOLVED = "3a74524a-f492-4172-b3f5-6041c7cb404a", "3f84e009-7548-4e7d-832a-fa82c1ceb6b1"
KINDS = ("incident", "person", "identity")


@pytest.fixture
def opsgenie(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpsgenie]:
    """The recorded account, in pages of 1 so every list with more than one item spans pages."""
    monkeypatch.setenv("OPSGENIE_API_KEY", KEY)
    server = FakeOpsgenie().start()
    yield server
    server.stop()


def _connection(server: FakeOpsgenie, **options: Any) -> OpsgenieConnectionConfig:
    return OpsgenieConnectionConfig(name="og", base_url=server.base_url, **options)


def _sync(store: Store, connection: OpsgenieConnectionConfig, **options: Any) -> Any:
    return sync(store, connection, clock=lambda: NOW, **options)


def _incident(store: Store, incident_id: str) -> Incident:
    found = store.fetch_records("incident", "id = ?", [f"opsgenie:{incident_id}"])
    assert len(found) == 1 and isinstance(found[0], Incident)
    return found[0]


def _utc(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC).replace(tzinfo=None)


def snapshot(store: Store) -> dict[str, dict[str, dict[str, Any]]]:
    return {kind: {r.id: r.model_dump() for r in store.fetch_records(kind)} for kind in KINDS}


def test_incidents_field_by_field(store: Store, opsgenie: FakeOpsgenie) -> None:
    report = _sync(store, _connection(opsgenie, services=[SERVICE_ID]))
    resource = f"services/{SERVICE_ID}/incidents"
    assert report.resources[resource].fetched == 2 and report.resources[resource].pages == 2
    asked = opsgenie.received("/v1/incidents")
    assert [(r.one("query"), r.one("sort"), r.one("order"), r.one("offset")) for r in asked] == [
        (f"impactedServices:{SERVICE_ID}", "createdAt", "desc", "0"),
        (f"impactedServices:{SERVICE_ID}", "createdAt", "desc", "1"),  # followed paging.next
    ]

    recorded = {i["id"]: i for i in load("incidents")}
    opened = _incident(store, OPEN)
    assert (opened.title, opened.status, opened.severity) == ("Incident#1", "open", "sev3")  # P3
    assert opened.service == SERVICE_NAME  # the derived service catalog's name for the recorded id
    assert opened.labels == [
        "priority:P3",
        f"service:{SERVICE_NAME}",
        "team:c0259fb8-2068-48c5-ae09-1b116e3579b1",  # a responder team the recorded catalog lacks
    ]
    assert (opened.created_at, opened.acknowledged_at, opened.resolved_at) == (
        _utc("2023-09-06T14:30:56.346Z"),
        _utc("2023-09-06T14:31:40.000Z"),  # its timeline's ResponderAlertAcked (derived)
        None,
    )
    assert opened.url == recorded[OPEN]["links"]["web"]
    assert opened.change_caused is None

    resolved = _incident(store, RESOLVED)
    assert (resolved.title, resolved.status, resolved.severity) == ("Incident#2", "resolved", "sev4")  # P5
    assert (resolved.created_at, resolved.acknowledged_at, resolved.resolved_at) == (
        _utc("2023-09-05T18:20:28.003Z"),
        _utc("2023-09-05T18:20:45.500Z"),  # the first of its two acknowledgements
        _utc("2023-09-05T18:21:21.490Z"),  # impactEndDate, written with 2 decimals
    )
    # The timeline is read page by page (pages of 1 here), following data.nextOffset as the offset.
    asked = opsgenie.received(f"/v2/incident-timelines/{RESOLVED}/entries")
    assert [r.one("offset") for r in asked] == [None, *(e["id"] for e in opsgenie.timelines[RESOLVED][1:])]
    assert f"opsgenie:incident_timeline:{RESOLVED}" == resolved_raw_timeline(store, RESOLVED)

    user = store.fetch_records("person")
    assert [(p.id, p.display_name, p.email) for p in user if isinstance(p, Person)] == [
        ("opsgenie:user/2bf71ba0-cb10-4c6d-95d3-07ff54dcc91a", "Hello World", "pikekad209@ipnuc.com")
    ]
    identity = store.fetch_records("identity")[0]
    assert isinstance(identity, Identity) and identity.username == "pikekad209@ipnuc.com"
    raw = {r.id for r in store.fetch_records("raw_event")}
    assert {f"opsgenie:team:{t['id']}" for t in load("teams")} <= raw


def resolved_raw_timeline(store: Store, incident_id: str) -> str:
    """The id of the stored timeline event of an incident (it holds every entry, in order)."""
    rows = store.query(
        "SELECT id, payload FROM raw_events WHERE event_type = 'incident_timeline' AND external_id = ?",
        [f"incident_timeline:{incident_id}"],
    )
    assert len(rows) == 1 and len(json.loads(rows[0][1])) == 4
    return str(rows[0][0])


def test_incident_without_timeline_or_acknowledgement_has_none(store: Store, opsgenie: FakeOpsgenie) -> None:
    opsgenie.timelines[OPEN] = [e for e in opsgenie.timelines[OPEN] if e["type"] != "ResponderAlertAcked"]
    del opsgenie.timelines[RESOLVED]  # the timeline API answers 404 for it
    _sync(store, _connection(opsgenie))
    assert _incident(store, OPEN).acknowledged_at is None
    resolved = _incident(store, RESOLVED)
    assert (resolved.acknowledged_at, resolved.resolved_at) == (None, _utc("2023-09-05T18:21:21.490Z"))


def test_without_the_service_catalog_the_service_is_its_id(store: Store, opsgenie: FakeOpsgenie) -> None:
    opsgenie.services = []
    _sync(store, _connection(opsgenie))
    assert _incident(store, OPEN).service == SERVICE_ID
    assert {r.one("query") for r in opsgenie.received("/v1/incidents")} == {None}


def test_second_sync_stops_at_the_mark_held_back_to_the_oldest_open_incident(
    store: Store, opsgenie: FakeOpsgenie
) -> None:
    _sync(store, _connection(opsgenie))
    cursor = load_cursor(store, "og", "incidents")
    assert cursor is not None and cursor.status == "complete"
    assert '"mark": "2023-09-06T14:30:56.346Z"' in (cursor.cursor or "")  # Incident#1, still open

    newer = {**load("incidents")[1], "id": "new-1", "tinyId": "4", "message": "Incident#4"}
    newer |= {"createdAt": "2023-09-07T09:00:00.000Z", "impactEndDate": "2023-09-07T09:30:00.000Z"}
    opsgenie.add(newer)
    first = len(opsgenie.requests)
    report = _sync(store, _connection(opsgenie))
    # Newest first: Incident#4, Incident#1 (at the mark), then Incident#2 is older: the walk stops there.
    assert report.resources["incidents"].fetched == 2
    assert [r.one("offset") for r in opsgenie.requests[first:] if r.path == "/v1/incidents"] == [
        "0",
        "1",
        "2",
    ]
    assert _incident(store, "new-1").resolved_at == _utc("2023-09-07T09:30:00Z")
    cursor = load_cursor(store, "og", "incidents")
    assert cursor is not None and '"mark": "2023-09-06T14:30:56.346Z"' in (cursor.cursor or "")


def test_team_filter_and_rules(store: Store, opsgenie: FakeOpsgenie) -> None:
    report = _sync(store, _connection(opsgenie, teams=["d2d47ba1-a034-488f-b1f4-be2cd3c693ad"]))
    assert report.resources["incidents"].fetched == 0
    assert report.skipped == {"incident of none of the connection's teams": 2}

    rules = NotChangeCaused(services=[SERVICE_NAME])
    _sync(store, _connection(opsgenie, not_change_caused=rules, severity={"P5": "sev3"}), full=True)
    assert {_incident(store, i).change_caused for i in (OPEN, RESOLVED)} == {False}
    assert _incident(store, RESOLVED).severity == "sev3"


def test_rejected_key_stops_with_a_clear_error(
    store: Store, opsgenie: FakeOpsgenie, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSGENIE_API_KEY", "wrong")
    with pytest.raises(
        AuthenticationError, match=r"Opsgenie rejected the token in \$OPSGENIE_API_KEY \(401\)"
    ) as error:
        _sync(store, _connection(opsgenie))
    assert "API integration" in str(error.value)
    cursor = load_cursor(store, "og", "services")
    assert cursor is not None and cursor.status == "failed"


def test_replay_rebuilds_what_sync_wrote(store: Store, opsgenie: FakeOpsgenie) -> None:
    _sync(store, _connection(opsgenie, not_change_caused=NotChangeCaused(labels=["priority:p5"])))
    synced = snapshot(store)
    assert all(synced.values())
    assert _incident(store, RESOLVED).change_caused is False
    for kind in ("incidents", "people", "identities"):
        store.execute(f"DELETE FROM {kind}")
    requests = len(opsgenie.requests)
    report = replay(store, "og")
    assert len(opsgenie.requests) == requests
    assert set(report.resources) == {"user", "incident+incident_timeline"}
    assert _incident(store, RESOLVED).acknowledged_at == _utc("2023-09-05T18:20:45.500Z")
    assert snapshot(store) == synced


def test_opsgenie_connection_in_obeya_yaml(tmp_path: Path) -> None:
    config = parse_config(
        "connections:\n  - name: og\n    tool: opsgenie\n    base_url: https://api.eu.opsgenie.com\n",
        tmp_path / "obeya.yaml",
    )
    connection = config.connection("og")
    assert isinstance(connection, OpsgenieConnectionConfig)
    assert connection.token_env == "OPSGENIE_API_KEY"
    with pytest.raises(ConfigError, match=r"obeya.yaml:4: connections\[0\].token: unknown key"):
        parse_config(
            "connections:\n  - name: og\n    tool: opsgenie\n    token: abc\n", tmp_path / "obeya.yaml"
        )


def test_recordings_are_where_the_server_reads_them() -> None:
    assert (RECORDINGS / "_raw_opsgenie_incidents.jsonl").exists()
