"""Database URLs: what each form opens, and clear errors for the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from obeya.store import StoreError, UnsupportedDatabaseURL, connect
from obeya.store.duckdb_store import DuckDBStore


def test_duckdb_url_with_absolute_path(tmp_path: Path) -> None:
    with connect(f"duckdb:///{tmp_path}/sub/obeya.duckdb") as store:
        assert isinstance(store, DuckDBStore)
        store.migrate()
    assert (tmp_path / "sub" / "obeya.duckdb").exists()


def test_duckdb_relative_path_is_from_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with connect("duckdb:///./here.duckdb") as store:
        store.migrate()
    assert (tmp_path / "here.duckdb").exists()


def test_duckdb_in_memory() -> None:
    with connect("duckdb:///:memory:") as store:
        store.migrate()
        assert store.count("work_item") == 0


@pytest.mark.parametrize("url", ["sqlite:///x.db", "mysql://root@localhost/obeya", "obeya.duckdb"])
def test_unsupported_url_says_what_is_supported(url: str) -> None:
    with pytest.raises(UnsupportedDatabaseURL, match=r"duckdb:///PATH .* postgresql://"):
        connect(url)


def test_unreachable_postgres_names_the_url() -> None:
    url = "postgresql://postgres@127.0.0.1:1/nowhere?connect_timeout=2"
    with pytest.raises(
        StoreError, match=r"cannot open the PostgreSQL store at postgresql://postgres@127\.0\.0\.1:1"
    ):
        connect(url)
