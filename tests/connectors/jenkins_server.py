"""A local Jenkins remote API serving the real recordings in shared/fixtures/api-recordings/jenkins.

Recorded: the builds of the multibranch project ``github_org/devlake-jenkins`` (branches main, PR-2,
feature-1, feature-2) with the stages of each Pipeline build (``_raw_jenkins_api_builds_multibranch``,
``_stages_multibranch``, ``_jobs_multibranch``), and the freestyle builds of
``Test-jenkins-dir/test-jenkins-sub-dir/test-sub-sub-dir/devlake`` (``_raw_jenkins_api_builds``; each
number once, the first recorded). Derived, not recorded: a folder's ``jobs`` list (from the recorded
jobs), ``lastBuild`` (the highest recorded number), the wfapi answer of a build (its recorded stages, in
id order, under the build's number and result), and 404 for a Pipeline build without recorded stages.

It answers ``job/A/job/B/api/json?tree=...`` with ``allBuilds[...]{M,N}`` ranges newest first, and
``job/.../N/wfapi/describe``; basic auth with `USER`/`TOKEN`, else 401. `hidden` builds are left out
until `reveal` (a new build arriving between two syncs). Tests read the requests in `requests`. The root
``api/json`` answers as a controller does (``{"_class": "hudson.model.Hudson", "mode": "NORMAL"}``), and
`faults` (a `loopback.Fault` by path suffix) are answered instead once the credentials are right.
``N/pipeline-graph/tree`` answers 404 (the pipeline-graph-view plugin not installed) unless a test sets the
build's graph in `graphs`.
"""

from __future__ import annotations

import base64
import json
import re
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from loopback import Fault, LocalServer, fault_for, send

from tests.shared_fixtures import API_RECORDINGS

RECORDINGS = API_RECORDINGS / "jenkins"
USER = "obeya"
TOKEN = "jenkins-api-token"
MULTIBRANCH = "github_org/devlake-jenkins"
FREESTYLE = "Test-jenkins-dir/test-jenkins-sub-dir/test-sub-sub-dir/devlake"

Item = dict[str, Any]


def _rows(name: str) -> list[Item]:
    return [
        json.loads(line) for line in (RECORDINGS / f"_raw_jenkins_api_{name}.jsonl").read_text().splitlines()
    ]


def load_builds() -> dict[str, dict[int, Item]]:
    """The recorded builds by job full name and number (the first recording of a number)."""
    jobs: dict[str, dict[int, Item]] = {}
    for name in ("builds", "builds_multibranch"):
        for row in _rows(name):
            job = row["input"].get("FullName") or row["params"]["FullName"]
            if "Path" in row["input"] and name == "builds":
                job = FREESTYLE if row["data"]["_class"].endswith("FreeStyleBuild") else job
            jobs.setdefault(job, {}).setdefault(row["data"]["number"], row["data"])
    return jobs


def load_stages() -> dict[str, list[Item]]:
    """The recorded stages of the multibranch builds, by ``JOB#N``, in id order."""
    stages: dict[str, list[Item]] = {}
    for row in _rows("stages_multibranch"):
        stages.setdefault(row["input"]["FullName"], []).append(row["data"])
    return {k: sorted(v, key=lambda s: int(s["id"])) for k, v in stages.items()}


class FakeJenkins(LocalServer):
    """The server; `base_url` goes into the connection's `base_url`."""

    def __init__(self) -> None:
        self.builds = load_builds()
        self.stages = load_stages()
        self.faults: dict[str, Fault] = {}
        self.graphs: dict[str, Item] = {}  # JOB#N → its pipeline-graph/tree answer (else 404: no plugin)
        self.folders = {MULTIBRANCH: [r["data"]["name"] for r in _rows("jobs_multibranch")]}
        self.hidden: set[tuple[str, int]] = set()
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._listen()

    def reveal(self) -> None:
        self.hidden.clear()

    def received(self, part: str) -> list[str]:
        return [path for path, _ in self.requests if part in path]

    def _visible(self, job: str) -> list[Item]:
        builds = [b for n, b in self.builds.get(job, {}).items() if (job, n) not in self.hidden]
        return sorted(builds, key=lambda b: -int(b["number"]))

    def answer(self, path: str, query: dict[str, str]) -> tuple[int, Any]:
        if path in ("/api/json", "/api/json/"):
            return 200, {"_class": "hudson.model.Hudson", "mode": "NORMAL"}
        graph = re.fullmatch(r"/((?:job/[^/]+/)+)(\d+)/pipeline-graph/tree/?", path)
        if graph:
            job = "/".join(unquote(p) for p in graph.group(1).split("/")[1::2])
            found = self.graphs.get(f"{job}#{graph.group(2)}")
            return (200, found) if found is not None else (404, {"message": "not found"})
        match = re.fullmatch(r"/((?:job/[^/]+/)+)(?:(\d+)/wfapi/describe|api/json)/?", path)
        if not match:
            return 404, {"message": "not found"}
        job = "/".join(unquote(p) for p in match.group(1).split("/")[1::2])
        if match.group(2):
            number = int(match.group(2))
            build = self.builds.get(job, {}).get(number)
            stages = self.stages.get(f"{job}#{number}")
            if build is None or stages is None or (job, number) in self.hidden:
                return 404, {"message": "not found"}
            return 200, {
                "id": str(number),
                "name": f"#{number}",
                "status": {"FAILURE": "FAILED"}.get(build["result"], build["result"]),
                "startTimeMillis": build["timestamp"],
                "durationMillis": build["duration"],
                "stages": stages,
            }
        if job in self.folders:
            return 200, {
                "_class": "org.jenkinsci.plugins.workflow.multibranch.WorkflowMultiBranchProject",
                "jobs": [
                    {"_class": "org.jenkinsci.plugins.workflow.job.WorkflowJob", "name": n}
                    for n in self.folders[job]
                ],
            }
        if job not in self.builds:
            return 404, {"message": "not found"}
        builds = self._visible(job)
        tree = query.get("tree", "")
        ranged = re.search(r"\{(\d+),(\d+)\}$", tree)
        if tree.startswith("allBuilds"):
            start, end = (int(ranged.group(1)), int(ranged.group(2))) if ranged else (0, len(builds))
            return 200, {
                "_class": "org.jenkinsci.plugins.workflow.job.WorkflowJob",
                "allBuilds": builds[start:end],
            }
        last = {"_class": "hudson.model.Run", "number": builds[0]["number"]} if builds else None
        return 200, {"_class": "org.jenkinsci.plugins.workflow.job.WorkflowJob", "lastBuild": last}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                with server._lock:
                    server.requests.append((parts.path, query))
                expected = "Basic " + base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()
                headers: dict[str, str] = {}
                delay = 0.0
                if self.headers.get("Authorization") != expected:
                    status, body = 401, {"message": "Unauthorized"}
                elif (fault := fault_for(server.faults, parts.path)) is not None:
                    status, body, headers, delay = fault.status, fault.body, fault.headers, fault.delay
                else:
                    status, body = server.answer(parts.path, query)
                send(self, status, body, headers, delay)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
