"""The local git collector: reads commits and tags with the `git` command (a subprocess, no network).

Resources per repository: ``NAME/commits`` and ``NAME/tags``.

**Commits** are read with one ``git log --topo-order --reverse`` from the branch heads (every local
branch and ``HEAD``, or the configured `branches`) down to the heads the previous sync stored (the
cursor), so an incremental sync reads only the commits that are new since then; `full` reads them all.
Each commit, with its parents in order and the files it touched (``--numstat``; a merge's files are its
diff to its first parent), is kept as a raw event ``commit:NAME@SHA`` whose payload is the parsed
``git log`` record; each author (by e-mail, lower case) is a raw event ``author:EMAIL`` holding the
name of their newest commit read. Commits come oldest first (parents before children), in pages; after
each page the cursor holds the old heads plus the newest commits stored (whose ancestors are all
stored), so a sync that stops half-way resumes there. The last page's cursor is the current heads.

**Tags** (``git for-each-ref refs/tags``) are read whole on every sync: raw events ``tag:NAME/TAG``.

A repository given by `url` is read from its bare mirror (`obeya.connectors.git.mirror`), cloned or
fetched once per sync, before its first resource is read.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from obeya.connectors.errors import ConnectorError
from obeya.connectors.git.config import GitConnectionConfig, GitRepositoryConfig
from obeya.connectors.git.mirror import Mirror
from obeya.connectors.raw import raw_event
from obeya.model.records import RawEvent

SOURCE = "git"
Clock = Callable[[], datetime]
Item = dict[str, Any]

_RS, _US = "\x1e", "\x1f"
_LOG_FORMAT = _RS + _US.join(("%H", "%P", "%an", "%ae", "%aI", "%cn", "%ce", "%cI", "%B")) + _US
_TAG_FORMAT = (
    _RS
    + "%00".join(
        ("%(refname)", "%(objecttype)", "%(objectname)", "%(*objectname)", "%(creatordate:iso-strict)")
    )
    + "%00%(contents:subject)"
)


class GitError(ConnectorError):
    """A repository could not be read: not a repository, a missing branch, git not installed, ..."""


@dataclass(frozen=True)
class GitCursor:
    """The branch heads whose ancestors are all stored (empty: nothing stored yet)."""

    heads: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> GitCursor:
        """The cursor stored as JSON text (an empty cursor for None)."""
        return cls(tuple(json.loads(text).get("heads", ()))) if text else cls()

    def dumps(self) -> str:
        """The cursor as JSON text for `SyncCursor.cursor`."""
        return json.dumps({"heads": sorted(set(self.heads))})


@dataclass
class GitBatch:
    """One page of a resource, stored in one transaction with its cursor."""

    resource: str
    events: list[RawEvent]
    cursor: GitCursor
    complete: bool
    fetched: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


class Repository:
    """One repository on disk, read with the `git` command."""

    def __init__(self, config: GitRepositoryConfig, connection: str, path: Path | None = None) -> None:
        self.config = config
        self.connection = connection
        self.path = path if path is not None else Path(str(config.path)).expanduser()

    def _where(self) -> str:
        where = (
            f"path {self.path}" if self.config.url is None else f"mirror of {self.config.url} at {self.path}"
        )
        return f"repository {self.config.name!r} of connection {self.connection!r} ({where})"

    def _command(self, args: list[str]) -> list[str]:
        return [
            "git",
            "-C",
            str(self.path),
            "-c",
            "log.showSignature=false",
            "-c",
            "core.quotepath=off",
            *args,
        ]

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        # Never look above the configured path: a folder inside another repository is not a repository.
        env["GIT_CEILING_DIRECTORIES"] = str(self.path.resolve().parent)
        env["GIT_TERMINAL_PROMPT"] = "0"
        env.pop("GIT_DIR", None)
        env.pop("GIT_WORK_TREE", None)
        return env

    def run(self, args: list[str], *, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        """Run ``git ARGS`` in the repository; a failure is a `GitError` with git's message."""
        try:
            done = subprocess.run(
                self._command(args), capture_output=True, env=self._environment(), check=False
            )
        except FileNotFoundError as error:
            raise GitError("the `git` command is not installed (or not on PATH): install git") from error
        if check and done.returncode != 0:
            message = done.stderr.decode(errors="replace").strip()
            raise GitError(f"git {args[0]} failed for {self._where()}: {message}")
        return done

    def check(self) -> None:
        """Raise a `GitError` naming the path unless it is a git repository (working copy or bare)."""
        if not self.path.exists():
            raise GitError(f"{self.path} does not exist ({self._where()}): check `path` in obeya.yaml")
        done = self.run(["rev-parse", "--git-dir"], check=False)
        if done.returncode != 0:
            detail = done.stderr.decode(errors="replace").strip()
            raise GitError(
                f"{self.path} is not a git repository ({self._where()}): give the folder of a clone "
                f"(working copy or bare) in `path` [{detail}]"
            )

    def heads(self) -> list[str]:
        """The commits of the branches to read: the configured ones, or every local branch and HEAD."""
        if self.config.branches is not None:
            shas = []
            for branch in self.config.branches:
                done = self.run(["rev-parse", "--verify", "--quiet", f"{branch}^{{commit}}"], check=False)
                if done.returncode != 0:
                    raise GitError(f"branch {branch!r} does not exist in {self._where()}")
                shas.append(done.stdout.decode().strip())
            return sorted(set(shas))
        listed = self.run(["for-each-ref", "--format=%(objectname)", "refs/heads"]).stdout.decode().split()
        head = self.run(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], check=False)
        if head.returncode == 0:
            listed.append(head.stdout.decode().strip())
        return sorted(set(listed))

    def log(self, heads: list[str], known: list[str]) -> Iterator[Item]:
        """The commits reachable from `heads` but not from `known`, parents before children."""
        args = [
            "log",
            "--topo-order",
            "--reverse",
            "-z",
            "--no-renames",
            "--diff-merges=first-parent",
            "--numstat",
            "--encoding=UTF-8",
            "--no-color",
            "--ignore-missing",  # a known head that is gone (a deleted, collected branch) is ignored
            f"--format={_LOG_FORMAT}",
            *heads,
        ]
        if known:
            args += ["--not", *known]
        try:
            process = subprocess.Popen(
                self._command(args),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self._environment(),
            )
        except FileNotFoundError as error:
            raise GitError("the `git` command is not installed (or not on PATH): install git") from error
        assert process.stdout is not None
        buffer = b""
        try:
            while chunk := process.stdout.read(1 << 16):
                buffer += chunk
                *records, buffer = buffer.split(_RS.encode())
                for record in records:
                    if record:
                        yield self._commit(record)
            if buffer:
                yield self._commit(buffer)
        finally:
            process.stdout.close()
            stderr = process.stderr.read() if process.stderr else b""
            code = process.wait()
            if process.stderr:
                process.stderr.close()
        if code != 0:
            raise GitError(f"git log failed for {self._where()}: {stderr.decode(errors='replace').strip()}")

    def _commit(self, record: bytes) -> Item:
        text = record.decode("utf-8", errors="replace")
        parts = text.split(_US, 8)
        sha, parents, author_name, author_email, authored_at, committer_name, committer_email = parts[:7]
        committed_at = parts[7]
        message, _, stats = parts[8].rpartition(_US)
        files = []
        for entry in stats.split("\0"):
            entry = entry.strip("\n")
            if not entry:
                continue
            added, deleted, path = entry.split("\t", 2)
            files.append(
                {
                    "path": path,
                    "additions": int(added) if added.isdigit() else None,  # "-": a binary file
                    "deletions": int(deleted) if deleted.isdigit() else None,
                }
            )
        return {
            "repo": self.config.name,
            "sha": sha,
            "parents": parents.split(),
            "author_name": author_name,
            "author_email": author_email,
            "authored_at": authored_at,
            "committer_name": committer_name,
            "committer_email": committer_email,
            "committed_at": committed_at,
            "message": message.rstrip("\n"),
            "files": files,
        }

    def tags(self) -> list[Item]:
        """The repository's tags, each with the commit it points to and its time."""
        text = self.run(["for-each-ref", f"--format={_TAG_FORMAT}", "refs/tags"]).stdout.decode(
            "utf-8", errors="replace"
        )
        tags = []
        for record in text.split(_RS):
            if not record.strip():
                continue
            ref, object_type, object_sha, peeled, created_at, subject = record.rstrip("\n").split("\0", 5)
            tags.append(
                {
                    "repo": self.config.name,
                    "name": ref.removeprefix("refs/tags/"),
                    "object_type": object_type,
                    "object": object_sha,
                    "commit": peeled or object_sha,
                    "created_at": created_at,
                    "subject": subject if object_type == "tag" else None,
                }
            )
        return tags


