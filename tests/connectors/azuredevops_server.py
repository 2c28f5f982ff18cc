"""A local Azure DevOps REST API serving the real recordings in shared/fixtures/api-recordings/azuredevops_go.

It answers as Azure DevOps does: lists as ``{"count": n, "value": [...]}``; the pull request list paged by
``$top``/``$skip``; builds, pull request commits and threads paged with the ``x-ms-continuationtoken``
header (sent back as ``continuationToken``); the reporting work item revisions as ``{"values": [...],
"continuationToken": ..., "isLastBatch": ...}``; 401 for a wrong PAT (basic auth, empty user). Requests
are routed on path and query only; tests read what it received in `requests`.

Recorded (organization ``johndoe``, project ``test-project``, repository ``test-repo2``): pull request 1
(active, one reviewer who has not voted) and its commit; builds 12–18 (succeeded, canceled, in progress,
not started); the timeline records (the ``deploy production`` job of build 12, five generic records of
build 13).

**Derived** (no recording holds them):

- the organization's project list and the project's repository list (what `obeya connections test`
  asks), in the documented ``{"count", "value"}`` shape;
- pull request 2, completed, built from pull request 1 with four reviewers voting 10, 5, -5 and -10, and
  ``VoteUpdate`` threads giving the time of two of the votes (the shape of Azure DevOps' documented
  pull request threads answer); its commit is the recorded one;
- build 12's timeline around the recorded job: stage ``Build``, stage ``Deploy production`` and the phase
  that is the recorded job's parent; build 13 gets a ``Deploy staging`` stage that was **skipped**;
- pull request comment threads: a thread on ``/src/main.java`` where Ann (a reviewer) asks and the author
  answers, with a deleted comment, a deleted thread, and pull request 1's own comment by its author beside
  a ``system`` comment — the shape of the documented Pull Request Threads - List answer;
- classic release deployments (``_apis/release/deployments``, served here at the connection's URL as
  Azure DevOps Server does; dev.azure.com serves them on vsrm.dev.azure.com): five attempts of release 7
  of ``test-repo2.CD`` to QA and Production, in the shape of the documented Deployments - List answer,
  releasing build 12 of the recorded commit; ``minModifiedTime`` filters on ``lastModifiedOn``;
- work items: no recording exists; items 1 (Bug) and 2 (User Story) and their revisions follow the
  documented examples of ``_apis/wit/workitems?ids=...&$expand=all``,
  ``_apis/wit/workItems/{id}/revisions`` and ``_apis/wit/reporting/workitemrevisions`` (fields
  ``System.State``, ``System.WorkItemType``, ``System.ChangedDate``, ``System.CreatedDate``, ...).
"""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from loopback import Fault, LocalServer, fault_for, send

from tests.shared_fixtures import API_RECORDINGS

RECORDINGS = API_RECORDINGS / "azuredevops_go"
TOKEN = "azdo-test-pat"
ORG = "johndoe"
PROJECT = "test-project"
REPO = "test-repo2"
REPO_ID = "0d50ba13-f9ad-49b0-9b21-d29eda50ca33"
STAGE_PHASE = "9ecf18fe-987d-5811-7c63-300aecae35da"  # the recorded deploy job's parent
DEPLOY_STAGE = "5b4d3c2a-0000-4000-8000-000000000001"
BUILD_STAGE = "5b4d3c2a-0000-4000-8000-000000000002"
SKIPPED_STAGE = "5b4d3c2a-0000-4000-8000-000000000003"
JANE = {
    "id": "aa000000-0000-0000-0000-00000000000a",
    "displayName": "Jane Roe",
    "uniqueName": "jane@example.com",
}
MARK = {
    "id": "bb000000-0000-0000-0000-00000000000b",
    "displayName": "Mark Poe",
    "uniqueName": "mark@example.com",
}
ANN = {
    "id": "cc000000-0000-0000-0000-00000000000c",
    "displayName": "Ann Lee",
    "uniqueName": "ann@example.com",
}
JANE_VOTED_AT = "2023-02-08T09:15:00.123Z"
MARK_VOTED_AT = "2023-02-08T10:00:00Z"
PR2_CLOSED = "2023-02-09T12:00:00.5Z"

Item = dict[str, Any]


def load(name: str) -> list[Item]:
    """The ``data`` of every line of a recording."""
    text = (RECORDINGS / f"_raw_azuredevops_go_api_{name}.jsonl").read_text()
    return [json.loads(line)["data"] for line in text.splitlines() if line.strip()]


