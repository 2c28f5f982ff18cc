"""What every tool's connector provides, so `obeya.connectors.sync` can sync and replay any of them.

A connector is three parts (docs/connectors.md, "Adding a tool"):

- its *resources* for a connection: the lists a sync walks, in order, each with its own cursor;
- a *collector* that fetches one resource page by page, each page a `CollectedPage` of raw events, the
  cursor to store with them and whether the walk is over;
- a *normalizer*: pure functions from raw events (plus stored reference events such as Jira's statuses)
  to records, reporting what it skipped and why. Replay runs it on the stored raw events, in the groups
  the connector names (events normalized together, such as an issue and its changelog).

A connector also says which resources may be synced side by side (`Connector.resource_phases`): phases
run one after another, the groups of a phase side by side, the resources of a group in order.
`ToolConnector` is what every tool's connector is made of: it checks the connection's type and wires the
tool's client factory, collector, cursor and normalizer into the interface.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

from obeya.connectors.http import HttpClient
from obeya.model.records import RawEvent, Record
from obeya.normalize.rules import MappingRules

Clock = Callable[[], datetime]
Phases = list[list[list[str]]]
"""Resources as phases (one after another) of groups (side by side) of resources (in order)."""
Placement = tuple[int, str]
"""Where a resource syncs: its phase and the group it walks in (resources of one group go in order)."""


@dataclass
class Normalized:
    """The records derived from some raw events, and the raw events that gave none, with why."""

    records: list[Record] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (raw event id, reason)
    normalized_events: int = 0


class Cursor(Protocol):
    """Where a resource's walk stands; stored as text in `SyncCursor.cursor`."""

    def dumps(self) -> str:
        """The cursor as text."""
        ...


class CollectedPage(Protocol):
    """One page of a resource, stored in one transaction with its cursor."""

    @property
    def events(self) -> list[RawEvent]:
        """The raw events of the page's items (and of their children)."""
        ...

    @property
    def cursor(self) -> Cursor:
        """The cursor once this page is stored."""
        ...

    @property
    def complete(self) -> bool:
        """Whether the walk is over with this page."""
        ...

    @property
    def fetched(self) -> int:
        """How many items the page held."""
        ...

    @property
    def skipped(self) -> Counter[str]:
        """Items the collector left out, by reason."""
        ...


class Collector(Protocol):
    """Fetches one connection's resources as raw events, page by page."""

    def collect_resource(self, resource: str, cursor: str | None, full: bool) -> Iterator[CollectedPage]:
        """The pages of `resource` from the stored `cursor` text (from the start when `full`)."""
        ...


class Connector(Protocol):
    """One tool: how to reach it, what to collect, and how its raw events become records."""

    @property
    def tool(self) -> str:
        """The `tool:` of its connections in obeya.yaml."""
        ...

    @property
    def source(self) -> str:
        """The `source` of its raw events and records."""
        ...

    @property
    def context_event_types(self) -> Sequence[str]:
        """Raw event types the normalizer reads as reference data with every batch (e.g. statuses)."""
        ...

    @property
    def replay_groups(self) -> Sequence[Sequence[str]]:
        """Raw event types replay normalizes together, group by group, in order."""
        ...

    def resources(self, connection: Any) -> list[str]:
        """The resources a sync of `connection` walks, in order."""
        ...

    def resource_phases(self, connection: Any) -> Phases:
        """`resources` as phases run one after another, each of groups that may run side by side."""
        ...

    def client(self, connection: Any) -> HttpClient:
        """The HTTP client for `connection` (credentials from the environment variables it names)."""
        ...

    def collector(self, client: HttpClient, connection: Any, clock: Clock) -> Collector:
        """The collector of `connection` using `client`."""
        ...

    def parse_cursor(self, text: str | None) -> Cursor:
        """A stored cursor (an empty one for None)."""
        ...

    def normalize(
        self, events: Sequence[RawEvent], rules: MappingRules, context: Sequence[RawEvent] = ()
    ) -> Normalized:
        """The records of `events`; `context` holds the stored events of `context_event_types`."""
        ...


ConfigT = TypeVar("ConfigT")
CursorT = TypeVar("CursorT")
Normalizer = Callable[[Sequence[RawEvent], MappingRules, Sequence[RawEvent]], Normalized]


def one_after_another(resource: str) -> Placement:
    """Every resource in one group: for a tool whose resources read what earlier ones stored."""
    return (0, "")


def by_scope(resource: str) -> Placement:
    """``SCOPE/kind`` resources grouped by scope (a repository, a project): scopes side by side."""
    return (0, resource.rsplit("/", 1)[0])


