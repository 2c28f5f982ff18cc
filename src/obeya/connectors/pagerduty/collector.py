"""The PagerDuty collector: incidents, their log entries and the accounts they name, as raw events.

Resources of a connection, in order: ``settings`` (the connection's incident rules, see
`obeya.connectors.incidents`) and ``incidents``.

``GET /incidents`` is asked for ``sort_by=created_at:asc`` (filtered by ``service_ids[]`` / ``team_ids[]``
when the connection names some), paged with ``offset``/``limit`` while the body says ``more``. The first
sync asks for ``date_range=all``; later ones for ``since`` = the resource's mark and ``until`` = now, in
windows of at most 179 days (PagerDuty refuses longer ranges). ``since`` filters on the incident's
creation, so an incident created earlier and resolved since would not be listed again: the mark is held
back to the oldest incident still unresolved, which is fetched again until it is resolved. Without one,
the mark is where the walk ended (minus 5 minutes for PagerDuty's indexing lag).

For each incident, ``GET /incidents/{id}/log_entries?is_overview=false`` (paged the same way) gives when it
was acknowledged and resolved.

Raw event keys: ``incident:ID``, ``log_entry:ID``, ``user:ID`` (the user references incidents and log
entries embed), ``settings:CONNECTION``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from obeya.connectors.base import ConnectionCollector
from obeya.connectors.http import HttpClient, RetryPolicy, TokenAuth
from obeya.connectors.incidents import (
    SETTINGS,
    Batch,
    TimeCursor,
    iso,
    settings_event,
    unique,
)
from obeya.connectors.pagerduty.config import PagerDutyConnectionConfig
from obeya.connectors.raw import raw_event
from obeya.connectors.times import parse_time
from obeya.model.records import RawEvent

SOURCE = "pagerduty"
WINDOW = timedelta(days=179)
INDEXING_LAG = timedelta(minutes=5)
HINT = (
    "check it is a PagerDuty REST API key (a read-only key is enough) or a user API token whose user can "
    "see the services' incidents, and that it has not been revoked"
)
Item = dict[str, Any]


@dataclass(frozen=True)
class MorePaging:
    """``offset``/``limit`` paging while the body's ``more`` is true (PagerDuty's classic pagination)."""

    offset_param: str = "offset"
    size_param: str = "limit"
    size: int = 100
    more_key: str = "more"

    def first(self, url: httpx.URL) -> httpx.URL:
        """The URL of offset 0 with the page size set."""
        return url.copy_set_param(self.offset_param, 0).copy_set_param(self.size_param, self.size)

    def next(self, url: httpx.URL, response: httpx.Response, body: Any, items: list[Any]) -> httpx.URL | None:
        """The offset after this page's items while the body says there are more."""
        if not items or not (isinstance(body, dict) and body.get(self.more_key) is True):
            return None
        offset = int(url.params.get(self.offset_param, 0)) + len(items)
        return url.copy_set_param(self.offset_param, offset)


def pagerduty_client(
    connection: PagerDutyConnectionConfig, *, environ: Mapping[str, str] | None = None, **options: Any
) -> HttpClient:
    """The client of a connection: ``Authorization: Token token=...`` and the v2 media type."""
    key = TokenAuth.from_environment("PagerDuty", connection.token_env, environ=environ)
    auth = TokenAuth(
        tool="PagerDuty", variable=connection.token_env, token=f"token={key.token}", scheme="Token", hint=HINT
    )
    options.setdefault("retry", RetryPolicy())
    headers = {"Accept": "application/vnd.pagerduty+json;version=2"}
    return HttpClient(connection.base_url, tool="PagerDuty", auth=auth, headers=headers, **options)


