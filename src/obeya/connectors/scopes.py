"""The value streams of `obeya.yaml` in the store: streams, stages, and the scopes that select their data.

The engine selects a stream's data through `scopes` rows (`obeya.engine.sql`): work items by
``work_items.project`` in its ``project``/``board`` scopes, changes by ``changes.repo`` in its
``repository`` scopes, deployments by ``deployments.service`` (``service`` scopes) or ``deployments.repo``
(``repository`` scopes), incidents by ``incidents.service``. The webhook receivers take a delivery only
when its repository, project or service is in some scope of its tool; a delivery about an object a
connection declares belongs to that connection (`webhook_bindings`), and the records the receivers write
from it teach its stream their scopes (`learn_record_scopes`), as a sync's do.

Each connection that names a `value_stream` gives that stream two kinds of scopes, all under source
`SOURCE` (``config``):

- declared: what the connection lists, written as the normalizers store it (`declared_scopes`), so a
  webhook for a listed repository is taken before any sync;
- learned: every project key, repository and service that the records normalized from the connection's
  raw answers carry (`learned_scope_keys`, one SQL query). This is how a Jira board's projects, a
  PagerDuty service listed by id (incidents carry its name) or a GitLab project given by numeric id
  reach the stream. A sync learns them at its end (`learn_scopes`).

`apply_value_streams` makes the store's ``config`` rows exactly what the configuration gives (declared and
learned): it writes what is new or changed and deletes the rest — a stream, stage or scope removed from
`obeya.yaml` (or a connection no longer feeding a stream) is removed. Rows of any other source (the demo,
`obeya import`) are never touched. Ids are stable: ``config:value-stream/KEY``,
``config:stage/KEY/NAME``, ``config:scope/KEY/TOOL/TYPE/OBJECT``, KEY being the stream's `id` (else the
slug of its name).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, cast

from obeya.connectors.azuredevops.config import AzureDevOpsConnectionConfig
from obeya.connectors.config import ConnectionConfig, GitHubConnectionConfig, JiraConnectionConfig
from obeya.connectors.git.config import GitConnectionConfig
from obeya.connectors.gitlab.config import GitLabConnectionConfig
from obeya.connectors.jenkins.config import JenkinsConnectionConfig
from obeya.model.ids import record_id
from obeya.model.records import Change, Deployment, Incident, Record, Scope, Stage, ValueStream, WorkItem
from obeya.model.schema import TABLES
from obeya.store.base import Store

if TYPE_CHECKING:
    from obeya.config.model import ObeyaConfig, ValueStreamConfig

SOURCE = "config"
"""The source of every value stream, stage and scope `obeya.yaml` writes."""

ObjectType = Literal["repository", "board", "project", "service", "pipeline"]
_KINDS = ("scope", "stage", "value_stream")


@dataclass(frozen=True)
class AppliedStreams:
    """What `apply_value_streams` did: the rows the configuration gives, and how many it changed."""

    value_streams: int
    stages: int
    scopes: int
    written: int
    removed: int


def stream_external_id(key: str) -> str:
    """The external id of the value stream whose key (`id` or slug of its name) is `key`."""
    return f"value-stream/{key}"


def _scope(key: str, stream_id: str, tool: str, object_type: ObjectType, object_key: str) -> Scope:
    return Scope(
        source=SOURCE,
        external_id=f"scope/{key}/{tool}/{object_type}/{object_key}",
        value_stream_id=stream_id,
        tool=tool,
        object_type=object_type,
        object_key=object_key,
    )


def declared_objects(connection: ConnectionConfig) -> list[tuple[ObjectType, str]]:
    """The objects a connection lists, as (object type, key) written as its normalizer stores them.

    GitHub ``owner/name`` and git repository names are ``changes.repo``/``deployments.repo``; a GitLab
    project path is both ``changes.repo`` and ``work_items.project``; Azure DevOps projects are
    ``work_items.project`` and its repositories ``changes.repo``; Jira project keys are
    ``work_items.project`` (boards are kept as ``board`` scopes; their projects are learned); Jenkins
    ``deploy_jobs`` services are ``deployments.service`` (jobs are ``pipeline`` scopes); PagerDuty,
    Opsgenie and ServiceNow `services` are kept as written (an id matches webhooks; the name the
    incidents carry is learned).
    """
    found: list[tuple[ObjectType, str]] = []
    if isinstance(connection, GitHubConnectionConfig):
        found += [("repository", r) for r in connection.repositories]
    elif isinstance(connection, GitLabConnectionConfig):
        for project in connection.projects:
            found += [("repository", project), ("project", project)]
    elif isinstance(connection, AzureDevOpsConnectionConfig):
        found += [("project", p) for p in connection.projects]
        found += [("repository", r) for r in connection.repositories]
    elif isinstance(connection, GitConnectionConfig):
        found += [("repository", r.name) for r in connection.repositories]
    elif isinstance(connection, JiraConnectionConfig):
        found += [("project", p) for p in connection.projects]
        found += [("board", str(b)) for b in connection.boards]
    elif isinstance(connection, JenkinsConnectionConfig):
        found += [("pipeline", j) for j in connection.jobs]
        found += [("service", rule.service) for rule in connection.deploy_jobs]
    else:  # PagerDuty, Opsgenie, ServiceNow
        found += [("service", s) for s in connection.services]
    return list(dict.fromkeys(found))


def learned_scope_keys(store: Store, connection: str) -> list[tuple[ObjectType, str]]:
    """Every (object type, key) the records normalized from a connection's raw answers carry.

    One query: work items' projects, changes' and deployments' repositories, deployments' and
    incidents' services, of the rows whose raw event came from `connection`.
    """
    raw = TABLES["raw_event"].name
    parts = [
        ("project", "work_item", "project"),
        ("repository", "change", "repo"),
        ("repository", "deployment", "repo"),
        ("service", "deployment", "service"),
        ("service", "incident", "service"),
    ]
    selects = [
        f"SELECT '{object_type}' AS object_type, t.{column} AS object_key "
        f'FROM "{TABLES[kind].name}" t JOIN "{raw}" r ON r.id = t.raw_event_id '
        f"WHERE r.connection = ? AND t.{column} IS NOT NULL AND t.{column} <> ''"
        for object_type, kind, column in parts
    ]
    rows = store.query(
        f"SELECT DISTINCT object_type, object_key FROM ({' UNION ALL '.join(selects)}) k ORDER BY 1, 2",
        [connection] * len(parts),
    )
    return [(cast(ObjectType, str(t)), str(k)) for t, k in rows]


def _stream_records(stream: ValueStreamConfig) -> list[Record]:
    record = ValueStream(
        source=SOURCE,
        external_id=stream_external_id(stream.key),
        name=stream.name,
        stream_type=stream.type,
        description=stream.description,
        owner=stream.owner,
    )
    stages: list[Record] = [
        Stage(
            source=SOURCE,
            external_id=f"stage/{stream.key}/{stage.name}",
            value_stream_id=record.id,
            name=stage.name,
            position=position,
            category=None if stage.stage_category is None else stage.stage_category.value,
            wip_limit=stage.wip_limit,
        )
        for position, stage in enumerate(stream.stages)
    ]
    return [record, *stages]


def _connection_scopes(
    key: str, stream_id: str, connection: ConnectionConfig, objects: Iterable[tuple[ObjectType, str]]
) -> list[Scope]:
    return [_scope(key, stream_id, connection.tool, t, k) for t, k in objects]


def configured_records(store: Store, config: ObeyaConfig) -> list[Record]:
    """The value streams, stages and scopes (declared and learned) the configuration gives."""
    records: list[Record] = []
    for stream in config.value_streams:
        records += _stream_records(stream)
    for connection in config.connections:
        fed = None if connection.value_stream is None else config.value_stream(connection.value_stream)
        if fed is None:
            continue
        stream_id = record_id(SOURCE, stream_external_id(fed.key))
        objects = [*declared_objects(connection), *learned_scope_keys(store, connection.name)]
        records += _connection_scopes(fed.key, stream_id, connection, objects)
    return list({r.id: r for r in records}.values())


def apply_value_streams(store: Store, config: ObeyaConfig) -> AppliedStreams:
    """Make the store's ``config`` value streams, stages and scopes what `config` gives (idempotent).

    Writes only rows that are new or changed and deletes the ``config`` rows the configuration no longer
    gives, in one transaction; nothing is written when nothing changed. Rows of other sources (demo,
    import) are left as they are.
    """
    wanted = {r.id: r for r in configured_records(store, config)}
    stored = {r.id: r for kind in _KINDS for r in store.fetch_records(kind, "source = ?", [SOURCE])}
    changed = [r for record_id, r in wanted.items() if stored.get(record_id) != r]
    gone = [r for record_id, r in stored.items() if record_id not in wanted]
    if changed or gone:
        with store.transaction():
            if changed:
                store.upsert_records(changed)
            for kind in _KINDS:
                ids = [r.id for r in gone if r.kind == kind]
                if ids:
                    store.delete_where(kind, f"id IN ({', '.join('?' for _ in ids)})", ids)
    counts = {kind: sum(1 for r in wanted.values() if r.kind == kind) for kind in _KINDS}
    return AppliedStreams(counts["value_stream"], counts["stage"], counts["scope"], len(changed), len(gone))


def learn_scopes(store: Store, connection: ConnectionConfig) -> int:
    """Add to the connection's value stream the scopes its stored records carry; how many were new.

    Called at the end of a sync (and of a replay given the connection). Nothing happens when the
    connection names no stream or the stream is not in the store yet (`apply_value_streams` writes it,
    and learns the same scopes, at the start of `obeya sync`, `obeya replay` and `obeya serve`).
    """
    if connection.value_stream is None:
        return 0
    return _add_scopes(store, connection, learned_scope_keys(store, connection.name))


def record_scope_keys(records: Iterable[Record]) -> list[tuple[ObjectType, str]]:
    """The (object type, key) that records carry, as `learned_scope_keys` reads them from the store:
    work items' projects, changes' and deployments' repositories, deployments' and incidents' services."""
    found: list[tuple[ObjectType, str]] = []
    for record in records:
        if isinstance(record, WorkItem):
            found.append(("project", record.project))
        elif isinstance(record, Change):
            found.append(("repository", record.repo))
        elif isinstance(record, Deployment):
            found += [("repository", record.repo)] if record.repo else []
            found.append(("service", record.service))
        elif isinstance(record, Incident) and record.service:
            found.append(("service", record.service))
    return list(dict.fromkeys(found))


