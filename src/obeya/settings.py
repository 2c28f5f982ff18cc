"""Where Obeya finds its store: ``--database-url``, ``$OBEYA_DATABASE_URL``, `obeya.yaml`, or the default."""

from __future__ import annotations

import os

from obeya.config import load_config
from obeya.store import DEFAULT_DATABASE_URL, Store, connect

DATABASE_URL_VARIABLE = "OBEYA_DATABASE_URL"


def database_url(override: str | None = None) -> str:
    """The database URL: `override`, else ``$OBEYA_DATABASE_URL``, else `obeya.yaml`'s ``database_url``,
    else ``duckdb:///./obeya.duckdb``."""
    return (
        override
        or os.environ.get(DATABASE_URL_VARIABLE)
        or load_config().database_url
        or DEFAULT_DATABASE_URL
    )


def open_store(override: str | None = None, *, migrate: bool = True) -> Store:
    """Open the configured store, bringing its schema to the latest version when `migrate` is set."""
    store = connect(database_url(override))
    if migrate:
        store.migrate()
    else:
        store.require_current_schema()
    return store