class PagerDutyCollector(ConnectionCollector[PagerDutyConnectionConfig]):
    """Fetches one PagerDuty connection's incidents as raw events, page by page."""

    @staticmethod
    def resource_names(connection: PagerDutyConnectionConfig) -> list[str]:
        """The resources a sync walks, in order."""
        return [SETTINGS, "incidents"]

    def collect_resource(self, resource: str, cursor: str | None, full: bool) -> Iterator[Batch]:
        """The pages of `resource` from the stored cursor (from the start when `full`)."""
        if resource == SETTINGS:
            c = self.connection
            event = settings_event(SOURCE, c.name, c.not_change_caused, c.severity, self._clock())
            yield Batch([event], TimeCursor(), complete=True)
        elif resource == "incidents":
            yield from self._incidents(TimeCursor() if full else TimeCursor.parse(cursor))
        else:
            raise ValueError(f"PagerDuty has no resource {resource!r}")

    def _windows(self, mark: str | None, now: datetime) -> list[tuple[datetime, datetime] | None]:
        if mark is None:
            return [None]
        start = parse_time(mark) or now
        windows: list[tuple[datetime, datetime] | None] = []
        while True:
            end = min(start + WINDOW, now)
            windows.append((start, max(end, start)))
            if end >= now:
                return windows
            start = end

    def _incidents(self, cursor: TimeCursor) -> Iterator[Batch]:
        now = self._clock()
        filters = [("sort_by", "created_at:asc"), ("total", "false")]
        filters += [("service_ids[]", s) for s in self.connection.services]
        filters += [("team_ids[]", t) for t in self.connection.teams]
        windows = self._windows(cursor.mark, now)
        oldest_open: datetime | None = None
        newest: datetime | None = None
        mark = cursor.mark
        for number, window in enumerate(windows):
            span = (
                [("date_range", "all")]
                if window is None
                else [("since", iso(window[0])), ("until", iso(window[1]))]
            )
            url = self.client.url("incidents").copy_merge_params([*filters, *span])
            for page in self.client.pages(url, MorePaging(size=self._page_size), "incidents"):
                events: list[RawEvent] = []
                for item in page.items:
                    events.extend(self._incident(item))
                    created = parse_time(item.get("created_at"))
                    if created is None:
                        continue
                    newest = created if newest is None else max(newest, created)
                    if item.get("status") != "resolved":
                        oldest_open = created if oldest_open is None else min(oldest_open, created)
                done = page.next_url is None
                if oldest_open is not None:
                    mark = iso(oldest_open)
                elif done:
                    mark = iso((window[1] if window else now) - INDEXING_LAG)
                elif newest is not None:
                    mark = iso(newest)
                complete = done and number == len(windows) - 1
                yield Batch(unique(events), TimeCursor(mark), complete, fetched=len(page.items))

    def _incident(self, item: Item) -> list[RawEvent]:
        incident_id = str(item["id"])
        events = [self._event("incident", incident_id, item)]
        references = [a.get("assignee") for a in item.get("assignments") or []]
        references += [a.get("acknowledger") for a in item.get("acknowledgements") or []]
        references.append(item.get("last_status_change_by"))
        if self.connection.log_entries:
            url = self.client.url(f"incidents/{incident_id}/log_entries").copy_merge_params(
                [("is_overview", "false")]
            )
            for page in self.client.pages(url, MorePaging(size=100), "log_entries"):
                for entry in page.items:
                    events.append(self._event("log_entry", str(entry["id"]), entry))
                    references.append(entry.get("agent"))
        events.extend(self._user(reference) for reference in references if _is_user(reference))
        return events

    def _user(self, reference: Item) -> RawEvent:
        return self._event("user", str(reference["id"]), reference)

    def _event(self, event_type: str, key: str, item: Any) -> RawEvent:
        return raw_event(
            SOURCE, event_type, key, item, connection=self.connection.name, received_at=self._clock()
        )


def _is_user(reference: Any) -> bool:
    return (
        isinstance(reference, dict)
        and bool(reference.get("id"))
        and str(reference.get("type", "")).startswith("user")
    )
