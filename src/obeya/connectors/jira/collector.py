"""The Jira collector: fetches issues with their changelogs, sprints and the catalogs as raw events.

Resources of a connection, in order: ``statuses``, ``issue_types`` and ``fields`` (small catalogs, read
again on every sync: the normalizer needs a status's category and which custom field holds sprints or
story points), then per board ``boards/ID/sprints`` and ``boards/ID/issues`` (the Agile API, filtered by
the board's own filter), then ``issues`` when the connection names `projects` or a `jql`.

Issues are asked for ordered by ``updated`` ascending with ``updated >= "yyyy/MM/dd HH:mm"`` from the
resource's high-water mark, which advances with every stored page: an interrupted sync resumes where it
stopped, and an incremental one asks only for what changed. JQL reads that time in the token owner's
time zone, which is the zone Jira writes `updated` in, so the mark is written in the offset it came with
(one minute earlier: JQL has minute precision).

Raw event keys: ``issue:ID``, ``changelog:ISSUE_ID/HISTORY_ID`` (only when the issue's embedded
changelog was cut short and the rest was fetched), ``sprint:ID``, ``user:ACCOUNT``, ``status:ID``,
``issue_type:ID``, ``field:ID``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from obeya.connectors.base import ConnectionCollector
from obeya.connectors.config import JiraConnectionConfig
from obeya.connectors.errors import ConnectorError
from obeya.connectors.http import HttpClient, OffsetPaging, Paging, RetryPolicy, TokenAuth, TokenPaging
from obeya.connectors.raw import raw_event
from obeya.connectors.times import required_time
from obeya.model.records import RawEvent

SOURCE = "jira"
CATALOGS = {
    "statuses": ("rest/api/2/status", "status"),
    "issue_types": ("rest/api/2/issuetype", "issue_type"),
    "fields": ("rest/api/2/field", "field"),
}
"""Catalog resource → its path and raw event type."""

CLOUD_HINT = (
    "check it is an API token of the account whose e-mail is in ${email_env}, that the account can browse "
    "the boards' projects, and that the token has not expired"
)
DATACENTER_HINT = (
    "check it is a personal access token of a user who can browse the boards' projects, and that it has "
    "not expired"
)
_USER_FIELDS = ("assignee", "reporter", "creator")

Item = dict[str, Any]


def jira_client(
    connection: JiraConnectionConfig, *, environ: Mapping[str, str] | None = None, **options: Any
) -> HttpClient:
    """The HTTP client for a connection: Cloud signs in with e-mail and API token (basic auth), Data
    Center with a personal access token (bearer)."""
    if connection.deployment == "cloud":
        auth = TokenAuth.basic_from_environment(
            "Jira",
            connection.email_env,
            connection.token_env,
            user_is="Jira Cloud needs the e-mail of the token's account",
            user_key="email_env",
            connection=connection.name,
            hint=CLOUD_HINT.replace("{email_env}", connection.email_env),
            environ=environ,
        )
    else:
        auth = TokenAuth.from_environment(
            "Jira", connection.token_env, hint=DATACENTER_HINT, scheme="Bearer", environ=environ
        )
    options.setdefault("retry", RetryPolicy())
    return HttpClient(connection.base_url, tool="Jira", auth=auth, **options)


def updated_clause(high_water: str) -> str:
    """The JQL asking for issues updated since `high_water`, in the offset Jira wrote it in."""
    since = required_time(high_water) - timedelta(minutes=1)
    return f'updated >= "{since:%Y/%m/%d %H:%M}"'


@dataclass(frozen=True)
class JiraCursor:
    """The newest `updated` of the issues stored so far (None for catalogs and sprints: read whole)."""

    high_water: str | None = None

    @classmethod
    def parse(cls, text: str | None) -> JiraCursor:
        """The cursor stored as JSON text (an empty cursor for None)."""
        return cls(json.loads(text).get("high_water")) if text else cls()

    def dumps(self) -> str:
        """The cursor as JSON text for `SyncCursor.cursor`."""
        return json.dumps({"high_water": self.high_water}, sort_keys=True)


@dataclass
class JiraBatch:
    """One page of a resource, ready to store in one transaction with its cursor."""

    resource: str
    events: list[RawEvent]
    cursor: JiraCursor
    complete: bool
    fetched: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


class JiraCollector(ConnectionCollector[JiraConnectionConfig]):
    """Fetches one Jira connection's resources as raw events, page by page."""

    @staticmethod
    def resource_names(connection: JiraConnectionConfig) -> list[str]:
        """The resources a sync of `connection` walks, in order."""
        names = list(CATALOGS)
        for board in connection.boards:
            names += [f"boards/{board}/sprints", f"boards/{board}/issues"]
        if connection.projects or connection.jql:
            names.append("issues")
        return names

    def collect_resource(self, resource: str, cursor: str | None, full: bool) -> Iterator[JiraBatch]:
        """The pages of `resource` from the stored cursor (from the start when `full`)."""
        state = JiraCursor() if full else JiraCursor.parse(cursor)
        if resource in CATALOGS:
            yield self._catalog(resource)
        elif resource.endswith("/sprints"):
            yield from self._sprints(resource, int(resource.split("/")[1]))
        elif resource.endswith("issues"):
            yield from self._issues(resource, state)
        else:
            raise ValueError(f"Jira has no resource {resource!r}")

    # --- resources ---------------------------------------------------------------------------------------

    def _catalog(self, resource: str) -> JiraBatch:
        path, event_type = CATALOGS[resource]
        items = self.client.get_json(path)
        if not isinstance(items, list):
            items = []
        events = [self._event(event_type, str(item["id"]), item) for item in items if "id" in item]
        return JiraBatch(resource, events, JiraCursor(), complete=True, fetched=len(items))

    def _sprints(self, resource: str, board: int) -> Iterator[JiraBatch]:
        url = self.client.url(f"rest/agile/1.0/board/{board}/sprint")
        pages = self.client.pages(url, OffsetPaging(size=min(self._page_size, 50)), "values")
        try:
            for page in pages:
                events = [self._event("sprint", str(item["id"]), item) for item in page.items]
                yield JiraBatch(resource, events, JiraCursor(), page.next_url is None, len(page.items))
        except ConnectorError as error:
            if error.status != 400:
                raise
            # A Kanban board answers 400 "The board does not support sprints".
            skipped = Counter({f"board {board} has no sprints (a Kanban board)": 1})
            yield JiraBatch(resource, [], JiraCursor(), complete=True, skipped=skipped)

    def _issues(self, resource: str, cursor: JiraCursor) -> Iterator[JiraBatch]:
        paging: Paging
        if resource.startswith("boards/"):
            board = resource.split("/")[1]
            scope, path = None, f"rest/agile/1.0/board/{board}/issue"
            paging = OffsetPaging(size=self._page_size)
        else:
            projects = ", ".join(f'"{p}"' for p in self.connection.projects)
            scope = self.connection.jql or f"project in ({projects})"
            if self.connection.deployment == "cloud":
                path, paging = "rest/api/3/search/jql", TokenPaging(size=self._page_size)
            else:
                path, paging = "rest/api/2/search", OffsetPaging(size=self._page_size)
        clauses = [f"({scope})"] if scope else []
        if cursor.high_water:
            clauses.append(updated_clause(cursor.high_water))
        jql = " AND ".join(clauses) + " ORDER BY updated ASC"
        url = self.client.url(path, {"jql": jql.strip(), "expand": "changelog", "fields": "*all"})
        state = cursor
        for page in self.client.pages(url, paging, "issues"):
            events: list[RawEvent] = []
            for item in page.items:
                events.extend(self._issue(item))
                updated = (item.get("fields") or {}).get("updated")
                if updated and (
                    state.high_water is None or required_time(updated) > required_time(state.high_water)
                ):
                    state = JiraCursor(updated)
            yield JiraBatch(resource, _unique(events), state, page.next_url is None, len(page.items))

    # --- one issue ---------------------------------------------------------------------------------------

    def _issue(self, item: Item) -> list[RawEvent]:
        issue_id = str(item["id"])
        events = [self._event("issue", issue_id, item)]
        fields = item.get("fields") or {}
        for name in _USER_FIELDS:
            events.extend(self._user(fields.get(name)))
        changelog = item.get("changelog") or {}
        histories: list[Item] = list(changelog.get("histories") or [])
        total = changelog.get("total")
        if isinstance(total, int) and total > len(histories):
            histories = self._full_changelog(item)
            events.extend(self._event("changelog", f"{issue_id}/{h['id']}", h) for h in histories)
        for history in histories:
            events.extend(self._user(history.get("author")))
        return events

    def _full_changelog(self, item: Item) -> list[Item]:
        """Every history of an issue whose embedded changelog was cut short (Jira embeds up to 100)."""
        if self.connection.deployment == "datacenter":
            body = self.client.get_json(
                self.client.url(
                    f"rest/api/2/issue/{item['id']}", {"expand": "changelog", "fields": "summary"}
                )
            )
            return list(((body or {}).get("changelog") or {}).get("histories") or [])
        histories: list[Item] = []
        url = self.client.url(f"rest/api/3/issue/{item['id']}/changelog")
        for page in self.client.pages(url, OffsetPaging(size=100), "values"):
            histories.extend(page.items)
        return histories

    def _user(self, user: Any) -> list[RawEvent]:
        key = user_key(user)
        return [self._event("user", key, user)] if key else []

    def _event(self, event_type: str, key: str, item: Any) -> RawEvent:
        return raw_event(
            SOURCE, event_type, key, item, connection=self.connection.name, received_at=self._clock()
        )


def user_key(user: Any) -> str | None:
    """A Jira account's id: ``accountId`` on Cloud, ``key`` (else ``name``) on Data Center."""
    if not isinstance(user, dict):
        return None
    key = user.get("accountId") or user.get("key") or user.get("name")
    return str(key) if key else None


def _unique(events: list[RawEvent]) -> list[RawEvent]:
    """One raw event per id (the last seen wins), in first-seen order."""
    by_id: dict[str, RawEvent] = {}
    for event in events:
        by_id[event.id] = event
    return list(by_id.values())
