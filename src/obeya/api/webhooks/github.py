"""GitHub webhooks to records, through the same normalizer a sync uses.

A webhook carries the object a REST answer would list (a pull request, a review, a workflow run ...),
wrapped in an envelope with ``action``, ``repository`` and ``sender``. `collector_events` unwraps it into
the raw events the collector would have stored for that object, keyed the collector's way, and
`normalize_webhook` runs `obeya.connectors.github.normalizer.normalize` over them. The records therefore
equal what a sync makes from the same objects; they point at the webhook's own raw event (the delivery),
which is the one kept. The unwrapped events are never stored.

What each event gives (the records of `obeya.connectors.github.normalizer`, same ids as a sync's):

- ``pull_request`` → the `Change`; ``pull_request_review`` → the `Review`.
- ``issues`` → the `WorkItem` and its ``/created`` transition; a ``closed`` action also the close
  (``#N/closed@SECOND``, at the issue's ``closed_at``, by the sender) and a ``reopened`` action the reopen
  (``#N/reopened@SECOND``, at the issue's ``updated_at``): the ids the sync's issue events give.
- ``workflow_run`` → the `PipelineRun`; ``workflow_job`` → the `PipelineJob` (and a deployment by job name
  only if the job carries no ``deployment`` and no stored GitHub deployment names its run).
- ``deployment`` / ``deployment_status`` → the `Deployment`, its result from the status the delivery
  carries, its run from ``workflow_run`` or the status's ``log_url``.
- ``release`` → the `Release`; ``push`` → a `Commit` per pushed commit, its author as ``git/EMAIL``.
- The accounts the objects embed, and the sender, → `Person` / `Identity`.

Not derived from webhooks (a sync still brings them): a pull request's commits and review comments,
commit parents of pushed commits, earlier statuses of a deployment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from obeya.connectors.github.collector import SOURCE
from obeya.connectors.github.normalizer import normalize
from obeya.connectors.raw import raw_event
from obeya.model.ids import record_id
from obeya.model.records import RawEvent, Record
from obeya.normalize.rules import MappingRules

Item = dict[str, Any]

_ACCOUNT_FIELDS = ("user", "actor", "triggering_actor", "creator", "merged_by", "assignee", "author")
"""Where an object embeds GitHub accounts (the collector's list, without the git ``committer``)."""

_FAILED = "could not normalize"

DeployedRun = Callable[[str], bool]
"""Whether a stored GitHub deployment names the `PipelineRun` of this id as the run that made it."""


@dataclass
class WebhookRecords:
    """The records of one GitHub delivery, and why parts of it gave none."""

    records: list[Record] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _accounts(item: Item) -> Iterator[tuple[str, str, Item]]:
    for name in _ACCOUNT_FIELDS:
        user = item.get(name)
        if isinstance(user, dict) and "login" in user and "id" in user:
            yield "user", str(user["id"]), user


def _pushed_commit(commit: Item) -> Item:
    """A push webhook's commit in the shape of a REST commit list item (no account, no parents)."""
    author = commit.get("author") or {}
    committer = commit.get("committer") or {}
    return {
        "sha": commit["id"],
        "commit": {
            "message": commit.get("message") or "",
            "author": {
                "name": author.get("name"),
                "email": author.get("email"),
                "date": commit.get("timestamp"),
            },
            "committer": {
                "name": committer.get("name"),
                "email": committer.get("email"),
                "date": commit.get("timestamp"),
            },
        },
        "author": None,
        "parents": [],
    }


def _items(event_type: str, payload: Item, repo: str) -> Iterator[tuple[str, str, Item]]:
    """(raw event type, collector key, item) for the objects a webhook carries."""
    if event_type == "pull_request":
        pr = payload["pull_request"]
        yield "pull_request", f"{repo}/{pr['number']}", pr
        yield from _accounts(pr)
    elif event_type == "pull_request_review":
        review, number = payload["review"], payload["pull_request"]["number"]
        yield "review", f"{repo}/{number}/{review['id']}", review
        yield from _accounts(review)
    elif event_type == "push":
        for commit in payload["commits"]:
            item = _pushed_commit(commit)
            yield "commit", f"{repo}/{item['sha']}", item
            email = item["commit"]["author"].get("email")
            if email:
                name = item["commit"]["author"].get("name")
                yield "git_author", str(email).lower(), {"name": name, "email": email}
    elif event_type in ("workflow_run", "workflow_job", "release"):
        item = payload[event_type]
        yield event_type, f"{repo}/{item['id']}", item
        yield from _accounts(item)
    elif event_type in ("deployment", "deployment_status"):
        deployment = payload["deployment"]
        run = payload.get("workflow_run")
        if isinstance(run, dict) and run.get("id") is not None and "workflow_run" not in deployment:
            deployment = {**deployment, "workflow_run": {"id": run["id"]}}  # the run that made it
        yield "deployment", f"{repo}/{deployment['id']}", deployment
        yield from _accounts(deployment)
        if event_type == "deployment_status":
            status = payload["deployment_status"]
            yield "deployment_status", f"{repo}/{deployment['id']}/{status['id']}", status
    elif event_type == "issues":
        issue = payload["issue"]
        yield "issue", f"{repo}/{issue['number']}", issue
        yield from _accounts(issue)
        change = _issue_state_event(payload.get("action"), issue, payload.get("sender"))
        if change is not None:
            yield "issue_event", f"{repo}/{issue['number']}/{change['event']}", change
    sender = payload.get("sender")
    if isinstance(sender, dict) and "login" in sender and "id" in sender:
        yield "user", str(sender["id"]), sender


def _issue_state_event(action: Any, issue: Item, sender: Any) -> Item | None:
    """The issue event a ``closed`` or ``reopened`` action is (a webhook carries no event id): the close at
    the issue's ``closed_at``, the reopen at its ``updated_at``, by the sender."""
    if action == "closed" and issue.get("state") == "closed" and issue.get("closed_at"):
        at = issue["closed_at"]
    elif action == "reopened" and issue.get("state") == "open" and issue.get("updated_at"):
        at = issue["updated_at"]
    else:
        return None
    return {"event": action, "created_at": at, "actor": sender, "state_reason": issue.get("state_reason")}


def collector_events(
    event_type: str, payload: Item, *, connection: str | None, received_at: datetime
) -> list[RawEvent]:
    """The raw events the collector would store for the objects of one webhook (not to be stored)."""
    repo = payload["repository"]["full_name"]
    return [
        raw_event(SOURCE, kind, key, item, connection=connection, received_at=received_at)
        for kind, key, item in _items(event_type, payload, repo)
    ]


def normalize_webhook(
    delivery: RawEvent, payload: Item, rules: MappingRules, deployed_run: DeployedRun = lambda _run: False
) -> WebhookRecords:
    """The records of one GitHub delivery (`delivery` is its stored raw event), pointing at it.

    `deployed_run` says whether a stored GitHub deployment names a run (a `workflow_job` of that run then
    gets no deployment by job name). Raises on a payload too far from GitHub's documented shape to unwrap
    (a missing id or number).
    """
    events = collector_events(
        delivery.event_type, payload, connection=delivery.connection, received_at=delivery.received_at
    )
    deployed: frozenset[str] = frozenset()
    job = payload.get("workflow_job") if delivery.event_type == "workflow_job" else None
    if isinstance(job, dict) and job.get("run_id") is not None:
        repo = payload["repository"]["full_name"]
        if deployed_run(record_id(SOURCE, f"{repo}/runs/{job['run_id']}")):
            deployed = frozenset({f"{repo}/{job['run_id']}"})
    normalized = normalize(events, rules, deployed=deployed)
    result = WebhookRecords(
        records=[r.model_copy(update={"raw_event_id": delivery.id}) for r in normalized.records]
    )
    for raw_id, reason in normalized.skipped:
        (result.failures if reason.startswith(_FAILED) else result.skipped).append(f"{raw_id}: {reason}")
    return result
