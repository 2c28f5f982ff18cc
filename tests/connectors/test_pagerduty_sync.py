"""PagerDuty sync against the recorded PagerDuty REST API on a local server, on DuckDB and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from pagerduty_server import RECORDINGS, TOKEN, FakePagerDuty, load_incidents

from obeya.config.loader import ConfigError, parse_config
from obeya.connectors.config import ConnectionConfig
from obeya.connectors.errors import AuthenticationError, MissingCredentialError
from obeya.connectors.incidents import NotChangeCaused
from obeya.connectors.pagerduty.collector import pagerduty_client
from obeya.connectors.pagerduty.config import PagerDutyConnectionConfig
from obeya.connectors.sync import load_cursor, replay, sync
from obeya.model.records import Identity, Incident, Person
from obeya.store import Store

NOW = datetime(2022, 11, 4, 12, 0, tzinfo=UTC)
CRASH, SLOW, SPAM = "Q3YON8WNWTZMRQ", "Q3CZAU7Q4008QD", "Q1OHFWFP3GPXOG"  # incidents #4, #5, #6
KEON = {"id": "PQYACO3", "summary": "Keon Amini", "type": "user_reference"}
KINDS = ("incident", "person", "identity")


@pytest.fixture
def pagerduty(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePagerDuty]:
    """The recorded account: incidents in pages of 2, log entries in pages of 10."""
    monkeypatch.setenv("PAGERDUTY_TOKEN", TOKEN)
    server = FakePagerDuty().start()
    yield server
    server.stop()


def _connection(server: FakePagerDuty, **options: Any) -> PagerDutyConnectionConfig:
    return PagerDutyConnectionConfig(name="pd", base_url=server.base_url, **options)


def _sync(store: Store, connection: PagerDutyConnectionConfig, now: datetime = NOW, **options: Any) -> Any:
    return sync(store, connection, clock=lambda: now, **options)


def _incident(store: Store, incident_id: str) -> Incident:
    found = store.fetch_records("incident", "id = ?", [f"pagerduty:{incident_id}"])
    assert len(found) == 1 and isinstance(found[0], Incident)
    return found[0]


def _utc(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC).replace(tzinfo=None)


def snapshot(store: Store) -> dict[str, dict[str, dict[str, Any]]]:
    """Every normalized record, by kind and id."""
    return {kind: {r.id: r.model_dump() for r in store.fetch_records(kind)} for kind in KINDS}


def test_incidents_field_by_field_with_times_from_their_log_entries(
    store: Store, pagerduty: FakePagerDuty
) -> None:
    report = _sync(store, _connection(pagerduty))
    assert report.resources["incidents"].fetched == 3
    assert report.resources["incidents"].pages == 2  # pages of 2, `more` on the first
    assert [r.one("offset") for r in pagerduty.received("/incidents")] == ["0", "2"]
    assert pagerduty.received("/incidents")[0].one("date_range") == "all"
    assert pagerduty.received("/incidents")[0].one("sort_by") == "created_at:asc"
    crash_logs = [r.one("offset") for r in pagerduty.received(f"/incidents/{CRASH}/log_entries")]
    assert crash_logs == ["0", "10", "20", "30"]  # 31 recorded log entries

    # By hand from the recording.
    recorded = {i["id"]: i for i in load_incidents()}
    crash = _incident(store, CRASH)
    assert (crash.title, crash.service, crash.status, crash.severity) == (
        "Crash reported",
        "DevService",
        "open",  # triggered (re-triggered after its acknowledgements)
        "sev2",  # no priority; urgency high
    )
    assert crash.labels == ["urgency:high"]
    assert crash.created_at == _utc("2022-11-03T06:23:06Z")
    assert crash.acknowledged_at == _utc("2022-11-03T06:23:07Z")  # the first of three acknowledgements
    assert crash.resolved_at is None
    assert crash.url == recorded[CRASH]["html_url"]
    assert crash.change_caused is None and crash.caused_by_deployment_id is None
    assert crash.raw_event_id == f"pagerduty:incident:{CRASH}"

    slow = _incident(store, SLOW)
    assert (slow.status, slow.severity, slow.acknowledged_at, slow.resolved_at) == (
        "acknowledged",
        "sev2",
        _utc("2022-11-03T06:44:37Z"),
        None,
    )
    spam = _incident(store, SPAM)
    assert (spam.title, spam.status, spam.severity, spam.labels) == (
        "Spamming logs",
        "resolved",
        "sev3",
        ["urgency:low"],
    )
    assert (spam.created_at, spam.acknowledged_at, spam.resolved_at) == (
        _utc("2022-11-03T06:45:36Z"),
        _utc("2022-11-03T06:45:46Z"),
        _utc("2022-11-03T06:51:44Z"),
    )

    people = {p.id: p.display_name for p in store.fetch_records("person") if isinstance(p, Person)}
    assert people == {"pagerduty:user/PQYACO3": "Keon Amini", "pagerduty:user/P25K520": "Kian Amini"}
    identity = store.fetch_records("identity", "id = ?", ["pagerduty:user/PQYACO3"])[0]
    assert isinstance(identity, Identity)
    assert (identity.person_id, identity.tool) == ("pagerduty:user/PQYACO3", "pagerduty")
    raw = {r.id for r in store.fetch_records("raw_event")}
    assert f"pagerduty:log_entry:{recorded[SPAM]['log_entries'][0]['id']}" in raw  # every item kept
    assert "pagerduty:settings:pd" in raw


def test_second_sync_asks_again_from_the_oldest_unresolved_incident(
    store: Store, pagerduty: FakePagerDuty
) -> None:
    _sync(store, _connection(pagerduty))
    cursor = load_cursor(store, "pd", "incidents")
    assert cursor is not None and cursor.status == "complete"
    assert '"mark": "2022-11-03T06:23:06Z"' in (cursor.cursor or "")  # #4, still triggered

    pagerduty.resolve(CRASH, "2022-11-04T13:00:00Z", KEON)
    first = len(pagerduty.requests)
    later = datetime(2022, 11, 5, tzinfo=UTC)
    report = _sync(store, _connection(pagerduty), now=later)
    asked = [r for r in pagerduty.requests[first:] if r.path == "/incidents"]
    assert {(r.one("since"), r.one("until"), r.one("date_range")) for r in asked} == {
        ("2022-11-03T06:23:06Z", "2022-11-05T00:00:00Z", None)
    }
    assert report.resources["incidents"].fetched == 3
    crash = _incident(store, CRASH)
    assert (crash.status, crash.resolved_at) == ("resolved", _utc("2022-11-04T13:00:00Z"))

    # Now #5 (acknowledged) is the oldest unresolved one.
    first = len(pagerduty.requests)
    _sync(store, _connection(pagerduty), now=later)
    asked = [r for r in pagerduty.requests[first:] if r.path == "/incidents"]
    assert {r.one("since") for r in asked} == {"2022-11-03T06:44:28Z"}
    assert store.count("incident") == 3


def test_long_gaps_are_asked_in_windows_of_at_most_six_months(store: Store, pagerduty: FakePagerDuty) -> None:
    _sync(store, _connection(pagerduty))
    first = len(pagerduty.requests)
    _sync(store, _connection(pagerduty), now=datetime(2023, 11, 1, tzinfo=UTC))
    asked = [
        (r.one("since"), r.one("until"))
        for r in pagerduty.requests[first:]
        if r.path == "/incidents" and r.one("offset") == "0"
    ]
    assert (
        len(asked) == 3 and asked[0][0] == "2022-11-03T06:23:06Z" and asked[-1][1] == "2023-11-01T00:00:00Z"
    )
    assert all(a[1] == b[0] for a, b in pairwise(asked))


def test_filters_by_service(store: Store, pagerduty: FakePagerDuty) -> None:
    report = _sync(store, _connection(pagerduty, services=["POTHER"]))
    assert report.resources["incidents"].fetched == 0
    assert pagerduty.received("/incidents")[0].query["service_ids[]"] == ["POTHER"]


def test_rules_say_which_incidents_no_change_caused_and_override_severities(
    store: Store, pagerduty: FakePagerDuty
) -> None:
    connection = _connection(
        pagerduty, not_change_caused=NotChangeCaused(labels=["urgency:low"]), severity={"high": "sev1"}
    )
    _sync(store, connection)
    assert _incident(store, SPAM).change_caused is False
    assert _incident(store, CRASH).change_caused is None
    assert _incident(store, CRASH).severity == "sev1"

    by_service = _connection(pagerduty, not_change_caused=NotChangeCaused(services=["devservice"]))
    _sync(store, by_service, full=True)
    assert {_incident(store, i).change_caused for i in (CRASH, SLOW, SPAM)} == {False}
    assert _incident(store, CRASH).severity == "sev2"


def test_rejected_token_stops_with_a_clear_error(
    store: Store, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAGERDUTY_TOKEN", "wrong")
    with pytest.raises(
        AuthenticationError, match=r"PagerDuty rejected the token in \$PAGERDUTY_TOKEN \(401\)"
    ):
        _sync(store, _connection(pagerduty))
    cursor = load_cursor(store, "pd", "incidents")
    assert cursor is not None and cursor.status == "failed"
    monkeypatch.delenv("PAGERDUTY_TOKEN")
    with pytest.raises(MissingCredentialError, match=r"\$PAGERDUTY_TOKEN is not set"):
        pagerduty_client(_connection(pagerduty))


def test_replay_rebuilds_what_sync_wrote(store: Store, pagerduty: FakePagerDuty) -> None:
    _sync(store, _connection(pagerduty, not_change_caused=NotChangeCaused(labels=["urgency:low"])))
    synced = snapshot(store)
    assert all(synced.values())
    for kind in ("incidents", "people", "identities"):
        store.execute(f"DELETE FROM {kind}")
    requests = len(pagerduty.requests)
    report = replay(store, "pd")
    assert len(pagerduty.requests) == requests
    assert set(report.resources) == {"user", "incident+log_entry"}
    assert snapshot(store) == synced


def test_pagerduty_connection_in_obeya_yaml(tmp_path: Path) -> None:
    config = parse_config(
        "connections:\n  - name: pd\n    tool: pagerduty\n    services: [PIKL83L]\n"
        "    not_change_caused: {labels: [provider-outage]}\n",
        tmp_path / "obeya.yaml",
    )
    connection: ConnectionConfig = config.connection("pd")
    assert isinstance(connection, PagerDutyConnectionConfig)
    assert (connection.base_url, connection.token_env) == ("https://api.pagerduty.com", "PAGERDUTY_TOKEN")
    assert connection.not_change_caused.labels == ["provider-outage"]
    with pytest.raises(ConfigError, match=r"obeya.yaml:4: connections\[0\].service: unknown key"):
        parse_config(
            "connections:\n  - name: pd\n    tool: pagerduty\n    service: [X]\n", tmp_path / "obeya.yaml"
        )
    with pytest.raises(ConfigError, match=r"write one of sev1"):
        parse_config(
            "connections:\n  - name: pd\n    tool: pagerduty\n    severity: {P1: critical}\n",
            tmp_path / "obeya.yaml",
        )


def test_recording_is_where_the_server_reads_it() -> None:
    assert (RECORDINGS / "_raw_pagerduty_incidents.jsonl").exists()
