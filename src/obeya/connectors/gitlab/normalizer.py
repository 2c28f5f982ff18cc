"""Where a GitLab merge request becomes a `Change`: raw events to records, with no HTTP.

Pure functions of the raw events (and the mapping rules): a sync normalizes each page as it stores it, and
`obeya.connectors.sync.replay` normalizes the stored raw events again, with the same result.

Record ids, all under source ``gitlab`` (PROJECT as the connection names it, ``group/project`` or an id):
``PROJECT!IID`` (Change), ``PROJECT#IID`` (WorkItem), ``PROJECT#IID/created``, ``PROJECT#IID/closed@SECOND``,
``PROJECT#IID/reopened@SECOND`` (StatusTransition), ``PROJECT@SHA`` (Commit, from the repository's commits,
a merge request's commits or a webhook's push), ``PROJECT@SHA^N`` (CommitParent, N the parent's position),
``PROJECT/pipelines/ID`` (PipelineRun), ``PROJECT/jobs/ID`` (PipelineJob), ``PROJECT/deployments/ID``,
``user/ID`` (Person and Identity of a GitLab account), ``git/EMAIL`` (a commit author known by e-mail).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from obeya.connectors.base import Normalized
from obeya.connectors.people import People, bot_name
from obeya.connectors.raw import event_key
from obeya.connectors.times import parse_time, required_time
from obeya.model.ids import record_id
from obeya.model.records import (
    Change,
    ChangeComment,
    ChangeCommit,
    Commit,
    CommitParent,
    Deployment,
    PipelineJob,
    PipelineRun,
    RawEvent,
    Record,
    Review,
    RunResult,
    StatusTransition,
    WorkItem,
)
from obeya.model.vocabulary import EnvironmentClass, FlowState
from obeya.normalize.rules import NAMED_DEPLOYMENT, MappingRules, named_deployment_result

from .collector import SOURCE

Item = dict[str, Any]

APPROVED_NOTE = "approved this merge request"
UNAPPROVED_NOTE = "unapproved this merge request"
_BOT_USERNAME = re.compile(r"^(project|group)_\d+_bot(_[0-9a-f]+)?\d*$|\[bot\]$")


@dataclass(frozen=True)
class _Context:
    event: RawEvent
    project: str
    rest: str
    rules: MappingRules
    approval_notes: dict[str, set[str]]  # PROJECT!IID → ids of users with an approval note
    closes_recorded: frozenset[str] = frozenset()  # PROJECT#IID of issues whose state events record a close
    tiers: dict[tuple[str, str], str] | None = None  # (PROJECT, environment name) → the environment's tier

    @property
    def raw_event_id(self) -> str:
        return self.event.id


class _Skip(Exception):
    """A raw event that rightly gives no record; the message says why."""


# --- people --------------------------------------------------------------------------------------------


def is_bot(user: Item) -> bool:
    """Bots: ``bot: true`` (``/users``), a name or username ending in ``[bot]``, or an access token's user."""
    if user.get("bot") is True:
        return True
    return any(_BOT_USERNAME.search(str(user.get(name) or "")) for name in ("username", "name"))


PEOPLE = People(SOURCE, "gitlab", is_bot)
person_id = PEOPLE.person_id
git_person_id = PEOPLE.git_person_id


def _user(ctx: _Context, user: Item) -> list[Record]:
    return PEOPLE.account(
        ctx.raw_event_id,
        user,
        display_name=(str(user.get("name") or "").strip() or user["username"]),
        username=user["username"],
        email=user.get("email") or user.get("public_email") or None,
    )


def _git_author(ctx: _Context, author: Item) -> list[Record]:
    email = str(author["email"])
    name = str(author.get("name") or "").strip()
    return PEOPLE.git_author(
        ctx.raw_event_id,
        email,
        display_name=name or email.lower(),
        username=name or None,
        is_bot=bot_name(name),
    )


# --- code ----------------------------------------------------------------------------------------------


def change_id(project: str, iid: int | str) -> str:
    """The id of the `Change` for merge request `iid` of `project`."""
    return record_id(SOURCE, f"{project}!{iid}")


def merge_method(mr: Item) -> str | None:
    """How a merged merge request was merged, as far as its fields tell.

    ``squash`` when its commits were squashed; ``merge`` when GitLab made a merge commit; ``rebase``
    (fast-forward) when it was merged without either; None when it was not merged.
    """
    if not mr.get("merged_at") and mr.get("state") != "merged":
        return None
    if mr.get("squash") or mr.get("squash_commit_sha"):
        return "squash"
    return "merge" if mr.get("merge_commit_sha") else "rebase"


