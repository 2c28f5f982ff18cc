"""The Jenkins collector: builds, their Pipeline stages and the commit built, as raw events.

Resources of a connection, in order: ``deploy_rules`` (the connection's `deploy_jobs`, kept as one raw
event so the normalizer, and a replay, read them as reference data), then ``jobs/FULL_NAME`` per
configured job. A job that holds jobs (a folder, a multibranch project: its branches) is walked job by job.

Per job: ``GET job/A/job/B/api/json?tree=lastBuild[number]`` first; when the last build is newer than the
job's mark, ``allBuilds[...]{M,N}`` ranges (newest first) until the mark is reached, then the new builds
oldest first, each with ``GET job/.../N/wfapi/describe`` (Pipeline builds only: their stages) and
``GET job/.../N/pipeline-graph/tree`` (the pipeline-graph-view plugin's graph, which says which stages a
``when`` condition skipped; after its first 404 the plugin is taken as absent and not asked again). The cursor
holds per job the highest build number up to which every build is stored and finished: a running build
holds the mark back, so it is fetched again until it is over.

Raw events: ``build:JOB#N`` (the build as the API lists it), ``stages:JOB#N`` (the wfapi answer),
``stage_graph:JOB#N`` (the pipeline-graph answer), ``deploy_rules:CONNECTION``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from obeya.connectors.base import ConnectionCollector
from obeya.connectors.errors import NotFoundError
from obeya.connectors.http import HttpClient, RetryPolicy, TokenAuth
from obeya.connectors.jenkins.config import JenkinsConnectionConfig
from obeya.connectors.raw import raw_event
from obeya.model.records import RawEvent

SOURCE = "jenkins"
RULES_RESOURCE = "deploy_rules"
HINT = (
    "check it is an API token (user menu → Security → API Token) of the user in ${user_env}, that the "
    "user has Overall/Read and Job/Read on the jobs, and that the token has not been revoked"
)
BUILD_TREE = (
    "number,url,result,building,timestamp,duration,displayName,"
    "actions[_class,lastBuiltRevision[SHA1,branch[name]],remoteUrls,causes[shortDescription,userId],"
    "parameters[name,value]]"
)
_MAX_FOLDER_DEPTH = 4

Item = dict[str, Any]
Clock = Callable[[], datetime]


def jenkins_client(
    connection: JenkinsConnectionConfig, *, environ: Mapping[str, str] | None = None, **options: Any
) -> HttpClient:
    """The HTTP client for a connection: basic auth with the user and API token the variables hold."""
    auth = TokenAuth.basic_from_environment(
        "Jenkins",
        connection.user_env,
        connection.token_env,
        user_is="Jenkins needs the user name of the API token",
        user_key="user_env",
        connection=connection.name,
        hint=HINT.replace("{user_env}", connection.user_env),
        environ=environ,
    )
    options.setdefault("retry", RetryPolicy())
    return HttpClient(connection.base_url, tool="Jenkins", auth=auth, **options)


def job_path(job: str) -> str:
    """The URL path of a job's full name: ``a/b`` → ``job/a/job/b/``."""
    return "".join(f"job/{quote(part, safe='')}/" for part in job.split("/"))


def finished(build: Item) -> bool:
    """Whether a build is over (not building, with a result)."""
    return not build.get("building") and build.get("result") is not None


@dataclass(frozen=True)
class JenkinsCursor:
    """Per job full name, the build number up to which every build is stored and finished."""

    marks: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None) -> JenkinsCursor:
        """The cursor stored as JSON text (an empty cursor for None)."""
        return cls(dict(json.loads(text).get("marks", {}))) if text else cls()

    def dumps(self) -> str:
        """The cursor as JSON text for `SyncCursor.cursor`."""
        return json.dumps({"marks": dict(self.marks)}, sort_keys=True)


@dataclass
class JenkinsBatch:
    """One page of a resource, stored in one transaction with its cursor."""

    resource: str
    events: list[RawEvent]
    cursor: JenkinsCursor
    complete: bool
    fetched: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


