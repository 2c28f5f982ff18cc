"""The GitLab collector: fetches a project's lists page by page and keeps every item as a raw event.

Merge requests, issues, pipelines and deployments are asked for with ``order_by=updated_at&sort=asc`` and
``updated_after`` the resource's high-water mark, so an incremental sync asks only for what changed. Each
page comes back as one `Batch`: its items, their children (a merge request's commits, notes and
approvals; an issue's resource state events, every close and reopen; a pipeline's details and jobs), the
accounts seen in them and the cursor to store with them. Closing or reopening an issue updates its
``updated_at``, so the issue comes back with all its state events.

The cursor (`UpdatedCursor`) is the newest ``updated_at`` stored plus the ids stored at exactly that time,
and while a walk is under way the page to ask for next at that mark. After a page that moved the mark,
the walk asks again from the new mark (page 1) instead of going on by page number: items updated while a
walk is under way move to the end of an ascending list, which shifts page numbers, but never a timestamp.
Items already stored at the mark are skipped without fetching their children. The query asks from one
second before the mark (GitLab compares ``updated_after`` with ``>=`` on issues and merge requests and
with ``>`` on pipelines), and the collector drops what it already has.

Repository commits (``repository/commits`` of the default branch or the connection's `commit_ref`, the
source of the git graph: only this list gives ``parent_ids``) are listed newest first, the API's only
order, so their walk is told apart: it asks ``since`` the newest ``committed_date`` of the last complete
walk (GitLab includes that second) and, from its second page on, for the commit its first page started
with instead of the branch, so commits pushed while the walk is under way do not shift its pages; the
mark moves to the newest ``committed_date`` seen when the walk ends.

Project environments (``environments``: name, tier, state) and members (``members/all``) are read whole
on every sync; environments before deployments, whose class the tier gives when a deployment's embedded
environment has none.

Raw event keys start with the project as the connection names it (``group/project`` or an id), followed
by a separator the normalizer splits on: ``!IID`` (merge request), ``#IID`` (issue, and the list of its
state events as one ``issue_state_events`` event), ``@SHA`` (a repository commit, ``commit``),
``/pipelines/ID``, ``/jobs/ID``, ``/environments/ID``, ``/deployments/ID``; accounts are ``user/ID``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from obeya.connectors.errors import NotFoundError, PermissionDeniedError
from obeya.connectors.http import HttpClient, Page, RetryPolicy, TokenAuth
from obeya.connectors.raw import raw_event
from obeya.connectors.times import required_time
from obeya.model.records import RawEvent

from .config import GitLabConnectionConfig

SOURCE = "gitlab"
RESOURCES = ("merge_requests", "issues", "commits", "pipelines", "environments", "deployments", "members")
"""What a sync collects for each project, in order."""

TOKEN_HINT = (
    "check it is a personal, group or project access token with the read_api scope (and at least "
    "Reporter access to the projects), and has not expired"
)
PAGE_SIZE = 100
_USER_FIELDS = ("author", "assignee", "merge_user", "merged_by", "closed_by", "user")
_USER_LIST_FIELDS = ("assignees", "reviewers")

Item = dict[str, Any]
Clock = Callable[[], datetime]


# --- HTTP ------------------------------------------------------------------------------------------


class _RateLimitHeaders(httpx.BaseTransport):
    """Answers GitLab's ``RateLimit-Remaining``/``RateLimit-Reset`` also as ``X-RateLimit-*``.

    The shared client waits for the reset when ``X-RateLimit-Remaining`` reaches 0 (GitHub's names);
    GitLab sends the same information without the ``X-`` prefix.
    """

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        for name in ("Remaining", "Reset", "Limit"):
            value = response.headers.get(f"RateLimit-{name}")
            if value is not None and f"X-RateLimit-{name}" not in response.headers:
                response.headers[f"X-RateLimit-{name}"] = value
        return response

    def close(self) -> None:
        self.inner.close()


def gitlab_client(connection: GitLabConnectionConfig, **options: Any) -> HttpClient:
    """The HTTP client for a connection: ``BASE/api/v4/``, the token in its `token_env` as a Bearer token.

    GitLab takes personal, group and project access tokens (and OAuth tokens) as
    ``Authorization: Bearer``, the same as ``PRIVATE-TOKEN``.
    """
    auth = TokenAuth.from_environment("GitLab", connection.token_env, hint=TOKEN_HINT)
    options.setdefault("retry", RetryPolicy())
    transport = options.pop("transport", None) or httpx.HTTPTransport()
    return HttpClient(
        f"{connection.base_url}/api/v4",
        tool="GitLab",
        auth=auth,
        transport=_RateLimitHeaders(transport),
        **options,
    )


@dataclass(frozen=True)
class NextPagePaging:
    """GitLab's paging: ``X-Next-Page`` (offset paging), else a ``Link: rel="next"`` (keyset paging)."""

    size: int = PAGE_SIZE

    def first(self, url: httpx.URL) -> httpx.URL:
        """The URL with ``per_page`` set, unless it names one already."""
        return url if "per_page" in url.params else url.copy_set_param("per_page", self.size)

    def next(self, url: httpx.URL, response: httpx.Response, body: Any, items: list[Any]) -> httpx.URL | None:
        """The next page by ``X-Next-Page``; with no such header, the ``rel="next"`` link; else None."""
        following = response.headers.get("X-Next-Page")
        if following is not None:
            return url.copy_set_param("page", following.strip()) if following.strip() else None
        link = response.links.get("next", {}).get("url")
        return url.join(link) if link else None


_PAGING = NextPagePaging()


def project_path(project: str) -> str:
    """The ``:id`` of a project in API paths: a numeric id as is, a path URL-encoded (``group%2Fname``)."""
    return project if project.isdigit() else quote(project, safe="")


# --- cursor ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UpdatedCursor:
    """Where a walk of one list stands.

    `updated_after` is the newest ``updated_at`` stored and `seen` the ids stored at exactly that time;
    while a walk is under way (`running`), `page` is the page to ask for next from that mark. A
    newest-first walk (repository commits) also keeps, while under way, the mark it will leave when it
    ends (`walk_mark`, the newest time it has seen), the ids seen at that time (`walk_seen`) and the
    commit its first page started with (`walk_head`, what its later pages are asked for).
    """

    updated_after: str | None = None
    seen: tuple[str, ...] = ()
    page: int = 1
    running: bool = False
    walk_mark: str | None = None
    walk_seen: tuple[str, ...] = ()
    walk_head: str | None = None

    @classmethod
    def parse(cls, text: str | None) -> UpdatedCursor:
        """The cursor stored as JSON text (an empty cursor for None)."""
        if not text:
            return cls()
        data = json.loads(text)
        return cls(
            updated_after=data.get("updated_after"),
            seen=tuple(str(s) for s in data.get("seen") or ()),
            page=int(data.get("page") or 1),
            running=bool(data.get("running")),
            walk_mark=data.get("walk_mark"),
            walk_seen=tuple(str(s) for s in data.get("walk_seen") or ()),
            walk_head=data.get("walk_head"),
        )

    def dumps(self) -> str:
        """The cursor as JSON text for `SyncCursor.cursor` (the walk's own mark only while it has one)."""
        data: dict[str, Any] = {
            "updated_after": self.updated_after,
            "seen": list(self.seen),
            "page": self.page,
            "running": self.running,
        }
        if self.walk_mark is not None:
            data.update(walk_mark=self.walk_mark, walk_seen=list(self.walk_seen), walk_head=self.walk_head)
        return json.dumps(data, sort_keys=True)


def utc_seconds(mark: str) -> str:
    """A time as GitLab's ``since``/``until`` take it: whole seconds, UTC (``2019-03-13T15:24:52Z``)."""
    return required_time(mark).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def asked_from(mark: str) -> str:
    """The ``updated_after`` sent for a mark: one second before it, in whole seconds, UTC."""
    moment = required_time(mark).astimezone(UTC) - timedelta(seconds=1)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Batch:
    """One page of a resource, ready to store in one transaction with its cursor."""

    resource: str
    events: list[RawEvent]
    cursor: UpdatedCursor
    complete: bool
    fetched: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class _Walk:
    """How to walk one list of a project."""

    path: str
    params: dict[str, str]
    expand: Callable[[str, Item], list[RawEvent]]
    incremental: bool = True


def _stamp(item: Item) -> str | None:
    value = item.get("updated_at") or item.get("created_at")
    return str(value) if value else None


class GitLabCollector:
    """Fetches one connection's projects as raw events, page by page."""

    def __init__(
        self,
        client: HttpClient,
        connection: GitLabConnectionConfig,
        clock: Clock = lambda: datetime.now(UTC),
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.client = client
        self.connection = connection
        self._clock = clock
        self._paging = NextPagePaging(page_size)

    # --- walking ---------------------------------------------------------------------------------------

    def collect(
        self, project: str, resource: str, cursor: UpdatedCursor, full: bool = False
    ) -> Iterator[Batch]:
        """The pages of `resource` for `project`, from `cursor` (from the start when `full`)."""
        if resource == "commits":
            yield from self._commits(project, cursor, full)
            return
        walk = self._walks()[resource]
        name = f"{project}/{resource}"
        if not walk.incremental or (full and not cursor.running):
            cursor = UpdatedCursor()
        mark, seen, page = cursor.updated_after, set(cursor.seen), cursor.page
        base = f"projects/{project_path(project)}/{walk.path}"
        while True:
            params: dict[str, Any] = dict(walk.params)
            if walk.incremental:
                params.update(order_by="updated_at", sort="asc")
                if mark:
                    params["updated_after"] = asked_from(mark)
            params.update(page=page, per_page=self._paging.size)
            answer = self._first_page(self.client.url(base, params))
            events: list[RawEvent] = []
            skipped: Counter[str] = Counter()
            asked_mark, asked_seen = mark, set(seen)
            for item in answer.items:
                stamp = _stamp(item) if walk.incremental else None
                key = str(item.get("id"))
                if asked_mark and stamp and _already_stored(stamp, key, asked_mark, asked_seen):
                    skipped["unchanged since the last sync"] += 1
                    continue
                events.extend(walk.expand(project, item))
                if stamp:
                    if mark is None or required_time(stamp) > required_time(mark):
                        mark, seen = stamp, {key}
                    elif required_time(stamp) == required_time(mark):
                        seen.add(key)
            done = answer.next_url is None
            if done:
                state = UpdatedCursor(mark, tuple(sorted(seen)))
            else:
                moved = mark != asked_mark
                page = 1 if moved else page + 1
                state = UpdatedCursor(mark, tuple(sorted(seen)), page, running=True)
            yield Batch(
                name, _unique(events), state, complete=done, fetched=len(answer.items), skipped=skipped
            )
            if done:
                return

    def _commits(self, project: str, cursor: UpdatedCursor, full: bool) -> Iterator[Batch]:
        """The pages of the repository's commits, newest first, since the last complete walk's mark.

        The first page is asked for the configured ref (the default branch when none is), the later
        pages for the commit that page started with, so a push while the walk is under way shifts no
        page: the history behind a commit never changes. Should that commit be gone (404: a force push,
        then garbage collection), the walk starts again from the ref's first page. Commits at exactly
        the mark that were stored then (`seen`) are skipped; GitLab's ``since`` includes that second.
        """
        if full and not cursor.running:
            cursor = UpdatedCursor()
        since, since_seen = cursor.updated_after, set(cursor.seen)
        mark, seen, head, page = cursor.walk_mark, set(cursor.walk_seen), cursor.walk_head, cursor.page
        base = f"projects/{project_path(project)}/repository/commits"
        while True:
            params: dict[str, Any] = {}
            ref = head if head and page > 1 else self.connection.commit_ref
            if ref:
                params["ref_name"] = ref
            if since:
                params["since"] = utc_seconds(since)
            params.update(page=page, per_page=self._paging.size)
            try:
                answer = self._first_page(self.client.url(base, params))
            except NotFoundError:
                if not (head and page > 1):
                    raise
                # The commit the walk started from is gone (a force push, then garbage collection):
                # walk the ref again from its first page; what is stored already is stored again.
                mark, seen, head, page = None, set(), None, 1
                continue
            if page == 1 and answer.items:
                head = str(answer.items[0]["id"])
            events: list[RawEvent] = []
            skipped: Counter[str] = Counter()
            for item in answer.items:
                sha = str(item["id"])
                stamp = str(item.get("committed_date") or item.get("created_at") or "") or None
                if stamp and (mark is None or required_time(stamp) > required_time(mark)):
                    mark, seen = stamp, {sha}
                elif stamp and mark and required_time(stamp) == required_time(mark):
                    seen.add(sha)
                if since and stamp and required_time(stamp) == required_time(since) and sha in since_seen:
                    skipped["unchanged since the last sync"] += 1
                    continue
                events.extend(self._commit(project, item))
            done = answer.next_url is None
            if not done:
                page += 1
                state = UpdatedCursor(
                    since, tuple(sorted(since_seen)), page, True, mark, tuple(sorted(seen)), head
                )
            elif mark is None or (since and required_time(mark) < required_time(since)):
                state = UpdatedCursor(since, tuple(sorted(since_seen)))
            elif since and required_time(mark) == required_time(since):
                state = UpdatedCursor(since, tuple(sorted(since_seen | seen)))
            else:
                state = UpdatedCursor(mark, tuple(sorted(seen)))
            yield Batch(
                f"{project}/commits",
                _unique(events),
                state,
                complete=done,
                fetched=len(answer.items),
                skipped=skipped,
            )
            if done:
                return

    def _first_page(self, url: httpx.URL) -> Page:
        return next(iter(self.client.pages_from(url, self._paging)))

    def _walks(self) -> dict[str, _Walk]:
        return {
            "merge_requests": _Walk("merge_requests", {"scope": "all", "state": "all"}, self._merge_request),
            "issues": _Walk("issues", {"scope": "all", "state": "all"}, self._issue),
            "pipelines": _Walk("pipelines", {}, self._pipeline),
            "environments": _Walk("environments", {}, self._environment, incremental=False),
            "deployments": _Walk("deployments", {}, self._deployment),
            "members": _Walk("members/all", {}, self._member, incremental=False),
        }

    def _children(self, url: str, params: dict[str, Any] | None = None) -> list[Item]:
        items: list[Item] = []
        for page in self.client.pages(self.client.url(url, params), self._paging):
            items.extend(page.items)
        return items

    # --- one item and its children ---------------------------------------------------------------------

    def _event(self, event_type: str, key: str, item: Any) -> RawEvent:
        return raw_event(
            SOURCE, event_type, key, item, connection=self.connection.name, received_at=self._clock()
        )

    def _users(self, item: Item) -> list[RawEvent]:
        """The accounts an item embeds, each kept as a ``user`` raw event (the source of its `Person`)."""
        found: list[Item] = [item[name] for name in _USER_FIELDS if isinstance(item.get(name), dict)]
        for name in _USER_LIST_FIELDS:
            found.extend(u for u in item.get(name) or [] if isinstance(u, dict))
        return [self._event("user", str(u["id"]), u) for u in found if "id" in u and "username" in u]

    def _merge_request(self, project: str, item: Item) -> list[RawEvent]:
        iid = item["iid"]
        base = f"projects/{project_path(project)}/merge_requests/{iid}"
        events = [self._event("merge_request", f"{project}!{iid}", item), *self._users(item)]
        for commit in self._children(f"{base}/commits"):
            events.append(self._event("merge_request_commit", f"{project}!{iid}@{commit['id']}", commit))
            if commit.get("author_email"):
                author = {"name": commit.get("author_name"), "email": commit["author_email"]}
                events.append(self._event("git_author", str(commit["author_email"]).lower(), author))
        for note in self._children(f"{base}/notes", {"sort": "asc", "order_by": "created_at"}):
            events.append(self._event("merge_request_note", f"{project}!{iid}/notes/{note['id']}", note))
            events.extend(self._users(note))
        try:
            approvals = self.client.get_json(f"{base}/approvals")
        except (NotFoundError, PermissionDeniedError):
            approvals = None  # not offered by this instance or edition: approval notes still say who
        if isinstance(approvals, dict):
            events.append(self._event("merge_request_approvals", f"{project}!{iid}", approvals))
            for entry in approvals.get("approved_by") or []:
                if isinstance(entry, dict) and isinstance(entry.get("user"), dict):
                    events.extend(self._users({"user": entry["user"]}))
        return events

    def _issue(self, project: str, item: Item) -> list[RawEvent]:
        key = f"{project}#{item['iid']}"
        events = [self._event("issue", key, item), *self._users(item)]
        url = f"projects/{project_path(project)}/issues/{item['iid']}/resource_state_events"
        try:
            state_events = self._children(url)
        except (NotFoundError, PermissionDeniedError):
            return events  # not offered by this instance: the issue's closed_at still says the last close
        events.append(self._event("issue_state_events", key, state_events))
        for state_event in state_events:
            events.extend(self._users(state_event))
        return events

    def _commit(self, project: str, item: Item) -> list[RawEvent]:
        events = [self._event("commit", f"{project}@{item['id']}", item)]
        if item.get("author_email"):
            author = {"name": item.get("author_name"), "email": item["author_email"]}
            events.append(self._event("git_author", str(item["author_email"]).lower(), author))
        return events

    def _pipeline(self, project: str, item: Item) -> list[RawEvent]:
        pipeline_id = item["id"]
        base = f"projects/{project_path(project)}/pipelines/{pipeline_id}"
        detail = self.client.get_json(base)
        pipeline = detail if isinstance(detail, dict) else item
        events = [
            self._event("pipeline", f"{project}/pipelines/{pipeline_id}", pipeline),
            *self._users(pipeline),
        ]
        for job in self._children(f"{base}/jobs", {"include_retried": "true"}):
            events.append(self._event("job", f"{project}/jobs/{job['id']}", job))
            events.extend(self._users(job))
        return events

    def _deployment(self, project: str, item: Item) -> list[RawEvent]:
        return [self._event("deployment", f"{project}/deployments/{item['id']}", item), *self._users(item)]

    def _environment(self, project: str, item: Item) -> list[RawEvent]:
        return [self._event("environment", f"{project}/environments/{item['id']}", item)]

    def _member(self, project: str, item: Item) -> list[RawEvent]:
        return [self._event("user", str(item["id"]), item)]


def _already_stored(stamp: str, key: str, mark: str, seen: set[str]) -> bool:
    moment, high = required_time(stamp), required_time(mark)
    return moment < high or (moment == high and key in seen)


def _unique(events: list[RawEvent]) -> list[RawEvent]:
    """One raw event per id (the last seen wins), in first-seen order."""
    by_id: dict[str, RawEvent] = {}
    for event in events:
        by_id[event.id] = event
    return list(by_id.values())