def _merge_request(ctx: _Context, mr: Item) -> list[Record]:
    merged_at = parse_time(mr.get("merged_at"))
    merged = merged_at is not None or mr.get("state") == "merged"
    state = "merged" if merged else ("open" if mr.get("state") in ("opened", "locked") else "closed")
    # The commit the target branch got: the merge commit, else (fast-forward) the squash commit, else
    # (fast-forward without squash) the head itself.
    landed = (mr.get("merge_commit_sha") or mr.get("squash_commit_sha") or mr.get("sha")) if merged else None
    return [
        Change(
            source=SOURCE,
            external_id=f"{ctx.project}!{mr['iid']}",
            raw_event_id=ctx.raw_event_id,
            repo=ctx.project,
            number=mr["iid"],
            title=mr.get("title") or "",
            branch=mr.get("source_branch"),
            base_branch=mr.get("target_branch"),
            author_id=person_id(mr.get("author")),
            state=state,
            created_at=required_time(mr.get("created_at"), "created_at"),
            merged_at=merged_at,
            closed_at=parse_time(mr.get("closed_at")) or (merged_at if merged else None),
            merge_commit_sha=landed or None,
            head_sha=mr.get("sha"),
            merge_method=merge_method(mr),
        )
    ]


def _commit(ctx: _Context, commit: Item) -> list[Record]:
    """A commit known outside a merge request (a webhook's push): the `Commit` and its parents."""
    return _commit_records(ctx.project, ctx.raw_event_id, commit)


def _merge_request_commit(ctx: _Context, commit: Item) -> list[Record]:
    records = _commit_records(ctx.project, ctx.raw_event_id, commit)
    records.append(
        ChangeCommit(
            source=SOURCE,
            external_id=f"{ctx.project}!{ctx.rest}@{commit['id']}",
            raw_event_id=ctx.raw_event_id,
            change_id=change_id(ctx.project, ctx.rest),
            commit_sha=commit["id"],
        )
    )
    return records


def _commit_records(project: str, raw_event_id: str, commit: Item) -> list[Record]:
    sha = commit["id"]
    email = commit.get("author_email")
    records: list[Record] = [
        Commit(
            source=SOURCE,
            external_id=f"{project}@{sha}",
            raw_event_id=raw_event_id,
            repo=project,
            sha=sha,
            message=commit.get("message") or commit.get("title") or "",
            author_id=git_person_id(email) if email else None,
            authored_at=required_time(
                commit.get("authored_date") or commit.get("created_at"), "authored_date"
            ),
            committed_at=parse_time(commit.get("committed_date")),
            additions=(commit.get("stats") or {}).get("additions"),
            deletions=(commit.get("stats") or {}).get("deletions"),
        ),
    ]
    for position, parent in enumerate(commit.get("parent_ids") or []):
        records.append(
            CommitParent(
                source=SOURCE,
                external_id=f"{project}@{sha}^{position}",
                raw_event_id=raw_event_id,
                repo=project,
                commit_sha=sha,
                parent_sha=parent,
                position=position,
            )
        )
    return records


def _note(ctx: _Context, note: Item) -> list[Record]:
    iid = ctx.rest.split("/", 1)[0]
    external_id = f"{ctx.project}!{iid}/notes/{note['id']}"
    created_at = required_time(note.get("created_at"), "created_at")
    if note.get("system"):
        body = str(note.get("body") or "").strip()
        state = {APPROVED_NOTE: "approved", UNAPPROVED_NOTE: "dismissed"}.get(body)
        if state is None:
            raise _Skip("system note (not an approval)")
        return [
            Review(
                source=SOURCE,
                external_id=external_id,
                raw_event_id=ctx.raw_event_id,
                change_id=change_id(ctx.project, iid),
                reviewer_id=person_id(note.get("author")),
                state=state,
                submitted_at=created_at,
            )
        ]
    position = note.get("position") if isinstance(note.get("position"), dict) else {}
    return [
        ChangeComment(
            source=SOURCE,
            external_id=external_id,
            raw_event_id=ctx.raw_event_id,
            change_id=change_id(ctx.project, iid),
            author_id=person_id(note.get("author")),
            created_at=created_at,
            body=note.get("body"),
            path=(position or {}).get("new_path") or (position or {}).get("old_path"),
        )
    ]


