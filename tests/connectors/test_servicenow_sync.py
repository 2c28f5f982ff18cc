"""ServiceNow sync against a local Table API serving documented-example records (no recording exists),
on DuckDB and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from servicenow_server import (
    BEARER,
    CHANGE_FAILED,
    CHANGE_OK,
    CHANGE_PLANNED,
    PASSWORD,
    USER,
    FakeServiceNow,
    _field,
)

from obeya.config.loader import ConfigError, parse_config
from obeya.connectors.errors import AuthenticationError, MissingCredentialError
from obeya.connectors.incidents import NotChangeCaused
from obeya.connectors.servicenow.config import ServiceNowConnectionConfig
from obeya.connectors.sync import load_cursor, replay, sync
from obeya.linking import derive_links, trace
from obeya.model.records import (
    Change,
    Commit,
    Deployment,
    Incident,
    Person,
    PipelineRun,
    Release,
    TraceLink,
    WorkItem,
)
from obeya.store import Store

NOW = datetime(2024, 3, 5, tzinfo=UTC)
EMAIL_DOWN, SAP_SLOW, PRINTER = (
    "9c573169c611228700193229fff72400",
    "e8caedcbc0a80164017df472f39eaed1",
    "ef43c6d40a0a0b5700c77f9bf387afe3",
)
KINDS = ("incident", "release", "deployment", "trace_link", "person", "identity")


@pytest.fixture
def servicenow(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServiceNow]:
    """The documented-example instance, in pages of 2."""
    monkeypatch.setenv("SERVICENOW_USER", USER)
    monkeypatch.setenv("SERVICENOW_TOKEN", PASSWORD)
    server = FakeServiceNow().start()
    yield server
    server.stop()


def _connection(server: FakeServiceNow, **options: Any) -> ServiceNowConnectionConfig:
    return ServiceNowConnectionConfig(name="snow", base_url=server.base_url, **options)


def _sync(store: Store, connection: ServiceNowConnectionConfig, **options: Any) -> Any:
    return sync(store, connection, clock=lambda: NOW, **options)


def _one(store: Store, kind: str, record_id: str) -> Any:
    found = store.fetch_records(kind, "id = ?", [record_id])
    assert len(found) == 1
    return found[0]


def _utc(value: str) -> datetime:
    return datetime.fromisoformat(value)


def snapshot(store: Store) -> dict[str, dict[str, dict[str, Any]]]:
    return {kind: {r.id: r.model_dump() for r in store.fetch_records(kind)} for kind in KINDS}


def test_incidents_field_by_field(store: Store, servicenow: FakeServiceNow) -> None:
    report = _sync(store, _connection(servicenow))
    assert report.resources["incidents"].fetched == 3 and report.resources["incidents"].pages == 2
    queries = [
        (r.one("sysparm_query"), r.one("sysparm_offset"))
        for r in servicenow.received("/api/now/table/incident")
    ]
    assert queries == [
        ("ORDERBYsys_updated_on^ORDERBYsys_id", "0"),
        # keyset page: from the newest sys_updated_on seen, skipping the one record already seen at it
        ("sys_updated_on>=2024-03-02 12:00:00^ORDERBYsys_updated_on^ORDERBYsys_id", "1"),
    ]
    assert {r.one("sysparm_display_value") for r in servicenow.requests} == {"all"}

    down = _one(store, "incident", f"servicenow:incident/{EMAIL_DOWN}")
    assert isinstance(down, Incident)
    assert (down.title, down.service, down.severity, down.status) == (
        "Email server down after upgrade",
        "Email",
        "sev1",
        "resolved",
    )
    assert (down.created_at, down.acknowledged_at, down.resolved_at) == (
        _utc("2024-03-01 08:00:00"),
        _utc("2024-03-01 08:10:00"),
        _utc("2024-03-01 09:30:00"),
    )
    assert "priority:1 - Critical" in down.labels and "number:INC0010001" in down.labels
    assert down.url == f"{servicenow.base_url}/nav_to.do?uri=incident.do?sys_id={EMAIL_DOWN}"
    # caused_by names the change request: explicit attribution to its deployment
    assert down.change_caused is True
    assert down.caused_by_deployment_id == f"servicenow:change_request/{CHANGE_OK}"
    assert down.cause_evidence == "ServiceNow: INC0010001 caused by CHG0030001"
    link = _one(store, "trace_link", f"servicenow:incident/{EMAIL_DOWN}/caused_by")
    assert isinstance(link, TraceLink)
    assert (link.to_kind, link.to_id, link.link_kind) == (
        "release",
        f"servicenow:change_request/{CHANGE_OK}",
        "caused_by_change",
    )

    slow = _one(store, "incident", f"servicenow:incident/{SAP_SLOW}")
    assert (slow.service, slow.severity, slow.status, slow.resolved_at) == (
        "SAP Enterprise Services",
        "sev2",
        "acknowledged",
        None,
    )
    printer = _one(store, "incident", f"servicenow:incident/{PRINTER}")
    assert (printer.service, printer.severity, printer.status) == ("PRINTER-3F", "sev4", "open")  # cmdb_ci
    people = {p.display_name for p in store.fetch_records("person") if isinstance(p, Person)}
    assert people == {"Beth Anglin", "David Loo"}


def test_change_requests_are_releases_and_implemented_ones_deployments(
    store: Store, servicenow: FakeServiceNow
) -> None:
    _sync(store, _connection(servicenow))
    ok = _one(store, "release", f"servicenow:change_request/{CHANGE_OK}")
    assert isinstance(ok, Release)
    assert (ok.name, ok.status, ok.planned_at, ok.released_at) == (
        "CHG0030001",
        "released",
        _utc("2024-02-28 22:00:00"),
        _utc("2024-02-28 22:50:00"),
    )
    deployed = _one(store, "deployment", f"servicenow:change_request/{CHANGE_OK}")
    assert isinstance(deployed, Deployment)
    assert (deployed.service, deployed.environment, deployed.environment_class.value, deployed.result) == (
        "Email",
        "production",
        "production",
        "success",
    )
    assert (deployed.started_at, deployed.finished_at, deployed.release_id) == (
        _utc("2024-02-28 22:05:00"),
        _utc("2024-02-28 22:50:00"),
        ok.id,
    )
    failed = _one(store, "deployment", f"servicenow:change_request/{CHANGE_FAILED}")
    assert (failed.result, failed.service) == ("failure", "SAP Enterprise Services")
    assert _one(store, "release", f"servicenow:change_request/{CHANGE_FAILED}").status == "canceled"
    planned = _one(store, "release", f"servicenow:change_request/{CHANGE_PLANNED}")
    assert (planned.status, planned.released_at) == ("planned", None)
    assert not store.fetch_records("deployment", "id = ?", [f"servicenow:change_request/{CHANGE_PLANNED}"])


def test_change_requests_only_as_releases(store: Store, servicenow: FakeServiceNow) -> None:
    _sync(store, _connection(servicenow, change_requests_as_deployments=False))
    assert store.count("deployment") == 0 and store.count("release") == 3
    down = _one(store, "incident", f"servicenow:incident/{EMAIL_DOWN}")
    assert (down.caused_by_deployment_id, down.change_caused) == (None, True)


def test_change_requests_carry_their_service_window_and_approval(
    store: Store, servicenow: FakeServiceNow
) -> None:
    _sync(store, _connection(servicenow, service_names={"Email": "email-server"}))
    ok = _one(store, "release", f"servicenow:change_request/{CHANGE_OK}")
    # worked 22:05..22:50: the implementation window, not the planned 22:00..23:00
    assert (ok.service, ok.window_start, ok.window_end, ok.approval, ok.correlation_id) == (
        "email-server",
        _utc("2024-02-28 22:05:00"),
        _utc("2024-02-28 22:50:00"),
        "approved",
        None,
    )
    planned = _one(store, "release", f"servicenow:change_request/{CHANGE_PLANNED}")
    assert (planned.window_start, planned.window_end, planned.approval) == (
        _utc("2024-03-10 22:00:00"),
        _utc("2024-03-10 23:00:00"),
        "requested",
    )
    assert _one(store, "deployment", f"servicenow:change_request/{CHANGE_OK}").service == "email-server"
    assert _one(store, "incident", f"servicenow:incident/{EMAIL_DOWN}").service == "email-server"
    failed = _one(store, "release", f"servicenow:change_request/{CHANGE_FAILED}")
    assert (failed.service, failed.correlation_id) == (
        "SAP Enterprise Services",
        "sap/kernel/actions/runs/4401",
    )


def _pipeline_deployment(name: str, service: str, finished: str, **fields: Any) -> Deployment:
    return Deployment(
        source="github",
        external_id=name,
        service=service,
        environment="production",
        environment_class="production",
        result="success",
        started_at=_utc(finished) - timedelta(minutes=5),
        finished_at=_utc(finished),
        **fields,
    )


def test_change_requests_cover_the_deployments_a_pipeline_recorded(
    store: Store, servicenow: FakeServiceNow
) -> None:
    _sync(
        store, _connection(servicenow, change_requests_as_deployments=False, service_names={"Email": "email"})
    )
    ok, failed = (f"servicenow:change_request/{c}" for c in (CHANGE_OK, CHANGE_FAILED))
    store.upsert_records(
        [
            WorkItem(
                source="jira",
                external_id="MAIL-7",
                key="MAIL-7",
                title="Upgrade the email server",
                project="MAIL",
                tool_type="Story",
                flow_item_type="feature",
                status="Done",
                flow_state="done",
                created_at=_utc("2024-02-20 09:00:00"),
            ),
            Commit(
                source="github",
                external_id="mail@a1",
                repo="acme/mail",
                sha="a1" * 10,
                message="first",
                authored_at=_utc("2024-02-20 10:00:00"),
            ),
            Commit(
                source="github",
                external_id="mail@b2",
                repo="acme/mail",
                sha="b2" * 10,
                message="MAIL-7 upgrade",
                authored_at=_utc("2024-02-27 10:00:00"),
            ),
            Change(
                source="github",
                external_id="acme/mail#3",
                repo="acme/mail",
                number=3,
                title="MAIL-7 upgrade",
                state="merged",
                created_at=_utc("2024-02-27 10:00:00"),
                merged_at=_utc("2024-02-27 12:00:00"),
                merge_commit_sha="b2" * 10,
            ),
            # the email service's production deployments: before, inside and after CHG0030001's window
            _pipeline_deployment(
                "e1", "email", "2024-02-27 08:00:00", repo="acme/mail", commit_sha="a1" * 10
            ),
            _pipeline_deployment(
                "e2", "email", "2024-02-28 22:30:00", repo="acme/mail", commit_sha="b2" * 10
            ),
            _pipeline_deployment("e3", "email", "2024-02-28 23:30:00"),
            # SAP's pipeline run is the one CHG0030003's correlation id names, finished outside its window
            PipelineRun(
                source="github",
                external_id="sap/kernel/actions/runs/4401",
                pipeline="kernel",
                result="success",
                created_at=_utc("2024-03-04 01:00:00"),
            ),
            _pipeline_deployment(
                "s1",
                "SAP Enterprise Services",
                "2024-03-04 01:30:00",
                pipeline_run_id="github:sap/kernel/actions/runs/4401",
            ),
        ]
    )
    derive_links(store)
    covered = store.query(
        "SELECT from_id, to_id, evidence, confidence FROM trace_links WHERE link_kind = 'covered_by' "
        "ORDER BY from_id"
    )
    assert [tuple(r) for r in covered] == [
        (
            "github:e2",
            ok,
            "time rule: production deployment of email finished 2024-02-28T22:30Z, inside the window of "
            "CHG0030001 (2024-02-28T22:05Z..2024-02-28T22:50Z)",
            0.6,
        ),
        (
            "github:s1",
            failed,
            "correlation id of CHG0030003 is pipeline run sap/kernel/actions/runs/4401",
            1.0,
        ),
    ]
    chain = trace(store, "MAIL-7")
    assert [(s.node.label, s.via) for s in chain.change_requests] == [
        ("CHG0030001 Upgrade the email server (released, approved)", "github:e2")
    ]


def test_second_sync_asks_from_the_newest_update(store: Store, servicenow: FakeServiceNow) -> None:
    _sync(store, _connection(servicenow))
    cursor = load_cursor(store, "snow", "incidents")
    assert cursor is not None and cursor.status == "complete"
    assert '"mark": "2024-03-02 12:00:00"' in (cursor.cursor or "")

    servicenow.update(
        "incident",
        "INC0010002",
        state=_field("6", "Resolved"),
        resolved_at=_field("2024-03-05 10:00:00"),
        sys_updated_on=_field("2024-03-05 10:00:01"),
    )
    first = len(servicenow.requests)
    report = _sync(store, _connection(servicenow))
    asked = [r.one("sysparm_query") for r in servicenow.requests[first:] if r.path.endswith("/incident")]
    assert asked == ["sys_updated_on>=2024-03-02 12:00:00^ORDERBYsys_updated_on^ORDERBYsys_id"]
    assert report.resources["incidents"].fetched == 2  # INC0010003 at the mark, and INC0010002
    slow = _one(store, "incident", f"servicenow:incident/{SAP_SLOW}")
    assert (slow.status, slow.resolved_at) == ("resolved", _utc("2024-03-05 10:00:00"))


def test_rules_mark_provider_outages_and_filter_services(store: Store, servicenow: FakeServiceNow) -> None:
    rules = NotChangeCaused(labels=["category:Provider outage"])
    _sync(store, _connection(servicenow, not_change_caused=rules, services=["SAP Enterprise Services"]))
    assert store.count("incident") == 1
    assert _one(store, "incident", f"servicenow:incident/{SAP_SLOW}").change_caused is False
    asked = {r.one("sysparm_query") for r in servicenow.received("/api/now/table/incident")}
    assert asked == {"business_service.nameINSAP Enterprise Services^ORDERBYsys_updated_on^ORDERBYsys_id"}


def test_rejected_credentials_and_bearer_auth(
    store: Store, servicenow: FakeServiceNow, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVICENOW_TOKEN", "wrong")
    with pytest.raises(
        AuthenticationError, match=r"ServiceNow rejected the token in \$SERVICENOW_TOKEN \(401\)"
    ) as error:
        _sync(store, _connection(servicenow))
    assert "the user in $SERVICENOW_USER" in str(error.value)
    cursor = load_cursor(store, "snow", "incidents")
    assert cursor is not None and cursor.status == "failed"

    monkeypatch.setenv("SERVICENOW_TOKEN", BEARER)
    report = _sync(store, _connection(servicenow, auth="bearer"))
    assert report.resources["incidents"].fetched == 3
    monkeypatch.delenv("SERVICENOW_USER")
    with pytest.raises(MissingCredentialError, match=r"\$SERVICENOW_USER is not set"):
        _sync(store, _connection(servicenow))


def test_replay_rebuilds_what_sync_wrote(store: Store, servicenow: FakeServiceNow) -> None:
    _sync(
        store,
        _connection(servicenow, not_change_caused=NotChangeCaused(services=["SAP Enterprise Services"])),
    )
    synced = snapshot(store)
    assert all(synced.values())
    for table in ("incidents", "releases", "deployments", "trace_links", "people", "identities"):
        store.execute(f"DELETE FROM {table}")
    requests = len(servicenow.requests)
    report = replay(store, "snow")
    assert len(servicenow.requests) == requests
    assert set(report.resources) == {"user", "change_request", "incident"}
    assert snapshot(store) == synced


def test_servicenow_connection_in_obeya_yaml(tmp_path: Path) -> None:
    config = parse_config(
        "connections:\n  - name: snow\n    tool: servicenow\n    base_url: https://dev1.service-now.com/\n",
        tmp_path / "obeya.yaml",
    )
    connection = config.connection("snow")
    assert isinstance(connection, ServiceNowConnectionConfig)
    assert (connection.base_url, connection.auth, connection.change_requests_as_deployments) == (
        "https://dev1.service-now.com",
        "basic",
        True,
    )
    with pytest.raises(ConfigError, match=r"leave ORDERBY out"):
        parse_config(
            "connections:\n  - name: s\n    tool: servicenow\n    base_url: https://x\n"
            "    query: ORDERBYnumber\n",
            tmp_path / "obeya.yaml",
        )
