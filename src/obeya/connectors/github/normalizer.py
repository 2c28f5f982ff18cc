"""Where a GitHub pull request becomes a `Change`: raw events to records, with no HTTP.

Pure functions of the raw events (and the mapping rules): a sync normalizes each page as it stores it, and
`obeya.connectors.sync.replay` normalizes the stored raw events again, with the same result.

Record ids, all under source ``github``:
``owner/name#N`` (Change, WorkItem), ``owner/name@SHA`` (Commit), ``owner/name/runs/ID`` (PipelineRun),
``owner/name/jobs/ID`` (PipelineJob), ``owner/name/deployments/ID``, ``owner/name/releases/ID``,
``user/ID`` (Person and Identity of a GitHub account), ``git/EMAIL`` (a git author with no account);
an issue's status transitions: ``owner/name#N/created`` and ``owner/name#N/closed@SECOND`` /
``owner/name#N/reopened@SECOND`` (by state and second, not by issue-event id, so the transition a webhook
gives, which carries no event id, is the one a sync gives; see `state_transition_key`).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
import pyarrow as pa
from pydantic import ValidationError

from obeya.connectors import times
from obeya.connectors.base import Normalized
from obeya.connectors.github.collector import SOURCE, latest_status
from obeya.connectors.people import People, bot_name
from obeya.connectors.raw import event_key
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
    Release,
    Review,
    RunResult,
    StatusTransition,
    WorkItem,
)
from obeya.model.vocabulary import FlowState
from obeya.normalize.rules import NAMED_DEPLOYMENT, MappingRules, named_deployment_result

Item = dict[str, Any]


class RawItem(NamedTuple):
    """One answer item to normalize: its raw event's id and type, its collector key, and its parsed JSON.

    (Tuples: replay makes one per raw event, and a tuple costs a fraction of a dataclass to build.)"""

    raw_event_id: str
    event_type: str
    key: str
    item: Any


class _Context(NamedTuple):
    raw_event_id: str
    repo: str
    path: list[str]
    rules: MappingRules
    statuses: dict[str, list[Item]]
    closed_at: dict[str, Any]  # raw event id of an issue's last close → the issue's own closed_at
    deployed_runs: frozenset[str]  # "owner/name/RUN_ID" of the runs that made a GitHub deployment


# --- times ---------------------------------------------------------------------------------------------


def parse_time(value: Any) -> datetime | None:
    """A time as records store it (naive UTC); GitHub's own ``2024-05-01T10:00:00Z`` read directly.

    Same result as `obeya.connectors.times.parse_time`, converted to UTC, which every other shape goes
    through; replay parses a few hundred thousand of these.
    """
    if type(value) is str and len(value) == 20 and value[19] == "Z" and value[10] == "T":
        try:
            return datetime.fromisoformat(value[:19])
        except ValueError:
            pass
    moment = times.parse_time(value)
    return moment.astimezone(UTC).replace(tzinfo=None) if moment is not None else None


def required_time(value: Any, what: str = "a time") -> datetime:
    """Like `parse_time`, for a time that must be there: a missing one is an error naming `what`."""
    moment = parse_time(value)
    if moment is None:
        raise ValueError(f"{what} is missing")
    return moment


# --- people --------------------------------------------------------------------------------------------


def is_bot(user: Item) -> bool:
    """GitHub Apps and bot accounts: type ``Bot`` or a login ending in ``[bot]``."""
    return user.get("type") == "Bot" or bot_name(user.get("login", ""))


PEOPLE = People(SOURCE, "github", is_bot)
person_id = PEOPLE.person_id
git_person_id = PEOPLE.git_person_id


def _user(ctx: _Context, user: Item) -> list[Record]:
    email = user.get("email") or None
    return PEOPLE.account(
        ctx.raw_event_id,
        user,
        display_name=user.get("name") or user["login"],
        username=user["login"],
        email=email,
    )


def _git_author(ctx: _Context, author: Item) -> list[Record]:
    email = str(author["email"])
    return PEOPLE.git_author(
        ctx.raw_event_id,
        email,
        display_name=author.get("name") or email.lower(),
        username=author.get("name"),
        is_bot=bot_name(author.get("name", "")),
    )


# --- code ----------------------------------------------------------------------------------------------


def change_id(repo: str, number: int | str) -> str:
    """The id of the `Change` for pull request `number` of `repo`."""
    return record_id(SOURCE, f"{repo}#{number}")


def _pull_request(ctx: _Context, pr: Item) -> list[Record]:
    merged_at = parse_time(pr.get("merged_at"))
    state = "merged" if merged_at else ("open" if pr.get("state") == "open" else "closed")
    return [
        Change(
            source=SOURCE,
            external_id=f"{ctx.repo}#{pr['number']}",
            raw_event_id=ctx.raw_event_id,
            repo=ctx.repo,
            number=pr["number"],
            title=pr.get("title") or "",
            branch=(pr.get("head") or {}).get("ref"),
            base_branch=(pr.get("base") or {}).get("ref"),
            author_id=person_id(pr.get("user")),
            state=state,
            created_at=required_time(pr.get("created_at"), "created_at"),
            merged_at=merged_at,
            closed_at=parse_time(pr.get("closed_at")),
            # GitHub computes a test merge commit for open and unmerged pull requests: only a merged one's
            # merge_commit_sha is in the repository's history.
            merge_commit_sha=(pr.get("merge_commit_sha") or None) if merged_at else None,
            head_sha=(pr.get("head") or {}).get("sha"),
            # The REST API does not say how a pull request was merged (GraphQL's mergeCommit does not
            # either); leave it unknown rather than guess.
            merge_method=None,
            additions=pr.get("additions"),
            deletions=pr.get("deletions"),
        )
    ]


def _commit(ctx: _Context, item: Item) -> list[Record]:
    sha = item["sha"]
    detail = item.get("commit") or {}
    author = detail.get("author") or {}
    author_id = person_id(item.get("author"))
    if author_id is None and author.get("email"):
        author_id = git_person_id(author["email"])
    stats = item.get("stats") or {}
    records: list[Record] = [
        Commit(
            source=SOURCE,
            external_id=f"{ctx.repo}@{sha}",
            raw_event_id=ctx.raw_event_id,
            repo=ctx.repo,
            sha=sha,
            message=detail.get("message") or "",
            author_id=author_id,
            authored_at=required_time(author.get("date"), "commit.author.date"),
            committed_at=parse_time((detail.get("committer") or {}).get("date")),
            additions=stats.get("additions"),
            deletions=stats.get("deletions"),
        )
    ]
    for position, parent in enumerate(item.get("parents") or []):
        records.append(
            CommitParent(
                source=SOURCE,
                external_id=f"{ctx.repo}@{sha}^{position}",
                raw_event_id=ctx.raw_event_id,
                repo=ctx.repo,
                commit_sha=sha,
                parent_sha=parent["sha"],
                position=position,
            )
        )
    return records


def _pull_request_commit(ctx: _Context, item: Item) -> list[Record]:
    number = ctx.path[0]
    return [
        ChangeCommit(
            source=SOURCE,
            external_id=f"{ctx.repo}#{number}@{item['sha']}",
            raw_event_id=ctx.raw_event_id,
            change_id=change_id(ctx.repo, number),
            commit_sha=item["sha"],
        )
    ]


_REVIEW_STATES = {
    "APPROVED": "approved",
    "CHANGES_REQUESTED": "changes_requested",
    "COMMENTED": "commented",
    "DISMISSED": "dismissed",
}


def _review(ctx: _Context, review: Item) -> list[Record]:
    state = _REVIEW_STATES.get(str(review.get("state", "")).upper())
    if state is None or not review.get("submitted_at"):
        raise _Skip(f"review state {review.get('state')!r} is not a submitted review")
    return [
        Review(
            source=SOURCE,
            external_id=f"{ctx.repo}#{ctx.path[0]}/reviews/{review['id']}",
            raw_event_id=ctx.raw_event_id,
            change_id=change_id(ctx.repo, ctx.path[0]),
            reviewer_id=person_id(review.get("user")),
            state=state,
            submitted_at=required_time(review.get("submitted_at"), "submitted_at"),
        )
    ]


def _review_comment(ctx: _Context, comment: Item) -> list[Record]:
    return [
        ChangeComment(
            source=SOURCE,
            external_id=f"{ctx.repo}#{ctx.path[0]}/comments/{comment['id']}",
            raw_event_id=ctx.raw_event_id,
            change_id=change_id(ctx.repo, ctx.path[0]),
            author_id=person_id(comment.get("user")),
            created_at=required_time(comment.get("created_at"), "created_at"),
            body=comment.get("body"),
            path=comment.get("path"),
        )
    ]


# --- planning ------------------------------------------------------------------------------------------


def _issue_status(issue: Item) -> str:
    return "closed" if issue.get("state") == "closed" else "open"


def _issue(ctx: _Context, issue: Item) -> list[Record]:
    if "pull_request" in issue:
        raise _Skip("pull request listed as an issue (collected as a change)")
    labels = [label["name"] if isinstance(label, dict) else str(label) for label in issue.get("labels") or []]
    status = _issue_status(issue)
    flow_state = ctx.rules.status(status).flow_state
    stage = ctx.rules.status(status).stage
    closed_at = parse_time(issue.get("closed_at"))
    if status == "closed" and issue.get("state_reason") == "not_planned":
        flow_state, stage = FlowState.CANCELED, None
    key = f"{ctx.repo}#{issue['number']}"
    created_at = required_time(issue.get("created_at"), "created_at")
    opened = ctx.rules.status("open")
    return [
        WorkItem(
            source=SOURCE,
            external_id=f"{ctx.repo}#{issue['number']}",
            raw_event_id=ctx.raw_event_id,
            key=f"{ctx.repo}#{issue['number']}",
            title=issue.get("title") or "",
            project=ctx.repo,
            tool_type="issue",
            flow_item_type=ctx.rules.flow_item_type("issue", labels),
            status=status,
            flow_state=flow_state,
            stage=stage,
            assignee_id=person_id(issue.get("assignee")),
            labels=labels,
            created_at=created_at,
            done_at=closed_at if flow_state is FlowState.DONE else None,
            canceled_at=closed_at if flow_state is FlowState.CANCELED else None,
            updated_at=parse_time(issue.get("updated_at")),
        ),
        # The opening: GitHub lists no issue event for it (an `issues` webhook ``opened`` says the same).
        StatusTransition(
            source=SOURCE,
            external_id=f"{key}/created",
            raw_event_id=ctx.raw_event_id,
            work_item_id=record_id(SOURCE, key),
            at=created_at,
            to_status="open",
            to_flow_state=opened.flow_state,
            to_stage=opened.stage,
            author_id=person_id(issue.get("user")),
        ),
    ]


_ISSUE_TRANSITIONS = {"closed": ("open", "closed"), "reopened": ("closed", "open")}


def state_transition_key(issue_key: str, state: str, at: datetime) -> str:
    """The external id of an issue's close or reopen: ``owner/name#N/closed@2024-05-01T10:00:00Z``.

    Made of the state (``closed``, ``reopened``) and the second it happened, not GitHub's issue-event id,
    so the transition of an `issues` webhook (which names no event) and the sync's issue event are one.
    """
    return f"{issue_key}/{state}@{at.strftime('%Y-%m-%dT%H:%M:%SZ')}"


def _issue_event(ctx: _Context, event: Item) -> list[Record]:
    kind = str(event.get("event"))
    transition = _ISSUE_TRANSITIONS.get(kind)
    if transition is None:
        raise _Skip(f"issue event {event.get('event')!r} does not change the status")
    from_status, to_status = transition
    # The last close of a closed issue is dated by the issue's closed_at (a webhook knows only that; the
    # event can be a second later).
    at = required_time(ctx.closed_at.get(ctx.raw_event_id) or event.get("created_at"), "created_at")
    key = f"{ctx.repo}#{ctx.path[0]}"
    to_state = ctx.rules.status(to_status)
    from_state = ctx.rules.status(from_status)
    if to_status == "closed" and event.get("state_reason") == "not_planned":
        to_state = type(to_state)(FlowState.CANCELED, None)
    return [
        StatusTransition(
            source=SOURCE,
            external_id=state_transition_key(key, kind, at),
            raw_event_id=ctx.raw_event_id,
            work_item_id=record_id(SOURCE, key),
            at=at,
            from_status=from_status,
            to_status=to_status,
            from_flow_state=from_state.flow_state,
            to_flow_state=to_state.flow_state,
            from_stage=from_state.stage,
            to_stage=to_state.stage,
            author_id=person_id(event.get("actor")),
        )
    ]


# --- CI/CD ---------------------------------------------------------------------------------------------

_CONCLUSIONS: dict[str, RunResult] = {
    "success": "success",
    "failure": "failure",
    "timed_out": "failure",
    "startup_failure": "failure",
    "action_required": "failure",
    "cancelled": "canceled",
    "skipped": "skipped",
    "neutral": "skipped",
    "stale": "skipped",
}


def run_result(status: Any, conclusion: Any) -> RunResult:
    """A workflow run's or job's result: its conclusion once it has one, else still running."""
    if conclusion:
        return _CONCLUSIONS.get(str(conclusion).lower(), "failure")
    return "running"


def _workflow_run(ctx: _Context, run: Item) -> list[Record]:
    result = run_result(run.get("status"), run.get("conclusion"))
    pulls = run.get("pull_requests") or []
    return [
        PipelineRun(
            source=SOURCE,
            external_id=f"{ctx.repo}/runs/{run['id']}",
            raw_event_id=ctx.raw_event_id,
            pipeline=run.get("name") or run.get("path") or str(run.get("workflow_id")),
            repo=ctx.repo,
            commit_sha=run.get("head_sha"),
            branch=run.get("head_branch"),
            change_id=change_id(ctx.repo, pulls[0]["number"]) if pulls else None,
            trigger=run.get("event"),
            result=result,
            attempt=run.get("run_attempt") or 1,
            created_at=required_time(run.get("created_at"), "created_at"),
            started_at=parse_time(run.get("run_started_at")),
            finished_at=parse_time(run.get("updated_at")) if result != "running" else None,
            url=run.get("html_url"),
        )
    ]


def _workflow_job(ctx: _Context, job: Item) -> list[Record]:
    records: list[Record] = [
        PipelineJob(
            source=SOURCE,
            external_id=f"{ctx.repo}/jobs/{job['id']}",
            raw_event_id=ctx.raw_event_id,
            run_id=record_id(SOURCE, f"{ctx.repo}/runs/{job['run_id']}"),
            name=job.get("name") or str(job["id"]),
            result=run_result(job.get("status"), job.get("conclusion")),
            attempt=job.get("run_attempt") or 1,
            started_at=parse_time(job.get("started_at")),
            finished_at=parse_time(job.get("completed_at")),
        )
    ]
    return records + _named_deployment(ctx, job)


def _named_deployment(ctx: _Context, job: Item) -> list[Record]:
    """A workflow job whose name matches `rules.deployments.job_patterns` and that really ran: a
    `Deployment` ``owner/name/jobs/ID/deployment-by-name``.

    Deployment facts win: none for a job that made a GitHub deployment (a `workflow_job` webhook's
    ``deployment``) or whose run did (a deployment status linking to the run, `deployed_runs`)."""
    name = str(job.get("name") or "")
    rule = ctx.rules.deployment_name_rule()
    if rule.matched_pattern(name) is None:
        return []
    if isinstance(job.get("deployment"), dict) or f"{ctx.repo}/{job.get('run_id')}" in ctx.deployed_runs:
        return []  # GitHub's deployment of that job or run is the deployment
    result = named_deployment_result(run_result(job.get("status"), job.get("conclusion")))
    started = parse_time(job.get("started_at"))
    if result is None or started is None or str(job.get("status")) not in ("in_progress", "completed"):
        return []  # skipped, or queued/waiting: not run (yet)
    return [
        Deployment(
            source=SOURCE,
            external_id=f"{ctx.repo}/jobs/{job['id']}/{NAMED_DEPLOYMENT}",
            raw_event_id=ctx.raw_event_id,
            service=ctx.repo,
            environment=name,
            environment_class=ctx.rules.job_environment_class(name, rule),
            repo=ctx.repo,
            commit_sha=job.get("head_sha"),
            pipeline_run_id=record_id(SOURCE, f"{ctx.repo}/runs/{job['run_id']}"),
            result=result,
            started_at=started,
            finished_at=parse_time(job.get("completed_at")) if result != "running" else None,
            url=job.get("html_url") or None,
        )
    ]


_DEPLOYMENT_RESULTS = {
    "success": "success",
    "inactive": "success",  # superseded by a later deployment to the same environment: it had succeeded
    "failure": "failure",
    "error": "failure",
}


def _finished_at(statuses: list[Item]) -> datetime | None:
    """When the deployment ended: its first final status (an ``inactive`` one only marks it superseded)."""
    ended = sorted(str(s["created_at"]) for s in statuses if str(s.get("state", "")).lower() in _ENDED)
    if ended:
        return parse_time(ended[0])
    latest = latest_status(statuses)
    return parse_time(latest.get("created_at")) if latest else None


_ENDED = {"success", "failure", "error"}

_RUN_URL = re.compile(r"/actions/runs/(\d+)(?:/|$|\?|#)")
"""The run in a deployment status's ``log_url`` / ``target_url`` when GitHub Actions made the deployment
(``https://github.com/OWNER/REPO/actions/runs/RUN_ID/job/JOB_ID``)."""


def deployment_run(deployment: Item, statuses: Iterable[Item]) -> str | None:
    """The id of the workflow run that made a deployment, if one did: the ``workflow_run`` a `deployment`
    webhook names, else the run a status's ``log_url`` or ``target_url`` links to."""
    run = deployment.get("workflow_run")
    if isinstance(run, dict) and run.get("id") is not None:
        return str(run["id"])
    for status in statuses:
        found = status_run(status)
        if found is not None:
            return found
    return None


def status_run(status: Any) -> str | None:
    """The run a deployment status links to (``log_url``, else ``target_url``), if any."""
    if not isinstance(status, dict):
        return None
    for name in ("log_url", "target_url"):
        match = _RUN_URL.search(str(status.get(name) or ""))
        if match:
            return match.group(1)
    return None


def _deployment(ctx: _Context, deployment: Item) -> list[Record]:
    statuses = ctx.statuses.get(f"{ctx.repo}/{deployment['id']}", [])
    latest = latest_status(statuses)
    state = str(latest.get("state", "")).lower() if latest else ""
    result = _DEPLOYMENT_RESULTS.get(state, "running")
    environment = deployment.get("environment") or "unknown"
    run = deployment_run(deployment, statuses)
    return [
        Deployment(
            source=SOURCE,
            external_id=f"{ctx.repo}/deployments/{deployment['id']}",
            raw_event_id=ctx.raw_event_id,
            service=ctx.repo,
            environment=environment,
            environment_class=ctx.rules.environment_class(environment),
            repo=ctx.repo,
            commit_sha=deployment.get("sha"),
            pipeline_run_id=record_id(SOURCE, f"{ctx.repo}/runs/{run}") if run else None,
            result=result,
            started_at=parse_time(deployment.get("created_at")),
            finished_at=_finished_at(statuses) if result != "running" else None,
            url=(latest or {}).get("log_url") or (latest or {}).get("target_url") or None,
        )
    ]


def _release(ctx: _Context, release: Item) -> list[Record]:
    status = "planned" if release.get("draft") else "released"
    return [
        Release(
            source=SOURCE,
            external_id=f"{ctx.repo}/releases/{release['id']}",
            raw_event_id=ctx.raw_event_id,
            name=release.get("name") or release.get("tag_name") or str(release["id"]),
            version=release.get("tag_name"),
            status=status,
            released_at=parse_time(release.get("published_at")) if status == "released" else None,
            description=release.get("body"),
        )
    ]


def _folded(ctx: _Context, item: Item) -> list[Record]:
    """Deployment statuses become part of their deployment's record."""
    return []


class _Skip(Exception):
    """A raw event that rightly gives no record; the message says why."""


Handler = Callable[[_Context, Item], list[Record]]

HANDLERS: dict[str, Handler] = {
    "user": _user,
    "git_author": _git_author,
    "pull_request": _pull_request,
    "pull_request_commit": _pull_request_commit,
    "commit": _commit,
    "review": _review,
    "review_comment": _review_comment,
    "issue": _issue,
    "issue_event": _issue_event,
    "workflow_run": _workflow_run,
    "workflow_job": _workflow_job,
    "deployment": _deployment,
    "deployment_status": _folded,
    "release": _release,
}
"""Raw event type → the function that maps its item to records."""


def _place(event_type: str, key: str) -> tuple[str, list[str]]:
    """The repository and the rest of a raw event's key (``owner/name/rest...``)."""
    parts = key.split("/")
    if event_type in ("user", "git_author"):
        return "", parts
    return "/".join(parts[:2]), parts[2:]


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _loads(payload: str) -> Any:
    """The payload's JSON (orjson; the standard parser for what orjson refuses, such as huge ints)."""
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return json.loads(payload)


def normalize(
    events: Iterable[RawEvent],
    rules: MappingRules | None = None,
    context: Iterable[RawEvent] = (),
    deployed: frozenset[str] = frozenset(),
) -> Normalized:
    """The records of GitHub raw events.

    A deployment's statuses must be among `events` with it (the collector stores them in one batch), and
    an issue's events with the issue to date its last close by the issue. `context` holds the stored
    ``deployment_status`` (and ``deployment``) raw events: a job of a run that made a deployment gets no
    deployment by name, as does one of the runs in `deployed` (``owner/name/RUN_ID``); it is read only
    when `events` hold a workflow job and a job name rule is set. An event that
    cannot be normalized is reported in `skipped`; it never stops the others.
    """
    items: list[RawItem] = []
    unreadable: list[tuple[str, str]] = []
    for event in events:
        if event.event_type not in HANDLERS:
            items.append(RawItem(event.id, event.event_type, event_key(event), None))
            continue
        try:
            item = _loads(event.payload)
        except ValueError as error:
            unreadable.append((event.id, f"could not normalize: {type(error).__name__}: {error}"[:500]))
            continue
        items.append(RawItem(event.id, event.event_type, event_key(event), item))
    stored = deployed_runs(context) if _reads_deployed_runs(items, rules) else frozenset()
    result = normalize_items(items, rules, stored | deployed)
    result.skipped.extend(unreadable)
    return result


def _reads_deployed_runs(items: list[RawItem], rules: MappingRules | None) -> bool:
    """Whether the runs that made a deployment can change these items' records: only a workflow job can
    be a deployment by name, and only while a job name rule is set. Otherwise `context` is left unread
    (a sync reads the stored deployment statuses only when a batch needs them)."""
    if not (rules or MappingRules()).deployment_name_rule().patterns:
        return False
    return any(raw.event_type == "workflow_job" for raw in items)


def deployed_runs(events: Iterable[RawEvent]) -> frozenset[str]:
    """``owner/name/RUN_ID`` of the runs that made a GitHub deployment, from stored ``deployment_status``
    raw events (a payload is parsed only when it links to an Actions run)."""
    found: set[str] = set()
    for event in events:
        if event.event_type != "deployment_status" or "/actions/runs/" not in event.payload:
            continue
        try:
            run = status_run(_loads(event.payload))
        except ValueError:
            continue
        if run is not None:
            found.add(f"{_place(event.event_type, event_key(event))[0]}/{run}")
    return frozenset(found)


def normalize_rows(
    rows: pa.Table, rules: MappingRules | None = None, context: Iterable[RawEvent] = ()
) -> Normalized:
    """The records of stored raw events given as columns ``id, event_type, external_id, payload`` (what
    replay reads): the same as `normalize`, without building a `RawEvent` per row first."""
    items: list[RawItem] = []
    unreadable: list[tuple[str, str]] = []
    columns = (rows.column(name).to_pylist() for name in ("id", "event_type", "external_id", "payload"))
    for raw_id, event_type, external_id, payload in zip(*columns, strict=True):
        prefix = f"{event_type}:"
        key = external_id[len(prefix) :] if external_id.startswith(prefix) else external_id
        if event_type not in HANDLERS:
            items.append(RawItem(raw_id, event_type, key, None))
            continue
        try:
            items.append(RawItem(raw_id, event_type, key, _loads(payload)))
        except ValueError as error:
            unreadable.append((raw_id, f"could not normalize: {type(error).__name__}: {error}"[:500]))
    stored = deployed_runs(context) if _reads_deployed_runs(items, rules) else frozenset()
    result = normalize_items(items, rules, stored)
    result.skipped.extend(unreadable)
    return result


def normalize_items(
    items: Iterable[RawItem], rules: MappingRules | None = None, deployed: frozenset[str] = frozenset()
) -> Normalized:
    """The records of GitHub answer items already parsed (what `normalize` does after reading the JSON;
    the webhook receiver calls it with the objects a delivery carries). `deployed` adds runs known to
    have made a deployment (``owner/name/RUN_ID``) to those the items' deployment statuses name."""
    rules = rules or MappingRules()
    items = list(items)
    statuses: dict[str, list[Item]] = defaultdict(list)
    runs = set(deployed)
    closed: dict[str, Any] = {}
    last_state_event: dict[str, tuple[str, int, str, str]] = {}  # issue → (time, id, raw id, kind)
    for raw in items:
        if raw.event_type == "deployment_status":
            repo, path = _place(raw.event_type, raw.key)
            statuses[f"{repo}/{path[0]}"].append(raw.item)
            run = status_run(raw.item)
            if run is not None:
                runs.add(f"{repo}/{run}")
        elif raw.event_type == "deployment" and isinstance(raw.item, dict):
            run = deployment_run(raw.item, ())
            if run is not None:
                runs.add(f"{_place(raw.event_type, raw.key)[0]}/{run}")
        elif raw.event_type == "issue" and isinstance(raw.item, dict):
            if raw.item.get("state") == "closed" and raw.item.get("closed_at"):
                repo, path = _place(raw.event_type, raw.key)
                closed[f"{repo}/{path[0]}"] = raw.item["closed_at"]
        elif raw.event_type == "issue_event" and isinstance(raw.item, dict):
            kind = str(raw.item.get("event"))
            if kind in _ISSUE_TRANSITIONS:
                repo, path = _place(raw.event_type, raw.key)
                stamp = parse_time(raw.item.get("created_at"))
                order = (stamp.isoformat() if stamp else "", _int(raw.item.get("id")), raw.raw_event_id, kind)
                issue = f"{repo}/{path[0]}"
                if issue not in last_state_event or last_state_event[issue] < order:
                    last_state_event[issue] = order
    closed_at = {
        raw_id: closed[issue]
        for issue, (_, _, raw_id, kind) in last_state_event.items()
        if kind == "closed" and issue in closed
    }
    deployed_runs_ = frozenset(runs)
    result = Normalized()
    for raw in items:
        handler = HANDLERS.get(raw.event_type)
        if handler is None:
            result.skipped.append((raw.raw_event_id, f"no normalizer for {raw.event_type!r}"))
            continue
        repo, path = _place(raw.event_type, raw.key)
        try:
            ctx = _Context(raw.raw_event_id, repo, path, rules, statuses, closed_at, deployed_runs_)
            records = handler(ctx, raw.item)
        except _Skip as skip:
            result.skipped.append((raw.raw_event_id, str(skip)))
            continue
        except (ValidationError, ValueError, KeyError, TypeError, IndexError) as error:
            message = f"could not normalize: {type(error).__name__}: {error}"[:500]
            result.skipped.append((raw.raw_event_id, message))
            continue
        result.records.extend(records)
        result.normalized_events += 1
    return result
