"""Shared fixtures: a store on each engine, each test in a database or schema of its own."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from obeya.store import Store, connect
from obeya.store.postgres_store import PostgresStore

POSTGRES_URL_VARIABLE = "OBEYA_TEST_POSTGRES_URL"

ENGINES = ["duckdb", "postgresql"]


def _postgres_url() -> str:
    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not url:
        pytest.skip(
            f"PostgreSQL tests are skipped: set {POSTGRES_URL_VARIABLE}, e.g. "
            f"{POSTGRES_URL_VARIABLE}=postgresql://postgres@127.0.0.1:5432/test, to run them"
        )
    return url


@pytest.fixture
def open_store(tmp_path: Path) -> Iterator[Callable[[str], Store]]:
    """Open an empty, unmigrated store on an engine ("duckdb" or "postgresql"); dropped afterwards."""
    opened: list[Store] = []

    def _open(engine: str) -> Store:
        if engine == "duckdb":
            store = connect(f"duckdb:///{tmp_path}/obeya-{len(opened)}.duckdb")
        else:
            store = connect(_postgres_url(), schema=f"obeya_test_{uuid.uuid4().hex[:12]}")
        opened.append(store)
        return store

    yield _open
    for store in opened:
        if isinstance(store, PostgresStore):
            store.drop_schema()
        store.close()


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """Each engine in turn."""
    return str(request.param)


@pytest.fixture
def store(open_store: Callable[[str], Store], engine: str) -> Store:
    """A store at the latest schema version, on each engine in turn."""
    s = open_store(engine)
    s.migrate()
    return s