def _approvals(ctx: _Context, approvals: Item) -> list[Record]:
    """Approvers without an approval note among the merge request's notes (the note has the time)."""
    noted = ctx.approval_notes.get(f"{ctx.project}!{ctx.rest}", set())
    records: list[Record] = []
    for entry in approvals.get("approved_by") or []:
        user = entry.get("user") if isinstance(entry, dict) else None
        if not isinstance(user, dict) or str(user.get("id")) in noted:
            continue
        # GitLab 17.x+ says when; older versions do not, and the answer's updated_at (the merge
        # request's last update) is the latest the approval can have been given.
        at = parse_time(entry.get("approved_at")) or parse_time(approvals.get("updated_at"))
        if at is None:
            continue
        records.append(
            Review(
                source=SOURCE,
                external_id=f"{ctx.project}!{ctx.rest}/approvals/{user['id']}",
                raw_event_id=ctx.raw_event_id,
                change_id=change_id(ctx.project, ctx.rest),
                reviewer_id=person_id(user),
                state="approved",
                submitted_at=at,
            )
        )
    if not records:
        raise _Skip("no approval beyond those its notes record")
    return records


# --- planning ------------------------------------------------------------------------------------------


def _issue(ctx: _Context, issue: Item) -> list[Record]:
    labels = [label["name"] if isinstance(label, dict) else str(label) for label in issue.get("labels") or []]
    status = "closed" if issue.get("state") == "closed" else "open"
    mapping = ctx.rules.status(status)
    opened = ctx.rules.status("open")
    closed_at = parse_time(issue.get("closed_at"))
    created_at = required_time(issue.get("created_at"), "created_at")
    key = f"{ctx.project}#{issue['iid']}"
    tool_type = str(issue.get("issue_type") or "issue")
    assignees = issue.get("assignees") or ([issue["assignee"]] if issue.get("assignee") else [])
    item_id = record_id(SOURCE, key)
    records: list[Record] = [
        WorkItem(
            source=SOURCE,
            external_id=key,
            raw_event_id=ctx.raw_event_id,
            key=key,
            title=issue.get("title") or "",
            project=ctx.project,
            tool_type=tool_type,
            flow_item_type=ctx.rules.flow_item_type(tool_type, labels),
            status=status,
            flow_state=mapping.flow_state,
            stage=mapping.stage,
            assignee_id=person_id(assignees[0]) if assignees else None,
            labels=labels,
            created_at=created_at,
            done_at=closed_at if status == "closed" and mapping.flow_state is FlowState.DONE else None,
            canceled_at=closed_at
            if status == "closed" and mapping.flow_state is FlowState.CANCELED
            else None,
            updated_at=parse_time(issue.get("updated_at")),
        ),
        StatusTransition(
            source=SOURCE,
            external_id=f"{key}/created",
            raw_event_id=ctx.raw_event_id,
            work_item_id=item_id,
            at=created_at,
            to_status="open",
            to_flow_state=opened.flow_state,
            to_stage=opened.stage,
            author_id=person_id(issue.get("author")),
        ),
    ]
    if status == "closed" and closed_at is not None and key not in ctx.closes_recorded:
        # Without state events (an instance before them, a webhook) the last close is all that is known.
        records.append(
            StatusTransition(
                source=SOURCE,
                external_id=f"{key}/closed",
                raw_event_id=ctx.raw_event_id,
                work_item_id=item_id,
                at=closed_at,
                from_status="open",
                to_status="closed",
                from_flow_state=opened.flow_state,
                to_flow_state=mapping.flow_state,
                from_stage=opened.stage,
                to_stage=mapping.stage,
                author_id=person_id(issue.get("closed_by")),
            )
        )
    return records


_STATE_STATUS = {"closed": "closed", "reopened": "open", "opened": "open"}
"""A resource state event's ``state`` → the issue status it leaves (``merged`` is for merge requests)."""


def state_transition_key(issue_key: str, state: str, at: datetime) -> str:
    """The external id of an issue's close or reopen: ``PROJECT#IID/closed@2024-05-01T10:00:00Z``.

    Made of the state and the second it happened, not GitLab's event id, so a webhook's close or reopen
    (which carries no event id) and the sync's state event give the same transition.
    """
    moment = at.astimezone(UTC) if at.tzinfo else at
    return f"{issue_key}/{state}@{moment.strftime('%Y-%m-%dT%H:%M:%SZ')}"


