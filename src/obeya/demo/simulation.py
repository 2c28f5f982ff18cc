"""Discrete-event simulation of one value stream: work flowing through stages with limited capacity.

Items arrive (Poisson-like, in working time), are refined, wait in a team backlog, and are pulled under a
team WIP limit. Developers, reviewers and testers are pools of workers with a priority queue in front:
an item waits whenever the pool is busy, so the queues, the waits and the bottleneck come out of the
capacity and effort in the stream's `StreamProfile`. Delivery follows the stream's cadence (on fixed
weekdays, a two-week release train, or continuous deployment on every merge). Production deployments
fail at the stream's rates, drawn as a jittered quota rather than coin flips, so that any window of a few
dozen deployments shows close to the stream's change failure rate (docs/demo.md).

Every event writes its rows as it happens (commits, pull requests, runs, deployments, incidents); a work
item's row and its transitions are written when it leaves the simulation (done, canceled, or still open
at the end), so memory holds only the items in flight.
"""

from __future__ import annotations

import bisect
import heapq
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from obeya.demo.batches import NO_TIME, BatchSink
from obeya.demo.calendar import DemoCalendar, calendar_days
from obeya.demo.dependencies import ItemLedger
from obeya.demo.git import PullRequest, Repository, spread
from obeya.demo.organisation import WORKFLOW, Member, Organisation, StreamProfile, scaled

# flow item type -> (tool type, effort factor)
_TYPES: dict[str, tuple[str, float]] = {
    "feature": ("Story", 1.0),
    "defect": ("Bug", 0.6),
    "risk": ("Story", 0.9),
    "debt": ("Tech Debt", 0.8),
}
_PRIORITIES = ("Highest", "High", "Medium", "Low")
_STORY_POINTS = (1.0, 2.0, 3.0, 3.0, 5.0, 5.0, 8.0)
_ACTIVE_OR_LATER = {s for s, (state, _) in WORKFLOW.items() if state.value == "active"}

# priority classes in the developers' queue: interruptions first, then rework, then new work
_P_INTERRUPT, _P_REWORK, _P_URGENT, _P_NORMAL, _P_LOW = 0, 1, 2, 3, 4


@dataclass(eq=False)
class Item:
    """A work item in flight."""

    number: int
    key: str
    flow_type: str
    title: str
    slug: str
    theme: str
    team: int
    priority: int
    created: float  # working days
    parent_id: str | None
    has_key: bool
    repo: Repository
    labels: str
    points: float | None
    status: str = "Backlog"
    transitions: list[tuple[float, str | None, str, str | None]] = field(default_factory=list)
    assignee: Member | None = None
    started: float = NO_TIME
    effort: float = 0.0
    block_after: float = 0.0
    cancel_during_dev: bool = False
    pr: PullRequest | None = None
    review_rounds: int = 0
    merged_at: float = 0.0  # working days

    @property
    def external_id(self) -> str:
        return f"work-item/{self.key}"

    @property
    def id(self) -> str:
        return f"demo:{self.external_id}"


class Pool:
    """Workers of one role with a priority queue of jobs in front of them."""

    def __init__(self, members: list[Member | None]) -> None:
        self.members = members
        self.free = list(range(len(members) - 1, -1, -1))
        self.queue: list[tuple[int, float, int, Any]] = []


