"""What every tool's connector provides, so `obeya.connectors.sync` can sync and replay any of them.

A connector is three parts (docs/connectors.md, "Adding a tool"):

- its *resources* for a connection: the lists a sync walks, in order, each with its own cursor;
- a *collector* that fetches one resource page by page, each page a `CollectedPage` of raw events, the
  cursor to store with them and whether the walk is over;
- a *normalizer*: pure functions from raw events (plus stored reference events such as Jira's statuses)
  to records, reporting what it skipped and why. Replay runs it on the stored raw events, in the groups
  the connector names (events normalized together, such as an issue and its changelog).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from obeya.connectors.http import HttpClient
from obeya.model.records import RawEvent, Record
from obeya.normalize.rules import MappingRules

Clock = Callable[[], datetime]


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
