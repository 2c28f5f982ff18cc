"""The ServiceNow collector: incidents and change requests through the Table API, as raw events.

Resources of a connection, in order: ``settings`` (the connection's incident rules and change-request
options), ``incidents`` (``GET /api/now/table/incident``) and, unless `change_requests` is false,
``change_requests`` (``GET /api/now/table/change_request``).

Records are asked for with ``sysparm_display_value=all`` (every field as ``{"value", "display_value"}``, so
a reference's name comes without another request) and ``sysparm_exclude_reference_link=true``, filtered by
the connection's `services` (``business_service.nameIN...``), `assignment_groups` and `query`, ordered by
``sys_updated_on`` then ``sys_id``. Pages are keyset pages: each asks for ``sys_updated_on>=`` the newest
``sys_updated_on`` seen so far, with ``sysparm_offset`` skipping the records already seen at exactly that
time, so a record updated while the walk runs moves to its end instead of shifting an unseen record out
of reach (plain offsets would). The cursor's mark is that newest ``sys_updated_on``; the next sync asks
from it. ``sys_updated_on`` values are UTC.

Raw event keys: ``incident:SYS_ID``, ``change_request:SYS_ID``, ``user:SYS_ID`` (the accounts referenced as
``assigned_to``, ``opened_by``, ``resolved_by``), ``settings:CONNECTION``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from obeya.connectors.base import ConnectionCollector
from obeya.connectors.errors import MalformedResponseError
from obeya.connectors.http import HttpClient, RetryPolicy, TokenAuth
from obeya.connectors.incidents import SETTINGS, Batch, TimeCursor, settings_event, unique
from obeya.connectors.raw import raw_event
from obeya.connectors.servicenow.config import ServiceNowConnectionConfig
from obeya.model.records import RawEvent

SOURCE = "servicenow"
TABLES = {"incidents": ("incident", "incident"), "change_requests": ("change_request", "change_request")}
"""Resource → its table and raw event type."""
USER_FIELDS = ("assigned_to", "opened_by", "resolved_by")
BASIC_HINT = (
    "check the user in ${username_env} and its password: the user needs the itil role (or read ACLs on "
    "incident, change_request and sys_user) and must not be locked out"
)
BEARER_HINT = (
    "check it is a valid OAuth access token (they expire: fetch a new one) of a user with the itil role"
)
Item = dict[str, Any]


def servicenow_client(
    connection: ServiceNowConnectionConfig, *, environ: Mapping[str, str] | None = None, **options: Any
) -> HttpClient:
    """The client of a connection: basic auth (user and password) or an OAuth bearer token."""
    if connection.auth == "basic":
        auth = TokenAuth.basic_from_environment(
            "ServiceNow",
            connection.username_env,
            connection.token_env,
            user_is="ServiceNow basic auth needs a user name",
            user_key="username_env",
            connection=connection.name,
            hint=BASIC_HINT.replace("{username_env}", connection.username_env),
            environ=environ,
        )
    else:
        auth = TokenAuth.from_environment(
            "ServiceNow", connection.token_env, hint=BEARER_HINT, scheme="Bearer", environ=environ
        )
    options.setdefault("retry", RetryPolicy())
    return HttpClient(connection.base_url, tool="ServiceNow", auth=auth, **options)


def value(item: Item, name: str) -> str | None:
    """A field's stored value (``sysparm_display_value=all`` gives ``{"value", "display_value"}``)."""
    field = item.get(name)
    if isinstance(field, dict):
        field = field.get("value")
    return str(field) if field not in (None, "") else None


def display(item: Item, name: str) -> str | None:
    """A field's display value (a reference's name, a choice's label), else its value."""
    field = item.get(name)
    if isinstance(field, dict):
        shown = field.get("display_value")
        return str(shown) if shown not in (None, "") else value(item, name)
    return value(item, name)


def _in(field: str, names: list[str]) -> str:
    return f"{field}IN{','.join(names)}"