class StreamSimulation:
    """Simulates one value stream over the demo's window, writing its rows into `sink`."""

    def __init__(
        self,
        profile: StreamProfile,
        organisation: Organisation,
        calendar: DemoCalendar,
        items: int,
        seed: int,
        sink: BatchSink,
        first_number: int = 1,
    ) -> None:
        self.p = profile
        self.window = calendar
        self.sink = sink
        self.rng = random.Random(f"obeya-demo-{profile.key}-{seed}")
        self.n_items = items
        self.scale = items / (5200 * profile.share)
        self.end = calendar.end_work_days
        self.stream_id = organisation.stream_ids[profile.key]
        self.team_ids = organisation.team_ids[profile.key]
        self.bots = organisation.bots
        developers = organisation.developers[profile.key]
        self.developers = developers
        n_teams = len(profile.teams)
        self.dev_pools = [Pool([m for m in developers if m.team_id == t]) for t in self.team_ids]
        base_devs = profile.developers_per_team * self.scale
        self.dev_factor = len(self.dev_pools[0].members) / base_devs
        testers: list[Member | None] = list(organisation.testers[profile.key])
        if testers:
            self.test_factor = len(testers) / (profile.testers_per_team * n_teams * self.scale)
        else:  # automated testing: CI agents, nobody's name on it
            testers = [None] * scaled(4, self.scale)
            self.test_factor = len(testers) / (4 * self.scale)
        self.test_pool = Pool(testers)
        reviewers = scaled(profile.review_slots, self.scale)
        self.review_factor = reviewers / (profile.review_slots * self.scale)
        self.review_pool = Pool([None] * reviewers)
        self.wip_limit = max(2, round(profile.wip_per_developer * base_devs))
        self.wip = [0] * n_teams
        self.committed: list[dict[int, Item]] = [{} for _ in range(n_teams)]
        self.backlogs: list[list[tuple[int, float, int, Item]]] = [[] for _ in range(n_teams)]
        self.sprint_ids: list[str | None] = [None] * n_teams
        self.repos = [
            Repository(r, random.Random(f"obeya-demo-git-{r.name}-{seed}"), sink, developers[0].id)
            for r in profile.repos
        ]
        self.repo_weights = [r.weight for r in profile.repos]
        self.ready_for_release: list[list[Item]] = [[] for _ in self.repos]
        self.deploy_pending = [False] * len(self.repos)
        self.live: dict[int, Item] = {}
        self.events: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self.seq = 0
        self.next_number = first_number
        self.release_minor = 0
        self.bot_prs: list[tuple[Repository, PullRequest]] = []
        self.epics: list[tuple[float, str]] = []
        self.open_releases: dict[tuple[str, str], float] = {}
        self.failure_credit = self.rng.random()
        self.store_review: dict[tuple[str, str], float] = {}
        self.ledger = ItemLedger(profile.key, profile.project)

    # --- event machinery ------------------------------------------------------------------------

    def at(self, when: float, handler: Callable[..., None], *args: Any) -> None:
        self.seq += 1
        heapq.heappush(self.events, (when, self.seq, handler, args))

    def run(self) -> Iterator[tuple[str, pa.Table]]:
        """Run the simulation to the end of the window, yielding full batches as they fill up."""
        self._plan_epics()
        self._plan_arrivals()
        self._plan_calendar_events()
        self._provider_outages()
        events = self.events
        drained = 0
        while events and events[0][0] < self.end:
            when, _, handler, args = heapq.heappop(events)
            handler(when, *args)
            drained += 1
            if drained % 2000 == 0:
                yield from self.sink.drain()
        for item in self.live.values():
            self._write_item(item)
            if item.pr is not None and item.pr.created == item.pr.created:  # opened (not NaN)
                item.repo.write_change(item.pr, "open", NO_TIME, None)
        self.live.clear()
        for repo, pr in self.bot_prs:
            repo.write_change(pr, "open", NO_TIME, None)
        for release, cut in self.open_releases.items():
            self._write_release(release, "in_progress", cut, None)
        if self.p.cadence == "release-train":
            version = f"4.{self.release_minor + 1}.0"
            self._write_release(
                (f"demo:release/{self.p.key}/{version}", version), "planned", self.end + 7, None
            )
        yield from self.sink.drain()

    def cal(self, work_days: float) -> float:
        return calendar_days(work_days)

    def lognormal(self, median: float, sigma: float = 0.7) -> float:
        return self.rng.lognormvariate(math.log(median), sigma)

    # --- arrivals and backlog -------------------------------------------------------------------

    def _plan_epics(self) -> None:
        rng = self.rng
        count = max(2, math.ceil(self.n_items / 15))
        span = 60.0
        starts = sorted(rng.uniform(-30.0, self.end - 20.0) for _ in range(count))
        for i, start in enumerate(starts):
            number = self.next_number
            self.next_number += 1
            key = f"{self.p.project}-{number}"
            theme = self.p.epic_themes[i % len(self.p.epic_themes)]
            title = f"{theme} ({'Q' + str(1 + i % 4)})"
            created = max(0.0, start - rng.uniform(5, 20))
            moves: list[tuple[float, str | None, str]] = [(created, None, "Backlog")]
            finish = start + span + rng.uniform(-10, 15)
            if 0 <= start < self.end:
                moves.append((start, "Backlog", "In Progress"))
            elif start < 0:
                moves.append((created + 0.5, "Backlog", "In Progress"))
            if finish < self.end and len(moves) > 1:
                moves.append((finish, "In Progress", "Done"))
            transitions: list[tuple[float, str | None, str, str | None]] = [
                (self.cal(t), a, b, None) for t, a, b in moves
            ]
            epic_id = self._write_row(
                key,
                title,
                "Epic",
                "feature",
                transitions,
                self.team_ids[i % len(self.team_ids)],
                None,
                None,
                "[]",
                _PRIORITIES[2],
                None,
            )
            self.epics.append((start, epic_id))
        self._epic_starts = [start for start, _ in self.epics]

    def _plan_arrivals(self) -> None:
        rng = self.rng
        # a slowly growing demand: density rises about 30 % over the year
        times = sorted(self.end * (rng.random() ** 0.87) for _ in range(self.n_items))
        self._arrival_times = times
        if times:
            self.at(times[0], self._arrive, 0)

    def _arrive(self, now: float, index: int, flow_type: str | None = None, urgent: bool = False) -> None:
        if flow_type is None and index + 1 < len(self._arrival_times):
            self.at(self._arrival_times[index + 1], self._arrive, index + 1)
        item = self._new_item(now, flow_type, urgent)
        rng = self.rng
        fate = rng.random()
        if not urgent and fate < 0.06:  # never pulled: still in the backlog today
            self._write_item(item)
            return
        if not urgent and fate < 0.11:  # canceled from the backlog after a while
            canceled = now + self.lognormal(25.0, 0.8)
            if canceled < self.end:
                self._move(item, canceled, "Canceled")
            self._write_item(item)
            return
        self.live[item.number] = item
        if urgent:
            refinement = rng.uniform(0.05, 0.5)
        elif item.priority >= _P_LOW:
            refinement = self.lognormal(35.0, 0.6)
        else:
            refinement = self.lognormal(4.0, 0.9)
        self.at(now + refinement, self._ready, item)

    def _new_item(self, now: float, flow_type: str | None, urgent: bool) -> Item:
        rng = self.rng
        p = self.p
        if flow_type is None:
            r = rng.random()
            for flow_type, share in p.type_mix:  # noqa: B007
                r -= share
                if r < 0:
                    break
        assert flow_type is not None
        number = self.next_number
        self.next_number += 1
        key = f"{p.project}-{number}"
        theme = rng.choice(p.story_themes)
        verb = {
            "feature": rng.choice(("Add", "Support", "Improve", "Show")),
            "defect": rng.choice(("Fix", "Fix crash in", "Fix wrong totals in", "Fix timeout in")),
            "risk": rng.choice(("Patch CVE in", "Harden", "Audit logging for", "Encrypt")),
            "debt": rng.choice(("Refactor", "Remove legacy", "Upgrade", "Clean up")),
        }[flow_type]
        labels = "[]"
        if flow_type == "risk":
            labels = rng.choice(('["security"]', '["compliance"]', '["security","vulnerability"]'))
        elif flow_type == "debt":
            labels = '["tech-debt"]'
        elif urgent:
            labels = '["incident"]'
        parent_id = None
        if self.epics and ((flow_type == "feature" and rng.random() < 0.85) or rng.random() < 0.2):
            parent_id = self._epic_at(now)
        if urgent:
            priority = _P_URGENT
        else:
            priority = rng.choices((_P_URGENT, _P_NORMAL, _P_LOW), (0.08, 0.72, 0.20))[0]
            if flow_type == "defect" and priority == _P_LOW:
                priority = _P_NORMAL
        repo = self.repos[rng.choices(range(len(self.repos)), self.repo_weights)[0]]
        item = Item(
            number=number,
            key=key,
            flow_type=flow_type,
            title=f"{verb} {theme}",
            slug="-".join(theme.lower().split())[:30],
            theme=theme,
            team=rng.randrange(len(self.team_ids)),
            priority=priority,
            created=now,
            parent_id=parent_id,
            has_key=rng.random() < 0.85,
            repo=repo,
            labels=labels,
            points=rng.choice(_STORY_POINTS) if flow_type in ("feature", "risk") else None,
        )
        self._move(item, now, "Backlog")
        return item

    def _epic_at(self, now: float) -> str:
        """A random epic running at `now` (epics are sorted by start and all run about 60 working days)."""
        starts = self._epic_starts
        low, high = bisect.bisect_left(starts, now - 70), bisect.bisect_right(starts, now + 10)
        if low >= high:
            index = min(bisect.bisect_left(starts, now), len(starts) - 1)
        else:
            index = self.rng.randrange(low, high)
        return self.epics[index][1]

    def _ready(self, now: float, item: Item) -> None:
        self.seq += 1
        heapq.heappush(self.backlogs[item.team], (item.priority, now, self.seq, item))
        self._pull(now, item.team)

    def _pull(self, now: float, team: int) -> None:
        backlog = self.backlogs[team]
        while backlog and self.wip[team] < self.wip_limit:
            item = heapq.heappop(backlog)[3]
            self.wip[team] += 1
            self.committed[team][item.number] = item
            sprint_id = self.sprint_ids[team]
            if sprint_id is not None:
                self._plan_item(sprint_id, item, True)
            self._move(item, now, "Ready for Dev")
            rng = self.rng
            _, factor = _TYPES[item.flow_type]
            item.effort = self.lognormal(self.p.dev_days * factor * self.dev_factor, 0.75)
            item.block_after = item.effort * rng.uniform(0.2, 0.8) if rng.random() < 0.12 else 0.0
            item.cancel_during_dev = rng.random() < 0.03
            self._request_dev(now, item, item.priority)

    def _leave_wip(self, now: float, item: Item) -> None:
        self.wip[item.team] -= 1
        self.committed[item.team].pop(item.number, None)
        self._pull(now, item.team)

    # --- development ------------------------------------------------------------------------------

    def _request_dev(self, now: float, item: Item, priority: int) -> None:
        self._request(self.dev_pools[item.team], now, priority, item, self._start_dev)

    def _request(
        self, pool: Pool, now: float, priority: int, job: Any, start: Callable[[float, Pool, int, Any], None]
    ) -> None:
        if pool.free:
            start(now, pool, pool.free.pop(), job)
        else:
            self.seq += 1
            heapq.heappush(pool.queue, (priority, now, self.seq, (start, job)))

    def _release(self, now: float, pool: Pool, worker: int) -> None:
        if pool.queue:
            _, _, _, (start, job) = heapq.heappop(pool.queue)
            start(now, pool, worker, job)
        else:
            pool.free.append(worker)

    def _start_dev(self, now: float, pool: Pool, worker: int, item: Item) -> None:
        developer = pool.members[worker]
        assert developer is not None
        if item.assignee is None:
            item.assignee = developer
        if item.status != "In Progress":
            self._move(item, now, "In Progress", developer.id)
        work = item.effort
        if item.block_after > 0:
            work, item.block_after = item.block_after, 0.0
            item.effort -= work
            self.at(now + work, self._blocked, item, pool, worker, now)
            return
        item.effort = 0.0
        self.at(now + work, self._dev_done, item, pool, worker, now)

    def _interruption(self, now: float, team: int) -> None:
        """Unplanned ops work (alerts, support, access requests): it takes a developer off items."""
        rate = self.p.interruptions_per_developer_day * self.p.developers_per_team * self.scale
        self.at(now + self.rng.expovariate(rate), self._interruption, team)
        effort = self.lognormal(self.p.interruption_days * self.dev_factor, 0.8)
        self._request(self.dev_pools[team], now, _P_INTERRUPT, effort, self._start_interruption)

    def _start_interruption(self, now: float, pool: Pool, worker: int, effort: float) -> None:
        self.at(now + effort, self._release, pool, worker)

    def _blocked(self, now: float, item: Item, pool: Pool, worker: int, began: float) -> None:
        self._commit_work(item, began, now, self.rng.randint(1, 3))
        self._move(item, now, "Blocked")
        self._release(now, pool, worker)
        self.at(now + self.lognormal(1.5, 0.8), self._unblocked, item)

    def _unblocked(self, now: float, item: Item) -> None:
        self._request_dev(now, item, _P_REWORK)

    def _commit_work(self, item: Item, began: float, now: float, count: int, rework: bool = False) -> None:
        developer = item.assignee
        assert developer is not None
        repo = item.repo
        if item.pr is None:
            prefix = f"{item.key}-" if item.has_key else ""
            branch = f"{'fix' if item.flow_type == 'defect' else 'feature'}/{prefix}{item.slug}"
            title = f"{item.key} {item.title}" if item.has_key else item.title
            item.pr = repo.open_pull_request(title, branch, developer.id, NO_TIME, repo.head)
        key = f"{item.key} " if item.has_key else ""
        texts: tuple[str, ...]
        if rework:
            texts = ("Address review comments", "Fix failing test", "Handle edge case", "Rename per review")
        else:
            texts = (
                item.title,
                "Add tests",
                "Handle edge cases",
                "Update docs",
                "Extract helper",
                "Fix lint",
            )
        messages = [f"{key}{texts[min(i, len(texts) - 1)] if i else texts[0]}" for i in range(count)]
        repo.push(item.pr, messages, developer.id, spread(self.rng, began, now, count))

    def _dev_done(self, now: float, item: Item, pool: Pool, worker: int, began: float) -> None:
        rng = self.rng
        first = item.pr is None or item.pr.created != item.pr.created
        count = rng.choice((1, 2, 2, 3, 3, 4, 5, 6, 8)) if item.pr is None else rng.randint(1, 2)
        self._commit_work(item, began, now, count, rework=not first)
        self._release(now, pool, worker)
        if item.cancel_during_dev:
            self._cancel(now, item)
            return
        pr = item.pr
        assert pr is not None
        if first:
            pr.created = self.cal(now) + 2 / 1440
            if rng.random() < 0.7:
                self.sink.add(
                    "change_comment",
                    f"comment/{pr.repo.name}/{pr.number}/sonar",
                    pr.id,
                    self.bots["sonarcloud"].id,
                    pr.created + 4 / 1440,
                    "Quality Gate passed: 0 bugs, 0 vulnerabilities, 0 code smells",
                    None,
                )
        green = pr.repo.ci_run(pr.head, pr.branch, pr.id, "pull_request", self.cal(now) + 1 / 1440)
        if not green:  # a real failure: the developer pushes a fix
            fix = min(now + rng.uniform(0.03, 0.2), self.end - 1e-3)
            key = f"{item.key} " if item.has_key else ""
            pr.repo.push(pr, [f"{key}Fix CI"], item.assignee.id if item.assignee else None, [self.cal(fix)])
            pr.repo.ci_run(pr.head, pr.branch, pr.id, "pull_request", self.cal(fix) + 1 / 1440)
        if item.review_rounds == 0 or item.status != "Testing":
            self._move(item, now, "Waiting for Review")
            self._request(self.review_pool, now, item.priority, item, self._start_review)
        else:
            self._to_test(now, item)

    # --- verification -------------------------------------------------------------------------------

    def _start_review(self, now: float, pool: Pool, worker: int, item: Item) -> None:
        reviewer = self._colleague(item)
        self._move(item, now, "In Review", reviewer.id)
        effort = self.lognormal(self.p.review_days * self.review_factor, 0.8)
        self.at(now + effort, self._review_done, item, pool, worker, reviewer)

    def _colleague(self, item: Item) -> Member:
        members = self.dev_pools[item.team].members
        choice = self.rng.choice(members)
        if item.assignee is not None and choice is not None and choice.id == item.assignee.id:
            others = [m for m in self.developers if m.id != choice.id]
            if others:
                choice = self.rng.choice(others)
        assert choice is not None
        return choice

    def _review_done(self, now: float, item: Item, pool: Pool, worker: int, reviewer: Member) -> None:
        rng = self.rng
        pr = item.pr
        assert pr is not None
        self._release(now, pool, worker)
        item.review_rounds += 1
        rework = item.review_rounds <= 2 and rng.random() < self.p.changes_requested
        state = "changes_requested" if rework else "approved"
        self.sink.add(
            "review",
            f"review/{pr.repo.name}/{pr.number}/{item.review_rounds}",
            pr.id,
            reviewer.id,
            state,
            self.cal(now),
        )
        if rng.random() < 0.4:
            self.sink.add(
                "change_comment",
                f"comment/{pr.repo.name}/{pr.number}/r{item.review_rounds}",
                pr.id,
                reviewer.id,
                self.cal(now) - 1 / 1440,
                rng.choice(("nit: naming", "Can we add a test for this?", "LGTM")),
                f"src/{item.slug}.py",
            )
        if rework:
            item.effort = self.lognormal(0.25 * self.dev_factor, 0.6)
            self._request_dev(now, item, _P_REWORK)
        else:
            self._to_test(now, item)

    def _to_test(self, now: float, item: Item) -> None:
        self._move(item, now, "Ready for Test")
        self._request(self.test_pool, now, item.priority, item, self._start_test)

    def _start_test(self, now: float, pool: Pool, worker: int, item: Item) -> None:
        tester = pool.members[worker]
        self._move(item, now, "Testing", tester.id if tester else None)
        _, factor = _TYPES[item.flow_type]
        effort = self.lognormal(self.p.test_days * self.test_factor * (0.5 + factor / 2), 0.6)
        self.at(now + effort, self._test_done, item, pool, worker)

    def _test_done(self, now: float, item: Item, pool: Pool, worker: int) -> None:
        self._release(now, pool, worker)
        if self.rng.random() < self.p.test_failure:
            item.effort = self.lognormal(0.35 * self.dev_factor, 0.6)
            self._request_dev(now, item, _P_REWORK)
            return
        pr = item.pr
        assert pr is not None
        title = f"{pr.title} (#{pr.number})"
        at = self.cal(now)
        sha = pr.repo.merge(pr, at, title)
        pr.repo.write_change(pr, "merged", at, sha)
        item.pr = None
        item.merged_at = now
        self._move(item, now, "Ready for Release")
        self._leave_wip(now, item)
        r = self.repos.index(item.repo)
        self.ready_for_release[r].append(item)
        if self.p.cadence == "continuous" and not self.deploy_pending[r]:
            self.deploy_pending[r] = True
            self.at(now + self.rng.uniform(0.01, 0.04), self._deploy, r, None)

    # --- delivery -------------------------------------------------------------------------------------

    def _plan_calendar_events(self) -> None:
        if self.p.interruptions_per_developer_day > 0:
            for team in range(len(self.team_ids)):
                self._interruption(0.0, team)
        weeks = int(self.end // 5) + 1
        for week in range(weeks):
            for t, team_id in enumerate(self.team_ids):
                if week % 2 == 0:
                    self.at(week * 5.0 + 0.01 * (t + 1), self._sprint, t, week // 2 + 1, team_id)
            for r, repo in enumerate(self.repos):
                self.at(week * 5.0 + 0.1 + 0.05 * r, self._bot_pr, repo)
            if self.p.cadence == "scheduled":
                for offset in self.p.deploy_at:
                    for r in range(len(self.repos)):
                        self.at(week * 5.0 + offset + 0.02 * r, self._deploy, r, None)
            elif self.p.cadence == "release-train" and week % 2 == 1 and week * 5.0 + 2.3 < self.end:
                self.release_minor += 1
                version = f"4.{self.release_minor}.0"
                release_id = f"demo:release/{self.p.key}/{version}"
                for r in range(len(self.repos)):
                    self.at(week * 5.0 + 2 + 0.3 + 0.02 * r, self._deploy, r, (release_id, version))

    def _deploy(self, now: float, r: int, release: tuple[str, str] | None) -> None:
        repo = self.repos[r]
        self.deploy_pending[r] = False
        sha = repo.head
        if sha == repo.deployed["production"] and release is None:
            return
        start = self.cal(now)
        repo.deploy("staging", sha, start, start + 6 / 1440, "success", False, None)
        repo.deployed["staging"] = sha
        if release is not None:  # the app store's review: the release's services go out together
            if release not in self.store_review:
                self.store_review[release] = self.rng.uniform(1.0, 2.5)
            delay = self.store_review[release] + 0.02 * r
            self.open_releases.setdefault(release, now)
        elif self.p.cadence == "continuous":
            delay = self.rng.uniform(0.01, 0.03)
        else:
            delay = self.rng.uniform(0.05, 0.15)
        self.at(now + delay, self._deploy_production, r, sha, now, release)

    def _deploy_production(
        self, now: float, r: int, sha: str, cut: float, release: tuple[str, str] | None
    ) -> None:
        rng = self.rng
        repo = self.repos[r]
        start = self.cal(now)
        finish = start + rng.uniform(4, 15) / 1440
        release_id = release[0] if release else None
        p = self.p
        outcome = self._outcome(repo)
        if outcome == "failure":
            repo.deploy("production", sha, start, finish, "failure", False, release_id)
            self.at(now + self._retry_delay(), self._deploy_production, r, sha, cut, release)
            return
        if outcome == "rolled_back":
            repo.deploy("production", sha, start, finish, "rolled_back", False, release_id)
            back = finish + rng.uniform(*p.rollback_minutes) / 1440
            repo.deploy(
                "production", repo.deployed["production"], back, back + 4 / 1440, "success", True, None
            )
            self.at(now + self._retry_delay(), self._deploy_production, r, sha, cut, release)
            return
        deployment_id = repo.deploy("production", sha, start, finish, "success", False, release_id)
        repo.deployed["production"] = sha
        if release is not None and release in self.open_releases and r == 0:
            self._write_release(release, "released", self.open_releases.pop(release), finish)
        shipped = [i for i in self.ready_for_release[r] if i.merged_at <= cut]
        self.ready_for_release[r] = [i for i in self.ready_for_release[r] if i.merged_at > cut]
        released = now + 0.03
        for item in shipped:
            self._move(item, released, "Released")
            self.at(released + self.lognormal(p.monitoring_days, 0.6), self._done, item)
        if outcome == "incident":
            self._incident(now, finish, repo, deployment_id)

    def _outcome(self, repo: Repository) -> str:
        """How a production deployment goes: success, failure, rolled_back, or incident (it succeeds and
        then causes one).

        Failures come as a quota: each deployment adds the stream's failure odds (jittered ±40 %) to a
        credit, and one fails whenever the credit reaches 1, so failures are spread evenly and a window's
        change failure rate stays near the profile's. Which way it fails is drawn by the odds of each
        kind; an app in the store cannot be rolled back, so there a rollback is an incident instead.
        """
        p = self.p
        rng = self.rng
        odds = p.deploy_failure + p.rollback + p.incident
        self.failure_credit += odds * rng.uniform(0.6, 1.4)
        if self.failure_credit < 1.0:
            return "success"
        self.failure_credit -= 1.0
        kind = rng.choices(("failure", "rolled_back", "incident"), (p.deploy_failure, p.rollback, p.incident))
        if kind[0] == "rolled_back" and p.cadence == "release-train" and not repo.service.endswith("bff"):
            return "incident"
        return kind[0]

    def _retry_delay(self) -> float:
        return {"continuous": 0.03, "scheduled": 0.4, "release-train": 2.0}[
            self.p.cadence
        ] * self.rng.uniform(0.7, 1.5)

    def _write_release(self, release: tuple[str, str], status: str, cut: float, finish: float | None) -> None:
        release_id, version = release
        self.sink.add(
            "release",
            release_id.removeprefix("demo:"),
            f"{self.p.name} {version}",
            version,
            self.stream_id,
            status,
            self.cal(cut),
            NO_TIME if finish is None else finish,
            f"Release train {version} of the mobile app",
        )

    # --- observation ----------------------------------------------------------------------------------

    def _done(self, now: float, item: Item) -> None:
        self._move(item, now, "Done")
        if self.rng.random() < 0.04:
            reopen = now + self.lognormal(6.0, 0.8)
            if reopen < self.end:
                self.at(reopen, self._reopen, item)
                return
        self._finish(item)

    def _reopen(self, now: float, item: Item) -> None:
        self._move(item, now, "In Progress")
        self.wip[item.team] += 1
        self.committed[item.team][item.number] = item
        item.review_rounds = 0
        item.effort = self.lognormal(self.p.dev_days * 0.5 * self.dev_factor, 0.7)
        self._request_dev(now, item, _P_REWORK)

    def _cancel(self, now: float, item: Item) -> None:
        self._move(item, now, "Canceled")
        if item.pr is not None:
            if item.pr.created == item.pr.created:
                item.repo.write_change(item.pr, "closed", self.cal(now), None)
            item.pr = None
        self._leave_wip(now, item)
        self._finish(item)

    def _incident(self, now: float, deployed: float, repo: Repository, deployment_id: str) -> None:
        rng = self.rng
        created = deployed + rng.uniform(*self.p.incident_detection_hours) / 24
        if created >= self.calendar_end:
            return
        explicit = rng.random() < 0.5
        self._write_incident(
            f"incident/{repo.service}/{int(created * 1440)}",
            f"Elevated errors on {repo.service} after deploy",
            repo.service,
            created,
            self.p.recovery_hours,
            deployment_id if explicit else None,
            "Postmortem: regression shipped by this deployment" if explicit else None,
            True,
            "[]",
        )
        if rng.random() < 0.5:  # the fix is tracked as a defect
            self._arrive(now + rng.uniform(0.05, 0.5), -1, "defect", True)

    def _provider_outages(self) -> None:
        rng = self.rng
        count = max(1, round(self.calendar_end / 30))
        providers = ("cloud provider", "DNS provider", "payment network", "push notification service")
        for i in range(count):
            created = rng.uniform(0.0, self.calendar_end)
            service = self.repos[i % len(self.repos)].service
            self._write_incident(
                f"incident/{service}/outage-{i}",
                f"Upstream {rng.choice(providers)} outage affecting {service}",
                service,
                created,
                2.0,
                None,
                None,
                False,
                '["provider-outage"]',
            )

    @property
    def calendar_end(self) -> float:
        return self.window.end_days

    def _write_incident(
        self,
        external_id: str,
        title: str,
        service: str,
        created: float,
        recovery_hours: float,
        deployment_id: str | None,
        evidence: str | None,
        change_caused: bool,
        labels: str,
    ) -> None:
        rng = self.rng
        severity = rng.choices(("sev1", "sev2", "sev3", "sev4"), (0.05, 0.2, 0.45, 0.3))[0]
        acknowledged = created + rng.uniform(*self.p.acknowledge_minutes) / 1440
        resolved = acknowledged + self.lognormal(recovery_hours, 0.7) / 24
        status = "resolved"
        if resolved >= self.calendar_end:
            resolved, status = NO_TIME, "open"
        if acknowledged >= self.calendar_end:
            acknowledged = NO_TIME
        self.sink.add(
            "incident",
            external_id,
            title,
            service,
            severity,
            status,
            created,
            acknowledged,
            resolved,
            deployment_id,
            evidence,
            change_caused,
            labels,
            f"https://status.example.com/{external_id}",
        )

    # --- rows of work items and plans -----------------------------------------------------------------

    def _move(self, item: Item, now: float, status: str, author: str | None = None) -> None:
        at = self.cal(now)
        if item.transitions and at <= item.transitions[-1][0]:
            at = item.transitions[-1][0] + 1 / 86400
        item.transitions.append((at, item.status if item.transitions else None, status, author))
        item.status = status
        if item.started != item.started and status in _ACTIVE_OR_LATER:
            item.started = at

    def _finish(self, item: Item) -> None:
        self.live.pop(item.number, None)
        self._write_item(item)

    def _write_item(self, item: Item) -> None:
        tool_type, _ = _TYPES[item.flow_type]
        self._write_row(
            item.key,
            item.title,
            tool_type,
            item.flow_type,
            item.transitions,
            self.team_ids[item.team],
            item.parent_id,
            item.assignee.id if item.assignee else None,
            item.labels,
            _PRIORITIES[min(item.priority - _P_URGENT, 3)] if item.priority >= _P_URGENT else "Highest",
            item.points,
            item.number,
        )

    def _write_row(
        self,
        key: str,
        title: str,
        tool_type: str,
        flow_type: str,
        transitions: list[tuple[float, str | None, str, str | None]],
        team_id: str,
        parent_id: str | None,
        assignee_id: str | None,
        labels: str,
        priority: str,
        points: float | None,
        number: int | None = None,
    ) -> str:
        """A work item's row and its transitions; its dates are derived from the transitions.

        With its `number` (epics have none), the item is also recorded in the stream's ledger, for the
        cross-stream dependencies drawn after the simulation (`obeya.demo.dependencies`).
        """
        external_id = f"work-item/{key}"
        item_id = f"demo:{external_id}"
        started = done = canceled = NO_TIME
        for n, (at, before, after, author) in enumerate(transitions):
            state, stage = WORKFLOW[after]
            if before is None:
                from_state = from_stage = None
            else:
                from_state, from_stage = WORKFLOW[before]
            self.sink.add(
                "status_transition",
                f"transition/{key}/{n}",
                item_id,
                at,
                before,
                after,
                None if from_state is None else from_state.value,
                state.value,
                from_stage,
                stage,
                author,
            )
            if after in _ACTIVE_OR_LATER and started != started:
                started = at
            if after == "Done":
                done = at
        last_at, _, status, _ = transitions[-1]
        state, stage = WORKFLOW[status]
        if status != "Done":
            done = NO_TIME
        if status == "Canceled":
            canceled = last_at
        self.sink.add(
            "work_item",
            external_id,
            key,
            title,
            self.p.project,
            tool_type,
            flow_type,
            status,
            state.value,
            stage,
            parent_id,
            team_id,
            assignee_id,
            labels,
            priority,
            points,
            transitions[0][0],
            started,
            done,
            canceled,
            last_at,
        )
        if number is not None:
            self.ledger.add(number, transitions[0][0], started, done, status == "Canceled")
        return item_id

    def _sprint(self, now: float, team: int, number: int, team_id: str) -> None:
        name = f"{self.p.teams[team]} Sprint {number}"
        external_id = f"plan/{team_id.removeprefix('demo:team/')}/sprint-{number}"
        plan_id = self.sink.add(
            "plan", external_id, name, "sprint", self.stream_id, team_id, self.cal(now), self.cal(now + 9.999)
        )
        self.sprint_ids[team] = plan_id
        for item in self.committed[team].values():
            self._plan_item(plan_id, item, False)

    def _plan_item(self, plan_id: str, item: Item, added: bool) -> None:
        self.sink.add(
            "plan_item",
            f"plan-item/{plan_id.removeprefix('demo:plan/')}/{item.key}",
            plan_id,
            item.id,
            added,
            item.points,
            None,
        )

    def _bot_pr(self, now: float, repo: Repository) -> None:
        rng = self.rng
        bot = self.bots[self.p.dependency_bot]
        package = rng.choice(
            ("lodash", "requests", "jackson-databind", "okhttp", "pydantic", "express", "netty")
        )
        minor = rng.randint(1, 30)
        title = f"Bump {package} from 2.{minor}.0 to 2.{minor + 1}.0"
        at = self.cal(now)
        branch = f"{self.p.dependency_bot}/{package}-2.{minor + 1}.0"
        pr = repo.open_pull_request(title, branch, bot.id, at + 2 / 1440, repo.head)
        repo.push(pr, [title], bot.id, [at])
        repo.ci_run(pr.head, branch, pr.id, "pull_request", at + 3 / 1440)
        self.sink.add(
            "change_comment",
            f"comment/{repo.name}/{pr.number}/sonar",
            pr.id,
            self.bots["sonarcloud"].id,
            at + 8 / 1440,
            "Quality Gate passed",
            None,
        )
        self.bot_prs.append((repo, pr))
        self.at(now + self.lognormal(0.8, 0.8), self._bot_pr_review, repo, pr)

    def _bot_pr_review(self, now: float, repo: Repository, pr: PullRequest) -> None:
        self.bot_prs.remove((repo, pr))
        at = self.cal(now)
        if self.rng.random() < 0.1:  # superseded by a newer bump
            repo.write_change(pr, "closed", at, None)
            return
        reviewer = self.rng.choice(self.developers)
        self.sink.add("review", f"review/{repo.name}/{pr.number}/1", pr.id, reviewer.id, "approved", at)
        merged = at + 3 / 1440
        sha = repo.merge(pr, merged, f"{pr.title} (#{pr.number})")
        repo.write_change(pr, "merged", merged, sha)