def learn_record_scopes(store: Store, connection: ConnectionConfig, records: Iterable[Record]) -> int:
    """Add to the connection's value stream the scopes `records` (just written from its deliveries)
    carry; how many were new. What `learn_scopes` does after a sync, for a webhook batch: the records in
    hand are read, not every stored record of the connection."""
    if connection.value_stream is None:
        return 0
    return _add_scopes(store, connection, record_scope_keys(records))


def _add_scopes(store: Store, connection: ConnectionConfig, learned: list[tuple[ObjectType, str]]) -> int:
    """Write the connection's declared and `learned` scopes its stream does not hold yet; how many."""
    reference = str(connection.value_stream)
    rows = store.query(
        "SELECT id, external_id FROM value_streams "
        "WHERE source = ? AND (external_id = ? OR lower(name) = ?) ORDER BY id",
        [SOURCE, stream_external_id(reference), reference.strip().lower()],
    )
    if not rows:
        return 0
    stream_id, external_id = str(rows[0][0]), str(rows[0][1])
    key = external_id.removeprefix(stream_external_id(""))
    objects = [*declared_objects(connection), *learned]
    scopes = _connection_scopes(key, stream_id, connection, objects)
    known = {
        str(r[0])
        for r in store.query(
            "SELECT id FROM scopes WHERE source = ? AND value_stream_id = ?", [SOURCE, stream_id]
        )
    }
    new = [s for s in scopes if s.id not in known]
    if new:
        store.upsert_records(new)
    return len(new)


def webhook_bindings(connections: Iterable[ConnectionConfig]) -> dict[tuple[str, str], str]:
    """(tool, object key lowercased) → the name of the connection that declares the object (the first
    one, when several do): a webhook delivery about that repository, project or service belongs to it."""
    bound: dict[tuple[str, str], str] = {}
    for connection in connections:
        for _, key in declared_objects(connection):
            bound.setdefault((connection.tool, key.lower()), connection.name)
    return bound
