"""Obeya's store: DuckDB embedded by default, PostgreSQL as the server store.

`connect` opens a store from a URL:

- ``duckdb:///./obeya.duckdb`` (a path relative to the working directory), ``duckdb:////var/obeya.duckdb``
  (an absolute path), ``duckdb:///:memory:``;
- ``postgresql://user@host:5432/db`` with an optional ``?schema=name`` to keep Obeya's tables in a schema
  of their own (other query parameters are passed to libpq).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from obeya.store.base import Store
from obeya.store.errors import SchemaVersionError, StoreError, UnsupportedDatabaseURL
from obeya.store.migrations import LATEST_VERSION

DEFAULT_DATABASE_URL = "duckdb:///./obeya.duckdb"

__all__ = [
    "DEFAULT_DATABASE_URL",
    "LATEST_VERSION",
    "SchemaVersionError",
    "Store",
    "StoreError",
    "UnsupportedDatabaseURL",
    "connect",
]


def connect(url: str, schema: str | None = None) -> Store:
    """Open the store at `url`; `schema` (PostgreSQL only) overrides the URL's ``?schema=``."""
    if url.startswith("duckdb://"):
        from obeya.store.duckdb_store import DuckDBStore

        path = url.removeprefix("duckdb://").removeprefix("/")
        if not path:
            raise UnsupportedDatabaseURL(f"{url!r} names no file: use duckdb:///./obeya.duckdb")
        return DuckDBStore(url, path)
    if url.startswith(("postgresql://", "postgres://")):
        from obeya.store.postgres_store import PostgresStore

        parts = urlsplit(url)
        query = parse_qsl(parts.query)
        url_schema = next((v for k, v in query if k == "schema"), None)
        conninfo = urlunsplit(parts._replace(query=urlencode([(k, v) for k, v in query if k != "schema"])))
        try:
            return PostgresStore(url, conninfo, schema or url_schema)
        except Exception as error:  # psycopg's OperationalError says why (refused, auth, no database)
            raise StoreError(f"cannot open the PostgreSQL store at {url}: {error}") from error
    raise UnsupportedDatabaseURL(
        f"unsupported database URL {url!r}: use duckdb:///PATH (embedded) or postgresql://... (server)"
    )