def _reviewer(person: Item, vote: int) -> Item:
    return {**person, "vote": vote, "hasDeclined": False, "isFlagged": False}


def pull_requests() -> list[Item]:
    """Recorded pull request 1 and the derived, completed pull request 2 (newest first, as listed)."""
    (first,) = load("pull_requests")
    second = copy.deepcopy(first)
    owner = first["reviewers"][0]
    second.update(
        pullRequestId=2,
        codeReviewId=2,
        title="ticket-3PR",
        status="completed",
        creationDate="2023-02-08T08:00:00.25Z",
        closedDate=PR2_CLOSED,
        sourceRefName="refs/heads/ticket-3",
        completionOptions={"mergeStrategy": "squash"},
        reviewers=[
            {**owner, "vote": 10},
            _reviewer(JANE, 5),
            _reviewer(MARK, -5),
            _reviewer(ANN, -10),
            _reviewer(
                {"id": "dd000000-0000-0000-0000-00000000000d", "displayName": "[test-project]\\Team"}, 0
            )
            | {"isContainer": True},
        ],
    )
    return [second, first]


def _vote_thread(thread_id: int, person: Item, vote: int, when: str) -> Item:
    """A system thread recording a vote, in the documented shape of the threads answer."""
    return {
        "id": thread_id,
        "publishedDate": when,
        "lastUpdatedDate": when,
        "comments": [
            {
                "id": 1,
                "author": person,
                "content": f"{person['displayName']} voted {vote}",
                "publishedDate": when,
                "commentType": "system",
            }
        ],
        "status": "unknown",
        "properties": {
            "CodeReviewThreadType": {"$type": "System.String", "$value": "VoteUpdate"},
            "CodeReviewVoteResult": {"$type": "System.String", "$value": str(vote)},
            "CodeReviewVotedByIdentity": {"$type": "System.String", "$value": "1"},
        },
        "identities": {"1": person},
        "isDeleted": False,
    }


ANN_COMMENTED_AT = "2023-02-08T08:30:00.083Z"
OWNER_REPLIED_AT = "2023-02-08T08:45:10Z"
AUTHOR_COMMENTED_AT = "2023-02-07T05:00:00Z"


def _comment(number: int, person: Item, content: str, when: str, **more: Any) -> Item:
    return {
        "id": number,
        "parentCommentId": 0 if number == 1 else 1,
        "author": person,
        "content": content,
        "publishedDate": when,
        "lastUpdatedDate": when,
        "lastContentUpdatedDate": when,
        "commentType": "text",
        "usersLiked": [],
        **more,
    }


def _comment_thread(thread_id: int, comments: list[Item], file_path: str | None = None, **more: Any) -> Item:
    """A thread people wrote in, in the shape of the documented Pull Request Threads - List answer."""
    context = (
        {
            "filePath": file_path,
            "rightFileStart": {"line": 30, "offset": 1},
            "rightFileEnd": {"line": 30, "offset": 13},
        }
        if file_path
        else None
    )
    return {
        "pullRequestThreadContext": None,
        "id": thread_id,
        "publishedDate": comments[0]["publishedDate"],
        "lastUpdatedDate": comments[-1]["publishedDate"],
        "comments": comments,
        "status": "active",
        "threadContext": context,
        "properties": {},
        "identities": None,
        "isDeleted": False,
        **more,
    }


def threads() -> dict[int, list[Item]]:
    """Pull request 2: the two vote threads; a thread on a file where Ann asks and the author answers (one
    of her comments deleted); a deleted thread. Pull request 1: the author's own comment and a system
    comment."""
    owner = pull_requests()[1]["createdBy"]
    question = "Should we add a comment about what this value means?"
    return {
        1: [
            _comment_thread(
                21,
                [
                    _comment(1, owner, "Ready for review", AUTHOR_COMMENTED_AT),
                    _comment(2, owner, "The reference refs/heads/ticket-2 was updated.", AUTHOR_COMMENTED_AT)
                    | {"commentType": "system"},
                ],
            )
        ],
        2: [
            _vote_thread(11, JANE, 5, JANE_VOTED_AT),
            _vote_thread(12, MARK, -5, MARK_VOTED_AT),
            _comment_thread(
                13,
                [
                    _comment(1, ANN, question, ANN_COMMENTED_AT),
                    _comment(2, owner, "Done, see the new commit.", OWNER_REPLIED_AT),
                    _comment(3, ANN, "(deleted)", OWNER_REPLIED_AT, isDeleted=True),
                ],
                "/src/main.java",
            ),
            _comment_thread(14, [_comment(1, MARK, "never mind", MARK_VOTED_AT)], isDeleted=True),
        ],
    }


