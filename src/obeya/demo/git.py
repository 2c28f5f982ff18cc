"""Repositories of the demo: a real git graph (main history, branches, merges) and pull requests.

Merges happen in time order during the simulation, so the head of main at any instant is known and a
deployment can name the commit it shipped. The three merge methods write what GitHub writes: squash makes
one new commit on main, merge makes a merge commit with two parents, rebase re-creates the pull request's
commits on main with new shas.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from obeya.demo.batches import NO_TIME, BatchSink
from obeya.demo.calendar import calendar_days
from obeya.demo.organisation import RepoProfile

_JOBS = ("build", "test", "lint")


@dataclass
class PullRequest:
    """A pull request while it is open: its branch commits and who opened it."""

    repo: Repository
    number: int
    title: str
    branch: str
    author_id: str | None
    created: float  # calendar days
    base_sha: str
    commits: list[str] = field(default_factory=list)
    additions: int = 0
    deletions: int = 0

    @property
    def external_id(self) -> str:
        return f"change/{self.repo.name}/{self.number}"

    @property
    def id(self) -> str:
        return f"demo:{self.external_id}"

    @property
    def head(self) -> str:
        return self.commits[-1] if self.commits else self.base_sha


class Repository:
    """One repository: the head of main, its pull request and run counters, and its rows."""

    def __init__(
        self, profile: RepoProfile, rng: random.Random, sink: BatchSink, initial_author: str
    ) -> None:
        self.profile = profile
        self.name = profile.name
        self.service = profile.service
        self.rng = rng
        self.sink = sink
        self.next_number = 1
        self.next_run = 1
        self.head = ""
        self.head = self.commit("Initial import", initial_author, -30.0, parents=())
        self.deployed: dict[str, str] = {"staging": self.head, "production": self.head}

    def sha(self) -> str:
        return f"{self.rng.getrandbits(160):040x}"

    def commit(
        self,
        message: str,
        author_id: str | None,
        at: float,
        parents: tuple[str, ...],
        additions: int = 0,
        deletions: int = 0,
        committed: float = NO_TIME,
    ) -> str:
        """Write a commit (calendar time `at`) with its parent edges; return its sha."""
        sha = self.sha()
        self.sink.add(
            "commit",
            f"commit/{self.name}/{sha}",
            self.name,
            sha,
            message,
            author_id,
            at,
            at if committed != committed else committed,
            additions,
            deletions,
        )
        for position, parent in enumerate(parents):
            self.sink.add(
                "commit_parent",
                f"commit-parent/{self.name}/{sha}/{position}",
                self.name,
                sha,
                parent,
                position,
            )
        return sha

    def open_pull_request(
        self, title: str, branch: str, author_id: str | None, at: float, base: str
    ) -> PullRequest:
        number = self.next_number
        self.next_number += 1
        return PullRequest(self, number, title, branch, author_id, at, base)

    def push(self, pr: PullRequest, messages: list[str], author_id: str | None, times: list[float]) -> None:
        """Commit onto the pull request's branch."""
        for message, at in zip(messages, times, strict=True):
            additions = int(self.rng.lognormvariate(3.6, 1.0))
            deletions = int(additions * self.rng.random() * 0.6)
            pr.commits.append(self.commit(message, author_id, at, (pr.head,), additions, deletions))
            pr.additions += additions
            pr.deletions += deletions

    def merge(self, pr: PullRequest, at: float, message: str) -> str:
        """Merge the pull request into main with the repository's method; return the merge commit sha."""
        method = self.profile.merge_method
        if method == "squash":
            self.head = self.commit(message, pr.author_id, at, (self.head,), pr.additions, pr.deletions)
        elif method == "merge":
            text = f"Merge pull request #{pr.number} from {pr.branch}"
            self.head = self.commit(text, pr.author_id, at, (self.head, pr.head))
        else:
            for i, _ in enumerate(pr.commits):
                self.head = self.commit(
                    f"{message} [{i + 1}/{len(pr.commits)}]",
                    pr.author_id,
                    at - 1e-5 * (len(pr.commits) - i),
                    (self.head,),
                    committed=at,
                )
        self.ci_run(self.head, "main", None, "push", at)
        return self.head

    def write_change(self, pr: PullRequest, state: str, closed: float, merge_sha: str | None) -> None:
        """The pull request's `change` and `change_commit` rows, in its final (or current) state."""
        merged = closed if state == "merged" else NO_TIME
        self.sink.add(
            "change",
            pr.external_id,
            self.name,
            pr.number,
            pr.title,
            pr.branch,
            "main",
            pr.author_id,
            state,
            pr.created,
            merged,
            closed,
            merge_sha,
            pr.head,
            self.profile.merge_method if merge_sha else None,
            pr.additions,
            pr.deletions,
        )
        for position, sha in enumerate(pr.commits):
            self.sink.add(
                "change_commit", f"change-commit/{self.name}/{pr.number}/{sha}", pr.id, sha, position
            )

    def ci_run(self, sha: str, branch: str, change_id: str | None, trigger: str, at: float) -> bool:
        """A CI run (build, test, lint) on a push; a flaky failure is re-run. True when it ends green."""
        rng = self.rng
        roll = rng.random()
        result = "success" if roll >= 0.10 else "failure"
        flaky = result == "failure" and roll < 0.045
        number = self.next_run
        self.next_run += 1
        start = at + rng.uniform(0.5, 3.0) / 1440
        self._run(number, 1, sha, branch, change_id, trigger, result, at, start)
        if flaky:
            retry = start + rng.uniform(20, 90) / 1440
            self._run(number, 2, sha, branch, change_id, "rerun", "success", retry, retry + 1 / 1440)
            return True
        return result == "success"

    def _run(
        self,
        number: int,
        attempt: int,
        sha: str,
        branch: str,
        change_id: str | None,
        trigger: str,
        result: str,
        created: float,
        started: float,
    ) -> None:
        finished = started + self.rng.uniform(6, 18) / 1440
        run_ext = f"run/{self.name}/ci/{number}/{attempt}"
        run_id = self.sink.add(
            "pipeline_run",
            run_ext,
            "ci",
            self.name,
            sha,
            branch,
            change_id,
            trigger,
            result,
            attempt,
            created,
            started,
            finished,
            f"https://github.example.com/{self.name}/actions/runs/{number}",
        )
        failed_job = self.rng.choice(("test", "test", "lint", "build")) if result == "failure" else ""
        for job in _JOBS:
            self.sink.add(
                "pipeline_job",
                f"{run_ext}/{job}",
                run_id,
                job,
                "ci",
                "failure" if job == failed_job else "success",
                attempt,
                None,
                started,
                finished,
            )

    def deploy(
        self,
        environment: str,
        sha: str,
        start: float,
        finish: float,
        result: str,
        is_rollback: bool,
        release_id: str | None,
    ) -> str:
        """A deployment of the repository's service (with its deploy pipeline run); returns its id."""
        number = self.next_run
        self.next_run += 1
        run_ext = f"run/{self.name}/deploy/{number}/1"
        run_result = "failure" if result == "failure" else "success"
        run_id = self.sink.add(
            "pipeline_run",
            run_ext,
            f"deploy-{self.service}",
            self.name,
            sha,
            "main",
            None,
            "rollback" if is_rollback else "push",
            run_result,
            1,
            start,
            start,
            finish,
            f"https://github.example.com/{self.name}/actions/runs/{number}",
        )
        self.sink.add(
            "pipeline_job",
            f"{run_ext}/deploy",
            run_id,
            f"deploy-{environment}",
            "deploy",
            run_result,
            1,
            environment,
            start,
            finish,
        )
        environment_class = "production" if environment == "production" else "staging"
        return self.sink.add(
            "deployment",
            f"deployment/{self.service}/{environment}/{number}",
            self.service,
            environment,
            environment_class,
            self.name,
            sha,
            run_id,
            release_id,
            result,
            is_rollback,
            start,
            finish,
            f"https://deploy.example.com/{self.service}/{number}",
        )


def spread(rng: random.Random, start: float, end: float, count: int) -> list[float]:
    """`count` sorted calendar times between two working-day instants."""
    return sorted(calendar_days(start + (end - start) * rng.random()) for _ in range(count))
