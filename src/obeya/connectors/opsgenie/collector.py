"""The Opsgenie collector: incidents, and the services, teams and users that name them, as raw events.

Resources of a connection, in order: ``settings`` (the connection's incident rules), ``services``
(``GET /v1/services``), ``teams`` (``GET /v2/teams``), ``users`` (``GET /v2/users``) — small catalogs read
whole on every sync — then ``incidents`` (all of them) or ``services/ID/incidents`` per configured service
(``query=impactedServices:ID``).

Lists are paged with ``offset``/``limit`` and followed by the body's ``paging.next`` link. Incidents are
asked for ``sort=createdAt&order=desc`` and the walk stops at the first incident created before the
resource's mark. The mark is the newest creation time seen, held back to the oldest incident still
``open`` (so it is fetched again until it is resolved); while a walk is under way the cursor also holds
the next page's link, so an interrupted walk resumes there. Incidents none of whose responder teams (or
owner team) is among the connection's `teams` are left out (reported).

Each incident's timeline (``GET /v2/incident-timelines/ID/entries``, followed by ``data.nextOffset``) is
fetched with it and kept whole as one ``incident_timeline:ID`` event: it is where Opsgenie records the
acknowledgement (an incident has no acknowledged state of its own; its responders acknowledge the
incident's alert). An instance or plan without the timeline API (404, 403) gives none.

Raw event keys: ``incident:ID``, ``incident_timeline:ID``, ``service:ID``, ``team:ID``, ``user:ID``,
``settings:CONNECTION``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from obeya.connectors.base import ConnectionCollector
from obeya.connectors.errors import NotFoundError, PermissionDeniedError
from obeya.connectors.http import HttpClient, RetryPolicy, TokenAuth
from obeya.connectors.incidents import SETTINGS, Batch, TimeCursor, settings_event
from obeya.connectors.opsgenie.config import OpsgenieConnectionConfig
from obeya.connectors.raw import raw_event
from obeya.connectors.times import parse_time
from obeya.model.records import RawEvent

SOURCE = "opsgenie"
CATALOGS = {
    "services": ("v1/services", "service"),
    "teams": ("v2/teams", "team"),
    "users": ("v2/users", "user"),
}
"""Catalog resource → its path and raw event type."""
HINT = (
    "check it is the API key of an API integration (Settings → Integrations → API) with read access, that "
    "the integration is enabled, and that base_url is the instance of the key (EU: api.eu.opsgenie.com)"
)
Item = dict[str, Any]


@dataclass(frozen=True)
class NextLinkPaging:
    """``offset``/``limit`` on the first page, then the body's ``paging.next`` link (Opsgenie)."""

    size: int = 100

    def first(self, url: httpx.URL) -> httpx.URL:
        """The URL of offset 0 with the page size set."""
        return url.copy_set_param("offset", 0).copy_set_param("limit", self.size)

    def next(self, url: httpx.URL, response: httpx.Response, body: Any, items: list[Any]) -> httpx.URL | None:
        """The body's ``paging.next``, resolved against the page's URL; None on the last page."""
        paging = body.get("paging") if isinstance(body, dict) else None
        link = paging.get("next") if isinstance(paging, dict) else None
        return url.join(link) if items and isinstance(link, str) and link else None


def opsgenie_client(
    connection: OpsgenieConnectionConfig, *, environ: Mapping[str, str] | None = None, **options: Any
) -> HttpClient:
    """The client of a connection: ``Authorization: GenieKey ...``."""
    auth = TokenAuth.from_environment(
        "Opsgenie", connection.token_env, hint=HINT, scheme="GenieKey", environ=environ
    )
    options.setdefault("retry", RetryPolicy())
    return HttpClient(connection.base_url, tool="Opsgenie", auth=auth, **options)