RELEASE_DEFINITION = "test-repo2.CD"


def _release_deployment(number: int, environment: str, status: str, queued: str, **times: str) -> Item:
    """A classic release's deployment in the shape of the documented Deployments - List answer (vsrm),
    releasing build 12 (the primary artifact) of the recorded commit."""
    return {
        "id": number,
        "release": {
            "id": 7,
            "name": "Release-7",
            "url": f"https://vsrm.dev.azure.com/{ORG}/{PROJECT}/_apis/Release/releases/7",
            "artifacts": [
                {
                    "sourceId": f"{PROJECT}:1",
                    "type": "Build",
                    "alias": "_test-repo2-CI",
                    "isPrimary": True,
                    "definitionReference": {
                        "definition": {"id": "1", "name": "test-repo2-CI"},
                        "version": {"id": "12", "name": "20230224.1"},
                        "sourceVersion": {
                            "id": "85ede91717145a1e6e2bdab4cab689ac8f2fa3a2",
                            "name": "85ede917",
                        },
                        "branch": {"id": "refs/heads/main", "name": "refs/heads/main"},
                        "repository": {"id": REPO_ID, "name": REPO},
                    },
                }
            ],
            "_links": {"web": {"href": f"https://dev.azure.com/{ORG}/{PROJECT}/_release?releaseId=7"}},
        },
        "releaseDefinition": {"id": 1, "name": RELEASE_DEFINITION, "path": "\\"},
        "releaseEnvironment": {"id": 20 + number, "name": environment},
        "definitionEnvironmentId": 1,
        "attempt": 1,
        "reason": "automated",
        "deploymentStatus": status,
        "operationStatus": {"succeeded": "Approved", "failed": "PhaseFailed"}.get(status, "Queued"),
        "requestedBy": JANE,
        "requestedFor": JANE,
        "queuedOn": queued,
        "lastModifiedOn": times.get("completedOn") or times.get("startedOn") or queued,
        "lastModifiedBy": JANE,
        **times,
    }


def release_deployments() -> list[Item]:
    """Derived: QA succeeded, Production failed then succeeded, a Production attempt in progress, and one
    not deployed (its approval rejected)."""
    return [
        _release_deployment(
            31, "QA", "succeeded", "2023-02-24T10:00:00Z",
            startedOn="2023-02-24T10:00:05Z", completedOn="2023-02-24T10:04:00Z",
        ),
        _release_deployment(
            32, "Production", "failed", "2023-02-24T11:00:00Z",
            startedOn="2023-02-24T11:00:02.5Z", completedOn="2023-02-24T11:06:00Z",
        ),
        _release_deployment(
            33, "Production", "succeeded", "2023-02-24T12:00:00Z",
            startedOn="2023-02-24T12:00:03Z", completedOn="2023-02-24T12:05:30.25Z",
        ),
        _release_deployment(
            34, "Production", "inProgress", "2023-02-25T09:00:00Z", startedOn="2023-02-25T09:00:04Z"
        ),
        _release_deployment(35, "Production", "notDeployed", "2023-02-25T10:00:00Z"),
    ]  # fmt: skip


def timelines() -> dict[int, list[Item]]:
    """Timeline records by build: the recorded ones with the derived stages around them."""
    recorded = load("timeline_records")
    job = recorded[0]
    base = {"attempt": 1, "errorCount": 0, "warningCount": 0, "log": None, "task": None, "order": 1}
    build_12 = [
        {
            **base,
            "id": BUILD_STAGE,
            "parentId": None,
            "type": "Stage",
            "name": "Build",
            "identifier": "Build",
            "state": "completed",
            "result": "succeeded",
            "startTime": "2023-02-25T06:22:32.9Z",
            "finishTime": "2023-02-25T06:22:35.0Z",
        },
        {
            **base,
            "id": DEPLOY_STAGE,
            "parentId": None,
            "type": "Stage",
            "name": "Deploy production",
            "identifier": "deploy_prod",
            "state": "completed",
            "result": "succeeded",
            "startTime": "2023-02-25T06:22:36.5Z",
            "finishTime": "2023-02-25T06:22:43.5Z",
        },
        {
            **base,
            "id": STAGE_PHASE,
            "parentId": DEPLOY_STAGE,
            "type": "Phase",
            "name": "deploy production",
            "identifier": "deploy_prod.job_2",
            "state": "completed",
            "result": "succeeded",
            "startTime": "2023-02-25T06:22:36.8Z",
            "finishTime": "2023-02-25T06:22:43.3Z",
        },
        job,
    ]
    build_13 = [
        *recorded[1:],
        {
            **base,
            "id": SKIPPED_STAGE,
            "parentId": None,
            "type": "Stage",
            "name": "Deploy staging",
            "identifier": "deploy_staging",
            "state": "completed",
            "result": "skipped",
            "startTime": None,
            "finishTime": None,
        },
    ]
    return {12: build_12, 13: build_13}