class JenkinsCollector(ConnectionCollector[JenkinsConnectionConfig]):
    """Fetches one Jenkins connection's jobs as raw events, page by page."""

    def __init__(
        self,
        client: HttpClient,
        connection: JenkinsConnectionConfig,
        clock: Clock = lambda: datetime.now(UTC),
        page_size: int = 100,
        batch_size: int = 20,
    ) -> None:
        super().__init__(client, connection, clock, page_size)
        self._batch_size = batch_size
        self._graph_missing = False  # pipeline-graph answered 404: the plugin is not installed

    @staticmethod
    def resource_names(connection: JenkinsConnectionConfig) -> list[str]:
        """``deploy_rules``, then ``jobs/FULL_NAME`` per configured job."""
        return [RULES_RESOURCE, *(f"jobs/{job}" for job in connection.jobs)]

    def collect_resource(self, resource: str, cursor: str | None, full: bool) -> Iterator[JenkinsBatch]:
        """The pages of `resource` from the stored cursor (from the start when `full`)."""
        if resource == RULES_RESOURCE:
            rules = [r.model_dump() for r in self.connection.deploy_jobs]
            event = self._event("deploy_rules", self.connection.name, {"deploy_jobs": rules})
            yield JenkinsBatch(resource, [event], JenkinsCursor(), complete=True, fetched=len(rules))
            return
        if not resource.startswith("jobs/") or resource[5:] not in self.connection.jobs:
            raise ValueError(f"Jenkins connection {self.connection.name!r} has no resource {resource!r}")
        state = JenkinsCursor() if full else JenkinsCursor.parse(cursor)
        yield from self._job(resource, resource[5:], dict(state.marks))

    # --- walking -----------------------------------------------------------------------------------------

    def _leaves(self, job: str, depth: int = 0) -> list[tuple[str, int | None]]:
        """The jobs with builds under `job` (itself, or a folder's jobs), with their last build number."""
        info = self.client.get_json(
            self.client.url(f"{job_path(job)}api/json", {"tree": "jobs[name],lastBuild[number]"})
        )
        children = info.get("jobs") if isinstance(info, dict) else None
        if isinstance(children, list) and depth < _MAX_FOLDER_DEPTH:
            leaves: list[tuple[str, int | None]] = []
            for child in children:
                leaves += self._leaves(f"{job}/{child['name']}", depth + 1)
            return leaves
        last = info.get("lastBuild") if isinstance(info, dict) else None
        return [(job, int(last["number"]) if isinstance(last, dict) else None)]

    def _job(self, resource: str, job: str, marks: dict[str, int]) -> Iterator[JenkinsBatch]:
        leaves = self._leaves(job)
        pending: list[tuple[str, list[Item]]] = []
        for leaf, last in leaves:
            mark = marks.get(leaf, 0)
            if last is not None and last > mark:
                pending.append((leaf, self._new_builds(leaf, mark)))
        if not any(builds for _, builds in pending):
            yield JenkinsBatch(resource, [], JenkinsCursor(marks), complete=True)
            return
        chunks = [
            (leaf, builds[start : start + self._batch_size])
            for leaf, builds in pending
            for start in range(0, len(builds), self._batch_size)
        ]
        held: set[str] = set()  # jobs whose mark a running build holds back
        for index, (leaf, chunk) in enumerate(chunks):
            events: list[RawEvent] = []
            skipped: Counter[str] = Counter()
            for build in chunk:
                key = f"{leaf}#{build['number']}"
                events.append(self._event("build", key, build))
                if "WorkflowRun" in str(build.get("_class", "WorkflowRun")):
                    stages = self._stages(leaf, int(build["number"]))
                    if stages is None:
                        skipped["Pipeline build without stages (wfapi answered 404)"] += 1
                    else:
                        events.append(self._event("stages", key, stages))
                        graph = self._stage_graph(leaf, int(build["number"]))
                        if graph is not None:
                            events.append(self._event("stage_graph", key, graph))
                if not finished(build):
                    held.add(leaf)
                elif leaf not in held:
                    marks[leaf] = max(marks.get(leaf, 0), int(build["number"]))
            last_chunk = index == len(chunks) - 1
            yield JenkinsBatch(resource, events, JenkinsCursor(dict(marks)), last_chunk, len(chunk), skipped)

    def _new_builds(self, job: str, mark: int) -> list[Item]:
        """The builds of `job` numbered above `mark`, oldest first."""
        found: list[Item] = []
        start = 0
        while True:
            tree = f"allBuilds[{BUILD_TREE}]{{{start},{start + self._page_size}}}"
            body = self.client.get_json(self.client.url(f"{job_path(job)}api/json", {"tree": tree}))
            builds = body.get("allBuilds", []) if isinstance(body, dict) else []
            found += [b for b in builds if int(b["number"]) > mark]
            if len(builds) < self._page_size or any(int(b["number"]) <= mark for b in builds):
                break
            start += self._page_size
        return sorted(found, key=lambda b: int(b["number"]))

    def _stage_graph(self, job: str, number: int) -> Item | None:
        """The pipeline-graph-view plugin's graph of a build, None when the plugin is not installed."""
        if self._graph_missing:
            return None
        try:
            answer = self.client.get_json(f"{job_path(job)}{number}/pipeline-graph/tree")
        except NotFoundError:
            self._graph_missing = True
            return None
        return answer if isinstance(answer, dict) else None

    def _stages(self, job: str, number: int) -> Item | None:
        try:
            answer = self.client.get_json(f"{job_path(job)}{number}/wfapi/describe")
        except NotFoundError:
            return None
        return answer if isinstance(answer, dict) else None

    def _event(self, event_type: str, key: str, item: Item) -> RawEvent:
        return raw_event(
            SOURCE, event_type, key, item, connection=self.connection.name, received_at=self._clock()
        )
