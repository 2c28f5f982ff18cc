"""Azure DevOps service hooks to records, through the same normalizer a sync uses.

A service hook (the *Web Hooks* consumer) posts an envelope — ``id``, ``eventType``, ``publisherId``,
``resource``, ``resourceContainers``, ``createdDate`` — whose ``resource`` is, for the events Obeya
normalizes, the object a REST answer lists. `collector_events` turns it into the raw events the collector
would have stored, keyed the collector's way with the project by name, and `normalize_webhook` runs
`obeya.connectors.azuredevops.normalizer.normalize` over them; the records point at the delivery.

- ``git.pullrequest.created`` / ``updated`` / ``merged`` → the `Change` ``PROJECT/REPO!ID`` (the
  project is ``resource.repository.project.name``), its reviewers' votes as `Review`s, a `ChangeCommit`
  per entry of ``resource.commits`` (an update's pushed commits), and the accounts as `Person`s. A hook
  carries no comment threads, so no vote time: a vote already stored with the same verdict keeps its
  time; a new one is timed by the delivery's ``createdDate`` on ``git.pullrequest.updated`` (the vote
  happened at or just before it) and as a sync without threads would time it otherwise.
- ``build.complete`` → the `PipelineRun` ``PROJECT/builds/ID``. The older (``resourceVersion`` 1.0)
  shape, with the result in ``status`` and the commit in ``sourceGetVersion``, is read too. A hook
  carries no timeline: stages, jobs and the deployments they are come with the next sync.
- ``workitem.created`` / ``restored`` / ``commented`` → the `WorkItem` ``PROJECT/ID`` (the resource is
  the work item), and for ``created`` its first `StatusTransition` ``PROJECT/ID/rev/N``.
  ``workitem.updated`` → the `WorkItem` as of ``resource.revision`` and, when ``resource.fields`` has
  ``System.State`` (``oldValue`` → ``newValue``), the `StatusTransition` ``PROJECT/ID/rev/REV`` a sync's
  revisions give. A hook holds only its own revision: ``started_at`` is the earliest of the stored work
  item's and the delivery's own entry into an active state; a delivery that changes no state keeps the
  stored ``done_at``/``canceled_at``; an identity sent as text (older servers) keeps the stored assignee.

Kept raw with a reason (`RAW_ONLY`): ``workitem.deleted``, ``git.push``, the pipelines' run and stage
state events and the classic release deployment events — a sync reads those facts from the REST API.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from obeya.api.webhooks.envelopes import MalformedDelivery, azuredevops_project
from obeya.connectors.azuredevops.collector import SOURCE
from obeya.connectors.azuredevops.normalizer import normalize
from obeya.connectors.raw import raw_event
from obeya.connectors.times import parse_time
from obeya.model.ids import record_id
from obeya.model.records import RawEvent, Record, Review, StatusTransition, WorkItem
from obeya.model.vocabulary import FlowState
from obeya.normalize.rules import MappingRules

from .github import WebhookRecords

Item = dict[str, Any]

Previous = Callable[[str, str], Record | None]
"""The stored record of a kind and id (as an earlier delivery of the batch left it), if any."""
ProjectName = Callable[[str], str]
"""A project's name as the connection spells it (Azure DevOps names are case-insensitive)."""

PULL_REQUEST_EVENTS = frozenset(
    {"git.pullrequest.created", "git.pullrequest.updated", "git.pullrequest.merged"}
)
WORK_ITEM_EVENTS = frozenset(
    {"workitem.created", "workitem.updated", "workitem.restored", "workitem.commented"}
)

RAW_ONLY = {
    "workitem.deleted": "Azure DevOps workitem.deleted events are kept raw only: the sync reads no deleted "
    "work items either, so the work item stays as last synced",
    "git.push": "Azure DevOps git.push events are kept raw only: the Azure DevOps sync reads commits "
    "through pull requests (a git connection reads a repository's whole history)",
    "ms.vss-pipelines.run-state-changed-event": "pipeline run events are kept raw only: YAML pipeline "
    "runs are builds, normalized from build.complete and read by the sync through _apis/build/builds",
    "ms.vss-pipelines.stage-state-changed-event": "pipeline stage events are kept raw only: the sync reads "
    "stages (and the deployments they are) from each build's timeline",
    "ms.vss-release.deployment-completed-event": "classic release deployment events are kept raw only: "
    "the sync reads them from _apis/release/deployments",
    "ms.vss-release.deployment-started-event": "classic release deployment events are kept raw only: "
    "the sync reads them from _apis/release/deployments",
}
"""The event types the receiver keeps raw on purpose, with why."""

_FAILED = "could not normalize"
_RESULTS_IN_STATUS = frozenset({"succeeded", "partiallySucceeded", "failed", "stopped", "canceled"})