def state_transition(
    ctx: _Context, issue_key: str, from_status: str, to_status: str, at: datetime, user: Any
) -> StatusTransition:
    """The transition of one close (`to_status` ``closed``) or reopen (``open``) of an issue."""
    before, after = ctx.rules.status(from_status), ctx.rules.status(to_status)
    return StatusTransition(
        source=SOURCE,
        external_id=state_transition_key(issue_key, "closed" if to_status == "closed" else "reopened", at),
        raw_event_id=ctx.raw_event_id,
        work_item_id=record_id(SOURCE, issue_key),
        at=at,
        from_status=from_status,
        to_status=to_status,
        from_flow_state=before.flow_state,
        to_flow_state=after.flow_state,
        from_stage=before.stage,
        to_stage=after.stage,
        author_id=person_id(user),
    )


def _issue_state_events(ctx: _Context, state_events: list[Item]) -> list[Record]:
    """Each close and reopen of an issue, in order, as a transition from the status before it.

    The list does not hold the creation (the issue opens with ``/created``). A ``closed`` while closed,
    or an ``opened`` while open, changes nothing and gives no transition; a ``reopened`` is always from
    closed (a webhook's list holds that one event alone).
    """
    key = f"{ctx.project}#{ctx.rest}"
    dated = [
        (required_time(e.get("created_at"), "created_at"), int(e.get("id") or 0), e) for e in state_events
    ]
    status = "open"
    records: list[Record] = []
    for at, _, state_event in sorted(dated, key=lambda d: (d[0], d[1])):
        state = str(state_event.get("state") or "")
        to_status = _STATE_STATUS.get(state)
        if to_status is None or (to_status == status and state != "reopened"):
            continue
        from_status = "closed" if to_status == "open" else "open"
        records.append(state_transition(ctx, key, from_status, to_status, at, state_event.get("user")))
        status = to_status
    if not records:
        raise _Skip("no close or reopen")
    return records


# --- CI/CD ---------------------------------------------------------------------------------------------

_RESULTS: dict[str, RunResult] = {
    "success": "success",
    "failed": "failure",
    "canceled": "canceled",
    "canceling": "canceled",
    "skipped": "skipped",
}


def run_result(status: Any) -> RunResult:
    """A pipeline's or job's result: ``created``, ``pending``, ``running``, ``manual``... are running."""
    return _RESULTS.get(str(status or "").lower(), "running")


def job_result(status: Any) -> RunResult:
    """A job's result; a ``manual`` job that nobody started did not run (skipped)."""
    return "skipped" if str(status or "").lower() == "manual" else run_result(status)


_MR_REF = re.compile(r"^refs/merge-requests/(\d+)/(head|merge|train)$")


def pipeline_id(project: str, pipeline: int | str) -> str:
    """The id of the `PipelineRun` of pipeline `pipeline` of `project`."""
    return record_id(SOURCE, f"{project}/pipelines/{pipeline}")


def _pipeline(ctx: _Context, pipeline: Item) -> list[Record]:
    result = run_result(pipeline.get("status"))
    ref = str(pipeline.get("ref") or "")
    merge_request = _MR_REF.match(ref)
    return [
        PipelineRun(
            source=SOURCE,
            external_id=f"{ctx.project}/pipelines/{pipeline['id']}",
            raw_event_id=ctx.raw_event_id,
            pipeline=pipeline.get("name") or ctx.project,
            repo=ctx.project,
            commit_sha=pipeline.get("sha"),
            branch=None if merge_request else (ref or None),
            change_id=change_id(ctx.project, merge_request.group(1)) if merge_request else None,
            trigger=pipeline.get("source"),
            result=result,
            created_at=required_time(pipeline.get("created_at"), "created_at"),
            started_at=parse_time(pipeline.get("started_at")),
            finished_at=(parse_time(pipeline.get("finished_at")) or parse_time(pipeline.get("updated_at")))
            if result != "running"
            else None,
            url=pipeline.get("web_url"),
        )
    ]


def _job(ctx: _Context, job: Item) -> list[Record]:
    environment = job.get("environment")
    if isinstance(environment, dict):
        environment = environment.get("name")
    records: list[Record] = [
        PipelineJob(
            source=SOURCE,
            external_id=f"{ctx.project}/jobs/{job['id']}",
            raw_event_id=ctx.raw_event_id,
            run_id=pipeline_id(ctx.project, (job.get("pipeline") or {})["id"]),
            name=job.get("name") or str(job["id"]),
            stage=job.get("stage"),
            result=job_result(job.get("status")),
            environment=str(environment) if environment else None,
            started_at=parse_time(job.get("started_at")),
            finished_at=parse_time(job.get("finished_at")),
        )
    ]
    if not environment:  # a job with an environment has GitLab's own deployment: that fact wins
        records += _named_deployment(ctx, job)
    return records


