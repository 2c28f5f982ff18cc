"""Turn the names a user types (value stream, team, service) into a `Slice`, or say what is known.

Shared by the CLI and the API, so that ``--stream Payments`` and ``?stream=Payments`` mean the same.
Each error names the filter and lists the values it accepts.
"""

from __future__ import annotations

from obeya.engine.portfolio import UnknownValueStream, resolve_value_stream
from obeya.engine.window import Slice
from obeya.model.vocabulary import FlowItemType
from obeya.store import Store

_LISTED = 50  # known values listed in an error message, at most


class UnknownSliceValue(LookupError):
    """A filter names something the store does not hold; `parameter` is the filter ("team", ...)."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


def _known(values: list[str]) -> str:
    shown = ", ".join(repr(v) for v in values[:_LISTED])
    more = f" and {len(values) - _LISTED} more" if len(values) > _LISTED else ""
    return f"{shown}{more}" if values else "none yet"


def resolve_team(store: Store, team: str) -> str:
    """The id of the team with id `team`, or named `team` (case-insensitive)."""
    rows = store.query(
        "SELECT id FROM teams WHERE id = ? OR lower(name) = lower(?) ORDER BY id", [team, team]
    )
    if rows:
        return str(rows[0][0])
    names = [str(r[0]) for r in store.query("SELECT name FROM teams ORDER BY name")]
    raise UnknownSliceValue("team", f"no team named {team!r}; known teams: {_known(names)}")


def known_services(store: Store) -> list[str]:
    """Every service named by a deployment, an incident or a value stream's scope, sorted."""
    rows = store.query(
        """SELECT service FROM deployments
UNION SELECT service FROM incidents WHERE service IS NOT NULL
UNION SELECT object_key FROM scopes WHERE object_type = 'service'
ORDER BY 1"""
    )
    return [str(r[0]) for r in rows]


def resolve_service(store: Store, service: str) -> str:
    """`service` itself when a deployment, incident or scope names it."""
    if store.query(
        "SELECT 1 FROM deployments WHERE service = ? UNION ALL SELECT 1 FROM incidents WHERE service = ? "
        "UNION ALL SELECT 1 FROM scopes WHERE object_type = 'service' AND object_key = ? LIMIT 1",
        [service, service, service],
    ):
        return service
    raise UnknownSliceValue(
        "service", f"no service named {service!r}; known services: {_known(known_services(store))}"
    )


def resolve_slice(
    store: Store,
    stream: str | None = None,
    team: str | None = None,
    service: str | None = None,
    flow_item_type: FlowItemType | None = None,
) -> Slice:
    """The slice named by a value stream (name or id), a team (name or id), a service and an item type.

    Raises `UnknownSliceValue` (with `parameter` set to "stream", "team" or "service") when the store
    holds no such value stream, team or service.
    """
    try:
        stream_id = resolve_value_stream(store, stream) if stream else None
    except UnknownValueStream as error:
        raise UnknownSliceValue("stream", str(error)) from error
    team_id = resolve_team(store, team) if team else None
    service_name = resolve_service(store, service) if service else None
    return Slice(stream_id, team_id, service_name, flow_item_type)