class ServiceNowCollector(ConnectionCollector[ServiceNowConnectionConfig]):
    """Fetches one ServiceNow connection's tables as raw events, page by page."""

    @staticmethod
    def resource_names(connection: ServiceNowConnectionConfig) -> list[str]:
        """The resources a sync walks, in order."""
        return [SETTINGS, "incidents", *(["change_requests"] if connection.change_requests else [])]

    def collect_resource(self, resource: str, cursor: str | None, full: bool) -> Iterator[Batch]:
        """The pages of `resource` from the stored cursor (from the start when `full`)."""
        c = self.connection
        if resource == SETTINGS:
            options = {
                "base_url": c.base_url,
                "change_requests_as_deployments": c.change_requests_as_deployments,
                "change_environment": c.change_environment,
                "service_names": c.service_names,
            }
            event = settings_event(SOURCE, c.name, c.not_change_caused, c.severity, self._clock(), options)
            yield Batch([event], TimeCursor(), True)
        elif resource in TABLES:
            yield from self._table(resource, TimeCursor() if full else TimeCursor.parse(cursor))
        else:
            raise ValueError(f"ServiceNow has no resource {resource!r}")

    def _filters(self) -> list[str]:
        c = self.connection
        filters = [_in("business_service.name", c.services)] if c.services else []
        filters += [_in("assignment_group.name", c.assignment_groups)] if c.assignment_groups else []
        return filters + ([c.query] if c.query else [])

    def _table(self, resource: str, cursor: TimeCursor) -> Iterator[Batch]:
        table, event_type = TABLES[resource]
        mark = cursor.mark
        skip = int((cursor.walk or {}).get("skip", 0))
        while True:
            clauses = [*self._filters(), *([f"sys_updated_on>={mark}"] if mark else [])]
            query = "^".join([*clauses, "ORDERBYsys_updated_on", "ORDERBYsys_id"])
            url = self.client.url(
                f"api/now/table/{table}",
                {
                    "sysparm_query": query,
                    "sysparm_display_value": "all",
                    "sysparm_exclude_reference_link": "true",
                    "sysparm_offset": skip,
                    "sysparm_limit": self._page_size,
                },
            )
            response = self.client.get(url)
            try:
                body = response.json()
            except ValueError as error:
                raise MalformedResponseError(
                    f"ServiceNow answered GET {url} with a body that is not JSON (status "
                    f"{response.status_code}): {response.text[:80]!r}; nothing from this page was stored",
                    url=str(url),
                    status=response.status_code,
                ) from error
            total = response.headers.get("X-Total-Count", "")
            items = body.get("result") if isinstance(body, dict) else None
            if not isinstance(items, list):
                items = []
            events: list[RawEvent] = []
            for item in items:
                events.append(self._event(event_type, str(value(item, "sys_id")), item))
                for name in USER_FIELDS:
                    user = value(item, name)
                    if user:
                        events.append(self._event("user", user, item[name]))
            # The instance may cap a page below the limit asked (glide.json.return_limit): the total of
            # the query's matches says whether there is more; without it, a short page is the last.
            last = skip + len(items) >= int(total) if total.isdigit() else len(items) < self._page_size
            updated = [value(item, "sys_updated_on") for item in items]
            newest = max((u for u in updated if u), default=None)
            if newest is not None:
                ties = sum(1 for u in updated if u == newest)
                skip, mark = (skip + ties, mark) if newest == mark else (ties, newest)
            if last or not items:
                yield Batch(unique(events), TimeCursor(mark), True, fetched=len(items))
                return
            yield Batch(unique(events), TimeCursor(mark, {"skip": skip}), False, fetched=len(items))

    def _event(self, event_type: str, key: str, item: Any) -> RawEvent:
        return raw_event(
            SOURCE, event_type, key, item, connection=self.connection.name, received_at=self._clock()
        )