_NOT_STARTED = frozenset({"created", "pending", "waiting_for_resource", "preparing", "scheduled", "manual"})
"""Job statuses of a job that has not run (yet): its name makes no deployment of it."""


def _named_deployment(ctx: _Context, job: Item) -> list[Record]:
    """A job without an environment whose name (or stage) matches `rules.deployments.job_patterns`, and
    that really ran: a `Deployment` ``PROJECT/jobs/ID/deployment-by-name``."""
    name = str(job.get("name") or "")
    rule = ctx.rules.deployment_name_rule()
    if rule.matched_pattern(name) is None:
        return []
    status = str(job.get("status") or "").lower()
    result = named_deployment_result(job_result(status))
    started = parse_time(job.get("started_at"))
    if result is None or started is None or status in _NOT_STARTED:
        return []
    pipeline = job.get("pipeline") or {}
    return [
        Deployment(
            source=SOURCE,
            external_id=f"{ctx.project}/jobs/{job['id']}/{NAMED_DEPLOYMENT}",
            raw_event_id=ctx.raw_event_id,
            service=ctx.project,
            environment=name,
            environment_class=ctx.rules.job_environment_class(name, rule),
            repo=ctx.project,
            commit_sha=(job.get("commit") or {}).get("id") or pipeline.get("sha"),
            pipeline_run_id=pipeline_id(ctx.project, pipeline["id"]),
            result=result,
            started_at=started,
            finished_at=parse_time(job.get("finished_at")) if result != "running" else None,
            url=job.get("web_url") or None,
        )
    ]


_DEPLOYMENT_RESULTS = {
    "success": "success",
    "failed": "failure",
    "canceled": "canceled",
    "skipped": "canceled",
}


def deployment_result(status: Any) -> str:
    """A deployment's result: ``created``, ``running`` and ``blocked`` (waiting for approval) are running."""
    return _DEPLOYMENT_RESULTS.get(str(status or "").lower(), "running")


def environment_class(rules: MappingRules, name: str, tier: Any) -> EnvironmentClass:
    """An environment's class: the mapping rules by its name; when no rule knows the name, GitLab's own
    ``tier`` (production, staging, testing, development, other: the same words)."""
    by_name = rules.environment_class(name)
    if by_name is EnvironmentClass.OTHER and str(tier or "") in {c.value for c in EnvironmentClass}:
        return EnvironmentClass(str(tier))
    return by_name


def _deployment(ctx: _Context, deployment: Item) -> list[Record]:
    environment = deployment.get("environment") or {}
    name = str(environment.get("name") if isinstance(environment, dict) else environment or "") or "unknown"
    tier = environment.get("tier") if isinstance(environment, dict) else None
    tier = tier or (ctx.tiers or {}).get((ctx.project, name))
    job = deployment.get("deployable") if isinstance(deployment.get("deployable"), dict) else {}
    job = job or {}
    pipeline = job.get("pipeline") if isinstance(job.get("pipeline"), dict) else None
    result = deployment_result(deployment.get("status"))
    return [
        Deployment(
            source=SOURCE,
            external_id=f"{ctx.project}/deployments/{deployment['id']}",
            raw_event_id=ctx.raw_event_id,
            service=ctx.project,
            environment=name,
            environment_class=environment_class(ctx.rules, name, tier),
            repo=ctx.project,
            commit_sha=deployment.get("sha"),
            pipeline_run_id=pipeline_id(ctx.project, pipeline["id"]) if pipeline else None,
            result=result,
            started_at=parse_time(job.get("started_at")) or parse_time(deployment.get("created_at")),
            finished_at=(parse_time(job.get("finished_at")) or parse_time(deployment.get("updated_at")))
            if result != "running"
            else None,
            url=job.get("web_url") or None,
        )
    ]


def _environment(ctx: _Context, environment: Item) -> list[Record]:
    """No record: the model has no environment; its tier is read by `normalize` for its deployments."""
    return []


Handler = Callable[[_Context, Any], list[Record]]

