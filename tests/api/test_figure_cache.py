"""Figure responses are cached while the data under them is unchanged, and recomputed after a write."""

from __future__ import annotations

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
