"""The store's schema history: each version is a list of steps that takes the previous version to it.

A version, once released, is never edited: a change to the model is a new version at the end of
`MIGRATIONS`. Column declarations read ``"name type"`` with an optional ``"not null"``; types are the
logical `obeya.model.ColumnType` names, mapped to each engine's types by `obeya.store.ddl`.
`tests/store/test_migrations.py` checks that applying every version gives exactly the tables and columns
that `obeya.model.TABLES` declares, so the model and its history cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

# Every normalized table starts with these: its store-wide id, where it came from, and the raw answer.
_RECORD_COLUMNS = (
    "id text not null",
    "source text not null",
    "external_id text not null",
    "raw_event_id text",
)


@dataclass(frozen=True)
class CreateTable:
    """Create a table of the common model (its id is the key), or a derived table (no key)."""

    table: str
    columns: tuple[str, ...]
    derived: bool = False


@dataclass(frozen=True)
class AddColumn:
    """Add a nullable column to an existing table; existing rows get NULL."""

    table: str
    column: str


@dataclass(frozen=True)
class CreateIndex:
    """An index on a server store (PostgreSQL); the embedded store relies on its zone maps instead."""

    table: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class InsertRow:
    """Insert one row of literal values (numbers) into a table."""

    table: str
    values: tuple[int, ...]


@dataclass(frozen=True)
class DeleteRows:
    """Delete the rows of a table that a literal SQL condition (no parameters) matches: records an older
    normalizer made under ids today's no longer gives, before a replay or sync writes them anew."""

    table: str
    where: str


@dataclass(frozen=True)
class RebuildDerived:
    """Fill the derived tables (`obeya.store.derived`) from the data already stored."""


Step = CreateTable | AddColumn | CreateIndex | InsertRow | DeleteRows | RebuildDerived


@dataclass(frozen=True)
class Migration:
    """One schema version and the steps that produce it from the version before."""

    version: int
    description: str
    steps: tuple[Step, ...]


def _table(name: str, *columns: str) -> CreateTable:
    return CreateTable(name, _RECORD_COLUMNS + columns)