HANDLERS: dict[str, Handler] = {
    "user": _user,
    "git_author": _git_author,
    "merge_request": _merge_request,
    "merge_request_commit": _merge_request_commit,
    "commit": _commit,
    "merge_request_note": _note,
    "merge_request_approvals": _approvals,
    "issue": _issue,
    "issue_state_events": _issue_state_events,
    "pipeline": _pipeline,
    "job": _job,
    "environment": _environment,
    "deployment": _deployment,
}
"""Raw event type → the function that maps its item to records."""

_SEPARATORS = {
    "merge_request": "!",
    "merge_request_commit": "!",
    "commit": "@",
    "merge_request_note": "!",
    "merge_request_approvals": "!",
    "issue": "#",
    "issue_state_events": "#",
    "pipeline": "/pipelines/",
    "job": "/jobs/",
    "environment": "/environments/",
    "deployment": "/deployments/",
}


def _place(event: RawEvent) -> tuple[str, str]:
    """The project and the rest of a raw event's key (``PROJECT!5@SHA`` → ``PROJECT``, ``5@SHA``)."""
    key = event_key(event)
    separator = _SEPARATORS.get(event.event_type)
    if separator is None:
        return "", key
    project, _, rest = key.rpartition(separator) if separator != "!" else key.partition(separator)
    if event.event_type == "merge_request_commit":
        rest = rest.split("@", 1)[0]
    return project, rest


def _approval_notes(events: list[RawEvent]) -> dict[str, set[str]]:
    """For each merge request, the users whose approval a note records."""
    found: dict[str, set[str]] = defaultdict(set)
    for event in events:
        if event.event_type != "merge_request_note":
            continue
        note = json.loads(event.payload)
        if note.get("system") and str(note.get("body") or "").strip() == APPROVED_NOTE:
            project, rest = _place(event)
            author = note.get("author") or {}
            found[f"{project}!{rest.split('/', 1)[0]}"].add(str(author.get("id")))
    return found


def _closes_recorded(events: list[RawEvent]) -> frozenset[str]:
    """The issues (``PROJECT#IID``) whose state events among `events` record at least one close."""
    found: set[str] = set()
    for event in events:
        if event.event_type != "issue_state_events":
            continue
        state_events = json.loads(event.payload)
        if isinstance(state_events, list) and any(
            isinstance(e, dict) and e.get("state") == "closed" for e in state_events
        ):
            found.add(event_key(event))
    return frozenset(found)


def _environment_tiers(events: Iterable[RawEvent]) -> dict[tuple[str, str], str]:
    """(PROJECT, environment name) → tier, from the ``environment`` raw events among `events`."""
    found: dict[tuple[str, str], str] = {}
    for event in events:
        if event.event_type != "environment":
            continue
        environment = json.loads(event.payload)
        if isinstance(environment, dict) and environment.get("name") and environment.get("tier"):
            found[(_place(event)[0], str(environment["name"]))] = str(environment["tier"])
    return found


def normalize(
    events: Iterable[RawEvent], rules: MappingRules | None = None, context: Iterable[RawEvent] = ()
) -> Normalized:
    """The records of GitLab raw events.

    A merge request's approvals are compared with its notes among `events`, and an issue with its state
    events (the collector stores them in one batch; replay reads them together): an issue whose state
    events record its closes gets one transition per close and reopen instead of one for the last close.
    The stored environments (`context`, and any among `events`) give a deployment whose embedded
    environment has no ``tier`` the tier of its environment.
    An event that cannot be normalized is reported in `skipped`; it never stops the others.
    """
    rules = rules or MappingRules()
    events = list(events)
    approval_notes = _approval_notes(events)
    closes_recorded = _closes_recorded(events)
    tiers = _environment_tiers([*context, *events])
    result = Normalized()
    for event in events:
        handler = HANDLERS.get(event.event_type)
        if handler is None:
            result.skipped.append((event.id, f"no normalizer for {event.event_type!r}"))
            continue
        project, rest = _place(event)
        try:
            item = json.loads(event.payload)
            ctx = _Context(event, project, rest, rules, approval_notes, closes_recorded, tiers)
            records = handler(ctx, item)
        except _Skip as skip:
            result.skipped.append((event.id, str(skip)))
            continue
        except (ValidationError, ValueError, KeyError, TypeError, IndexError) as error:
            result.skipped.append((event.id, f"could not normalize: {type(error).__name__}: {error}"[:500]))
            continue
        result.records.extend(records)
        result.normalized_events += 1
    return result
