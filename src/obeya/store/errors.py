"""Errors the store raises, each with a message a user can act on."""


class StoreError(Exception):
    """Base of every store error."""


class UnsupportedDatabaseURL(StoreError):
    """The database URL names an engine Obeya does not support."""


class SchemaVersionError(StoreError):
    """The store's schema is missing, older than this Obeya needs, or newer than it knows."""
