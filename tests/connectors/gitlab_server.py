"""A local GitLab REST API (``/api/v4``) serving the real recordings in shared/fixtures/api-recordings/gitlab.

It answers the way GitLab does: offset pages (``page``/``per_page``) with ``X-Page``, ``X-Per-Page``,
``X-Total``, ``X-Total-Pages``, ``X-Next-Page`` (empty on the last page) and a ``Link`` header;
``order_by=updated_at&sort=asc`` and ``updated_after`` (compared with ``>``, as GitLab does for pipelines,
the strictest case); ``RateLimit-Limit``/``RateLimit-Remaining``/``RateLimit-Reset`` on every answer; 401
``{"message": "401 Unauthorized"}`` for a wrong token (``Authorization: Bearer`` or ``PRIVATE-TOKEN``).
Projects are addressed by numeric id or URL-encoded path. Requests are routed on path and query only,
not host; tests read the requests it received in `requests`.

Projects and what is recorded, what is derived:

- ``gitlab-data/snowflake_spend`` (id 12345678): merge requests (the three recordings, by iid), their
  commits and notes, issues, pipelines (the list recording plus the pipelines of the details recording),
  pipeline details (recorded; for a pipeline without recorded details, its list item), deployments and
  members (``members/all``). **Derived**: merge request approvals (none are recorded) — ``approved_by``
  is rebuilt from the recorded approval system notes (without ``approved_at``, as before GitLab 17), and
  merge request 3 gets an approval by martinguindon with an ``approved_at`` (the GitLab 17+ shape) and no
  note, so both ways of knowing an approval are served.
- Repository commits (``repository/commits``): the commits are **recorded** (the ``deployable.commit`` the
  recorded deployments embed: five commits of the deployed branch, with their real ``parent_ids``, in the
  shape of the commits API) but the list is **assembled**: `BRANCHES` names the branch heads, and a list
  for a ref (a branch, a tag or a sha; the default branch when none is named) is every served commit
  reachable from it, newest ``committed_date`` first, filtered by ``since``/``until`` (both inclusive),
  paged without ``X-Total``/``X-Total-Pages`` (GitLab leaves them out on this API). An unknown ref
  answers 404 ``{"message": "404 Reference Not Found"}``.
- Environments (``environments``, none are recorded) are **derived**: the two environments the recorded
  deployments embed (``production`` 585636, ``staging`` 585637, with their recorded fields) plus the
  ``tier`` and ``state`` the list answers, and GitLab's documented example environment
  (docs.gitlab.com/ee/api/environments.html, "List environments": ``review/fix-foo``, tier
  ``development``), one nobody deployed to.
- Issue resource state events (``issues/:iid/resource_state_events``, none are recorded) are **derived**
  in the shape of GitLab's documented example (docs.gitlab.com/ee/api/resource_state_events.html): each
  closed issue from #3 on is closed once at its ``closed_at`` by its ``closed_by``; issue 4 was closed,
  reopened and closed again (`REOPENED_ISSUE_EVENTS`), issue 13 (open) was closed and reopened
  (`REOPENED_OPEN_ISSUE_EVENTS`); issues 1 and 2 have none, as for closes before GitLab recorded them.
- ``GET /user`` and ``GET /personal_access_tokens/self`` answer GitLab's documented examples (`CURRENT_USER`,
  `TOKEN_SELF`, scopes ``api``), and ``GET /projects/:id`` the project's id and path: what
  `obeya connections test` asks. `faults` (a `loopback.Fault` by path suffix) are answered instead of the
  above once the token is right.
- ``merico/pip_test`` (id 44, another instance in the recording): jobs (recorded, project-wide list);
  **derived**: its pipelines are the ``pipeline`` objects the jobs embed, and each pipeline's jobs list
  is served with a ``Link: rel="next"`` header and no ``X-Next-Page`` (keyset-style), so the client's
  fallback to ``Link`` paging is exercised.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from loopback import Fault, LocalServer, fault_for, send

from tests.shared_fixtures import API_RECORDINGS

RECORDINGS = API_RECORDINGS / "gitlab"
TOKEN = "glpat-test-token"
SNOWFLAKE = "gitlab-data/snowflake_spend"
PIP_TEST = "merico/pip_test"
PROJECT_IDS = {SNOWFLAKE: 12345678, PIP_TEST: 44}
MARTIN = {
    "id": 4646118,
    "username": "martinguindon",
    "name": "Martin Guindon",
    "state": "active",
    "avatar_url": "",
    "web_url": "https://gitlab.com/martinguindon",
}
MR3_APPROVED_AT = "2019-08-26T14:10:00.000Z"
CURRENT_USER = {  # docs.gitlab.com/ee/api/users.html, "Get the current user" (fields trimmed)
    "id": 1,
    "username": "john_smith",
    "name": "John Smith",
    "state": "active",
    "web_url": "http://localhost:3000/john_smith",
}
TOKEN_SELF = {  # docs.gitlab.com/ee/api/personal_access_tokens.html, "Get single personal access token"
    "id": 4,
    "name": "Test Token",
    "revoked": False,
    "created_at": "2020-07-23T14:31:47.729Z",
    "scopes": ["api"],
    "user_id": 1,
    "last_used_at": "2021-10-06T17:58:37.550Z",
    "active": True,
    "expires_at": None,
}
INSUFFICIENT_SCOPE = {  # GitLab's 403 to a token without the scope an endpoint needs
    "error": "insufficient_scope",
    "error_description": "The request requires higher privileges than provided by the access token.",
    "scope": "api read_api",
}
DEFAULT_BRANCH = "master"
BRANCHES = {"master": "d8e7440fc02b62064624c788f4e4da19ca7be198"}
"""Branch heads of the snowflake project's commits (the newest deployed commit)."""
REOPENED_ISSUE_EVENTS = (  # issue 4: (id, state, created_at, username of the recorded account)
    (9001, "closed", "2019-08-20T10:00:00.000Z", "emilie"),
    (9002, "reopened", "2019-08-21T09:30:00.500Z", "tayloramurphy"),
    (9003, "closed", "2019-08-26T15:37:49.678Z", "emilie"),
)
REOPENED_OPEN_ISSUE_EVENTS = (  # issue 13, open now
    (9101, "closed", "2021-07-01T12:00:00.000Z", "tayloramurphy"),
    (9102, "reopened", "2021-07-02T08:00:00.000Z", "tayloramurphy"),
)