_V1 = Migration(
    1,
    "common data model: organisation, work items, code, CI/CD, operations, trace links, raw events",
    (
        _table(
            "value_streams",
            "name text not null",
            "stream_type text not null",
            "description text",
            "owner text",
        ),
        _table(
            "stages",
            "value_stream_id text not null",
            "name text not null",
            "position bigint not null",
            "category text",
            "wip_limit bigint",
        ),
        _table(
            "scopes",
            "value_stream_id text not null",
            "tool text not null",
            "object_type text not null",
            "object_key text not null",
        ),
        _table("teams", "name text not null", "value_stream_id text"),
        _table(
            "people", "display_name text not null", "email text", "team_id text", "is_bot boolean not null"
        ),
        _table("identities", "person_id text not null", "tool text not null", "username text", "email text"),
        _table(
            "work_items",
            "key text not null",
            "title text not null",
            "project text not null",
            "tool_type text not null",
            "flow_item_type text not null",
            "status text not null",
            "flow_state text not null",
            "stage text",
            "parent_id text",
            "team_id text",
            "assignee_id text",
            "labels json not null",
            "priority text",
            "story_points double",
            "created_at timestamp not null",
            "started_at timestamp",
            "done_at timestamp",
            "canceled_at timestamp",
            "updated_at timestamp",
        ),
        _table(
            "status_transitions",
            "work_item_id text not null",
            "at timestamp not null",
            "from_status text",
            "to_status text not null",
            "from_flow_state text",
            "to_flow_state text not null",
            "from_stage text",
            "to_stage text",
            "author_id text",
        ),
        _table(
            "commits",
            "repo text not null",
            "sha text not null",
            "message text not null",
            "author_id text",
            "authored_at timestamp not null",
            "committed_at timestamp",
            "additions bigint",
            "deletions bigint",
        ),
        _table(
            "commit_parents",
            "repo text not null",
            "commit_sha text not null",
            "parent_sha text not null",
            "position bigint not null",
        ),
        _table(
            "changes",
            "repo text not null",
            "number bigint not null",
            "title text not null",
            "branch text",
            "base_branch text",
            "author_id text",
            "state text not null",
            "created_at timestamp not null",
            "merged_at timestamp",
            "closed_at timestamp",
            "merge_commit_sha text",
            "head_sha text",
            "merge_method text",
            "additions bigint",
            "deletions bigint",
        ),
        _table("change_commits", "change_id text not null", "commit_sha text not null", "position bigint"),
        _table(
            "reviews",
            "change_id text not null",
            "reviewer_id text",
            "state text not null",
            "submitted_at timestamp not null",
        ),
        _table(
            "change_comments",
            "change_id text not null",
            "author_id text",
            "created_at timestamp not null",
            "body text",
            "path text",
        ),
        _table(
            "pipeline_runs",
            "pipeline text not null",
            "repo text",
            "commit_sha text",
            "branch text",
            "change_id text",
            "trigger text",
            "result text not null",
            "attempt bigint not null",
            "created_at timestamp not null",
            "started_at timestamp",
            "finished_at timestamp",
            "url text",
        ),
        _table(
            "pipeline_jobs",
            "run_id text not null",
            "name text not null",
            "stage text",
            "result text not null",
            "attempt bigint not null",
            "environment text",
            "started_at timestamp",
            "finished_at timestamp",
        ),
        _table(
            "releases",
            "name text not null",
            "version text",
            "value_stream_id text",
            "status text not null",
            "planned_at timestamp",
            "released_at timestamp",
            "description text",
        ),
        _table(
            "deployments",
            "service text not null",
            "environment text not null",
            "environment_class text not null",
            "repo text",
            "commit_sha text",
            "pipeline_run_id text",
            "release_id text",
            "result text not null",
            "is_rollback boolean not null",
            "started_at timestamp",
            "finished_at timestamp",
            "url text",
        ),
        _table("deployment_changes", "deployment_id text not null", "change_id text not null"),
        _table(
            "incidents",
            "title text not null",
            "service text",
            "severity text",
            "status text not null",
            "created_at timestamp not null",
            "acknowledged_at timestamp",
            "resolved_at timestamp",
            "caused_by_deployment_id text",
            "cause_evidence text",
            "labels json not null",
            "url text",
        ),
        _table(
            "trace_links",
            "from_kind text not null",
            "from_id text not null",
            "to_kind text not null",
            "to_id text not null",
            "link_kind text not null",
            "evidence text not null",
            "confidence double not null",
        ),
        _table(
            "raw_events",
            "event_type text not null",
            "delivery_id text",
            "connection text",
            "received_at timestamp not null",
            "payload_hash text not null",
            "payload text not null",
        ),
        CreateIndex("status_transitions", ("work_item_id",)),
        CreateIndex("change_commits", ("change_id",)),
        CreateIndex("change_commits", ("commit_sha",)),
        CreateIndex("commits", ("repo", "sha")),
        CreateIndex("commit_parents", ("repo", "commit_sha")),
        CreateIndex("reviews", ("change_id",)),
        CreateIndex("pipeline_jobs", ("run_id",)),
        CreateIndex("deployments", ("service", "environment_class", "finished_at")),
        CreateIndex("deployment_changes", ("deployment_id",)),
        CreateIndex("trace_links", ("from_id",)),
        CreateIndex("trace_links", ("to_id",)),
        CreateIndex("raw_events", ("source", "delivery_id")),
    ),
)

_V2 = Migration(
    2,
    "plans (sprints, release plans, PIs) for flow predictability; incidents not caused by a change",
    (
        _table(
            "plans",
            "name text not null",
            "plan_type text not null",
            "value_stream_id text",
            "team_id text",
            "starts_at timestamp not null",
            "ends_at timestamp not null",
        ),
        _table(
            "plan_items",
            "plan_id text not null",
            "work_item_id text not null",
            "added_after_start boolean not null",
            "planned_value double",
            "delivered_value double",
        ),
        AddColumn("incidents", "change_caused boolean"),
        CreateIndex("plan_items", ("plan_id",)),
    ),
)