def _project(event: str, resource: Item) -> str:
    project = azuredevops_project(event, resource)
    if not project:
        where = {
            "build.complete": "body.resource.project.name",
            "git.pullrequest": "body.resource.repository.project.name",
        }
        field = next((f for prefix, f in where.items() if event.startswith(prefix)), None)
        raise MalformedDelivery(
            f"{field or 'body.resource.fields.System.TeamProject'} is missing from the {event} event"
        )
    return project


def _users(*found: Any) -> list[tuple[str, Item]]:
    """Identity references as the collector keeps them (``user`` raw events need an id and a name)."""
    return [(str(u["id"]), u) for u in found if isinstance(u, dict) and u.get("id") and u.get("displayName")]


def _build_item(resource: Item) -> Item:
    """A build as ``_apis/build/builds`` lists it; the older hook shape (``resourceVersion`` 1.0) gives its
    result in ``status`` and its commit in ``sourceGetVersion`` (``LG:refs/heads/main:SHA``)."""
    build = dict(resource)
    if build.get("status") in _RESULTS_IN_STATUS and not build.get("result"):
        build["result"] = "canceled" if build["status"] == "stopped" else build["status"]
        build["status"] = "completed"
    version = str(build.get("sourceGetVersion") or "")
    if version.startswith("LG:") and not build.get("sourceVersion"):
        _, branch, sha = version.split(":", 2) if version.count(":") >= 2 else ("", "", "")
        build["sourceVersion"] = sha or None
        build.setdefault("sourceBranch", branch or None)
    if not build.get("queueTime"):
        build["queueTime"] = build.get("startTime")
    if not build.get("requestedFor"):
        requests = [r for r in build.get("requests") or [] if isinstance(r, dict)]
        if requests:
            build["requestedFor"] = requests[0].get("requestedFor")
    return build


def collector_events(
    payload: Item,
    *,
    connection: str | None,
    received_at: datetime,
    project_name: ProjectName = lambda name: name,
) -> tuple[list[RawEvent], str]:
    """The raw events the collector would store for the object of one service hook (not to be stored),
    and the key of that object (``PROJECT/REPO!ID``, ``PROJECT/builds/ID``, ``PROJECT/ID``).

    Raises `MalformedDelivery` when the resource is not the object its event names.
    """
    event = str(payload["eventType"])
    resource: Item = payload["resource"]
    project = project_name(_project(event, resource))

    def raw(kind: str, key: str, item: Any) -> RawEvent:
        return raw_event(SOURCE, kind, key, item, connection=connection, received_at=received_at)

    users: list[tuple[str, Item]] = []
    if event in PULL_REQUEST_EVENTS:
        repository = resource.get("repository") or {}
        repo = str(repository.get("name") or repository.get("id") or "")
        number = resource.get("pullRequestId")
        if not repo or number is None:
            raise MalformedDelivery(
                f"body.resource of the {event} event is not a pull request (pullRequestId, repository.name)"
            )
        key = f"{project}/{repo}!{number}"
        events = [raw("pull_request", key, resource)]
        for commit in resource.get("commits") or []:
            if isinstance(commit, dict) and commit.get("commitId"):
                events.append(raw("pull_request_commit", f"{key}@{commit['commitId']}", commit))
        users = _users(
            resource.get("createdBy"), resource.get("closedBy"), *(resource.get("reviewers") or [])
        )
    elif event == "build.complete":
        if resource.get("id") is None:
            raise MalformedDelivery("body.resource.id is missing from the build.complete event")
        build = _build_item(resource)
        key = f"{project}/builds/{build['id']}"
        events = [raw("build", key, build)]
        users = _users(build.get("requestedFor"))
    elif event in WORK_ITEM_EVENTS:
        key, events = _work_item_events(event, resource, project, raw)
        item = json_of(events[0])
        fields = item.get("fields") or {}
        users = _users(*(v for v in fields.values() if isinstance(v, dict)))
    else:
        raise MalformedDelivery(f"no records are made of {event} events")
    events.extend(raw("user", user_id, user) for user_id, user in users)
    return list({e.id: e for e in events}.values()), key


def json_of(event: RawEvent) -> Item:
    """A raw event's payload as an object."""
    value: Item = orjson.loads(event.payload)
    return value