class OpsgenieCollector(ConnectionCollector[OpsgenieConnectionConfig]):
    """Fetches one Opsgenie connection's resources as raw events, page by page."""

    @staticmethod
    def resource_names(connection: OpsgenieConnectionConfig) -> list[str]:
        """The resources a sync walks, in order."""
        incidents = [f"services/{s}/incidents" for s in connection.services] or ["incidents"]
        return [SETTINGS, *CATALOGS, *incidents]

    def collect_resource(self, resource: str, cursor: str | None, full: bool) -> Iterator[Batch]:
        """The pages of `resource` from the stored cursor (from the start when `full`)."""
        if resource == SETTINGS:
            c = self.connection
            yield Batch(
                [settings_event(SOURCE, c.name, c.not_change_caused, c.severity, self._clock())],
                TimeCursor(),
                True,
            )
        elif resource in CATALOGS:
            yield from self._catalog(resource)
        elif resource == "incidents" or (
            resource.startswith("services/") and resource.endswith("/incidents")
        ):
            service = resource.split("/")[1] if resource.startswith("services/") else None
            yield from self._incidents(service, TimeCursor() if full else TimeCursor.parse(cursor))
        else:
            raise ValueError(f"Opsgenie has no resource {resource!r}")

    def _catalog(self, resource: str) -> Iterator[Batch]:
        path, event_type = CATALOGS[resource]
        for page in self.client.pages(path, NextLinkPaging(self._page_size), "data"):
            events = [self._event(event_type, str(item["id"]), item) for item in page.items if "id" in item]
            yield Batch(events, TimeCursor(), page.next_url is None, fetched=len(page.items))

    def _incidents(self, service: str | None, cursor: TimeCursor) -> Iterator[Batch]:
        paging = NextLinkPaging(self._page_size)
        walk = dict(cursor.walk or {})
        if walk.get("next"):
            start = httpx.URL(str(walk["next"]))
        else:
            params = {
                "sort": "createdAt",
                "order": "desc",
                "query": f"impactedServices:{service}" if service else None,
            }
            start = paging.first(self.client.url("v1/incidents", params))
        mark = parse_time(cursor.mark)
        newest, oldest_open = parse_time(walk.get("newest")), parse_time(walk.get("oldest_open"))
        teams = set(self.connection.teams)
        for page in self.client.pages_from(start, paging, "data"):
            events: list[RawEvent] = []
            skipped: Counter[str] = Counter()
            reached_mark = False
            for item in page.items:
                created = parse_time(item.get("createdAt"))
                if created is None:
                    skipped["incident without createdAt"] += 1
                    continue
                if mark is not None and created < mark:
                    reached_mark = True
                    break
                if teams and not teams & _teams_of(item):
                    skipped["incident of none of the connection's teams"] += 1
                    continue
                events.append(self._event("incident", str(item["id"]), item))
                events.extend(self._timeline(str(item["id"])))
                newest = created if newest is None else max(newest, created)
                if item.get("status") == "open":
                    oldest_open = created if oldest_open is None else min(oldest_open, created)
            if reached_mark or page.next_url is None:
                held = oldest_open or newest
                done = TimeCursor(iso_ms(held) if held else cursor.mark)
                yield Batch(events, done, True, fetched=_count(events), skipped=skipped)
                return
            walking = {
                "next": page.next_url,
                "newest": iso_ms(newest) if newest else None,
                "oldest_open": iso_ms(oldest_open) if oldest_open else None,
            }
            yield Batch(
                events, TimeCursor(cursor.mark, walking), False, fetched=_count(events), skipped=skipped
            )

    def _timeline(self, incident_id: str) -> list[RawEvent]:
        """The incident's timeline entries as one ``incident_timeline`` event (none without the API)."""
        entries: list[Any] = []
        offset: str | None = None
        while True:
            url = self.client.url(
                f"v2/incident-timelines/{incident_id}/entries", {"limit": self._page_size, "offset": offset}
            )
            try:
                body = self.client.get_json(url)
            except (NotFoundError, PermissionDeniedError):
                return []
            data = body.get("data") if isinstance(body, dict) else None
            page = data.get("entries") if isinstance(data, dict) else None
            if not isinstance(page, list):
                return []
            entries.extend(page)
            following = data.get("nextOffset") if isinstance(data, dict) else None
            if not page or not following or str(following) == offset:
                break
            offset = str(following)
        return [self._event("incident_timeline", incident_id, entries)]

    def _event(self, event_type: str, key: str, item: Any) -> RawEvent:
        return raw_event(
            SOURCE, event_type, key, item, connection=self.connection.name, received_at=self._clock()
        )


def iso_ms(moment: datetime) -> str:
    """A UTC time with milliseconds (Opsgenie's precision): ``2023-09-06T14:30:56.346Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _count(events: list[RawEvent]) -> int:
    return sum(1 for e in events if e.event_type == "incident")


def _teams_of(item: Item) -> set[str]:
    teams = {str(r.get("id")) for r in item.get("responders") or [] if r.get("type") == "team"}
    if item.get("ownerTeam"):
        teams.add(str(item["ownerTeam"]))
    return teams
