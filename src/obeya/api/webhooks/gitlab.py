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
- The accounts the hook embeds whole (``user``, ``assignees``, ``reviewers``) → `Person` / `Identity`.

Other object kinds (job, deployment, push, issue, release events) are kept raw with the reason. Matching
a sync's records needs the connection to name the project by its path (``group/project``), not its id.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from obeya.api.webhooks.envelopes import MalformedDelivery
from obeya.connectors.gitlab.collector import SOURCE
from obeya.connectors.gitlab.normalizer import change_id, normalize
from obeya.connectors.raw import raw_event
from obeya.model.records import Change, RawEvent, Record
from obeya.normalize.rules import MappingRules

from .github import WebhookRecords

Item = dict[str, Any]

PreviousChange = Callable[[str], Change | None]
"""The stored change of an id, if any."""

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


def _accounts(payload: Item) -> list[Item]:
    found = [payload.get("user"), *(payload.get("assignees") or []), *(payload.get("reviewers") or [])]
    return [u for u in found if isinstance(u, dict) and u.get("id") is not None and u.get("username")]


def collector_events(
    payload: Item,
    *,
    connection: str | None,
    received_at: datetime,
    previous: PreviousChange = lambda _id: None,
) -> list[RawEvent]:
    """The raw events the collector would store for the objects of one hook (not to be stored).

    Raises `MalformedDelivery` for an object kind it does not unwrap, or an object not there to unwrap.
    """
    kind = str(payload.get("object_kind"))

    def event(event_type: str, key: str, item: Any) -> RawEvent:
        return raw_event(SOURCE, event_type, key, item, connection=connection, received_at=received_at)

    if kind not in ("merge_request", "pipeline"):
        raise MalformedDelivery(
            f"GitLab {kind} events are not normalized from webhooks yet (a sync brings them)"
        )
    attributes = _attributes(payload, kind)
    project = _project(payload, kind)
    events: list[RawEvent] = []
    if kind == "merge_request":
        iid = attributes.get("iid")
        mr = _merge_request(attributes, previous(change_id(project, str(iid))))
        events.append(event("merge_request", f"{project}!{mr['iid']}", mr))
    else:
        pipeline = _pipeline(attributes)
        events.append(event("pipeline", f"{project}/pipelines/{pipeline['id']}", pipeline))
        for build in payload.get("builds") or []:
            if isinstance(build, dict) and build.get("id") is not None:
                events.append(event("job", f"{project}/jobs/{build['id']}", _job(build, pipeline["id"])))
    events.extend(event("user", str(u["id"]), u) for u in _accounts(payload))
    return list({e.id: e for e in events}.values())


def normalize_webhook(
    delivery: RawEvent,
    payload: Item,
    rules: MappingRules,
    previous: PreviousChange = lambda _id: None,
) -> WebhookRecords:
    """The records of one GitLab delivery (`delivery` is its stored raw event), pointing at it.

    `previous` finds the stored change (for ``merged_at``/``closed_at``). Raises `MalformedDelivery` on a
    payload it cannot unwrap.
    """
    events = collector_events(
        payload, connection=delivery.connection, received_at=delivery.received_at, previous=previous
    )
    normalized = normalize(events, rules)
    records: list[Record] = [r.model_copy(update={"raw_event_id": delivery.id}) for r in normalized.records]
    result = WebhookRecords(records=records)
    for raw_id, reason in normalized.skipped:
        (result.failures if reason.startswith(_FAILED) else result.skipped).append(f"{raw_id}: {reason}")
    return result
