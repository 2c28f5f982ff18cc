"""What can go wrong while talking to a tool, as exceptions whose messages say what to do."""

from __future__ import annotations


class ConnectorError(Exception):
    """A connector could not get what it needed from a tool; the message names the URL and the cause."""

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


class MissingCredentialError(ConnectorError):
    """The environment variable a connection names for its token is not set."""


class AuthenticationError(ConnectorError):
    """The tool rejected the credentials (HTTP 401)."""


class PermissionDeniedError(ConnectorError):
    """The credentials are valid but may not read this resource (HTTP 403 that is not a rate limit)."""


class NotFoundError(ConnectorError):
    """The resource does not exist, or the credentials cannot see it (HTTP 404)."""


class MalformedResponseError(ConnectorError):
    """The tool answered with something that is not the JSON the connector expects."""


class RetriesExhaustedError(ConnectorError):
    """A transient failure (connection error, timeout, 5xx, rate limit) outlasted every retry."""
