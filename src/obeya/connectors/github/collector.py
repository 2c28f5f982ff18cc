"""The GitHub collector: fetches a repository's lists page by page and keeps every item as a raw event.

Each top-level list (pull requests, issues, commits, workflow runs, deployments, releases) is walked
newest first and stops at the resource's high-water mark, so an incremental sync asks only for what
changed. Each page comes back as one `Batch`: its items, their child lists (a pull request's commits,
reviews and review comments; an issue's events; a run's jobs; a deployment's statuses), the accounts seen
in them, and the cursor to store with them. Storing a batch and its cursor in one transaction is what lets
an interrupted sync resume at the next page without losing or repeating anything.

Raw event keys start with the repository (``owner/name/...``) so the normalizer can place every item
without calling the API again (see `obeya.connectors.github.normalizer`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from obeya.connectors.config import GitHubConnectionConfig
from obeya.connectors.http import HttpClient, LinkHeaderPaging, RetryPolicy, TokenAuth
from obeya.connectors.raw import raw_event
from obeya.connectors.times import required_time
from obeya.model.records import RawEvent

SOURCE = "github"
RESOURCES = ("pull_requests", "issues", "commits", "deployments", "workflow_runs", "releases")
"""What a sync collects for each repository, in order: deployments before workflow runs, so a run's jobs
are normalized knowing which runs made a GitHub deployment (no second deployment by job name)."""

TOKEN_HINT = (
    "check it has repo scope (classic token) or read access to contents, pull requests, issues, actions, "
    "deployments and metadata (fine-grained token), and has not expired"
)
_PAGING = LinkHeaderPaging(size=100)
_FINAL_DEPLOYMENT_STATES = {"success", "failure", "error", "inactive"}
_USER_FIELDS = (
    "user",
    "actor",
    "triggering_actor",
    "creator",
    "merged_by",
    "assignee",
    "author",
    "committer",
)

Item = dict[str, Any]
Clock = Callable[[], datetime]


def github_client(connection: GitHubConnectionConfig, **options: Any) -> HttpClient:
    """The HTTP client for a connection: its base URL, the token from its `token_env`, GitHub's headers."""
    auth = TokenAuth.from_environment("GitHub", connection.token_env, hint=TOKEN_HINT)
    options.setdefault("retry", RetryPolicy())
    return HttpClient(
        connection.base_url,
        tool="GitHub",
        auth=auth,
        headers={"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"},
        **options,
    )


@dataclass(frozen=True)
class WalkCursor:
    """Where a newest-first walk of one list stands.

    `high_water` is the timestamp a finished walk reached: the next walk stops at items older than it.
    While a walk is under way, `next_url` is the page to resume at and `newest`/`oldest_open` track the
    new high-water mark (the newest item seen, held back to the oldest item still open, such as a
    running workflow, so that item is fetched again until it settles).
    """

    high_water: str | None = None
    next_url: str | None = None
    newest: str | None = None
    oldest_open: str | None = None

    @classmethod
    def parse(cls, text: str | None) -> WalkCursor:
        """The cursor stored as JSON text (an empty cursor for None)."""
        if not text:
            return cls()
        data = json.loads(text)
        return cls(**{k: data.get(k) for k in ("high_water", "next_url", "newest", "oldest_open")})

    def dumps(self) -> str:
        """The cursor as JSON text for `SyncCursor.cursor`."""
        return json.dumps(
            {
                "high_water": self.high_water,
                "next_url": self.next_url,
                "newest": self.newest,
                "oldest_open": self.oldest_open,
            },
            sort_keys=True,
        )

    @property
    def resuming(self) -> bool:
        """Whether a walk was interrupted and can go on at `next_url`."""
        return self.next_url is not None

    def finished(self) -> WalkCursor:
        """The cursor once the walk is over: the new high-water mark, nothing pending."""
        mark = self.oldest_open or self.newest or self.high_water
        return WalkCursor(high_water=mark)


@dataclass
class Batch:
    """One page of a resource, ready to store in one transaction with its cursor."""

    resource: str
    events: list[RawEvent]
    cursor: WalkCursor
    complete: bool
    fetched: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


def _older(a: str, b: str) -> bool:
    return required_time(a) < required_time(b)


