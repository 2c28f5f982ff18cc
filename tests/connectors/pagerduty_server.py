"""A local PagerDuty REST API v2 serving the real recording in shared/fixtures/api-recordings/pagerduty.

The recording holds three incidents of one service (``DevService``) with their log entries embedded (its
``url`` fields are empty). The server answers the way PagerDuty does: ``GET /incidents`` filtered by
``since``/``until`` on the creation time (or ``date_range=all``) and ``service_ids[]``, sorted by
``created_at``, paged with ``offset``/``limit`` and ``more``; ``GET /incidents/{id}/log_entries`` serves the
log entries the recording embeds (taken out of the listed incidents), paged the same way; 401 for another
token than ``Token token=TOKEN``. Tests read the requests it received in `requests` and change incidents
with `resolve` and `add`.

It is a `loopback.LoopbackServer`, as the Opsgenie and ServiceNow servers are.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime
from typing import Any

from loopback import LoopbackServer

from tests.shared_fixtures import API_RECORDINGS

RECORDINGS = API_RECORDINGS / "pagerduty"
TOKEN = "pagerduty-test-token"
Item = dict[str, Any]


def load_incidents() -> list[Item]:
    """The recorded incidents, their embedded log entries included."""
    lines = (RECORDINGS / "_raw_pagerduty_incidents.jsonl").read_text().splitlines()
    return [json.loads(line)["data"] for line in lines]


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class FakePagerDuty(LoopbackServer):
    """The recorded PagerDuty account."""

    def __init__(self, page_size: int = 2, log_page_size: int = 10) -> None:
        super().__init__()
        self.page_size = page_size
        self.log_page_size = log_page_size
        self.incidents: list[Item] = []
        self.log_entries: dict[str, list[Item]] = {}
        for recorded in load_incidents():
            self.add(recorded)

    def add(self, incident: Item) -> None:
        """An incident (with its log entries embedded, as recorded)."""
        item = copy.deepcopy(incident)
        self.log_entries[item["id"]] = item.pop("log_entries", [])
        self.incidents.append(item)

    def resolve(self, incident_id: str, at: str, agent: Item) -> None:
        """Resolve an incident now, as PagerDuty would: status, log entry, last status change."""
        with self._lock:
            item = next(i for i in self.incidents if i["id"] == incident_id)
            item.update(status="resolved", last_status_change_at=at, acknowledgements=[], assignments=[])
            entry = {
                "id": f"RESOLVE{incident_id}",
                "type": "resolve_log_entry",
                "created_at": at,
                "agent": agent,
                "incident": {"id": incident_id, "type": "incident_reference"},
                "summary": f"Resolved by {agent['summary']}.",
            }
            self.log_entries[incident_id].insert(0, entry)

    def authorized(self, headers: dict[str, str]) -> bool:
        return headers.get("Authorization") == f"Token token={TOKEN}"

    def unauthorized(self) -> Item:
        return {"error": {"message": "Unauthorized", "code": 2006}, "message": "Unauthorized"}

    def _page(self, items: list[Item], query: dict[str, list[str]], key: str, cap: int) -> Item:
        offset = int(query.get("offset", ["0"])[-1])
        limit = min(int(query.get("limit", ["25"])[-1]), cap)
        return {
            key: items[offset : offset + limit],
            "offset": offset,
            "limit": limit,
            "more": offset + limit < len(items),
            "total": None,
        }

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        if path == "/incidents":
            found = list(self.incidents)
            if query.get("date_range", [""])[-1] != "all":
                since, until = query.get("since"), query.get("until")
                if not since or not until:
                    return 400, {"error": {"message": "this server wants since and until"}}, {}
                if (_time(until[-1]) - _time(since[-1])).days > 180:
                    return 400, {"error": {"message": "Date range cannot be longer than 6 months"}}, {}
                found = [i for i in found if _time(since[-1]) <= _time(i["created_at"]) < _time(until[-1])]
            services = query.get("service_ids[]")
            if services:
                found = [i for i in found if i["service"]["id"] in services]
            found.sort(key=lambda i: _time(i["created_at"]))
            return 200, self._page(found, query, "incidents", self.page_size), {}
        parts = path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "incidents" and parts[2] == "log_entries":
            if parts[1] not in self.log_entries:
                return 404, {"error": {"message": "Not Found", "code": 2100}}, {}
            return 200, self._page(self.log_entries[parts[1]], query, "log_entries", self.log_page_size), {}
        return 404, {"error": {"message": f"no route for {path}"}}, {}