class GitCollector:
    """Reads one git connection's repositories as raw events, page by page."""

    def __init__(
        self,
        connection: GitConnectionConfig,
        clock: Clock = lambda: datetime.now(UTC),
        page_size: int = 500,
    ) -> None:
        self.connection = connection
        self._clock = clock
        self._page_size = page_size
        self.mirrors = {r.name: Mirror(r, connection) for r in connection.repositories if r.url is not None}
        self.repositories = {
            r.name: Repository(
                r, connection.name, self.mirrors[r.name].path if r.name in self.mirrors else None
            )
            for r in connection.repositories
        }
        self._fetched: set[str] = set()

    @staticmethod
    def resource_names(connection: GitConnectionConfig) -> list[str]:
        """``NAME/commits`` and ``NAME/tags`` per repository, in order."""
        return [f"{r.name}/{kind}" for r in connection.repositories for kind in ("commits", "tags")]

    def collect_resource(self, resource: str, cursor: str | None, full: bool) -> Iterator[GitBatch]:
        """The pages of `resource` from the stored cursor (from the start when `full`)."""
        name, _, kind = resource.rpartition("/")
        repository = self.repositories.get(name)
        if repository is None or kind not in ("commits", "tags"):
            raise ValueError(f"git connection {self.connection.name!r} has no resource {resource!r}")
        if name in self.mirrors and name not in self._fetched:
            self.mirrors[name].update()  # once per sync: the commits and the tags read the same fetch
            self._fetched.add(name)
        repository.check()
        if kind == "tags":
            tags = repository.tags()
            events = [self._event("tag", f"{name}/{t['name']}", t) for t in tags]
            yield GitBatch(resource, events, GitCursor(), complete=True, fetched=len(tags))
            return
        yield from self._commits(resource, repository, GitCursor() if full else GitCursor.parse(cursor))

    def _commits(self, resource: str, repository: Repository, cursor: GitCursor) -> Iterator[GitBatch]:
        heads = repository.heads()
        known = list(cursor.heads)
        new_heads = [h for h in heads if h not in set(known)]
        page: list[RawEvent] = []
        frontier: set[str] = set()  # stored commits none of whose stored children is stored yet
        if new_heads:
            for commit in repository.log(new_heads, known):
                page.append(self._event("commit", f"{repository.config.name}@{commit['sha']}", commit))
                frontier.difference_update(commit["parents"])
                frontier.add(commit["sha"])
                if len(page) >= self._page_size:
                    cursor = GitCursor((*known, *frontier))
                    yield GitBatch(resource, self._with_authors(page), cursor, False, len(page))
                    page = []
        fetched = len(page)
        yield GitBatch(resource, self._with_authors(page), GitCursor(tuple(heads)), True, fetched)

    def _with_authors(self, commits: list[RawEvent]) -> list[RawEvent]:
        """The page's commits after one ``author:EMAIL`` raw event per author (the newest name)."""
        authors: dict[str, Item] = {}
        for event in commits:
            commit = json.loads(event.payload)
            email = commit["author_email"].strip().lower()
            if email:
                authors[email] = {"email": email, "name": commit["author_name"].strip()}
        return [*(self._event("author", email, a) for email, a in sorted(authors.items())), *commits]

    def _event(self, event_type: str, key: str, item: Item) -> RawEvent:
        return raw_event(
            SOURCE, event_type, key, item, connection=self.connection.name, received_at=self._clock()
        )