def _work_item_events(
    event: str, resource: Item, project: str, raw: Callable[[str, str, Any], RawEvent]
) -> tuple[str, list[RawEvent]]:
    if event == "workitem.updated":
        item = resource.get("revision")
        if not isinstance(item, dict):
            raise MalformedDelivery("body.resource.revision of the workitem.updated event is not an object")
        item = {**item, "id": resource.get("workItemId", item.get("id"))}
    else:
        item = resource
    fields = item.get("fields")
    if item.get("id") is None or not isinstance(fields, dict) or not fields.get("System.State"):
        raise MalformedDelivery(
            f"body.resource of the {event} event is not a work item (id, fields.System.State)"
        )
    key = f"{project}/{item['id']}"
    rev = int(item.get("rev") or resource.get("rev") or 1)
    events = [raw("work_item", key, item)]
    revision = {"id": item["id"], "rev": rev, "fields": fields}
    if event == "workitem.created":
        events.append(raw("work_item_revision", f"{key}/{rev}", revision))
    elif event == "workitem.updated":
        change = (resource.get("fields") or {}).get("System.State")
        if isinstance(change, dict) and change.get("newValue") and change.get("oldValue") and rev > 1:
            # The state before this revision, so the transition has the sync's from-status; the
            # transition this made-up revision gives itself is dropped (`_kept_transitions`).
            before = {**fields, "System.State": change["oldValue"]}
            events.append(
                raw("work_item_revision", f"{key}/{rev - 1}", {**revision, "rev": rev - 1, "fields": before})
            )
        events.append(raw("work_item_revision", f"{key}/{rev}", revision))
    return key, events


def _transition_kept(event: str, payload: Item, transition: StatusTransition, key: str) -> bool:
    """Whether a transition the normalizer made is one this delivery records (its own revision's, when
    the revision changed the state; the first one of a created work item)."""
    resource = payload["resource"]
    if event == "workitem.created":
        return True
    if event != "workitem.updated":
        return False
    change = (resource.get("fields") or {}).get("System.State")
    revision = resource.get("revision") or {}
    rev = int(revision.get("rev") or resource.get("rev") or 0)
    return (
        isinstance(change, dict)
        and bool(change.get("newValue"))
        and transition.external_id == f"{key}/rev/{rev}"
    )


def _settled_work_item(
    item: WorkItem, kept: list[StatusTransition], previous: Record | None, assignee_is_text: bool
) -> WorkItem:
    """The work item with what only the stored one knows: when it started, when it closed (if this
    delivery changed no state), and the assignee when the hook names it only by text."""
    update: dict[str, Any] = {}
    starts = [t.at for t in kept if t.to_flow_state == FlowState.ACTIVE]
    if isinstance(previous, WorkItem) and previous.started_at is not None:
        starts.append(previous.started_at)
    update["started_at"] = min(starts) if starts else None
    if isinstance(previous, WorkItem):
        if not kept and previous.status == item.status:
            update["done_at"] = previous.done_at
            update["canceled_at"] = previous.canceled_at
        if assignee_is_text:
            update["assignee_id"] = previous.assignee_id
    return item.model_copy(update=update)


def _timed_reviews(records: list[Record], event: str, payload: Item, previous: Previous) -> list[Record]:
    """Reviews keep a stored vote's time; a new vote on an update is timed by the delivery."""
    created = parse_time(payload.get("createdDate")) if payload.get("createdDate") else None
    out: list[Record] = []
    for record in records:
        if isinstance(record, Review):
            stored = previous("review", record.id)
            if isinstance(stored, Review) and stored.state == record.state:
                record = record.model_copy(update={"submitted_at": stored.submitted_at})
            elif event == "git.pullrequest.updated" and created is not None:
                record = record.model_copy(update={"submitted_at": created})
        out.append(record)
    return out


def normalize_webhook(
    delivery: RawEvent,
    payload: Item,
    rules: MappingRules,
    previous: Previous = lambda _k, _i: None,
    project_name: ProjectName = lambda name: name,
) -> WebhookRecords:
    """The records of one Azure DevOps delivery (`delivery` is its stored raw event), pointing at it.

    `previous` finds a stored record by kind and id; `project_name` spells a project as the connection
    does, so the ids are the sync's. Raises `MalformedDelivery` on a payload it cannot
    unwrap, and for the events kept raw (`RAW_ONLY`), with the reason.
    """
    event = str(payload["eventType"])
    if event in RAW_ONLY:
        raise MalformedDelivery(RAW_ONLY[event])
    events, key = collector_events(
        payload, connection=delivery.connection, received_at=delivery.received_at, project_name=project_name
    )
    normalized = normalize(events, rules)
    records: list[Record] = []
    kept: list[StatusTransition] = []
    work_item: WorkItem | None = None
    for record in normalized.records:
        record = record.model_copy(update={"raw_event_id": delivery.id})
        if isinstance(record, StatusTransition):
            if _transition_kept(event, payload, record, key):
                kept.append(record)
            continue
        if isinstance(record, WorkItem):
            work_item = record
            continue
        records.append(record)
    if work_item is not None:
        fields = json_of(events[0]).get("fields") or {}
        assignee_is_text = isinstance(fields.get("System.AssignedTo"), str)
        stored = previous("work_item", record_id(SOURCE, key))
        records = [_settled_work_item(work_item, kept, stored, assignee_is_text), *kept, *records]
    records = _timed_reviews(records, event, payload, previous)
    result = WebhookRecords(records=records)
    for raw_id, reason in normalized.skipped:
        (result.failures if reason.startswith(_FAILED) else result.skipped).append(f"{raw_id}: {reason}")
    return result
