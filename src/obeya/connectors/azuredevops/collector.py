"""The Azure DevOps collector: fetches a project's lists page by page and keeps every item as a raw event.

Per project, four resources (`RESOURCES`), each with its own `AzureCursor`:

- ``pull_requests``: ``_apis/git/pullrequests?searchCriteria.status=all`` (or per configured repository),
  paged with ``$top``/``$skip``; each pull request with its commits and its threads (votes, and the
  comments people wrote, with the accounts of their authors). The list has
  no "updated since" filter, so an incremental walk asks for the pull requests still **active** (whole)
  and those **closed** since the mark (``searchCriteria.queryTimeRangeType=closed`` and
  ``searchCriteria.minTime``); the mark is the newest ``closedDate``/``creationDate`` stored.
- ``builds``: ``_apis/build/builds?queryOrder=queueTimeAscending&minTime=MARK``, paged with the
  ``x-ms-continuationtoken`` header; each build with its timeline (stages, phases, jobs, tasks). The
  mark is the newest ``queueTime`` stored, held back to the oldest build not yet completed, so running
  builds are fetched again until they finish.
- ``work_items``: ``_apis/wit/reporting/workitemrevisions`` (the project's revisions, oldest first, paged
  by ``continuationToken`` until ``isLastBatch``; the last token is the watermark of the next sync). For
  every work item a page touches, the item (``_apis/wit/workitems?ids=...&$expand=all``) and its whole
  revision history (``_apis/wit/workItems/{id}/revisions``) are fetched and stored with the page, so an
  item is always normalized with all its revisions.
- ``releases``: the classic Release pipelines' deployments,
  ``VSRM/ORGANIZATION/PROJECT/_apis/release/deployments?queryOrder=ascending&minModifiedTime=MARK`` (VSRM
  is `AzureDevOpsConnectionConfig.releases_base_url`), paged with the ``x-ms-continuationtoken`` header;
  the mark is the newest ``lastModifiedOn`` stored, so a deployment still in progress is asked again once
  it changes. An organization that cannot be asked (403/404: no Release (Read) scope, or no classic
  releases) gives an empty, complete walk with the reason.

Raw event keys (after ``{event_type}:``): ``PROJECT/REPO!ID`` (pull request), ``PROJECT/REPO!ID@SHA``
(a commit of a pull request), ``PROJECT/REPO@SHA`` (the commit itself, once however many pull requests
hold it), ``PROJECT/REPO!ID/threads/TID``, ``PROJECT/builds/ID``, ``PROJECT/builds/ID/RECORD``
(timeline record), ``PROJECT/ID`` (work item), ``PROJECT/ID/REV`` (revision),
``PROJECT/release-deployments/ID`` (a classic release's deployment), ``ID`` (user) and ``EMAIL`` (git
author).
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from obeya.connectors.errors import MalformedResponseError, NotFoundError, PermissionDeniedError
from obeya.connectors.http import HttpClient, RetryPolicy, TokenAuth
from obeya.connectors.raw import raw_event
from obeya.connectors.times import required_time
from obeya.model.records import RawEvent

from .config import AzureDevOpsConnectionConfig

SOURCE = "azuredevops"
RESOURCES = ("pull_requests", "builds", "work_items", "releases")
"""What a sync collects for each project, in order."""

API_VERSION = "7.1"
PAGE_SIZE = 100
WORK_ITEM_BATCH = 200  # the most ids `_apis/wit/workitems?ids=` takes at once
CONTINUATION_HEADER = "x-ms-continuationtoken"
TOKEN_HINT = (
    "check it is a personal access token of this organization with the scopes Code (Read), Work Items "
    "(Read), Build (Read) and Release (Read), and has not expired"
)
NO_RELEASES = "give the token the Release (Read) scope to sync classic Release pipelines' deployments"

Item = dict[str, Any]
Clock = Callable[[], datetime]


# --- HTTP ------------------------------------------------------------------------------------------


def azure_client(connection: AzureDevOpsConnectionConfig, **options: Any) -> HttpClient:
    """The HTTP client of a connection: ``BASE/ORGANIZATION/``, the PAT as basic auth with an empty user."""
    auth = TokenAuth.from_environment("Azure DevOps", connection.token_env, hint=TOKEN_HINT, scheme="Basic")
    encoded = base64.b64encode(f":{auth.token}".encode()).decode()
    options.setdefault("retry", RetryPolicy())
    return HttpClient(
        f"{connection.base_url}/{quote(connection.organization, safe='')}",
        tool="Azure DevOps",
        auth=dataclasses.replace(auth, token=encoded),
        **options,
    )


def _path(name: str) -> str:
    return quote(name, safe="")


# --- cursor ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AzureCursor:
    """Where a walk of one resource stands.

    `mark` is what the next walk asks from (a time, or the work item revisions' continuation token);
    while a walk is under way (`running`), `pending` is the mark the walk will leave, `phase` the list
    it is on and `next_url` the page to ask for next.
    """

    mark: str | None = None
    pending: str | None = None
    phase: int = 0
    next_url: str | None = None
    running: bool = False

    @classmethod
    def parse(cls, text: str | None) -> AzureCursor:
        """The cursor stored as JSON text (an empty cursor for None)."""
        if not text:
            return cls()
        data = json.loads(text)
        return cls(
            mark=data.get("mark"),
            pending=data.get("pending"),
            phase=int(data.get("phase") or 0),
            next_url=data.get("next_url"),
            running=bool(data.get("running")),
        )

    def dumps(self) -> str:
        """The cursor as JSON text for `SyncCursor.cursor`."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


def _later(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return a or b
    return a if required_time(a) >= required_time(b) else b


def _earlier(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return a or b
    return a if required_time(a) <= required_time(b) else b


@dataclass
class Batch:
    """One page of a resource, ready to store in one transaction with its cursor."""

    resource: str
    events: list[RawEvent]
    cursor: AzureCursor
    complete: bool
    fetched: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class _Answer:
    items: list[Item]
    next_url: str | None
    token: str | None = None  # the work item revisions' continuation token (the watermark)


class AzureDevOpsCollector:
    """Fetches one connection's projects as raw events, page by page."""

    def __init__(
        self,
        client: HttpClient,
        connection: AzureDevOpsConnectionConfig,
        clock: Clock = lambda: datetime.now(UTC),
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.client = client
        self.connection = connection
        self._clock = clock
        self.page_size = page_size

    # --- fetching ------------------------------------------------------------------------------------

    def _get(self, url: httpx.URL | str) -> tuple[Any, httpx.Response]:
        target = url if isinstance(url, httpx.URL) else httpx.URL(url)
        response = self.client.get(target)
        try:
            return response.json(), response
        except ValueError as error:
            raise MalformedResponseError(
                f"Azure DevOps answered GET {target} with a body that is not JSON "
                f"(status {response.status_code}): {response.text[:80]!r}; nothing from this page was "
                "stored, run the sync again",
                url=str(target),
                status=response.status_code,
            ) from error

    def _page(self, url: str) -> _Answer:
        """One page of a list: ``value`` (``values`` for reporting), and the next page's URL.

        The next page is named by the ``x-ms-continuationtoken`` header (sent back as
        ``continuationToken``), by the reporting API's ``continuationToken``/``isLastBatch``, or, for lists
        paged by ``$skip``, by a page that was not empty.
        """
        body, response = self._get(url)
        if not isinstance(body, dict):
            raise MalformedResponseError(
                f"Azure DevOps answered GET {url} with {type(body).__name__}, expected an object", url=url
            )
        items = body.get("value", body.get("values"))
        if not isinstance(items, list):
            raise MalformedResponseError(
                f"Azure DevOps answered GET {url} without a list in 'value'", url=url
            )
        current = httpx.URL(url)
        if "isLastBatch" in body:
            token = body.get("continuationToken")
            following = None
            if not body.get("isLastBatch") and token:
                following = str(current.copy_set_param("continuationToken", token))
            return _Answer(items, following, str(token) if token else None)
        token = response.headers.get(CONTINUATION_HEADER)
        if token:
            return _Answer(items, str(current.copy_set_param("continuationToken", token)))
        if "$skip" in current.params and items:
            # Azure DevOps may answer fewer than `$top` items before the end: go on until an empty page.
            skip = int(current.params["$skip"]) + len(items)
            return _Answer(items, str(current.copy_set_param("$skip", skip)))
        return _Answer(items, None)

    def _all(self, url: str) -> list[Item]:
        items: list[Item] = []
        following: str | None = url
        while following is not None:
            answer = self._page(following)
            items.extend(answer.items)
            following = answer.next_url
        return items

    def _url(self, path: str, params: dict[str, Any]) -> str:
        return str(self.client.url(path, {**params, "api-version": API_VERSION}))

    # --- walking -------------------------------------------------------------------------------------

    def collect(
        self, project: str, resource: str, cursor: AzureCursor, full: bool = False
    ) -> Iterator[Batch]:
        """The pages of `resource` for `project`, from `cursor` (from the start when `full`)."""
        if full and not cursor.running:
            cursor = AzureCursor()
        name = f"{project}/{resource}"
        phases = self._phases(project, resource, cursor.mark)
        mark = cursor.mark
        pending = cursor.pending if cursor.running else None
        phase = cursor.phase if cursor.running else 0
        following = cursor.next_url if cursor.running else None
        while phase < len(phases):
            url = following or phases[phase]
            skipped: Counter[str] = Counter()
            try:
                answer = self._page(url)
            except (NotFoundError, PermissionDeniedError) as error:
                if resource != "releases":
                    raise
                skipped[f"classic releases not readable ({error.status}): {NO_RELEASES}"] += 1
                yield Batch(name, [], AzureCursor(mark=mark), complete=True, skipped=skipped)
                return
            events: list[RawEvent] = []
            if resource == "pull_requests":
                for item in answer.items:
                    events.extend(self._pull_request(project, item))
                    pending = _later(pending, _later(item.get("closedDate"), item.get("creationDate")))
            elif resource == "builds":
                for item in answer.items:
                    events.extend(self._build(project, item))
                    pending = _build_mark(pending, item)
            elif resource == "releases":
                for item in answer.items:
                    events.extend(self._release_deployment(project, item))
                    pending = _later(pending, item.get("lastModifiedOn") or item.get("queuedOn"))
            else:
                events.extend(self._work_items(project, answer.items))
                pending = answer.token or pending
            following = answer.next_url
            if following is None:
                phase += 1
            done = phase >= len(phases)
            if done:
                state = AzureCursor(mark=_final_mark(resource, mark, pending))
            else:
                state = AzureCursor(mark, pending, phase, following, running=True)
            yield Batch(
                name, _unique(events), state, complete=done, fetched=len(answer.items), skipped=skipped
            )

    def _phases(self, project: str, resource: str, mark: str | None) -> list[str]:
        """The first page of each list a walk of `resource` reads, in order."""
        top = self.page_size
        if resource == "builds":
            params: dict[str, Any] = {"queryOrder": "queueTimeAscending", "$top": top}
            if mark:
                params["minTime"] = mark
            return [self._url(f"{_path(project)}/_apis/build/builds", params)]
        if resource == "releases":
            params = {"queryOrder": "ascending", "$top": top}
            if mark:
                params["minModifiedTime"] = mark
            base = f"{self.connection.releases_base_url}/{_path(self.connection.organization)}"
            return [self._url(f"{base}/{_path(project)}/_apis/release/deployments", params)]
        if resource == "work_items":
            params = {"includeLatestOnly": "false", "$maxPageSize": top}
            if mark:
                params["continuationToken"] = mark
            return [self._url(f"{_path(project)}/_apis/wit/reporting/workitemrevisions", params)]
        if resource != "pull_requests":
            raise ValueError(f"unknown Azure DevOps resource {resource!r}")
        lists = (
            [
                f"{_path(project)}/_apis/git/repositories/{_path(r)}/pullrequests"
                for r in self.connection.repositories
            ]
            if self.connection.repositories
            else [f"{_path(project)}/_apis/git/pullrequests"]
        )
        urls: list[str] = []
        for path in lists:
            if mark is None:
                urls.append(self._url(path, {"searchCriteria.status": "all", "$top": top, "$skip": 0}))
            else:
                urls.append(self._url(path, {"searchCriteria.status": "active", "$top": top, "$skip": 0}))
                urls.append(
                    self._url(
                        path,
                        {
                            "searchCriteria.status": "all",
                            "searchCriteria.queryTimeRangeType": "closed",
                            "searchCriteria.minTime": mark,
                            "$top": top,
                            "$skip": 0,
                        },
                    )
                )
        return urls

    # --- one item and its children -------------------------------------------------------------------

    def _event(self, event_type: str, key: str, item: Any) -> RawEvent:
        return raw_event(
            SOURCE, event_type, key, item, connection=self.connection.name, received_at=self._clock()
        )

    def _users(self, *found: Any) -> list[RawEvent]:
        """Identity references kept as ``user`` raw events (the source of their `Person`)."""
        return [
            self._event("user", str(u["id"]), u)
            for u in found
            if isinstance(u, dict) and u.get("id") and u.get("displayName")
        ]

    def _pull_request(self, project: str, pr: Item) -> list[RawEvent]:
        repository = pr.get("repository") or {}
        repo_id = str(repository.get("id") or "")
        repo = str(repository.get("name") or repo_id)
        number = pr["pullRequestId"]
        key = f"{project}/{repo}!{number}"
        base = f"{_path(project)}/_apis/git/repositories/{_path(repo_id)}/pullRequests/{number}"
        events = [self._event("pull_request", key, pr)]
        events.extend(self._users(pr.get("createdBy"), pr.get("closedBy"), *(pr.get("reviewers") or [])))
        for commit in self._all(self._url(f"{base}/commits", {"$top": self.page_size})):
            events.append(self._event("pull_request_commit", f"{key}@{commit['commitId']}", commit))
            events.append(self._event("commit", f"{project}/{repo}@{commit['commitId']}", commit))
            author = commit.get("author") or {}
            if author.get("email"):
                person = {"name": author.get("name"), "email": author["email"]}
                events.append(self._event("git_author", str(author["email"]).lower(), person))
        for thread in self._all(self._url(f"{base}/threads", {})):
            events.append(self._event("pull_request_thread", f"{key}/threads/{thread['id']}", thread))
            events.extend(self._users(*((c or {}).get("author") for c in thread.get("comments") or [])))
        return events

    def _release_deployment(self, project: str, deployment: Item) -> list[RawEvent]:
        key = f"{project}/release-deployments/{deployment['id']}"
        return [
            self._event("release_deployment", key, deployment),
            *self._users(deployment.get("requestedFor"), deployment.get("requestedBy")),
        ]

    def _build(self, project: str, build: Item) -> list[RawEvent]:
        key = f"{project}/builds/{build['id']}"
        events = [self._event("build", key, build)]
        events.extend(self._users(build.get("requestedFor")))
        body, _ = self._get(self._url(f"{_path(project)}/_apis/build/builds/{build['id']}/timeline", {}))
        records = body.get("records") if isinstance(body, dict) else None  # None: no timeline (yet)
        for record in records or []:
            events.append(self._event("timeline_record", f"{key}/{record['id']}", record))
        return events

    def _work_items(self, project: str, revisions: list[Item]) -> list[RawEvent]:
        events: list[RawEvent] = []
        ids: list[int] = []
        for revision in revisions:
            events.append(
                self._event("work_item_revision", f"{project}/{revision['id']}/{revision['rev']}", revision)
            )
            if revision["id"] not in ids:
                ids.append(revision["id"])
        base = f"{_path(project)}/_apis/wit"
        present: set[int] = set()
        for start in range(0, len(ids), WORK_ITEM_BATCH):
            chunk = ids[start : start + WORK_ITEM_BATCH]
            body, _ = self._get(
                self._url(
                    f"{base}/workitems",
                    {"ids": ",".join(map(str, chunk)), "$expand": "all", "errorPolicy": "omit"},
                )
            )
            found = [i for i in body.get("value") or [] if isinstance(i, dict)]  # deleted ones: null
            present.update(item["id"] for item in found)
            for item in found:
                events.append(self._event("work_item", f"{project}/{item['id']}", item))
                events.extend(
                    self._users(*(v for v in (item.get("fields") or {}).values() if isinstance(v, dict)))
                )
        for work_item in (i for i in ids if i in present):  # a deleted item has no history to read
            for revision in self._all(
                self._url(f"{base}/workItems/{work_item}/revisions", {"$top": self.page_size, "$skip": 0})
            ):
                events.append(
                    self._event("work_item_revision", f"{project}/{work_item}/{revision['rev']}", revision)
                )
        return events


def _build_mark(pending: str | None, build: Item) -> str | None:
    """The builds' next mark: the newest queue time, held back to the oldest build not completed.

    `pending` carries a held-back time as ``hold:TIME`` until the walk ends.
    """
    queued = build.get("queueTime")
    if not queued:
        return pending
    hold, newest = _split_hold(pending)
    if build.get("status") != "completed":
        hold = _earlier(hold, str(queued))
    newest = _later(newest, str(queued))
    return f"{hold or ''}|{newest or ''}"


def _split_hold(pending: str | None) -> tuple[str | None, str | None]:
    if not pending or "|" not in pending:
        return None, pending
    hold, _, newest = pending.partition("|")
    return hold or None, newest or None


def _final_mark(resource: str, mark: str | None, pending: str | None) -> str | None:
    if resource == "builds":
        hold, newest = _split_hold(pending)
        return hold or newest or mark
    return pending or mark


def _unique(events: list[RawEvent]) -> list[RawEvent]:
    """One raw event per id (the last seen wins), in first-seen order."""
    by_id: dict[str, RawEvent] = {}
    for event in events:
        by_id[event.id] = event
    return list(by_id.values())
