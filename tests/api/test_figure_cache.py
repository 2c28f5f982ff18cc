"""Figure responses are cached while the data under them is unchanged, and recomputed after a write."""

from __future__ import annotations

import time

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from obeya.api import create_app
from obeya.store import Store
from tests.engine import test_flow
from tests.engine.builders import day, item

URL = "/api/v1/metrics/flow?stream=Payments&window=31d&as_of=2025-03-31&detail=false"


def _completed(client: TestClient) -> float:
    figures = {f["key"]: f for f in client.get(URL).json()["figures"]}
    return float(figures["items_completed"]["value"])


def test_same_request_same_data_is_served_from_the_cache(store: Store) -> None:
    store.upsert_records(test_flow._scenario())
    app = create_app(store)
    client = TestClient(app)
    first = client.get(URL)
    second = client.get(URL)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert (app.state.figure_cache.misses, app.state.figure_cache.hits) == (1, 1)


def test_a_write_makes_the_next_request_recompute(store: Store) -> None:
    store.upsert_records(test_flow._scenario())
    app = create_app(store)
    client = TestClient(app)
    assert _completed(client) == 3
    store.upsert_records(item("N", day(3, 20), [(day(3, 20), "In Progress"), (day(3, 22), "Done")]))
    assert _completed(client) == 4
    assert app.state.figure_cache.hits == 0


def test_errors_are_not_cached(store: Store) -> None:
    app = create_app(store)
    client = TestClient(app)
    assert client.get("/api/v1/metrics/flow?stream=Nowhere").status_code == 404
    assert client.get("/api/v1/metrics/flow?stream=Nowhere").status_code == 404
    assert app.state.figure_cache.hits == 0


def _settled(app: FastAPI) -> None:
    """Wait (bounded) until no figures are being recomputed in the background."""
    for _ in range(600):
        if not app.state.figure_cache.computing:
            return
        time.sleep(0.05)
    raise AssertionError("figures still being recomputed after 30 s")


def test_figures_being_recomputed_are_answered_with_the_previous_ones_marked_stale(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `stale_after` 0 a request never waits for a recomputation when an earlier answer is cached:
    it gets that answer, marked with the data version it was computed at, and the recomputation goes on
    in the background and replaces it."""
    monkeypatch.setattr(store, "close", lambda: None)  # the app's shutdown; the fixture closes it
    store.upsert_records(test_flow._scenario())
    app = create_app(store, stale_after=0)
    with TestClient(app) as client:
        first = client.get(URL)  # nothing cached yet: it waits for the figures
        assert "x-obeya-stale" not in first.headers
        assert _completed(client) == 3
        computed_at = store.data_version()
        store.upsert_records(item("N", day(3, 20), [(day(3, 20), "In Progress"), (day(3, 22), "Done")]))
        stale = client.get(URL)
        assert stale.headers["x-obeya-stale"] == str(computed_at)
        assert stale.content == first.content
        _settled(app)
        fresh = client.get(URL)
        assert "x-obeya-stale" not in fresh.headers
        assert {f["key"]: f["value"] for f in fresh.json()["figures"]}["items_completed"] == 4
        assert app.state.figure_cache.stale_answers == 1


def test_without_stale_after_a_request_waits_for_the_new_figures(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "close", lambda: None)  # the app's shutdown; the fixture closes it
    store.upsert_records(test_flow._scenario())
    app = create_app(store)  # as the tests' and library users' default: always wait
    with TestClient(app) as client:
        assert _completed(client) == 3
        store.upsert_records(item("N", day(3, 20), [(day(3, 20), "In Progress"), (day(3, 22), "Done")]))
        answer = client.get(URL)
        assert "x-obeya-stale" not in answer.headers
        assert {f["key"]: f["value"] for f in answer.json()["figures"]}["items_completed"] == 4
        assert app.state.figure_cache.stale_answers == 0