def _newest(a: str | None, b: str) -> str:
    return b if a is None or _older(a, b) else a


def _oldest(a: str | None, b: str) -> str:
    return b if a is None or _older(b, a) else a


@dataclass(frozen=True)
class _Walk:
    """How to walk one top-level list."""

    path: str
    params: dict[str, str]
    items_key: str | None
    stamp: Callable[[Item], str | None]
    expand: Callable[[str, Item], tuple[list[RawEvent], bool]]
    since_param: str | None = None
    stops_early: bool = True
    skip: Callable[[Item], str | None] = lambda item: None


class GitHubCollector:
    """Fetches one connection's repositories as raw events, page by page."""

    def __init__(
        self,
        client: HttpClient,
        connection: GitHubConnectionConfig,
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.connection = connection
        self._clock = clock

    # --- walking ---------------------------------------------------------------------------------------

    def collect(self, repo: str, resource: str, cursor: WalkCursor, full: bool = False) -> Iterator[Batch]:
        """The pages of `resource` for `repo`, from `cursor` (or from the newest item when `full`)."""
        walk = self._walks()[resource]
        name = f"{repo}/{resource}"
        if full and not cursor.resuming:
            cursor = WalkCursor()
        stop_at = cursor.high_water
        if cursor.resuming:
            pages = self.client.pages_from(str(cursor.next_url), _PAGING, walk.items_key)
        else:
            params = dict(walk.params)
            if walk.since_param and stop_at:
                params[walk.since_param] = stop_at
            pages = self.client.pages(
                self.client.url(f"repos/{repo}/{walk.path}", params), _PAGING, walk.items_key
            )
        state = cursor
        for page in pages:
            events: list[RawEvent] = []
            skipped: Counter[str] = Counter()
            reached = False
            for item in page.items:
                stamp = walk.stamp(item)
                if stop_at and stamp and _older(stamp, stop_at):
                    reached = True
                    skipped["unchanged since the last sync"] += 1
                    continue
                reason = walk.skip(item)
                if reason:
                    skipped[reason] += 1
                    continue
                item_events, settled = walk.expand(repo, item)
                events.extend(item_events)
                if stamp:
                    state = WalkCursor(
                        high_water=state.high_water,
                        next_url=state.next_url,
                        newest=_newest(state.newest, stamp),
                        oldest_open=state.oldest_open if settled else _oldest(state.oldest_open, stamp),
                    )
            done = page.next_url is None or (reached and walk.stops_early)
            state = (
                state.finished()
                if done
                else WalkCursor(state.high_water, page.next_url, state.newest, state.oldest_open)
            )
            yield Batch(name, _unique(events), state, complete=done, fetched=len(page.items), skipped=skipped)
            if done:
                return

    def _walks(self) -> dict[str, _Walk]:
        return {
            "pull_requests": _Walk(
                "pulls",
                {"state": "all", "sort": "updated", "direction": "desc"},
                None,
                lambda item: item.get("updated_at"),
                self._pull_request,
            ),
            "issues": _Walk(
                "issues",
                {"state": "all", "sort": "updated", "direction": "desc"},
                None,
                lambda item: item.get("updated_at"),
                self._issue,
                since_param="since",
                skip=lambda item: (
                    "pull request listed as an issue (collected as a change)"
                    if "pull_request" in item
                    else None
                ),
            ),
            "commits": _Walk(
                "commits",
                {},
                None,
                lambda item: (item.get("commit") or {}).get("committer", {}).get("date"),
                self._commit,
                since_param="since",
                stops_early=False,  # listed in graph order, not strictly by date: `since` does the filtering
            ),
            "workflow_runs": _Walk(
                "actions/runs",
                {},
                "workflow_runs",
                lambda item: item.get("created_at"),
                self._workflow_run,
            ),
            "deployments": _Walk(
                "deployments", {}, None, lambda item: item.get("created_at"), self._deployment
            ),
            "releases": _Walk("releases", {}, None, lambda item: item.get("created_at"), self._release),
        }

    def _children(self, url: str, items_key: str | None = None) -> list[Item]:
        items: list[Item] = []
        for page in self.client.pages(self.client.url(url), _PAGING, items_key):
            items.extend(page.items)
        return items

    # --- one item and its children ---------------------------------------------------------------------

    def _event(self, event_type: str, key: str, item: Any) -> RawEvent:
        return raw_event(
            SOURCE, event_type, key, item, connection=self.connection.name, received_at=self._clock()
        )

    def _users(self, item: Item) -> list[RawEvent]:
        """The accounts an item embeds, each kept as a ``user`` raw event (the source of its `Person`)."""
        events = []
        for name in _USER_FIELDS:
            user = item.get(name)
            if isinstance(user, dict) and "login" in user and "id" in user:
                events.append(self._event("user", str(user["id"]), user))
        return events

    def _commit_events(self, repo: str, item: Item) -> list[RawEvent]:
        events = [self._event("commit", f"{repo}/{item['sha']}", item), *self._users(item)]
        git_author = (item.get("commit") or {}).get("author") or {}
        if not isinstance(item.get("author"), dict) and git_author.get("email"):
            identity = {"name": git_author.get("name"), "email": git_author["email"]}
            events.append(self._event("git_author", str(git_author["email"]).lower(), identity))
        return events

    def _pull_request(self, repo: str, item: Item) -> tuple[list[RawEvent], bool]:
        number = item["number"]
        base = f"repos/{repo}/pulls/{number}"
        events = [self._event("pull_request", f"{repo}/{number}", item), *self._users(item)]
        for commit in self._children(f"{base}/commits"):
            events.append(self._event("pull_request_commit", f"{repo}/{number}/{commit['sha']}", commit))
            events.extend(self._commit_events(repo, commit))
        for review in self._children(f"{base}/reviews"):
            events.append(self._event("review", f"{repo}/{number}/{review['id']}", review))
            events.extend(self._users(review))
        for comment in self._children(f"{base}/comments"):
            events.append(self._event("review_comment", f"{repo}/{number}/{comment['id']}", comment))
            events.extend(self._users(comment))
        return events, True

    def _issue(self, repo: str, item: Item) -> tuple[list[RawEvent], bool]:
        number = item["number"]
        events = [self._event("issue", f"{repo}/{number}", item), *self._users(item)]
        for event in self._children(f"repos/{repo}/issues/{number}/events"):
            events.append(self._event("issue_event", f"{repo}/{number}/{event['id']}", event))
            events.extend(self._users(event))
        return events, True

    def _commit(self, repo: str, item: Item) -> tuple[list[RawEvent], bool]:
        return self._commit_events(repo, item), True

    def _workflow_run(self, repo: str, item: Item) -> tuple[list[RawEvent], bool]:
        events = [self._event("workflow_run", f"{repo}/{item['id']}", item), *self._users(item)]
        for job in self._children(f"repos/{repo}/actions/runs/{item['id']}/jobs", "jobs"):
            events.append(self._event("workflow_job", f"{repo}/{job['id']}", job))
        return events, item.get("status") == "completed"

    def _deployment(self, repo: str, item: Item) -> tuple[list[RawEvent], bool]:
        deployment_id = item["id"]
        events = [self._event("deployment", f"{repo}/{deployment_id}", item), *self._users(item)]
        statuses = self._children(f"repos/{repo}/deployments/{deployment_id}/statuses")
        for status in statuses:
            events.append(self._event("deployment_status", f"{repo}/{deployment_id}/{status['id']}", status))
            events.extend(self._users(status))
        latest = latest_status(statuses)
        return events, latest is not None and latest.get("state") in _FINAL_DEPLOYMENT_STATES

    def _release(self, repo: str, item: Item) -> tuple[list[RawEvent], bool]:
        events = [self._event("release", f"{repo}/{item['id']}", item), *self._users(item)]
        return events, not item.get("draft", False)


def latest_status(statuses: list[Item]) -> Item | None:
    """A deployment's current status: the newest by creation time (then by id)."""
    if not statuses:
        return None
    return max(statuses, key=lambda s: (str(s.get("created_at") or ""), int(s.get("id") or 0)))


def _unique(events: list[RawEvent]) -> list[RawEvent]:
    """One raw event per id (the last seen wins), in first-seen order."""
    by_id: dict[str, RawEvent] = {}
    for event in events:
        by_id[event.id] = event
    return list(by_id.values())
