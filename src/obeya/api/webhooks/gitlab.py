"""GitLab webhooks to records, through the same normalizer a sync uses.

A GitLab hook carries its object's attributes in ``object_attributes``, in a shape close to the REST
API's but not the same: accounts are ids (``author_id``), times may be written ``2016-08-12 15:23:28
UTC``, the head commit is ``last_commit``, the pipeline's link is ``url``. `collector_events` rebuilds
from them the REST items the collector would have stored, keyed the collector's way with the project as
``path_with_namespace`` (``acme/shop!3``, ``acme/shop/pipelines/31``, ``acme/shop/jobs/380``), and
`normalize_webhook` runs `obeya.connectors.gitlab.normalizer.normalize` over them; the records point at
the delivery.

- ``merge_request`` (Merge Request Hook) → the `Change`. A hook has no ``merged_at``/``closed_at``: the
  ``merge`` / ``close`` action's ``updated_at`` is taken for them, else what the stored change says.
- ``pipeline`` (Pipeline Hook) → the `PipelineRun` and one `PipelineJob` per entry of ``builds``.
- ``issue`` (Issue Hook) → the `WorkItem` and its ``/created`` transition; a ``reopen`` action, and the
  last close of a closed issue, also become the state event they are (``issue_state_events``), so the
  transition has the id the sync's resource state event gives it (``PROJECT#IID/closed@SECOND``). A later
  hook of a closed issue names no closer: the stored close transition gives it (``previous_transition``).
- ``note`` (Note Hook) on a merge request → the `ChangeComment` (or, for an approval system note, the
  `Review`) of ``PROJECT!IID/notes/ID``; notes on issues, commits and snippets are kept raw.
- ``build`` (Job Hook) → the `PipelineJob` ``PROJECT/jobs/ID`` of pipeline ``pipeline_id``.
- ``deployment`` (Deployment Hook) → the `Deployment` ``PROJECT/deployments/ID``: the full commit sha is
  the last part of ``commit_url`` (the hook names only ``short_sha``); ``status_changed_at`` is the start
  of a running deployment and the finish of a finished one. A finished hook names no start, pipeline
  or full sha: the stored deployment (``previous_deployment``, from an earlier hook or the sync) gives them.
- ``push`` (Push Hook) → a `Commit` ``PROJECT@SHA`` per pushed commit, its author as ``git/EMAIL``.
- The accounts the hook embeds whole (``user``, ``assignees``, ``reviewers``; a push's ``user_*``
  fields) → `Person` / `Identity`.

Tag Push Hooks (``tag_push``) and Release Hooks (``release``) are kept raw only, and the reason says so:
the GitLab sync collects no tags or releases, so there is no record of theirs for a hook to become (the
raw event is there for a later version to normalize). Other object kinds (wiki page...) are kept raw
with the reason. Matching a sync's
records needs the connection to name the project by its path (``group/project``), not its id.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from obeya.api.webhooks.envelopes import MalformedDelivery
from obeya.connectors.gitlab.collector import SOURCE
from obeya.connectors.gitlab.normalizer import change_id, normalize, state_transition_key
from obeya.connectors.raw import raw_event
from obeya.connectors.times import parse_time
from obeya.model.ids import record_id
from obeya.model.records import Change, Deployment, RawEvent, Record, StatusTransition
from obeya.normalize.rules import MappingRules

from .github import WebhookRecords

Item = dict[str, Any]

PreviousChange = Callable[[str], Change | None]
"""The stored change of an id, if any."""
PreviousDeployment = Callable[[str], Deployment | None]
"""The stored deployment of an id, if any."""
PreviousTransition = Callable[[str], StatusTransition | None]
"""The stored status transition of an id, if any."""

KINDS = frozenset({"merge_request", "pipeline", "issue", "note", "build", "deployment", "push"})
"""The ``object_kind``s normalized from webhooks (``note``: on merge requests; ``build``: a job)."""
RAW_ONLY = {
    "tag_push": "GitLab tag_push events are kept raw only: the GitLab connector collects no tags, so no "
    "record is made of them by a sync either",
    "release": "GitLab release events are kept raw only: the GitLab connector collects no releases, so no "
    "record is made of them by a sync either",
}
"""The ``object_kind``s the receiver keeps raw on purpose, with why."""

_FAILED = "could not normalize"
_HOOK_TIME = re.compile(r"^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?) ?(UTC|[+-]\d\d:?\d\d)?$")


def iso_time(value: Any) -> Any:
    """A hook time as ISO 8601 (``2016-08-12 15:23:28 UTC`` → ``2016-08-12T15:23:28+00:00``); other values
    as they are."""
    if not isinstance(value, str):
        return value
    match = _HOOK_TIME.match(value.strip())
    if not match:
        return value
    day, clock, zone = match.groups()
    if zone is None or zone == "UTC":
        zone = "+00:00"
    elif ":" not in zone:
        zone = f"{zone[:3]}:{zone[3:]}"
    return f"{day}T{clock}{zone}"


def _attributes(payload: Item, kind: str) -> Item:
    attributes = payload.get("object_attributes")
    if not isinstance(attributes, dict):
        raise MalformedDelivery(f"body.object_attributes of the {kind} event is not an object")
    return attributes


def _project(payload: Item, kind: str) -> str:
    project = payload.get("project")
    path = project.get("path_with_namespace") if isinstance(project, dict) else None
    if not isinstance(path, str) or not path:
        raise MalformedDelivery(f"body.project.path_with_namespace is missing from the {kind} event")
    return path


def _merge_request(attributes: Item, previous: Change | None) -> Item:
    if attributes.get("iid") is None:
        raise MalformedDelivery("body.object_attributes.iid is missing from the merge_request event")
    action, state = attributes.get("action"), attributes.get("state")
    updated = iso_time(attributes.get("updated_at"))

    def earlier(name: str) -> str | None:
        moment = getattr(previous, name, None) if previous is not None else None
        return moment.isoformat() if isinstance(moment, datetime) else None

    merged_at = closed_at = None
    if state == "merged":
        merged_at = earlier("merged_at") or (updated if action == "merge" else None)
    elif state == "closed":
        closed_at = (updated if action == "close" else None) or earlier("closed_at")
    last_commit = attributes.get("last_commit")
    author_id = attributes.get("author_id")
    return {
        "iid": attributes["iid"],
        "id": attributes.get("id"),
        "title": attributes.get("title"),
        "description": attributes.get("description"),
        "state": state,
        "source_branch": attributes.get("source_branch"),
        "target_branch": attributes.get("target_branch"),
        "author": {"id": author_id} if author_id is not None else None,
        "created_at": iso_time(attributes.get("created_at")),
        "updated_at": updated,
        "merged_at": merged_at,
        "closed_at": closed_at,
        "merge_commit_sha": attributes.get("merge_commit_sha"),
        "squash_commit_sha": attributes.get("squash_commit_sha"),
        "squash": bool(attributes.get("squash")),
        "sha": last_commit.get("id") if isinstance(last_commit, dict) else None,
        "web_url": attributes.get("url"),
    }


def _pipeline(attributes: Item) -> Item:
    if attributes.get("id") is None:
        raise MalformedDelivery("body.object_attributes.id is missing from the pipeline event")
    return {
        "id": attributes["id"],
        "iid": attributes.get("iid"),
        "name": attributes.get("name"),
        "status": attributes.get("status"),
        "ref": attributes.get("ref"),
        "sha": attributes.get("sha"),
        "source": attributes.get("source"),
        "created_at": iso_time(attributes.get("created_at")),
        "started_at": iso_time(attributes.get("started_at")),
        "finished_at": iso_time(attributes.get("finished_at")),
        "updated_at": iso_time(attributes.get("updated_at")),
        "web_url": attributes.get("url"),
    }


def _job(build: Item, pipeline: int | str) -> Item:
    return {
        "id": build["id"],
        "name": build.get("name"),
        "stage": build.get("stage"),
        "status": build.get("status"),
        "environment": build.get("environment"),
        "started_at": iso_time(build.get("started_at")),
        "finished_at": iso_time(build.get("finished_at")),
        "pipeline": {"id": pipeline},
    }


_ISSUE_TYPES = {"testcase": "test_case", "test_case": "test_case"}


def _issue(attributes: Item, payload: Item) -> Item:
    if attributes.get("iid") is None:
        raise MalformedDelivery("body.object_attributes.iid is missing from the issue event")
    labels = attributes.get("labels") or payload.get("labels") or []
    kind = str(attributes.get("type") or attributes.get("issue_type") or "issue").lower()
    assignee_ids = attributes.get("assignee_ids") or (
        [attributes["assignee_id"]] if attributes.get("assignee_id") else []
    )
    action, state = attributes.get("action"), attributes.get("state")
    closed_at = iso_time(attributes.get("closed_at"))
    if state == "closed" and closed_at is None and action == "close":
        closed_at = iso_time(attributes.get("updated_at"))
    author_id = attributes.get("author_id")
    return {
        "id": attributes.get("id"),
        "iid": attributes["iid"],
        "title": attributes.get("title"),
        "state": state,
        "issue_type": _ISSUE_TYPES.get(kind, kind),
        "labels": [str(label.get("title") if isinstance(label, dict) else label) for label in labels],
        "author": {"id": author_id} if author_id is not None else None,
        "assignees": [{"id": a} for a in assignee_ids],
        "created_at": iso_time(attributes.get("created_at")),
        "updated_at": iso_time(attributes.get("updated_at")),
        "closed_at": closed_at if state == "closed" else None,
        "closed_by": payload.get("user") if action == "close" else None,
        "web_url": attributes.get("url"),
    }


def _state_event(issue: Item, key: str, action: Any, user: Any, previous: PreviousTransition) -> Item | None:
    """The resource state event a hook tells of (it carries no event id): a ``reopen`` at its
    ``updated_at``; for a closed issue, its last close at ``closed_at``, so any later hook of a closed
    issue restates that close rather than adding another. The closer is the hook's user when the hook is
    that close; otherwise whoever the stored close names (a later hook does not say)."""
    if action == "reopen" and issue.get("updated_at"):
        return {"state": "reopened", "created_at": issue["updated_at"], "user": user}
    closed_at = parse_time(issue.get("closed_at"))
    if issue.get("state") == "closed" and closed_at is not None:
        if action != "close":
            stored = previous(record_id(SOURCE, state_transition_key(key, "closed", closed_at)))
            user = _account(stored.author_id) if stored is not None else None
        return {"state": "closed", "created_at": issue["closed_at"], "user": user}
    return None


def _account(person: str | None) -> Item | None:
    """The GitLab account a stored person id names (``gitlab:user/1`` → ``{"id": "1"}``), if it is one."""
    prefix = f"{SOURCE}:user/"
    return {"id": person.removeprefix(prefix)} if person and person.startswith(prefix) else None


def _stored_time(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _note(attributes: Item, payload: Item) -> tuple[int | str, Item]:
    noteable = attributes.get("noteable_type")
    if noteable != "MergeRequest":
        raise MalformedDelivery(
            f"GitLab notes on a {noteable or 'thing'} are not normalized from webhooks (only merge request "
            "comments are)"
        )
    merge_request = payload.get("merge_request")
    iid = merge_request.get("iid") if isinstance(merge_request, dict) else None
    if iid is None or attributes.get("id") is None:
        raise MalformedDelivery(
            "body.merge_request.iid or body.object_attributes.id is missing from the note"
        )
    user = payload.get("user")
    author = user if isinstance(user, dict) and user.get("id") == attributes.get("author_id") else None
    return iid, {
        "id": attributes["id"],
        "type": attributes.get("type"),
        "body": attributes.get("note"),
        "author": author or {"id": attributes.get("author_id")},
        "created_at": iso_time(attributes.get("created_at")),
        "updated_at": iso_time(attributes.get("updated_at")),
        "system": bool(attributes.get("system")),
        "position": attributes.get("position") if isinstance(attributes.get("position"), dict) else None,
    }


def _job_hook(payload: Item) -> Item:
    if payload.get("build_id") is None or payload.get("pipeline_id") is None:
        raise MalformedDelivery("body.build_id or body.pipeline_id is missing from the build event")
    return {
        "id": payload["build_id"],
        "name": payload.get("build_name"),
        "stage": payload.get("build_stage"),
        "status": payload.get("build_status"),
        "environment": payload.get("environment"),
        "started_at": iso_time(payload.get("build_started_at")),
        "finished_at": iso_time(payload.get("build_finished_at")),
        "pipeline": {"id": payload["pipeline_id"]},
    }


_COMMIT_URL_SHA = re.compile(r"/commit/([0-9a-f]{40}|[0-9a-f]{64})/?$")


def _deployment(payload: Item, project: str, previous: PreviousDeployment) -> Item:
    """The deployment as the REST API shows it; what the hook leaves out (the start of a finished one,
    its pipeline, a full sha) as the stored deployment has it."""
    if payload.get("deployment_id") is None:
        raise MalformedDelivery("body.deployment_id is missing from the deployment event")
    stored = previous(record_id(SOURCE, f"{project}/deployments/{payload['deployment_id']}"))
    found = _COMMIT_URL_SHA.search(str(payload.get("commit_url") or ""))
    changed = iso_time(payload.get("status_changed_at"))
    running = str(payload.get("status") or "") in ("created", "running", "blocked")
    started = _stored_time(stored.started_at) if stored is not None else None
    deployable: Item = {"id": payload.get("deployable_id"), "web_url": payload.get("deployable_url")}
    pipeline = stored.pipeline_run_id if stored is not None else None
    if pipeline and "/pipelines/" in pipeline:
        deployable["pipeline"] = {"id": pipeline.rsplit("/pipelines/", 1)[1]}
    return {
        "id": payload["deployment_id"],
        "status": payload.get("status"),
        "environment": {"name": payload.get("environment"), "tier": payload.get("environment_tier")},
        "sha": found.group(1) if found else (stored.commit_sha if stored is not None else None),
        "created_at": started or (changed if running else None),
        "updated_at": None if running else changed,
        "deployable": deployable,
    }


def _pushed_commits(payload: Item) -> list[Item]:
    commits = payload.get("commits")
    if not isinstance(commits, list):
        raise MalformedDelivery("body.commits of the push event is not a list")
    found: list[Item] = []
    for commit in commits:
        if not isinstance(commit, dict) or not commit.get("id"):
            continue
        author = commit.get("author")
        author = author if isinstance(author, dict) else {}
        found.append(
            {
                "id": commit["id"],
                "title": commit.get("title"),
                "message": commit.get("message"),
                "authored_date": iso_time(commit.get("timestamp")),
                "author_name": author.get("name"),
                "author_email": author.get("email"),
            }
        )
    return found


def _accounts(payload: Item) -> list[Item]:
    found = [payload.get("user"), *(payload.get("assignees") or []), *(payload.get("reviewers") or [])]
    if payload.get("user_id") is not None and payload.get("user_username"):  # a push names its pusher flat
        found.append(
            {
                "id": payload["user_id"],
                "username": payload["user_username"],
                "name": payload.get("user_name"),
                "email": payload.get("user_email"),
            }
        )
    return [u for u in found if isinstance(u, dict) and u.get("id") is not None and u.get("username")]


def collector_events(
    payload: Item,
    *,
    connection: str | None,
    received_at: datetime,
    previous: PreviousChange = lambda _id: None,
    previous_deployment: PreviousDeployment = lambda _id: None,
    previous_transition: PreviousTransition = lambda _id: None,
) -> list[RawEvent]:
    """The raw events the collector would store for the objects of one hook (not to be stored); the
    `previous` lookups give what the hook does not say and an earlier hook or the sync stored.

    Raises `MalformedDelivery` for an object kind it does not unwrap, or an object not there to unwrap.
    """
    kind = str(payload.get("object_kind"))

    def event(event_type: str, key: str, item: Any) -> RawEvent:
        return raw_event(SOURCE, event_type, key, item, connection=connection, received_at=received_at)

    if kind in RAW_ONLY:
        raise MalformedDelivery(RAW_ONLY[kind])
    if kind not in KINDS:
        raise MalformedDelivery(
            f"GitLab {kind} events are not normalized from webhooks yet (a sync brings what they are about)"
        )
    project = _project(payload, kind)
    events: list[RawEvent] = []
    if kind == "merge_request":
        attributes = _attributes(payload, kind)
        iid = attributes.get("iid")
        mr = _merge_request(attributes, previous(change_id(project, str(iid))))
        events.append(event("merge_request", f"{project}!{mr['iid']}", mr))
    elif kind == "pipeline":
        pipeline = _pipeline(_attributes(payload, kind))
        events.append(event("pipeline", f"{project}/pipelines/{pipeline['id']}", pipeline))
        for build in payload.get("builds") or []:
            if isinstance(build, dict) and build.get("id") is not None:
                events.append(event("job", f"{project}/jobs/{build['id']}", _job(build, pipeline["id"])))
    elif kind == "issue":
        attributes = _attributes(payload, kind)
        issue = _issue(attributes, payload)
        key = f"{project}#{issue['iid']}"
        events.append(event("issue", key, issue))
        state_event = _state_event(
            issue, key, attributes.get("action"), payload.get("user"), previous_transition
        )
        if state_event is not None:
            events.append(event("issue_state_events", key, [state_event]))
    elif kind == "note":
        iid, note = _note(_attributes(payload, kind), payload)
        events.append(event("merge_request_note", f"{project}!{iid}/notes/{note['id']}", note))
    elif kind == "build":
        job = _job_hook(payload)
        events.append(event("job", f"{project}/jobs/{job['id']}", job))
    elif kind == "deployment":
        deployment = _deployment(payload, project, previous_deployment)
        events.append(event("deployment", f"{project}/deployments/{deployment['id']}", deployment))
    else:  # push
        for commit in _pushed_commits(payload):
            events.append(event("commit", f"{project}@{commit['id']}", commit))
            if commit.get("author_email"):
                author = {"name": commit.get("author_name"), "email": commit["author_email"]}
                events.append(event("git_author", str(commit["author_email"]).lower(), author))
    events.extend(event("user", str(u["id"]), u) for u in _accounts(payload))
    return list({e.id: e for e in events}.values())


def normalize_webhook(
    delivery: RawEvent,
    payload: Item,
    rules: MappingRules,
    previous: PreviousChange = lambda _id: None,
    previous_deployment: PreviousDeployment = lambda _id: None,
    previous_transition: PreviousTransition = lambda _id: None,
) -> WebhookRecords:
    """The records of one GitLab delivery (`delivery` is its stored raw event), pointing at it.

    The lookups find what is stored: `previous` the change (for ``merged_at``/``closed_at``),
    `previous_deployment` the deployment (the start, pipeline and sha a finished hook does not name),
    `previous_transition` an issue's close (who closed it, which a later hook does not name). Raises
    `MalformedDelivery` on a payload it cannot unwrap.
    """
    events = collector_events(
        payload,
        connection=delivery.connection,
        received_at=delivery.received_at,
        previous=previous,
        previous_deployment=previous_deployment,
        previous_transition=previous_transition,
    )
    normalized = normalize(events, rules)
    records: list[Record] = [r.model_copy(update={"raw_event_id": delivery.id}) for r in normalized.records]
    result = WebhookRecords(records=records)
    for raw_id, reason in normalized.skipped:
        (result.failures if reason.startswith(_FAILED) else result.skipped).append(f"{raw_id}: {reason}")
    return result
