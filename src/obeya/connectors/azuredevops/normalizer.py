"""Azure DevOps raw events to records: pure functions, no HTTP.

Record ids, all under source ``azuredevops`` (PROJECT and REPO as named by Azure DevOps):
``PROJECT/REPO!ID`` (Change), ``PROJECT/REPO!ID/reviewers/USER`` (Review), ``PROJECT/REPO@SHA``
(Commit), ``PROJECT/builds/ID`` (PipelineRun), ``PROJECT/builds/ID/RECORD`` (PipelineJob, Deployment),
``PROJECT/ID`` (WorkItem), ``PROJECT/ID/rev/N`` (StatusTransition), ``PROJECT/REPO!ID/threads/T/comments/C``
(ChangeComment), ``PROJECT/release-deployments/ID`` (Deployment of a classic release), ``user/ID``,
``git/EMAIL`` (Person).

Events normalized together: a pull request with its threads (a vote's time), a build with its timeline
(a job's stage, a deployment's commit), a work item with its revisions (its transitions).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from obeya.connectors.base import Normalized
from obeya.connectors.people import People
from obeya.connectors.raw import event_key
from obeya.connectors.times import required_time
from obeya.model.ids import record_id
from obeya.model.records import (
    Change,
    ChangeComment,
    ChangeCommit,
    Commit,
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
from obeya.normalize.rules import MappingRules

from .collector import SOURCE

Item = dict[str, Any]

VOTES: dict[int, str] = {10: "approved", 5: "approved", -5: "changes_requested", -10: "changes_requested"}
"""Reviewer votes: 10 approved, 5 approved with suggestions, -5 waiting for the author, -10 rejected."""

DEPLOY_NAMES: tuple[str, ...] = (r"deploy|release|rollout|roll-out",)
"""The stage name patterns of a deployment while `rules.deployments.job_patterns` is unset (which replaces
them): a YAML pipeline's stage is Azure DevOps' only deployment signal this connector reads."""
_GENERIC_STAGE = re.compile(r"\bstages?\b|__default", re.IGNORECASE)
_DEPLOY_CLASSES = (EnvironmentClass.PRODUCTION, EnvironmentClass.STAGING)
_MERGE_METHODS = {"noFastForward": "merge", "squash": "squash", "rebase": "rebase", "rebaseMerge": "rebase"}


class _Skip(Exception):
    """A raw event that rightly gives no record; the message says why."""


@dataclass(frozen=True)
class _Batch:
    """What the events normalized together tell each other."""

    threads: dict[str, list[Item]]  # PROJECT/REPO!ID → its threads
    builds: dict[str, Item]  # PROJECT/builds/ID → the build
    records: dict[str, dict[str, Item]]  # PROJECT/builds/ID → timeline records by id
    revisions: dict[str, list[Item]]  # PROJECT/ID → its revisions


@dataclass(frozen=True)
class _Context:
    event: RawEvent
    key: str
    rules: MappingRules
    batch: _Batch

    @property
    def raw_event_id(self) -> str:
        return self.event.id


def _time(value: Any) -> datetime | None:
    if not value or str(value).startswith("0001-01-01"):
        return None
    return required_time(str(value))


def _required(value: Any, what: str) -> datetime:
    moment = _time(value)
    if moment is None:
        raise ValueError(f"{what} is missing")
    return moment


def _branch(ref: Any) -> str | None:
    text = str(ref or "")
    return text.removeprefix("refs/heads/") or None


# --- people ------------------------------------------------------------------------------------


def _display_name(user: Item) -> str:
    return str(user.get("displayName") or user.get("uniqueName") or user["id"]).strip()


def is_bot(user: Item) -> bool:
    """Azure DevOps' service identities: a name ``Microsoft.VisualStudio.Services...`` or ``... Build
    Service``."""
    name = _display_name(user)
    return name.startswith("Microsoft.VisualStudio.Services") or name.endswith("Build Service")


PEOPLE = People(SOURCE, "azuredevops", is_bot)
person_id = PEOPLE.person_id


def _user(ctx: _Context, user: Item) -> list[Record]:
    unique = str(user.get("uniqueName") or "")
    return PEOPLE.account(
        ctx.raw_event_id,
        user,
        display_name=_display_name(user),
        username=unique or None,
        email=unique if "@" in unique else None,
    )


def _git_author(ctx: _Context, author: Item) -> list[Record]:
    email = str(author["email"])
    name = str(author.get("name") or "").strip()
    return PEOPLE.git_author(
        ctx.raw_event_id, email, display_name=name or email.lower(), username=None, identity=False
    )


# --- pull requests -----------------------------------------------------------------------------


def change_external_id(key: str) -> str:
    """``PROJECT/REPO!ID`` of any pull request event key (``...!ID@SHA``, ``...!ID/threads/T``)."""
    repo, _, rest = key.partition("!")
    return f"{repo}!{re.split(r'[@/]', rest, maxsplit=1)[0]}"


def _pull_request(ctx: _Context, pr: Item) -> list[Record]:
    status = pr.get("status")
    state = "merged" if status == "completed" else "closed" if status == "abandoned" else "open"
    closed = _time(pr.get("closedDate"))
    change = Change(
        source=SOURCE,
        external_id=ctx.key,
        raw_event_id=ctx.raw_event_id,
        repo=ctx.key.partition("!")[0],
        number=int(pr["pullRequestId"]),
        title=str(pr.get("title") or ""),
        branch=_branch(pr.get("sourceRefName")),
        base_branch=_branch(pr.get("targetRefName")),
        author_id=person_id(pr.get("createdBy")),
        state=state,
        created_at=_required(pr.get("creationDate"), "creationDate"),
        merged_at=closed if state == "merged" else None,
        closed_at=closed if state != "open" else None,
        merge_commit_sha=(pr.get("lastMergeCommit") or {}).get("commitId") if state == "merged" else None,
        head_sha=(pr.get("lastMergeSourceCommit") or {}).get("commitId"),
        merge_method=_MERGE_METHODS.get(str((pr.get("completionOptions") or {}).get("mergeStrategy"))),
    )
    records: list[Record] = [change]
    votes = _vote_times(ctx.batch.threads.get(ctx.key, []))
    for reviewer in pr.get("reviewers") or []:
        state_of_vote = VOTES.get(int(reviewer.get("vote") or 0))
        if state_of_vote is None or reviewer.get("isContainer"):
            continue  # no vote yet; a group's vote is its members'
        when = votes.get(str(reviewer.get("id"))) or closed or change.created_at
        records.append(
            Review(
                source=SOURCE,
                external_id=f"{ctx.key}/reviewers/{reviewer['id']}",
                raw_event_id=ctx.raw_event_id,
                change_id=change.id,
                reviewer_id=person_id(reviewer),
                state=state_of_vote,
                submitted_at=when,
            )
        )
    return records


def _property(thread: Item, name: str) -> str | None:
    value = (thread.get("properties") or {}).get(name)
    if isinstance(value, dict):
        value = value.get("$value")
    return None if value is None else str(value)


def _vote_times(threads: list[Item]) -> dict[str, datetime]:
    """When each reviewer last voted, from the system threads ``CodeReviewThreadType: VoteUpdate``."""
    found: dict[str, datetime] = {}
    for thread in threads:
        if _property(thread, "CodeReviewThreadType") != "VoteUpdate":
            continue
        voter = _property(thread, "CodeReviewVotedByIdentity")
        identity = (thread.get("identities") or {}).get(voter or "") or {}
        comments = thread.get("comments") or [{}]
        author = identity.get("id") or (comments[0].get("author") or {}).get("id")
        when = _time(thread.get("publishedDate") or comments[0].get("publishedDate"))
        if author and when and (str(author) not in found or when > found[str(author)]):
            found[str(author)] = when
    return found


_PEOPLE_COMMENTS = ("text", "codeChange")
"""Comment types a person wrote (``system`` comments record votes, pushes and status changes)."""


def _pull_request_thread(ctx: _Context, thread: Item) -> list[Record]:
    """The comments people wrote in a thread, each a `ChangeComment` (with the file for a diff thread).

    The engine reads the first comment or review by someone other than the author as the pickup.
    """
    if thread.get("isDeleted"):
        raise _Skip("deleted thread")
    change_key = change_external_id(ctx.key)
    context = thread.get("threadContext") or {}
    path = str(context.get("filePath") or "").lstrip("/") or None
    records: list[Record] = []
    for comment in thread.get("comments") or []:
        if comment.get("isDeleted") or comment.get("commentType", "text") not in _PEOPLE_COMMENTS:
            continue
        records.append(
            ChangeComment(
                source=SOURCE,
                external_id=f"{ctx.key}/comments/{comment['id']}",
                raw_event_id=ctx.raw_event_id,
                change_id=record_id(SOURCE, change_key),
                author_id=person_id(comment.get("author")),
                created_at=_required(comment.get("publishedDate"), "comments[].publishedDate"),
                body=comment.get("content"),
                path=path,
            )
        )
    if not records:
        raise _Skip("no comment written by a person (a system thread)")
    return records


def _commit(ctx: _Context, commit: Item) -> list[Record]:
    repo = ctx.key.rsplit("@", 1)[0]
    author = commit.get("author") or {}
    committer = commit.get("committer") or {}
    email = str(author.get("email") or "").lower()
    sha = str(commit["commitId"])
    return [
        Commit(
            source=SOURCE,
            external_id=f"{repo}@{sha}",
            raw_event_id=ctx.raw_event_id,
            repo=repo,
            sha=sha,
            message=str(commit.get("comment") or ""),
            author_id=PEOPLE.git_person_id(email) if email else None,
            authored_at=_required(author.get("date") or committer.get("date"), "author.date"),
            committed_at=_time(committer.get("date")),
        )
    ]


def _pull_request_commit(ctx: _Context, commit: Item) -> list[Record]:
    change_key = change_external_id(ctx.key)
    sha = str(commit["commitId"])
    return [
        ChangeCommit(
            source=SOURCE,
            external_id=f"{change_key}@{sha}",
            raw_event_id=ctx.raw_event_id,
            change_id=record_id(SOURCE, change_key),
            commit_sha=sha,
        )
    ]


def _nothing(ctx: _Context, item: Item) -> list[Record]:
    """Events read only together with others (threads, revisions): they give no record of their own."""
    return []


# --- builds ------------------------------------------------------------------------------------


_RESULTS: dict[str, RunResult] = {
    "succeeded": "success",
    "succeededWithIssues": "success",
    "partiallySucceeded": "failure",
    "failed": "failure",
    "canceled": "canceled",
    "abandoned": "canceled",
    "skipped": "skipped",
}


def run_result(state: Any, result: Any) -> RunResult:
    """A build's or timeline record's result; anything not completed is running."""
    if state != "completed":
        return "running"
    return _RESULTS.get(str(result), "failure")


def _build_key(key: str) -> str:
    project, _, rest = key.partition("/builds/")
    return f"{project}/builds/{rest.split('/', 1)[0]}"


def _repo(build: Item) -> str | None:
    repository = build.get("repository") or {}
    return str(repository.get("name") or repository.get("id") or "") or None


def _build(ctx: _Context, build: Item) -> list[Record]:
    links = build.get("_links") or {}
    return [
        PipelineRun(
            source=SOURCE,
            external_id=ctx.key,
            raw_event_id=ctx.raw_event_id,
            pipeline=str((build.get("definition") or {}).get("name") or build.get("buildNumber")),
            repo=_repo(build),
            commit_sha=build.get("sourceVersion"),
            branch=_branch(build.get("sourceBranch")),
            trigger=build.get("reason"),
            result=run_result(build.get("status"), build.get("result")),
            created_at=_required(build.get("queueTime"), "queueTime"),
            started_at=_time(build.get("startTime")),
            finished_at=_time(build.get("finishTime")),
            url=((links.get("web") or {}).get("href")) or build.get("url"),
        )
    ]


def _stage_of(record: Item, records: dict[str, Item]) -> Item | None:
    """The Stage a timeline record belongs to (itself for a stage), walking up `parentId`."""
    current: Item | None = record
    for _ in range(10):
        if current is None or current.get("type") == "Stage":
            return current
        current = records.get(str(current.get("parentId")))
    return None


def is_deployment(record: Item, rules: MappingRules) -> bool:
    """Whether a timeline Stage is a deployment (docs/connectors.md, "Azure DevOps").

    Marked: its name or identifier matches the job name rule (`rules.deployments.job_patterns`, by
    default `DEPLOY_NAMES`: deploy/release/rollout), or names a production or staging
    environment by the mapping rules (the generic word "stage" is left out first, so "Stage 1" is no
    staging). Ran: its result is not ``skipped`` and it completed or at least started.
    """
    names = [str(record.get(k) or "") for k in ("name", "identifier")]
    marked = rules.deployment_name_rule(DEPLOY_NAMES).matched_pattern(*names) is not None or any(
        rules.environment_class(_GENERIC_STAGE.sub(" ", n)) in _DEPLOY_CLASSES for n in names if n
    )
    ran = record.get("result") != "skipped" and (
        record.get("state") == "completed" or bool(record.get("startTime"))
    )
    return marked and ran


def _timeline_record(ctx: _Context, record: Item) -> list[Record]:
    kind = record.get("type")
    if kind not in ("Stage", "Job"):
        raise _Skip(f"timeline record of type {kind!r} (only stages and jobs are kept)")
    build_key = _build_key(ctx.key)
    records = ctx.batch.records.get(build_key, {})
    stage = _stage_of(record, records)
    run_id = record_id(SOURCE, build_key)
    result = run_result(record.get("state"), record.get("result"))
    out: list[Record] = [
        PipelineJob(
            source=SOURCE,
            external_id=ctx.key,
            raw_event_id=ctx.raw_event_id,
            run_id=run_id,
            name=str(record.get("name") or record.get("identifier") or record["id"]),
            stage=str(stage.get("name")) if stage else None,
            result=result,
            attempt=max(int(record.get("attempt") or 1), 1),
            started_at=_time(record.get("startTime")),
            finished_at=_time(record.get("finishTime")),
        )
    ]
    if kind == "Stage" and is_deployment(record, ctx.rules):
        build = ctx.batch.builds.get(build_key, {})
        environment = str(record.get("name") or record.get("identifier"))
        out.append(
            Deployment(
                source=SOURCE,
                external_id=ctx.key,
                raw_event_id=ctx.raw_event_id,
                service=str((build.get("definition") or {}).get("name") or build_key),
                environment=environment,
                environment_class=ctx.rules.job_environment_class(
                    environment, ctx.rules.deployment_name_rule(DEPLOY_NAMES)
                ),
                repo=_repo(build),
                commit_sha=build.get("sourceVersion"),
                pipeline_run_id=run_id,
                result="running"
                if result == "running"
                else "success"
                if result == "success"
                else "canceled"
                if result == "canceled"
                else "failure",
                started_at=_time(record.get("startTime")),
                finished_at=_time(record.get("finishTime")),
            )
        )
    return out


# --- work items --------------------------------------------------------------------------------


def _tags(fields: Item) -> list[str]:
    return [t.strip() for t in str(fields.get("System.Tags") or "").split(";") if t.strip()]


def _work_item(ctx: _Context, item: Item) -> list[Record]:
    fields = item.get("fields") or {}
    project = ctx.key.rsplit("/", 1)[0]
    status = str(fields["System.State"])
    tool_type = str(fields.get("System.WorkItemType") or "Work Item")
    labels = _tags(fields)
    mapping = ctx.rules.status(status)
    external_id = ctx.key
    work_item_id = record_id(SOURCE, external_id)
    revisions = sorted(ctx.batch.revisions.get(ctx.key, []), key=lambda r: int(r.get("rev") or 0))
    transitions: list[StatusTransition] = []
    previous: str | None = None
    for revision in revisions:
        rev_fields = revision.get("fields") or {}
        state = rev_fields.get("System.State")
        if not state or state == previous:
            continue
        to = ctx.rules.status(str(state))
        before = ctx.rules.status(previous) if previous else None
        transitions.append(
            StatusTransition(
                source=SOURCE,
                external_id=f"{external_id}/rev/{revision['rev']}",
                raw_event_id=ctx.raw_event_id,
                work_item_id=work_item_id,
                at=_required(rev_fields.get("System.ChangedDate"), "System.ChangedDate"),
                from_status=previous,
                to_status=str(state),
                from_flow_state=before.flow_state if before else None,
                to_flow_state=to.flow_state,
                from_stage=before.stage if before else None,
                to_stage=to.stage,
                author_id=person_id(rev_fields.get("System.ChangedBy")),
            )
        )
        previous = str(state)
    started = next((t.at for t in transitions if t.to_flow_state == FlowState.ACTIVE), None)
    done_at = canceled_at = None
    if mapping.flow_state in (FlowState.DONE, FlowState.CANCELED):
        last = next((t.at for t in reversed(transitions) if t.to_flow_state == mapping.flow_state), None)
        last = (
            last
            or _time(fields.get("Microsoft.VSTS.Common.ClosedDate"))
            or _time(fields.get("System.ChangedDate"))
        )
        done_at, canceled_at = (last, None) if mapping.flow_state == FlowState.DONE else (None, last)
    parent = fields.get("System.Parent")
    points = fields.get("Microsoft.VSTS.Scheduling.StoryPoints") or fields.get(
        "Microsoft.VSTS.Scheduling.Effort"
    )
    priority = fields.get("Microsoft.VSTS.Common.Priority")
    work_item = WorkItem(
        source=SOURCE,
        external_id=external_id,
        raw_event_id=ctx.raw_event_id,
        key=str(item["id"]),
        title=str(fields.get("System.Title") or "").replace("\x00", ""),
        project=str(fields.get("System.TeamProject") or project),
        tool_type=tool_type,
        flow_item_type=ctx.rules.flow_item_type(tool_type, labels),
        status=status,
        flow_state=mapping.flow_state,
        stage=mapping.stage,
        parent_id=record_id(SOURCE, f"{project}/{parent}") if parent else None,
        assignee_id=person_id(fields.get("System.AssignedTo")),
        labels=labels,
        priority=str(priority) if priority is not None else None,
        story_points=float(points) if points is not None else None,
        created_at=_required(fields.get("System.CreatedDate"), "System.CreatedDate"),
        started_at=started,
        done_at=done_at,
        canceled_at=canceled_at,
        updated_at=_time(fields.get("System.ChangedDate")),
    )
    return [work_item, *transitions]


# --- classic releases ---------------------------------------------------------------------------

_DEPLOYMENT_RESULTS = {
    "succeeded": "success",
    "partiallySucceeded": "failure",
    "failed": "failure",
    "inProgress": "running",
}


def _primary_artifact(deployment: Item) -> Item:
    artifacts = [a for a in (deployment.get("release") or {}).get("artifacts") or [] if isinstance(a, dict)]
    return next((a for a in artifacts if a.get("isPrimary")), artifacts[0] if artifacts else {})


def _release_deployment(ctx: _Context, deployment: Item) -> list[Record]:
    """A classic release's deployment to one stage (environment): a `Deployment`.

    The environment is the release stage's name and its class comes from the environment rules (a stage
    named "Production" is production). ``notDeployed`` (rejected, canceled before it ran) and
    ``undefined`` are no deployment. The commit is the primary artifact's ``sourceVersion``, and a build
    artifact points the deployment at that build's run.
    """
    status = str(deployment.get("deploymentStatus") or "")
    result = _DEPLOYMENT_RESULTS.get(status)
    if result is None:
        raise _Skip(f"deployment status {status!r}: nothing was deployed")
    project = ctx.key.partition("/release-deployments/")[0]
    environment = str((deployment.get("releaseEnvironment") or {}).get("name") or "") or "unknown"
    definition = str((deployment.get("releaseDefinition") or {}).get("name") or "") or project
    artifact = _primary_artifact(deployment)
    reference = artifact.get("definitionReference") or {}
    version = (reference.get("version") or {}).get("id")
    run_id = (
        record_id(SOURCE, f"{project}/builds/{version}")
        if artifact.get("type") == "Build" and version
        else None
    )
    links = (deployment.get("release") or {}).get("_links") or {}
    return [
        Deployment(
            source=SOURCE,
            external_id=ctx.key,
            raw_event_id=ctx.raw_event_id,
            service=definition,
            environment=environment,
            environment_class=ctx.rules.environment_class(environment),
            repo=(reference.get("repository") or {}).get("name"),
            commit_sha=(reference.get("sourceVersion") or {}).get("id"),
            pipeline_run_id=run_id,
            result=result,
            started_at=_time(deployment.get("startedOn")) or _time(deployment.get("queuedOn")),
            finished_at=_time(deployment.get("completedOn")) if result != "running" else None,
            url=(links.get("web") or {}).get("href"),
        )
    ]


# --- dispatch ----------------------------------------------------------------------------------

Handler = Callable[[_Context, Item], list[Record]]

HANDLERS: dict[str, Handler] = {
    "user": _user,
    "git_author": _git_author,
    "pull_request": _pull_request,
    "pull_request_commit": _pull_request_commit,
    "commit": _commit,
    "pull_request_thread": _pull_request_thread,
    "release_deployment": _release_deployment,
    "build": _build,
    "timeline_record": _timeline_record,
    "work_item": _work_item,
    "work_item_revision": _nothing,
}


def _batch(events: list[RawEvent]) -> _Batch:
    threads: dict[str, list[Item]] = defaultdict(list)
    builds: dict[str, Item] = {}
    records: dict[str, dict[str, Item]] = defaultdict(dict)
    revisions: dict[str, dict[int, Item]] = defaultdict(dict)
    for event in events:
        if event.event_type not in ("pull_request_thread", "build", "timeline_record", "work_item_revision"):
            continue
        key, item = event_key(event), json.loads(event.payload)
        if event.event_type == "pull_request_thread":
            threads[change_external_id(key)].append(item)
        elif event.event_type == "build":
            builds[key] = item
        elif event.event_type == "timeline_record":
            records[_build_key(key)][str(item.get("id"))] = item
        else:
            revisions[key.rsplit("/", 1)[0]][int(item.get("rev") or 0)] = item
    return _Batch(dict(threads), builds, dict(records), {k: list(v.values()) for k, v in revisions.items()})


def normalize(events: Iterable[RawEvent], rules: MappingRules | None = None) -> Normalized:
    """The records of Azure DevOps raw events; an event that cannot be normalized is reported, never fatal."""
    rules = rules or MappingRules()
    events = list(events)
    batch = _batch(events)
    result = Normalized()
    for event in events:
        handler = HANDLERS.get(event.event_type)
        if handler is None:
            result.skipped.append((event.id, f"no normalizer for {event.event_type!r}"))
            continue
        try:
            records = handler(_Context(event, event_key(event), rules, batch), json.loads(event.payload))
        except _Skip as skip:
            result.skipped.append((event.id, str(skip)))
            continue
        except (ValidationError, ValueError, KeyError, TypeError, IndexError) as error:
            result.skipped.append((event.id, f"could not normalize: {type(error).__name__}: {error}"[:500]))
            continue
        result.records.extend(records)
        result.normalized_events += 1
    return result
