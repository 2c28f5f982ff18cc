"""A local Opsgenie REST API serving the real recordings in shared/fixtures/api-recordings/opsgenie.

Recorded: two incidents of one impacted service, two teams, one user. The recordings hold no service
object, so ``GET /v1/services`` answers one **derived** service: the recorded incidents' service id with
the made-up name `SERVICE_NAME` (labelled so here; the tests say when they rely on it).

Incident timelines (``GET /v2/incident-timelines/ID/entries``) are not recorded: `TIMELINES` is **built
from the documented shape** of Opsgenie's Incident Timeline API (``{"data": {"entries": [...],
"nextOffset": ...}}``, entries with ``id``, ``group``, ``type``, ``eventTime``, ``hidden``, ``actor``,
``title``/``description``), with the recorded incidents' own times for their opening and resolution and
made-up acknowledgement times (`ACKNOWLEDGED`), labelled so. Pages of `page_size` entries; the opaque
``offset`` is the next entry's id, as Opsgenie's ``nextOffset``; an unknown incident answers 404.

It answers the way Opsgenie does: ``{"data": [...], "paging": {"next": ...}, "took", "requestId"}`` with
``offset``/``limit`` pages and an absolute ``paging.next`` link; ``GET /v1/incidents`` sorted by
``createdAt`` (``order`` desc by default) and filtered by ``query=impactedServices:ID``; 401 for another key
than ``GenieKey KEY``.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from loopback import LoopbackServer

from tests.shared_fixtures import API_RECORDINGS

RECORDINGS = API_RECORDINGS / "opsgenie"
KEY = "opsgenie-test-key"
SERVICE_ID = "695bce3d-4621-4630-8ae1-24eb89c22d6e"
SERVICE_NAME = "checkout (derived: no service recording)"
Item = dict[str, Any]
OPEN_ID, RESOLVED_ID = "3a74524a-f492-4172-b3f5-6041c7cb404a", "3f84e009-7548-4e7d-832a-fa82c1ceb6b1"
ACKNOWLEDGED = {  # made up: the recordings hold no timeline
    OPEN_ID: ["2023-09-06T14:31:40.000Z"],
    RESOLVED_ID: ["2023-09-05T18:20:45.500Z", "2023-09-05T18:20:59.000Z"],  # two responders; first wins
}


def _entry(number: int, kind: str, at: str, title: str, actor: str = "pikekad209@ipnuc.com") -> Item:
    """One timeline entry in the documented shape; `number` makes its id unique and ordered."""
    millis = int(datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp() * 1000)
    return {
        "id": f"{millis}_{millis}{number:06d}",
        "group": "incident" if kind.startswith("Incident") else "responder-alert",
        "type": kind,
        "eventTime": at,
        "hidden": False,
        "actor": {"name": actor, "type": "user"},
        "title": {"type": "text", "content": title},
        "description": {"type": "text", "content": title},
    }


def timelines(incidents: list[Item]) -> dict[str, list[Item]]:
    """Each incident's timeline: opened, its acknowledgements (`ACKNOWLEDGED`), resolved when it was."""
    found: dict[str, list[Item]] = {}
    for incident in incidents:
        entries = [_entry(0, "IncidentOpened", incident["createdAt"], "Incident opened", "API")]
        for n, at in enumerate(ACKNOWLEDGED.get(incident["id"], []), start=1):
            entries.append(_entry(n, "ResponderAlertAcked", at, "Alert acknowledged"))
        if incident.get("impactEndDate"):
            entries.append(_entry(9, "IncidentResolved", incident["impactEndDate"], "Incident resolved"))
        found[incident["id"]] = entries
    return found


def load(name: str) -> list[Item]:
    """The ``data`` of every line of a recording."""
    lines = (RECORDINGS / f"_raw_opsgenie_{name}.jsonl").read_text().splitlines()
    return [json.loads(line)["data"] for line in lines]


class FakeOpsgenie(LoopbackServer):
    """The recorded Opsgenie account."""

    def __init__(self, page_size: int = 1) -> None:
        super().__init__()
        self.page_size = page_size
        self.incidents = load("incidents")
        self.timelines = timelines(self.incidents)
        self.teams = load("teams")
        self.users = load("users")
        self.services: list[Item] = [{"id": SERVICE_ID, "name": SERVICE_NAME, "teamId": self.teams[0]["id"]}]

    def add(self, incident: Item) -> None:
        with self._lock:
            self.incidents.append(copy.deepcopy(incident))

    def authorized(self, headers: dict[str, str]) -> bool:
        return headers.get("Authorization") == f"GenieKey {KEY}"

    def unauthorized(self) -> Item:
        return {"message": "Could not authenticate", "took": 0.0, "requestId": "r-401"}

    def _page(self, path: str, items: list[Item], query: dict[str, list[str]]) -> Item:
        offset = int(query.get("offset", ["0"])[-1])
        limit = min(int(query.get("limit", ["20"])[-1]), self.page_size)
        body: Item = {"data": items[offset : offset + limit], "took": 0.01, "requestId": "r"}
        if offset + limit < len(items):
            following = {k: v[-1] for k, v in query.items()} | {"offset": offset + limit, "limit": limit}
            body["paging"] = {"next": f"{self.base_url}{path}?{urlencode(following)}"}
        return body

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        if path == "/v1/incidents":
            found = list(self.incidents)
            search = query.get("query", [""])[-1]
            if search.startswith("impactedServices:"):
                service = search.split(":", 1)[1]
                found = [i for i in found if service in i.get("impactedServices", [])]
            elif search:
                return 422, {"message": f"this server does not know the query {search!r}"}, {}
            found.sort(key=lambda i: str(i["createdAt"]), reverse=query.get("order", ["desc"])[-1] == "desc")
            return 200, self._page(path, found, query), {}
        if path.startswith("/v2/incident-timelines/") and path.endswith("/entries"):
            entries = self.timelines.get(path.split("/")[3])
            if entries is None:
                return 404, {"message": "No incident exists with id", "took": 0.0, "requestId": "r"}, {}
            after = query.get("offset", [""])[-1]
            start = next((n for n, e in enumerate(entries) if e["id"] == after), 0) if after else 0
            size = min(int(query.get("limit", ["20"])[-1]), self.page_size)
            data: Item = {"entries": entries[start : start + size]}
            if start + size < len(entries):
                data["nextOffset"] = entries[start + size]["id"]
            return 200, {"data": data, "took": 0.01, "requestId": "r"}, {}
        if path == "/v1/services":
            return 200, self._page(path, self.services, query), {}
        if path == "/v2/users":
            return 200, self._page(path, self.users, query), {}
        if path == "/v2/teams":
            return 200, {"data": self.teams, "took": 0.01, "requestId": "r"}, {}
        return 404, {"message": f"no route for {path}"}, {}
