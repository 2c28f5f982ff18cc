"""A local Jira REST API serving the real recordings in shared/fixtures/api-recordings/jira.

It answers the way Jira does: lists in ``startAt``/``maxResults`` pages with a ``total`` (sprints with
``isLast``), the Agile board issue list and the JQL search filtered by ``updated >= "yyyy/MM/dd HH:mm"``
and ordered by ``updated``, an issue's embedded changelog cut to `changelog_cap` histories (Jira embeds at
most 100) with the rest at ``/rest/api/3/issue/ID/changelog``, and 401 for wrong credentials. Requests are
routed on path and query only, not host. Tests read the requests it received in `requests`; `faults` (a
`loopback.Fault` by path suffix) are answered instead once the credentials are right.

Boards: 8 (Jira Cloud, recorded issues and sprints), 93 (an epic and its stories) and 3 (a Data Center
board whose issues carry issue links).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from loopback import Fault, LocalServer, fault_for, send

from tests.shared_fixtures import API_RECORDINGS

RECORDINGS = API_RECORDINGS / "jira"
TOKEN = "jira-test-token"
EMAIL = "flow@example.com"

Item = dict[str, Any]


def load(name: str) -> list[Item]:
    """The ``data`` of every line of a recording, each once (by id, else as a whole)."""
    seen: set[str] = set()
    items = []
    for line in (RECORDINGS / f"_raw_jira_api_{name}.jsonl").read_text().splitlines():
        data = json.loads(line)["data"]
        key = str(data.get("id", json.dumps(data, sort_keys=True)))
        if key not in seen:
            seen.add(key)
            items.append(data)
    return items


def load_board_issues() -> dict[int, list[Item]]:
    """The recorded issues of each board."""
    boards: dict[int, list[Item]] = {}
    seen: set[str] = set()
    for name in ("issues", "issue_relationships"):
        for line in (RECORDINGS / f"_raw_jira_api_{name}.jsonl").read_text().splitlines():
            row = json.loads(line)
            board = int(re.search(r"/board/(\d+)/", row["url"]).group(1))  # type: ignore[union-attr]
            if row["data"]["id"] not in seen:
                seen.add(row["data"]["id"])
                boards.setdefault(board, []).append(row["data"])
    return boards


def wall_clock(value: str) -> datetime:
    """A Jira timestamp's local time in the offset it carries (what JQL compares with)."""
    return datetime.fromisoformat(value).replace(tzinfo=None)


