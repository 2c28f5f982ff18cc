"""Webhook deliveries belong to a connection (named in the URL, the receiver's own, or the one declaring
the repository), and the records they give teach that connection's value stream its scopes, as a sync
does: a GitHub issue delivered by webhook counts in the stream of the connection listing its repository."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from obeya.api import create_app
from obeya.config.loader import ConfigError, parse_config
from obeya.config.model import ObeyaConfig
from obeya.engine.flow import flow_velocity
from obeya.engine.window import Slice, Window
from obeya.model.records import RawEvent
from obeya.store import Store
from tests.api.webhooks.deliveries import CASES, REPO, SECRET, post

GITHUB = CASES[0]
REPOSITORY = {"full_name": REPO, "name": "ants", "owner": {"login": "panjf2000", "id": 7496278}}
OCTOCAT = {"login": "octocat", "id": 1, "type": "User", "site_admin": False}
PAYMENTS = "config:value-stream/payments"
APRIL_2011 = Window(datetime(2011, 4, 1), datetime(2011, 5, 1))

CONFIG = f"""
value_streams:
  - name: Payments
connections:
  - {{name: github-acme, tool: github, repositories: [{REPO}], value_stream: Payments}}
  - {{name: github-other, tool: github, repositories: [someone/else]}}
"""


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(GITHUB.secret_env, SECRET)


def _config(tmp_path: Path, extra: str = "") -> ObeyaConfig:
    return parse_config(CONFIG + extra, tmp_path / "obeya.yaml")


def _issue(**changes: Any) -> dict[str, Any]:
    """GitHub's documented issue example (#1347 "Found a bug" by octocat), placed in panjf2000/ants."""
    return {
        "id": 1,
        "number": 1347,
        "state": "open",
        "state_reason": None,
        "title": "Found a bug",
        "user": OCTOCAT,
        "labels": [],
        "assignee": None,
        "closed_at": None,
        "created_at": "2011-04-22T13:33:48Z",
        "updated_at": "2011-04-22T13:33:48Z",
        **changes,
    }


def _deliver_opened_and_closed(client: TestClient, path: str = GITHUB.path) -> list[str]:
    """The issue opened, then closed as completed; the raw event ids of both deliveries."""
    closed = _issue(state="closed", state_reason="completed", closed_at="2011-04-23T09:00:00Z")
    ids = []
    for action, issue in (("opened", _issue()), ("closed", closed)):
        case = dataclasses.replace(GITHUB, path=path)
        response, delivery = post(
            client,
            case,
            {"action": action, "issue": issue, "repository": REPOSITORY, "sender": OCTOCAT},
            "issues",
        )
        assert response.status_code == 202, response.text
        assert client.get(response.json()["outcome_url"]).json()["outcome"] == "normalized"
        ids.append(f"github:{delivery}")
    return ids


def _connections(store: Store, ids: list[str]) -> set[str | None]:
    events = store.fetch_records("raw_event", f"id IN ({', '.join('?' for _ in ids)})", ids)
    return {e.connection for e in events if isinstance(e, RawEvent)}


def test_a_webhook_for_a_connections_repository_counts_in_its_value_stream(
    store: Store, tmp_path: Path
) -> None:
    client = TestClient(create_app(store, _config(tmp_path)))
    # before: the stream knows the repository (declared), not yet the project its issues carry
    assert flow_velocity(store, APRIL_2011, Slice(value_stream_id=PAYMENTS)).completed == 0
    ids = _deliver_opened_and_closed(client)
    assert _connections(store, ids) == {"github-acme"}  # the connection listing panjf2000/ants
    scopes = store.query(
        "SELECT object_type, object_key FROM scopes WHERE value_stream_id = ? ORDER BY 1", (PAYMENTS,)
    )
    assert [tuple(r) for r in scopes] == [("project", REPO), ("repository", REPO)]
    assert flow_velocity(store, APRIL_2011, Slice(value_stream_id=PAYMENTS)).completed == 1
    # the next start keeps what the webhooks taught (the learned scopes come from the connection's rows)
    TestClient(create_app(store, _config(tmp_path)))
    assert flow_velocity(store, APRIL_2011, Slice(value_stream_id=PAYMENTS)).completed == 1


def test_the_connection_in_the_url_wins_over_the_repository(store: Store, tmp_path: Path) -> None:
    client = TestClient(create_app(store, _config(tmp_path)))
    ids = _deliver_opened_and_closed(client, f"{GITHUB.path}?connection=github-other")
    assert _connections(store, ids) == {"github-other"}
    assert flow_velocity(store, APRIL_2011, Slice(value_stream_id=PAYMENTS)).completed == 0  # feeds no stream


def test_a_receiver_bound_to_a_connection(store: Store, tmp_path: Path) -> None:
    bound = "webhooks:\n  github: {secret_env: OBEYA_WEBHOOK_SECRET_GITHUB, connection: github-other}\n"
    client = TestClient(create_app(store, _config(tmp_path, bound)))
    assert _connections(store, _deliver_opened_and_closed(client)) == {"github-other"}


def test_a_receiver_bound_to_an_unknown_connection_is_a_config_error(tmp_path: Path) -> None:
    bound = "webhooks:\n  github: {secret_env: OBEYA_WEBHOOK_SECRET_GITHUB, connection: jira-acme}\n"
    with pytest.raises(
        ConfigError, match=r"webhooks.*github.*connection.*'jira-acme' is not a github connection"
    ):
        _config(tmp_path, bound)