_V3 = Migration(
    3,
    "sync cursors: where each connection's incremental sync of each resource got to",
    (
        _table(
            "sync_cursors",
            "connection text not null",
            "resource text not null",
            "cursor text",
            "status text not null",
            "synced_at timestamp not null",
            "message text",
        ),
    ),
)

_V4 = Migration(
    4,
    "files touched by each commit, to tell services apart in a monorepo",
    (AddColumn("commits", "paths json"),),
)

_V5 = Migration(
    5,
    "derived item timeline (status periods, per-item marks, stage visits), kept in step with transitions",
    (
        CreateTable(
            "flow_periods",
            (
                "item_id text not null",
                "transition_id text not null",
                "status text not null",
                "flow_state text not null",
                "stage text",
                "entered_at timestamp not null",
                "left_at timestamp",
            ),
            derived=True,
        ),
        CreateTable(
            "flow_items",
            (
                "item_id text not null",
                "first_active_at timestamp",
                "first_committed_at timestamp",
                "last_done_at timestamp",
                "current_state text",
                "current_stage text",
                "last_transition_at timestamp not null",
            ),
            derived=True,
        ),
        CreateTable(
            "flow_visits",
            (
                "item_id text not null",
                "visit bigint not null",
                "stage text not null",
                "entered_at timestamp not null",
                "left_at timestamp",
                "process_time double not null",
                "uncommitted_time double not null",
            ),
            derived=True,
        ),
        CreateIndex("flow_periods", ("item_id",)),
        CreateIndex("flow_items", ("item_id",)),
        CreateIndex("flow_visits", ("item_id",)),
        RebuildDerived(),
    ),
)

_V6 = Migration(
    6,
    "a data version every write bumps, so cached figures know when the data under them changed",
    (
        CreateTable("data_versions", ("version bigint not null",), derived=True),
        InsertRow("data_versions", (0,)),
    ),
)

_V7 = Migration(
    7,
    "per item, the seconds spent active; per stage visit, the previous visit's stage and end",
    (
        AddColumn("flow_items", "active_time double"),
        AddColumn("flow_visits", "previous_stage text"),
        AddColumn("flow_visits", "previous_left_at timestamp"),
        RebuildDerived(),
    ),
)

_V8 = Migration(
    8,
    "the linking watermark: the data version and rules links were last derived at, and a fingerprint of "
    "every record a link rule reads, so a derivation re-derives only what changed",
    (
        CreateTable("linking_state", ("version bigint not null", "rules bigint not null"), derived=True),
        InsertRow("linking_state", (-1, 0)),
        CreateTable(
            "linking_seen",
            ("kind text not null", "id text not null", "fingerprint text not null", "ref text"),
            derived=True,
        ),
        CreateIndex("linking_seen", ("kind", "id")),
    ),
)

_V9 = Migration(
    9,
    "GitHub issue transitions by state and second: the old per-issue-event ids (owner/name#N/events/ID) "
    "deleted, the timeline of their items rebuilt; `obeya replay` or the next sync writes them anew",
    (
        # Only `_issue_event` of the normalizer before the state-and-second ids made `#N/events/ID`.
        DeleteRows("status_transitions", "source = 'github' AND external_id LIKE '%#%/events/%'"),
        RebuildDerived(),
    ),
)

_V10 = Migration(
    10,
    "change requests as releases: the service, implementation window, approval and correlation id that "
    "tie a change request to the deployments it covers",
    (
        AddColumn("releases", "service text"),
        AddColumn("releases", "window_start timestamp"),
        AddColumn("releases", "window_end timestamp"),
        AddColumn("releases", "approval text"),
        AddColumn("releases", "correlation_id text"),
    ),
)

MIGRATIONS: tuple[Migration, ...] = (_V1, _V2, _V3, _V4, _V5, _V6, _V7, _V8, _V9, _V10)
LATEST_VERSION = MIGRATIONS[-1].version