def first_alone(first: str) -> Callable[[str], Placement]:
    """`first` on its own (later resources read what it stores), then every other resource side by
    side."""

    def placement(resource: str) -> Placement:
        return (0, resource) if resource == first else (1, resource)

    return placement


def phases_of(resources: Sequence[str], placement: Callable[[str], Placement]) -> Phases:
    """`resources` grouped by their `placement`, phases in ascending order, groups and resources in the
    order they first come."""
    phases: dict[int, dict[str, list[str]]] = {}
    for resource in resources:
        phase, group = placement(resource)
        phases.setdefault(phase, {}).setdefault(group, []).append(resource)
    return [list(phases[phase].values()) for phase in sorted(phases)]


class ConnectionCollector(Generic[ConfigT]):
    """What a tool's collector is made with: the HTTP client, the connection, the clock that dates its raw
    events and the page size it asks for."""

    def __init__(
        self,
        client: HttpClient,
        connection: ConfigT,
        clock: Clock = lambda: datetime.now(UTC),
        page_size: int = 100,
    ) -> None:
        self.client = client
        self.connection = connection
        self._clock = clock
        self._page_size = page_size


class ScopeCollector(Generic[CursorT]):
    """A collector of ``SCOPE/kind`` resources (``owner/name/pull_requests``) through the tool's
    ``collect(scope, kind, cursor, full)``."""

    def __init__(
        self,
        collect: Callable[[str, str, CursorT, bool], Iterator[CollectedPage]],
        parse: Callable[[str | None], CursorT],
    ) -> None:
        self._collect = collect
        self._parse = parse

    def collect_resource(self, resource: str, cursor: str | None, full: bool) -> Iterator[CollectedPage]:
        """The pages of one scope's kind, from the stored `cursor` text."""
        scope, kind = resource.rsplit("/", 1)
        yield from self._collect(scope, kind, self._parse(cursor), full)


class ToolConnector(Generic[ConfigT]):
    """A `Connector` made of a tool's parts; each tool's connector is one, named after the tool.

    `label` names the tool in errors; `config_type` is the class of its connections (another is a
    `TypeError`); `resource_names`, `make_client` and `make_collector` take that config; `placement` says
    which resources sync side by side (default: all one after another).
    """

    def __init__(
        self,
        *,
        tool: str,
        label: str,
        source: str,
        config_type: type[ConfigT],
        resource_names: Callable[[ConfigT], list[str]],
        make_client: Callable[[ConfigT], HttpClient],
        make_collector: Callable[[HttpClient, ConfigT, Clock], Collector],
        parse_cursor: Callable[[str | None], Cursor],
        normalizer: Normalizer,
        replay_groups: Sequence[Sequence[str]],
        context_event_types: Sequence[str] = (),
        placement: Callable[[str], Placement] = one_after_another,
    ) -> None:
        self.tool = tool
        self.label = label
        self.source = source
        self.config_type = config_type
        self.context_event_types = context_event_types
        self.replay_groups = replay_groups
        self._resource_names = resource_names
        self._make_client = make_client
        self._make_collector = make_collector
        self._parse_cursor = parse_cursor
        self._normalizer = normalizer
        self._placement = placement

    def config(self, connection: Any) -> ConfigT:
        """`connection` as this tool's config; another tool's is a `TypeError`."""
        if not isinstance(connection, self.config_type):
            raise TypeError(f"the {self.label} connector was given a {type(connection).__name__}")
        return connection

    def resources(self, connection: Any) -> list[str]:
        """The resources a sync of `connection` walks, in order."""
        return self._resource_names(self.config(connection))

    def resource_phases(self, connection: Any) -> Phases:
        """`resources` in phases and groups by the tool's `placement`."""
        return phases_of(self.resources(connection), self._placement)

    def client(self, connection: Any) -> HttpClient:
        """The HTTP client for `connection` (credentials from the environment variables it names)."""
        return self._make_client(self.config(connection))

    def collector(self, client: HttpClient, connection: Any, clock: Clock) -> Collector:
        """The collector of `connection` using `client`."""
        return self._make_collector(client, self.config(connection), clock)

    def parse_cursor(self, text: str | None) -> Cursor:
        """A stored cursor (an empty one for None)."""
        return self._parse_cursor(text)

    def normalize(
        self, events: Sequence[RawEvent], rules: MappingRules, context: Sequence[RawEvent] = ()
    ) -> Normalized:
        """The records of `events`; `context` holds the stored events of `context_event_types`."""
        return self._normalizer(events, rules, context)