@dataclass
class Request:
    """A request the server received."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]


class FakeJira(LocalServer):
    """The server; `base_url` goes into the connection's `base_url`."""

    def __init__(self, page_size: int = 7, changelog_cap: int = 5, deployment: str = "cloud") -> None:
        self.page_size = page_size
        self.changelog_cap = changelog_cap
        self.deployment = deployment
        self.boards = load_board_issues()
        self.statuses = load("status")
        self.issue_types = load("issue_types")
        self.fields = load("issue_fields")
        self.sprints = load("sprints")
        self.recorded_changelogs: dict[str, list[Item]] = {}
        for line in (RECORDINGS / "_raw_jira_api_issue_changelogs.jsonl").read_text().splitlines():
            row = json.loads(line)
            issue_id = re.search(r"/issue/(\d+)/", row["url"]).group(1)  # type: ignore[union-attr]
            self.recorded_changelogs.setdefault(issue_id, []).append(row["data"])
        self.requests: list[Request] = []
        self.faults: dict[str, Fault] = {}
        self._listen()

    @property
    def expected_authorization(self) -> str:
        if self.deployment == "cloud":
            return "Basic " + base64.b64encode(f"{EMAIL}:{TOKEN}".encode()).decode()
        return f"Bearer {TOKEN}"

    def received(self, path_part: str) -> list[Request]:
        """The requests whose path contains `path_part`."""
        return [r for r in self.requests if path_part in r.path]

    # --- answers -----------------------------------------------------------------------------------------

    def all_issues(self) -> list[Item]:
        return [issue for issues in self.boards.values() for issue in issues]

    def _issue_by_id(self, issue_id: str) -> Item | None:
        return next((i for i in self.all_issues() if i["id"] == issue_id or i["key"] == issue_id), None)

    def _embedded(self, issue: Item) -> Item:
        histories = issue["changelog"]["histories"]
        cut = dict(issue)
        cut["changelog"] = {
            "startAt": 0,
            "maxResults": self.changelog_cap,
            "total": len(histories),
            "histories": histories[: self.changelog_cap],
        }
        return cut

    def _search(self, issues: list[Item], query: dict[str, str]) -> list[Item]:
        jql = query.get("jql", "")
        since = re.search(r"updated\s*>=\s*[\"'](\d{4}/\d\d/\d\d \d\d:\d\d)[\"']", jql)
        if since:
            moment = datetime.strptime(since.group(1), "%Y/%m/%d %H:%M")
            issues = [i for i in issues if wall_clock(i["fields"]["updated"]) >= moment]
        projects = re.search(r"project in \(([^)]*)\)", jql)
        if projects:
            keys = {p.strip().strip('"') for p in projects.group(1).split(",")}
            issues = [i for i in issues if i["fields"]["project"]["key"] in keys]
        if "order by updated" in jql.lower():
            issues = sorted(issues, key=lambda i: datetime.fromisoformat(i["fields"]["updated"]))
        return [self._embedded(i) for i in issues]

    def _page(self, items: list[Item], query: dict[str, str], key: str) -> Item:
        start = int(query.get("startAt", 0))
        size = min(int(query.get("maxResults", 50)), self.page_size)
        return {
            "startAt": start,
            "maxResults": size,
            "total": len(items),
            "isLast": start + size >= len(items),
            key: items[start : start + size],
        }

    def answer(self, path: str, query: dict[str, str]) -> tuple[int, Any]:
        if path in ("/rest/api/2/status", "/rest/api/3/status"):
            return 200, self.statuses
        if path in ("/rest/api/2/issuetype", "/rest/api/3/issuetype"):
            return 200, self.issue_types
        if path in ("/rest/api/2/field", "/rest/api/3/field"):
            return 200, self.fields
        if match := re.fullmatch(r"/rest/agile/1\.0/board/(\d+)/sprint", path):
            if int(match.group(1)) != 8:
                return 400, {"errorMessages": ["The board does not support sprints"], "errors": {}}
            body = self._page(self.sprints, query, "values")
            del body["total"]
            return 200, body
        if match := re.fullmatch(r"/rest/agile/1\.0/board/(\d+)/issue", path):
            board = int(match.group(1))
            if board not in self.boards:
                return 404, {"errorMessages": [f"The requested board cannot be viewed: {board}"]}
            return 200, self._page(self._search(self.boards[board], query), query, "issues")
        if path == "/rest/api/2/search":
            return 200, self._page(self._search(self.all_issues(), query), query, "issues")
        if path == "/rest/api/3/search/jql":
            found = self._search(self.all_issues(), query)
            start = int(query.get("nextPageToken", 0))
            size = min(int(query.get("maxResults", 50)), self.page_size)
            body: Item = {"issues": found[start : start + size]}
            if start + size < len(found):
                body["nextPageToken"] = str(start + size)
            return 200, body
        if match := re.fullmatch(r"/rest/api/3/issue/(\d+)/changelog", path):
            issue = self._issue_by_id(match.group(1))
            if issue is not None:
                histories = sorted(issue["changelog"]["histories"], key=lambda h: int(h["id"]))
            else:
                histories = self.recorded_changelogs.get(match.group(1), [])
            return 200, self._page(histories, query, "values")
        if match := re.fullmatch(r"/rest/api/2/issue/([A-Z0-9-]+)", path):
            issue = self._issue_by_id(match.group(1))
            if issue is None:
                return 404, {
                    "errorMessages": ["Issue does not exist or you do not have permission to see it."]
                }
            return 200, issue
        return 404, {"errorMessages": [f"no route for {path}"]}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                with server._lock:
                    server.requests.append(Request(parts.path, query, dict(self.headers.items())))
                if self.headers.get("Authorization") != server.expected_authorization:
                    status, body = 401, {"errorMessages": ["You are not authenticated."]}
                elif (fault := fault_for(server.faults, parts.path)) is not None:
                    send(self, fault.status, fault.body, fault.headers, fault.delay)
                    return
                else:
                    status, body = server.answer(parts.path, query)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json;charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