Item = dict[str, Any]


def rows(name: str) -> list[Item]:
    """Every line of a recording."""
    text = (RECORDINGS / f"_raw_gitlab_api_{name}.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def load(name: str) -> list[Item]:
    """The ``data`` of every line of a recording."""
    return [row["data"] for row in rows(name)]


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def stamp(item: Item) -> str:
    """What ``order_by=updated_at`` and ``updated_after`` compare (``created_at`` when never updated)."""
    return str(item.get("updated_at") or item["created_at"])


def merge_requests() -> list[Item]:
    """The recorded merge requests, each iid once (the main recording first)."""
    by_iid: dict[int, Item] = {}
    for name in ("merge_requests", "merge_requests_for_mr_commit_test", "merge_requests_for_mr_notes_test"):
        for mr in load(name):
            by_iid.setdefault(mr["iid"], mr)
    return list(by_iid.values())


def _by_iid(name: str) -> dict[int, list[Item]]:
    found: dict[int, list[Item]] = {}
    for row in rows(name):
        iid = int(row["url"].split("/merge_requests/")[1].split("/")[0])
        found.setdefault(iid, []).append(row["data"])
    return found


def approvals(notes: dict[int, list[Item]], mrs: list[Item]) -> dict[int, Item]:
    """Derived approval answers: from the approval system notes; merge request 3 also by MARTIN."""
    answers: dict[int, Item] = {}
    for mr in mrs:
        approved: dict[int, Item] = {}
        for note in sorted(notes.get(mr["iid"], []), key=lambda n: n["created_at"]):
            body = str(note.get("body", "")).strip()
            if note.get("system") and body == "approved this merge request":
                approved[note["author"]["id"]] = {"user": note["author"]}
            elif note.get("system") and body == "unapproved this merge request":
                approved.pop(note["author"]["id"], None)
        if mr["iid"] == 3:
            approved[MARTIN["id"]] = {"user": MARTIN, "approved_at": MR3_APPROVED_AT}
        answers[mr["iid"]] = {
            "id": mr["id"],
            "iid": mr["iid"],
            "project_id": mr["project_id"],
            "title": mr["title"],
            "state": mr["state"],
            "created_at": mr["created_at"],
            "updated_at": mr["updated_at"],
            "merge_status": mr.get("merge_status"),
            "approved": bool(approved),
            "approvals_required": 0,
            "approvals_left": 0,
            "approved_by": list(approved.values()),
        }
    return answers


def issue_state_events(issues: list[Item]) -> dict[int, list[Item]]:
    """Derived state events: see the module's docstring."""
    accounts = {
        user["username"]: user
        for issue in issues
        for user in (issue.get("author"), issue.get("closed_by"))
        if isinstance(user, dict)
    }
    by_iid = {issue["iid"]: issue for issue in issues}

    def state_event(iid: int, number: int, state: str, at: str, username: str) -> Item:
        return {
            "id": number,
            "user": accounts[username],
            "created_at": at,
            "resource_type": "Issue",
            "resource_id": by_iid[iid]["id"],
            "state": state,
        }

    found: dict[int, list[Item]] = {
        4: [state_event(4, *e) for e in REOPENED_ISSUE_EVENTS],
        13: [state_event(13, *e) for e in REOPENED_OPEN_ISSUE_EVENTS],
    }
    for issue in issues:
        if issue["iid"] in found or issue["iid"] < 3 or issue["state"] != "closed":
            continue
        close = {
            "id": 9500 + issue["iid"],
            "user": issue.get("closed_by"),
            "created_at": issue["closed_at"],
            "resource_type": "Issue",
            "resource_id": issue["id"],
            "state": "closed",
        }
        found[issue["iid"]] = [close]
    return found


_LIST_KEYS = (
    "created_at",
    "id",
    "iid",
    "project_id",
    "ref",
    "sha",
    "source",
    "status",
    "updated_at",
    "web_url",
)


@dataclass
class Request:
    """A request the server received."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class Project:
    """What the server holds for one project."""

    merge_requests: list[Item] = field(default_factory=list)
    mr_commits: dict[int, list[Item]] = field(default_factory=dict)
    mr_notes: dict[int, list[Item]] = field(default_factory=dict)
    mr_approvals: dict[int, Item] = field(default_factory=dict)
    issues: list[Item] = field(default_factory=list)
    issue_state_events: dict[int, list[Item]] = field(default_factory=dict)
    pipelines: list[Item] = field(default_factory=list)
    pipeline_details: dict[int, Item] = field(default_factory=dict)
    jobs: dict[int, list[Item]] = field(default_factory=dict)
    deployments: list[Item] = field(default_factory=list)
    members: list[Item] = field(default_factory=list)
    commits: list[Item] = field(default_factory=list)
    branches: dict[str, str] = field(default_factory=dict)
    environments: list[Item] = field(default_factory=list)

    def history(self, ref: str | None, query: dict[str, str]) -> list[Item] | None:
        """The commits reachable from `ref` (None: the default branch), newest first; None if unknown."""
        by_sha = {c["id"]: c for c in self.commits}
        start = self.branches.get(ref or DEFAULT_BRANCH) or (ref if ref in by_sha else None)
        if start is None:
            return [] if not self.commits and ref is None else None
        found: dict[str, Item] = {}
        todo = [start]
        while todo:
            sha = todo.pop()
            if sha in found or sha not in by_sha:
                continue
            found[sha] = by_sha[sha]
            todo.extend(by_sha[sha].get("parent_ids") or [])
        listed = sorted(found.values(), key=lambda c: _time(c["committed_date"]), reverse=True)
        if "since" in query:
            listed = [c for c in listed if _time(c["committed_date"]) >= _time(query["since"])]
        if "until" in query:
            listed = [c for c in listed if _time(c["committed_date"]) <= _time(query["until"])]
        return listed


DOCUMENTED_ENVIRONMENT = {  # docs.gitlab.com/ee/api/environments.html, "List environments" (trimmed)
    "id": 1,
    "name": "review/fix-foo",
    "slug": "review-fix-foo-dfjre3",
    "external_url": "https://review-fix-foo-dfjre3.gitlab.example.com",
    "state": "available",
    "tier": "development",
    "created_at": "2019-05-25T18:55:13.252Z",
    "updated_at": "2019-05-27T18:55:13.252Z",
}


def environments() -> list[Item]:
    """Derived environments: see the module's docstring."""
    by_id: dict[int, Item] = {}
    for deployment in load("deployments"):
        environment = deployment["environment"]
        derived = {**environment, "state": "available", "tier": environment["name"]}
        by_id.setdefault(environment["id"], derived)
    return [*by_id.values(), dict(DOCUMENTED_ENVIRONMENT)]


def recorded_commits() -> list[Item]:
    """The commits the recorded deployments embed, each once."""
    by_sha: dict[str, Item] = {}
    for deployment in load("deployments"):
        commit = (deployment.get("deployable") or {}).get("commit")
        if isinstance(commit, dict):
            by_sha.setdefault(commit["id"], commit)
    return list(by_sha.values())


def recorded_projects() -> dict[int, Project]:
    """The two projects, from the recordings (see the module's docstring for what is derived)."""
    mrs = merge_requests()
    notes = _by_iid("merge_request_notes")
    details = load("pipeline_details")
    snowflake = Project(
        merge_requests=mrs,
        mr_commits=_by_iid("merge_request_commits"),
        mr_notes=notes,
        mr_approvals=approvals(notes, mrs),
        issues=load("issues"),
        issue_state_events=issue_state_events(load("issues")),
        pipelines=[*load("pipeline"), *({k: d.get(k) for k in _LIST_KEYS} for d in details)],
        pipeline_details={d["id"]: d for d in details},
        deployments=load("deployments"),
        members=load("users"),
        commits=recorded_commits(),
        branches=dict(BRANCHES),
        environments=environments(),
    )
    jobs: dict[int, list[Item]] = {}
    pipelines: dict[int, Item] = {}
    for job in load("job"):
        pipeline = job["pipeline"]
        jobs.setdefault(pipeline["id"], []).append(job)
        pipelines[pipeline["id"]] = {**pipeline, "project_id": 44, "source": "push"}
    pip_test = Project(pipelines=list(pipelines.values()), jobs=jobs)
    return {12345678: snowflake, 44: pip_test}


class FakeGitLab(LocalServer):
    """The server; `base_url` goes into the connection's `base_url`."""

    def __init__(self, page_size: int = 5) -> None:
        self.page_size = page_size
        self.projects = recorded_projects()
        self.requests: list[Request] = []
        self.rate_limit_exhausted_at: set[int] = set()  # answer numbers with RateLimit-Remaining: 0
        self.rate_limit_reset = 0
        self.too_many_requests: dict[str, int] = {}  # path suffix → 429s still to answer
        self.faults: dict[str, Fault] = {}  # path suffix → the answer to give instead
        self.token_self: Item = dict(TOKEN_SELF)
        self._listen()

    def received(self, path_part: str) -> list[Request]:
        """The requests whose (decoded) path contains `path_part`."""
        return [r for r in self.requests if path_part in r.path]

    # --- answers -----------------------------------------------------------------------------------------

    def _project(self, ref: str) -> Project | None:
        ref = unquote(ref)
        project_id = int(ref) if ref.isdigit() else PROJECT_IDS.get(ref)
        return self.projects.get(project_id) if project_id is not None else None

    @staticmethod
    def _filtered(items: list[Item], query: dict[str, str]) -> list[Item]:
        if "updated_after" in query:
            since = _time(query["updated_after"])
            items = [i for i in items if _time(stamp(i)) > since]
        if query.get("order_by") == "updated_at":
            items = sorted(items, key=lambda i: (_time(stamp(i)), i["id"]))
            if query.get("sort", "desc") == "desc":
                items.reverse()
        return items

    def answer(self, path: str, query: dict[str, str]) -> tuple[int, Any, bool]:
        """Status, body and whether the body is a list to page (with keyset-style paging when "keyset")."""
        parts = [unquote(part) for part in path.removeprefix("/api/v4/").split("/")]
        if parts == ["user"]:
            return 200, CURRENT_USER, False
        if parts == ["personal_access_tokens", "self"]:
            return 200, self.token_self, False
        if len(parts) == 2 and parts[0] == "projects":
            ref = unquote(parts[1])
            project_id = int(ref) if ref.isdigit() else PROJECT_IDS.get(ref)
            known = {v: k for k, v in PROJECT_IDS.items()}
            if project_id in known:
                return 200, {"id": project_id, "path_with_namespace": known[project_id]}, False
            return 404, {"message": "404 Project Not Found"}, False
        if len(parts) < 3 or parts[0] != "projects":
            return 404, {"message": "404 Not Found"}, False
        project = self._project(parts[1])
        if project is None:
            return 404, {"message": "404 Project Not Found"}, False
        rest = parts[2:]
        match rest:
            case ["merge_requests"]:
                return 200, self._filtered(project.merge_requests, query), True
            case ["merge_requests", iid, "commits"]:
                return 200, project.mr_commits.get(int(iid), []), True
            case ["merge_requests", iid, "notes"]:
                return 200, sorted(project.mr_notes.get(int(iid), []), key=lambda n: n["created_at"]), True
            case ["merge_requests", iid, "approvals"]:
                found = project.mr_approvals.get(int(iid))
                return (200, found, False) if found else (404, {"message": "404 Not found"}, False)
            case ["issues"]:
                return 200, self._filtered(project.issues, query), True
            case ["issues", iid, "resource_state_events"]:
                return 200, project.issue_state_events.get(int(iid), []), True
            case ["pipelines"]:
                return 200, self._filtered(project.pipelines, query), True
            case ["pipelines", pipeline_id]:
                found = project.pipeline_details.get(int(pipeline_id))
                found = found or next((p for p in project.pipelines if p["id"] == int(pipeline_id)), None)
                return (200, found, False) if found else (404, {"message": "404 Not found"}, False)
            case ["pipelines", pipeline_id, "jobs"]:
                return 200, sorted(project.jobs.get(int(pipeline_id), []), key=lambda j: j["id"]), True
            case ["deployments"]:
                return 200, self._filtered(project.deployments, query), True
            case ["repository", "commits"]:
                history = project.history(query.get("ref_name"), query)
                if history is None:
                    return 404, {"message": "404 Reference Not Found"}, False
                return 200, history, True
            case ["environments"]:
                return 200, project.environments, True
            case ["members", "all"]:
                return 200, project.members, True
        return 404, {"message": "404 Not Found"}, False

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as GitLab
            disable_nagle_algorithm = True  # headers and body are two writes: do not wait for an ACK

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                path = unquote(parts.path)
                with server._lock:
                    server.requests.append(Request(path, query, dict(self.headers.items())))
                    number = len(server.requests)
                headers: dict[str, str] = {
                    "RateLimit-Limit": "2000",
                    "RateLimit-Remaining": "0" if number in server.rate_limit_exhausted_at else "1999",
                    "RateLimit-Reset": str(server.rate_limit_reset),
                }
                token = self.headers.get("PRIVATE-TOKEN") or self.headers.get("Authorization", "")
                waiting = next(
                    (p for p, n in server.too_many_requests.items() if path.endswith(p) and n), None
                )
                delay = 0.0
                if token not in (TOKEN, f"Bearer {TOKEN}"):
                    status, body = 401, {"message": "401 Unauthorized"}
                elif (fault := fault_for(server.faults, path)) is not None:
                    status, body, delay = fault.status, fault.body, fault.delay
                    headers.update(fault.headers)
                elif waiting is not None:
                    server.too_many_requests[waiting] -= 1
                    status, body = 429, {"message": "Retry later"}
                    headers["Retry-After"] = "7"
                else:
                    status, body, paged = server.answer(parts.path, query)
                    if paged:
                        body = self._page(body, parts.path, query, headers, keyset=path.endswith("/jobs"))
                        if path.endswith("/repository/commits"):  # GitLab leaves the totals out here
                            headers.pop("X-Total", None)
                            headers.pop("X-Total-Pages", None)
                self._send(status, body, headers, delay)

            def _page(
                self,
                items: list[Item],
                raw_path: str,
                query: dict[str, str],
                headers: dict[str, str],
                keyset: bool,
            ) -> list[Item]:
                page = int(query.get("page", 1))
                size = min(int(query.get("per_page", 20)), server.page_size)
                pages = max(1, -(-len(items) // size))
                url = f"{server.base_url}{raw_path}"

                def link(number: int) -> str:
                    return f"<{url}?{urlencode({**query, 'page': number, 'per_page': size})}>"

                following = page + 1 if page < pages else None
                links = [f'{link(1)}; rel="first"']
                if following:
                    links.insert(0, f'{link(following)}; rel="next"')
                headers["Link"] = ", ".join(links)
                if not keyset:
                    headers.update(
                        {
                            "X-Page": str(page),
                            "X-Per-Page": str(size),
                            "X-Total": str(len(items)),
                            "X-Total-Pages": str(pages),
                            "X-Next-Page": str(following or ""),
                            "X-Prev-Page": str(page - 1 if page > 1 else ""),
                        }
                    )
                return items[(page - 1) * size : page * size]

            def _send(self, status: int, body: Any, headers: dict[str, str], delay: float = 0.0) -> None:
                send(self, status, body, headers, delay)

        return Handler