def _revision(item_id: int, rev: int, kind: str, state: str, changed: str, created: str, **more: Any) -> Item:
    fields = {
        "System.Id": item_id,
        "System.AreaPath": PROJECT,
        "System.TeamProject": PROJECT,
        "System.IterationPath": PROJECT,
        "System.WorkItemType": kind,
        "System.State": state,
        "System.Reason": "New" if rev == 1 else f"Moved to {state}",
        "System.CreatedDate": created,
        "System.CreatedBy": JANE,
        "System.ChangedDate": changed,
        "System.ChangedBy": JANE if rev % 2 else MARK,
        "System.Title": more.pop("title"),
        **more,
    }
    return {
        "id": item_id,
        "rev": rev,
        "fields": fields,
        "url": f"https://dev.azure.com/{ORG}/_apis/wit/workItems/{item_id}/revisions/{rev}",
    }


def work_item_revisions() -> dict[int, list[Item]]:
    """The documented examples' shape: item 1 a Bug New → Active → Resolved → Closed, item 2 a Story."""
    created_1, created_2 = "2017-09-04T02:08:16.6Z", "2017-09-05T10:00:00Z"
    bug = {"title": "Some great new idea!", "Microsoft.VSTS.Common.Priority": 2}
    story = {
        "title": "Secure the login",
        "System.Tags": "security; login",
        "Microsoft.VSTS.Scheduling.StoryPoints": 3.0,
    }
    return {
        1: [
            _revision(1, 1, "Bug", "New", created_1, created_1, **bug),
            _revision(
                1,
                2,
                "Bug",
                "Active",
                "2017-09-05T08:00:00.25Z",
                created_1,
                **bug,
                **{"System.AssignedTo": MARK},
            ),
            _revision(
                1,
                3,
                "Bug",
                "Active",
                "2017-09-05T09:00:00Z",
                created_1,
                **{**bug, "title": "Some great new idea (renamed)"},
            ),
            _revision(1, 4, "Bug", "Resolved", "2017-09-06T11:30:00Z", created_1, **bug),
            _revision(1, 5, "Bug", "Closed", "2017-09-07T16:45:10.5Z", created_1, **bug),
        ],
        2: [
            _revision(2, 1, "User Story", "New", created_2, created_2, **story),
            _revision(2, 2, "User Story", "Active", "2017-09-08T09:00:00Z", created_2, **story),
        ],
    }


