"""Typed records of the common data model, one class per entity.

Each record class is also the definition of its table: `obeya.model.schema` derives the columns from
the fields declared here, and a test checks that the store's migrations produce exactly those columns.

Every record carries `source` (the tool or feed it came from), `external_id` (its id in that tool) and
`raw_event_id` (the raw answer or event it was normalized from, when there is one). Its store-wide id is
``"{source}:{external_id}"`` (see `obeya.model.ids`); re-ingesting a record replaces it in place.

Fields that point at another record hold that record's id and are marked with `Ref`; the importer checks
that they resolve. Times are UTC: aware datetimes are converted, naive ones are taken as UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from obeya.model.ids import record_id
from obeya.model.vocabulary import EnvironmentClass, FlowItemType, FlowState


@dataclass(frozen=True)
class Ref:
    """Marks a field as a reference to the id of a record of `kind` (any kind when `kind` is None)."""

    kind: str | None


NonEmpty = Annotated[str, Field(min_length=1)]


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value


UtcDatetime = Annotated[datetime, AfterValidator(_naive_utc)]
"""A time in UTC: aware times are converted, naive ones are taken as UTC; stored naive."""


class Record(BaseModel):
    """Base of every normalized record."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)

    kind: ClassVar[str]
    table: ClassVar[str]

    source: NonEmpty
    external_id: NonEmpty
    raw_event_id: Annotated[str | None, Ref("raw_event")] = None

    @property
    def id(self) -> str:
        """The store-wide id, ``"{source}:{external_id}"``."""
        return record_id(self.source, self.external_id)


# --- organisation -------------------------------------------------------------------------------


class ValueStream(Record):
    """A value stream: the sequence of work that delivers value to a customer."""

    kind: ClassVar[str] = "value_stream"
    table: ClassVar[str] = "value_streams"

    name: NonEmpty
    stream_type: Literal["core", "supporting"] = "core"
    description: str | None = None
    owner: str | None = None


class Stage(Record):
    """One ordered stage of a value stream (default five: ideation ... observation)."""

    kind: ClassVar[str] = "stage"
    table: ClassVar[str] = "stages"

    value_stream_id: Annotated[str, Ref("value_stream")]
    name: NonEmpty
    position: Annotated[int, Field(ge=0)]
    category: str | None = None
    wip_limit: Annotated[int | None, Field(ge=1)] = None


class Scope(Record):
    """Attaches a tool object (repository, board, project, service, pipeline) to a value stream."""

    kind: ClassVar[str] = "scope"
    table: ClassVar[str] = "scopes"

    value_stream_id: Annotated[str, Ref("value_stream")]
    tool: NonEmpty
    object_type: Literal["repository", "board", "project", "service", "pipeline"]
    object_key: NonEmpty


class Team(Record):
    """A team of people; optionally aligned to one value stream."""

    kind: ClassVar[str] = "team"
    table: ClassVar[str] = "teams"

    name: NonEmpty
    value_stream_id: Annotated[str | None, Ref("value_stream")] = None


class Person(Record):
    """A person (or bot), with their tool identities merged under one id."""

    kind: ClassVar[str] = "person"
    table: ClassVar[str] = "people"

    display_name: NonEmpty
    email: str | None = None
    team_id: Annotated[str | None, Ref("team")] = None
    is_bot: bool = False


class Identity(Record):
    """A person's account in one tool (GitHub login, Jira account id, e-mail in git)."""

    kind: ClassVar[str] = "identity"
    table: ClassVar[str] = "identities"

    person_id: Annotated[str, Ref("person")]
    tool: NonEmpty
    username: str | None = None
    email: str | None = None


# --- planning -------------------------------------------------------------------------------------


class WorkItem(Record):
    """A unit of work from a planning tool, normalized to a flow item type, flow state and stage."""

    kind: ClassVar[str] = "work_item"
    table: ClassVar[str] = "work_items"

    key: NonEmpty
    title: str
    project: NonEmpty
    tool_type: NonEmpty
    flow_item_type: FlowItemType
    status: NonEmpty
    flow_state: FlowState
    stage: str | None = None
    parent_id: Annotated[str | None, Ref("work_item")] = None
    team_id: Annotated[str | None, Ref("team")] = None
    assignee_id: Annotated[str | None, Ref("person")] = None
    labels: list[str] = Field(default_factory=list)
    priority: str | None = None
    story_points: float | None = None
    created_at: UtcDatetime
    started_at: UtcDatetime | None = None
    done_at: UtcDatetime | None = None
    canceled_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None


class StatusTransition(Record):
    """One change of a work item's status, with the flow state and stage on both sides."""

    kind: ClassVar[str] = "status_transition"
    table: ClassVar[str] = "status_transitions"

    work_item_id: Annotated[str, Ref("work_item")]
    at: UtcDatetime
    from_status: str | None = None
    to_status: NonEmpty
    from_flow_state: FlowState | None = None
    to_flow_state: FlowState
    from_stage: str | None = None
    to_stage: str | None = None
    author_id: Annotated[str | None, Ref("person")] = None


class Plan(Record):
    """A plan items are committed to: a sprint, a release plan or a PI (for flow predictability)."""

    kind: ClassVar[str] = "plan"
    table: ClassVar[str] = "plans"

    name: NonEmpty
    plan_type: Literal["sprint", "release", "pi"]
    value_stream_id: Annotated[str | None, Ref("value_stream")] = None
    team_id: Annotated[str | None, Ref("team")] = None
    starts_at: UtcDatetime
    ends_at: UtcDatetime


class PlanItem(Record):
    """A work item committed to a plan, with planned and delivered business value when known."""

    kind: ClassVar[str] = "plan_item"
    table: ClassVar[str] = "plan_items"

    plan_id: Annotated[str, Ref("plan")]
    work_item_id: Annotated[str, Ref("work_item")]
    added_after_start: bool = False
    planned_value: float | None = None
    delivered_value: float | None = None


# --- code -----------------------------------------------------------------------------------------


class Commit(Record):
    """A git commit."""

    kind: ClassVar[str] = "commit"
    table: ClassVar[str] = "commits"

    repo: NonEmpty
    sha: Annotated[str, Field(min_length=7, max_length=64)]
    message: str
    author_id: Annotated[str | None, Ref("person")] = None
    authored_at: UtcDatetime
    committed_at: UtcDatetime | None = None
    additions: Annotated[int | None, Field(ge=0)] = None
    deletions: Annotated[int | None, Field(ge=0)] = None
    paths: list[str] | None = None  # files it touched, when known: tells services apart in a monorepo


class CommitParent(Record):
    """An edge of the git graph: `commit_sha`'s parent number `position` is `parent_sha`."""

    kind: ClassVar[str] = "commit_parent"
    table: ClassVar[str] = "commit_parents"

    repo: NonEmpty
    commit_sha: NonEmpty
    parent_sha: NonEmpty
    position: Annotated[int, Field(ge=0)] = 0


class Change(Record):
    """A pull request (GitHub) or merge request (GitLab): a proposed change to a repository."""

    kind: ClassVar[str] = "change"
    table: ClassVar[str] = "changes"

    repo: NonEmpty
    number: Annotated[int, Field(ge=0)]
    title: str
    branch: str | None = None
    base_branch: str | None = None
    author_id: Annotated[str | None, Ref("person")] = None
    state: Literal["open", "merged", "closed"]
    created_at: UtcDatetime
    merged_at: UtcDatetime | None = None
    closed_at: UtcDatetime | None = None
    merge_commit_sha: str | None = None
    head_sha: str | None = None
    merge_method: Literal["merge", "squash", "rebase"] | None = None
    additions: Annotated[int | None, Field(ge=0)] = None
    deletions: Annotated[int | None, Field(ge=0)] = None


class ChangeCommit(Record):
    """A commit that belongs to a change."""

    kind: ClassVar[str] = "change_commit"
    table: ClassVar[str] = "change_commits"

    change_id: Annotated[str, Ref("change")]
    commit_sha: NonEmpty
    position: Annotated[int | None, Field(ge=0)] = None


class Review(Record):
    """A review submitted on a change."""

    kind: ClassVar[str] = "review"
    table: ClassVar[str] = "reviews"

    change_id: Annotated[str, Ref("change")]
    reviewer_id: Annotated[str | None, Ref("person")] = None
    state: Literal["approved", "changes_requested", "commented", "dismissed"]
    submitted_at: UtcDatetime


class ChangeComment(Record):
    """A comment on a change (conversation or on a line of its diff)."""

    kind: ClassVar[str] = "change_comment"
    table: ClassVar[str] = "change_comments"

    change_id: Annotated[str, Ref("change")]
    author_id: Annotated[str | None, Ref("person")] = None
    created_at: UtcDatetime
    body: str | None = None
    path: str | None = None


# --- CI/CD ----------------------------------------------------------------------------------------

RunResult = Literal["success", "failure", "canceled", "skipped", "running"]


class PipelineRun(Record):
    """One run of a CI/CD pipeline (workflow run, pipeline, build)."""

    kind: ClassVar[str] = "pipeline_run"
    table: ClassVar[str] = "pipeline_runs"

    pipeline: NonEmpty
    repo: str | None = None
    commit_sha: str | None = None
    branch: str | None = None
    change_id: Annotated[str | None, Ref("change")] = None
    trigger: str | None = None
    result: RunResult
    attempt: Annotated[int, Field(ge=1)] = 1
    created_at: UtcDatetime
    started_at: UtcDatetime | None = None
    finished_at: UtcDatetime | None = None
    url: str | None = None


class PipelineJob(Record):
    """One job (or stage) of a pipeline run."""

    kind: ClassVar[str] = "pipeline_job"
    table: ClassVar[str] = "pipeline_jobs"

    run_id: Annotated[str, Ref("pipeline_run")]
    name: NonEmpty
    stage: str | None = None
    result: RunResult
    attempt: Annotated[int, Field(ge=1)] = 1
    environment: str | None = None
    started_at: UtcDatetime | None = None
    finished_at: UtcDatetime | None = None


class Deployment(Record):
    """A deployment of a service to an environment."""

    kind: ClassVar[str] = "deployment"
    table: ClassVar[str] = "deployments"

    service: NonEmpty
    environment: NonEmpty
    environment_class: EnvironmentClass
    repo: str | None = None
    commit_sha: str | None = None
    pipeline_run_id: Annotated[str | None, Ref("pipeline_run")] = None
    release_id: Annotated[str | None, Ref("release")] = None
    result: Literal["success", "failure", "rolled_back", "canceled", "running"]
    is_rollback: bool = False
    started_at: UtcDatetime | None = None
    finished_at: UtcDatetime | None = None
    url: str | None = None


class DeploymentChange(Record):
    """A change shipped by a deployment."""

    kind: ClassVar[str] = "deployment_change"
    table: ClassVar[str] = "deployment_changes"

    deployment_id: Annotated[str, Ref("deployment")]
    change_id: Annotated[str, Ref("change")]


# --- operations -----------------------------------------------------------------------------------


class Incident(Record):
    """An incident in production, optionally attributed to the deployment that caused it."""

    kind: ClassVar[str] = "incident"
    table: ClassVar[str] = "incidents"

    title: str
    service: str | None = None
    severity: str | None = None
    status: NonEmpty
    created_at: UtcDatetime
    acknowledged_at: UtcDatetime | None = None
    resolved_at: UtcDatetime | None = None
    caused_by_deployment_id: Annotated[str | None, Ref("deployment")] = None
    cause_evidence: str | None = None
    change_caused: bool | None = None
    labels: list[str] = Field(default_factory=list)
    url: str | None = None


class Release(Record):
    """A release: a named, versioned delivery of scope."""

    kind: ClassVar[str] = "release"
    table: ClassVar[str] = "releases"

    name: NonEmpty
    version: str | None = None
    value_stream_id: Annotated[str | None, Ref("value_stream")] = None
    status: Literal["planned", "in_progress", "released", "canceled"]
    planned_at: UtcDatetime | None = None
    released_at: UtcDatetime | None = None
    description: str | None = None
    # A change request (ITSM) is a release too: the service it changes, its implementation window, its
    # approval and the id the tool that raised it put on it tie it to the deployments it covers.
    service: str | None = None
    window_start: UtcDatetime | None = None
    window_end: UtcDatetime | None = None
    approval: str | None = None
    correlation_id: str | None = None


# --- traceability and provenance ------------------------------------------------------------------


class TraceLink(Record):
    """A link between two records, with the evidence for it and how sure we are."""

    kind: ClassVar[str] = "trace_link"
    table: ClassVar[str] = "trace_links"

    from_kind: NonEmpty
    from_id: Annotated[str, Ref(None)]
    to_kind: NonEmpty
    to_id: Annotated[str, Ref(None)]
    link_kind: NonEmpty
    evidence: NonEmpty
    confidence: Annotated[float, Field(ge=0.0, le=1.0)]


class RawEvent(Record):
    """A tool's answer or event exactly as received, kept for provenance and replay."""

    kind: ClassVar[str] = "raw_event"
    table: ClassVar[str] = "raw_events"

    event_type: NonEmpty
    delivery_id: str | None = None
    connection: str | None = None
    received_at: UtcDatetime
    payload_hash: Annotated[str, Field(min_length=1)]
    payload: str


class SyncCursor(Record):
    """Where a connection's sync of one resource got to, so the next run fetches only what changed.

    `source` is ``"obeya"`` and `external_id` is ``"{connection}/{resource}"``; `cursor` is opaque to the
    store (an ``updated_at`` high-water mark, a page token, ...).
    """

    kind: ClassVar[str] = "sync_cursor"
    table: ClassVar[str] = "sync_cursors"

    connection: NonEmpty
    resource: NonEmpty
    cursor: str | None = None
    status: Literal["running", "complete", "failed"]
    synced_at: UtcDatetime
    message: str | None = None


RECORD_TYPES: tuple[type[Record], ...] = (
    RawEvent,
    ValueStream,
    Stage,
    Scope,
    Team,
    Person,
    Identity,
    WorkItem,
    StatusTransition,
    Plan,
    PlanItem,
    Commit,
    CommitParent,
    Change,
    ChangeCommit,
    Review,
    ChangeComment,
    PipelineRun,
    PipelineJob,
    Release,
    Deployment,
    DeploymentChange,
    Incident,
    TraceLink,
    SyncCursor,
)
"""Every record type, in an order where a record's references come before it."""

RECORD_BY_KIND: dict[str, type[Record]] = {t.kind: t for t in RECORD_TYPES}