@dataclass
class Request:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class FakeAzureDevOps(LocalServer):
    """The recorded Azure DevOps API on loopback; lists paged by `page_size`."""

    page_size: int = 3
    requests: list[Request] = field(default_factory=list)
    pull_requests: list[Item] = field(default_factory=pull_requests)
    commits: dict[int, list[Item]] = field(default_factory=dict)
    threads: dict[int, list[Item]] = field(default_factory=threads)
    builds: list[Item] = field(default_factory=lambda: load("builds"))
    timelines: dict[int, list[Item]] = field(default_factory=timelines)
    revisions: dict[int, list[Item]] = field(default_factory=work_item_revisions)
    release_deployments: list[Item] = field(default_factory=release_deployments)
    faults: dict[str, Fault] = field(default_factory=dict)  # path suffix → the answer to give instead

    def __post_init__(self) -> None:
        (commit,) = load("pull_request_commits")
        self.commits = {1: [commit], 2: [commit]}
        self._listen()

    def received(self, path_part: str) -> list[Request]:
        return [r for r in self.requests if path_part in r.path]

    def _reporting(self) -> list[Item]:
        """Every revision of the project in the order they happened (the reporting API's order)."""
        every = [r for revisions in self.revisions.values() for r in revisions]
        return sorted(every, key=lambda r: (r["fields"]["System.ChangedDate"], r["id"], r["rev"]))

    def answer(self, path: str, query: dict[str, str]) -> tuple[int, Any, str]:
        """Status, body and how the body is paged (``skip``, ``token``, ``reporting`` or ``none``)."""
        if path == f"/{ORG}/_apis/projects":  # what `obeya connections test` asks first
            return (
                200,
                [{"id": "eb6e4656-77fc-42a1-9181-4c6d8e9da5d1", "name": PROJECT, "state": "wellFormed"}],
                "skip",
            )
        if path == f"/{ORG}/{PROJECT}/_apis/git/repositories":
            return 200, [{"id": REPO_ID, "name": REPO}], "skip"
        prefix = f"/{ORG}/{PROJECT}/_apis/"
        if not path.startswith(prefix):
            return 404, {"message": f"{path} not found"}, "none"
        rest = path[len(prefix) :]
        parts = rest.split("/")
        if rest in ("git/pullrequests", f"git/repositories/{REPO}/pullrequests"):
            return 200, self._pull_requests(query), "skip"
        if rest.startswith(f"git/repositories/{REPO_ID}/pullRequests/") and len(parts) == 6:
            number = int(parts[4])
            children = self.commits if parts[5] == "commits" else self.threads
            return 200, children.get(number, []), "token" if parts[5] == "commits" else "none"
        if rest == "build/builds":
            since = query.get("minTime")
            found = [b for b in self.builds if not since or b["queueTime"] >= since]
            return 200, sorted(found, key=lambda b: (b["queueTime"], b["id"])), "token"
        if rest.startswith("build/builds/") and rest.endswith("/timeline"):
            build = int(parts[2])
            if not any(b["id"] == build for b in self.builds):
                return 404, {"message": "no such build"}, "none"
            return 200, {"records": self.timelines.get(build, []), "id": "plan"}, "none"
        if rest == "release/deployments":
            since = query.get("minModifiedTime")
            found = [d for d in self.release_deployments if not since or d["lastModifiedOn"] >= since]
            return 200, sorted(found, key=lambda d: d["id"]), "token"
        if rest == "wit/reporting/workitemrevisions":
            return 200, self._reporting(), "reporting"
        if rest == "wit/workitems":
            ids = [int(i) for i in query.get("ids", "").split(",") if i]
            return 200, [self._current(i) for i in ids if i in self.revisions], "none"
        if rest.startswith("wit/workItems/") and rest.endswith("/revisions"):
            return 200, self.revisions.get(int(parts[2]), []), "skip"
        return 404, {"message": f"{path} not found"}, "none"

    def _current(self, item_id: int) -> Item:
        latest = copy.deepcopy(self.revisions[item_id][-1])
        latest.update(relations=[], _links={})
        return latest

    def _pull_requests(self, query: dict[str, str]) -> list[Item]:
        status = query.get("searchCriteria.status", "active")
        found = [p for p in self.pull_requests if status == "all" or p["status"] == status]
        since = query.get("searchCriteria.minTime")
        if since and query.get("searchCriteria.queryTimeRangeType") == "closed":
            found = [p for p in found if p.get("closedDate") and p["closedDate"] >= since]
        return found

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self
        expected = "Basic " + base64.b64encode(f":{TOKEN}".encode()).decode()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                path = unquote(parts.path)
                with server._lock:
                    server.requests.append(Request(path, query, dict(self.headers.items())))
                headers: dict[str, str] = {}
                if self.headers.get("Authorization") != expected:
                    self._send(401, {"message": "TF400813: the user is not authorized"}, headers)
                    return
                fault = fault_for(server.faults, path)
                if fault is not None:
                    send(self, fault.status, fault.body, fault.headers, fault.delay)
                    return
                status, body, paging = server.answer(path, query)
                if status == 200 and isinstance(body, list):
                    body = self._page(body, paging, query, headers)
                self._send(status, body, headers)

            def _page(
                self, items: list[Item], paging: str, query: dict[str, str], headers: dict[str, str]
            ) -> Any:
                size = server.page_size
                if paging == "skip":
                    skip, top = int(query.get("$skip", 0)), min(int(query.get("$top", 100)), size)
                    chunk = items[skip : skip + top]
                    return {"count": len(chunk), "value": chunk}
                if paging == "token":
                    start = int(query.get("continuationToken", 0))
                    chunk = items[start : start + size]
                    if start + size < len(items):
                        headers["x-ms-continuationtoken"] = str(start + size)
                    return {"count": len(chunk), "value": chunk}
                if paging == "reporting":
                    start = int(query.get("continuationToken", 0))
                    chunk = items[start : start + size]
                    end = start + len(chunk)
                    return {"values": chunk, "continuationToken": str(end), "isLastBatch": end >= len(items)}
                return {"count": len(items), "value": items}

            def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler
