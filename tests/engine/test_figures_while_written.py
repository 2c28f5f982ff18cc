"""Figures stay readable while they are recomputed: a reader on another connection (DuckDB: another
cursor of the same process; PostgreSQL: another connection) computing figures while a writer writes
transitions and deployments sees the old figure or the new one, never a half-written state, and never
an error (docs/architecture.md, departures 7 and 8: the store's transactions, the derived tables kept in
step inside them, the per-connection snapshots keyed by the data version).

Stream pay (project PAY), March 2025. Every write is one transaction that
- adds three items, each Backlog 1 Mar → In Progress 2 Mar → Done 5 Mar;
- moves the three items Y1-Y3 from Done (5 Mar) to Blocked (waiting, integration) or back: their third
  transition is rewritten, so their derived timeline rows are replaced;
- adds two production deployments of service pay-api (12:00 and 13:00 of one March day).
So in every state the store passes through, with k writes committed and a = 1 when Y1-Y3 are done:
velocity = 3k + 3a (a multiple of 3), items in progress = 3(1 − a) (0 or 3), deployments = 2k, and in the
map integration has departed 3k + 3a visits and holds 3(1 − a) items, all of them waiting.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from obeya.engine.dora import deployment_frequency, dora_report
from obeya.engine.flow import flow_velocity, work_item_age
from obeya.engine.stages import value_stream_map
from obeya.engine.window import Slice, Window
from obeya.model import Deployment, Record
from obeya.store import Store
from tests.engine.builders import day, item, stream

MARCH = Window(datetime(2025, 3, 1), datetime(2025, 4, 1))
PAY = Slice(value_stream_id="test:pay")
WRITES = 24


@dataclass(frozen=True)
class Figures:
    """What the reader reads, one figure per engine function."""

    velocity: int
    in_progress: int
    deployments: int
    integration_departures: int
    integration_now: int
    integration_waiting_now: int

    def problems(self) -> list[str]:
        """What makes these figures a state no committed write left (empty when they are one)."""
        found = []
        if self.velocity % 3:
            found.append(f"velocity {self.velocity} is no multiple of 3")
        if self.in_progress not in (0, 3):
            found.append(f"{self.in_progress} items in progress")
        if self.deployments % 2:
            found.append(f"{self.deployments} deployments")
        if self.integration_departures % 3 or self.integration_now not in (0, 3):
            found.append(f"integration: {self.integration_departures} left, {self.integration_now} in it")
        if self.integration_waiting_now != self.integration_now:
            found.append(f"integration holds {self.integration_now}, {self.integration_waiting_now} waiting")
        return found


def _read(store: Store) -> Figures:
    integration = next(s for s in value_stream_map(store, MARCH, PAY).stages if s.stage == "integration")
    return Figures(
        flow_velocity(store, MARCH, PAY).completed,
        len(work_item_age(store, MARCH, PAY).items),
        deployment_frequency(store, MARCH).deployments,
        integration.departures,
        integration.in_stage_now,
        integration.in_stage_waiting_now,
    )


def _toggled(done: bool) -> list[Record]:
    history = [(day(3, 1), "Backlog"), (day(3, 2), "In Progress"), (day(3, 5), "Done" if done else "Blocked")]
    return [r for n in (1, 2, 3) for r in item(f"Y{n}", day(3, 1), history)]


def _write(n: int) -> list[Record]:
    """The records of write `n` (1, 2, ...): three new items done, Y1-Y3 toggled, two deployments."""
    records = [
        r
        for i in (1, 2, 3)
        for r in item(
            f"N{n}-{i}", day(3, 1), [(day(3, 1), "Backlog"), (day(3, 2), "In Progress"), (day(3, 5), "Done")]
        )
    ]
    at = datetime(2025, 3, 1, 12) + timedelta(days=n % 28)
    records += [
        Deployment(
            source="test",
            external_id=f"D{n}-{h}",
            service="pay-api",
            environment="production",
            environment_class="production",
            repo="pay/api",
            result="success",
            started_at=at + timedelta(hours=h),
            finished_at=at + timedelta(hours=h),
        )
        for h in (0, 1)
    ]
    return records + _toggled(done=n % 2 == 0)


def _expected(k: int) -> Figures:
    """The figures after `k` writes (Y1-Y3 start done, and are done again after every even write)."""
    a = 1 if k % 2 == 0 else 0
    return Figures(3 * k + 3 * a, 3 * (1 - a), 2 * k, 3 * k + 3 * a, 3 * (1 - a), 3 * (1 - a))


def _loaded(store: Store) -> Store:
    store.upsert_records([*stream("pay", "Payments", ["PAY"]), *_toggled(done=True)])
    return store


def test_a_reader_sees_the_last_committed_state_while_a_write_is_under_way(store: Store) -> None:
    """Deterministic: the writer stops halfway through its transaction (items and transitions written,
    derived rows refreshed, deployments not yet) and the reader, on its own connection, reads then."""
    _loaded(store)
    with ThreadPoolExecutor(max_workers=1) as reader:  # one thread: one connection of its own

        def read() -> Figures:
            return reader.submit(_read, store).result()

        assert read() == _expected(0)
        for n in (1, 2, 3):
            records = _write(n)
            with store.transaction():
                store.upsert_records([r for r in records if not isinstance(r, Deployment)])
                assert read() == _expected(n - 1)  # not the items and transitions written so far
                store.upsert_records([r for r in records if isinstance(r, Deployment)])
                assert read() == _expected(n - 1)
            assert read() == _expected(n)
        assert _read(store) == _expected(3)  # and the writer's connection agrees


def test_figures_read_during_many_writes_are_each_a_committed_state(store: Store) -> None:
    """Free-running: one thread writes `WRITES` transactions while another computes every figure in a
    loop; each figure read must be one the store passed through, and no read may fail."""
    _loaded(store)
    done = threading.Event()
    reads: list[Figures] = []
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for n in range(1, WRITES + 1):
                store.upsert_records(_write(n))
        finally:
            done.set()

    def reader() -> None:
        try:
            while not done.is_set():
                reads.append(_read(store))
            reads.append(_read(store))
        except BaseException as error:  # reported by the test, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=f) for f in (writer, reader)]
    _run(threads)
    assert errors == []
    assert {tuple(f.problems()) for f in reads} == {()}, [f for f in reads if f.problems()][:3]
    # each figure read equals its value in some committed state
    states = [_expected(k) for k in range(WRITES + 1)]
    for name in Figures.__dataclass_fields__:
        possible = {getattr(s, name) for s in states}
        assert {getattr(f, name) for f in reads} <= possible, name
    assert reads[-1] == _expected(WRITES)
    # not vacuous: the reader read while the writes went on
    assert len(reads) > 2


def test_a_dora_report_read_during_writes_is_one_state_throughout(store: Store) -> None:
    """`dora_report` runs one statement per figure: all of them must read the same state, so the
    deployments its frequency counts are exactly the deployments its change failure rate divides by
    (each write adds two; a report whose figures straddled a commit would differ by two)."""
    _loaded(store)
    done = threading.Event()
    pairs: list[tuple[int, float]] = []
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for n in range(1, WRITES + 1):
                store.upsert_records(_write(n))
        finally:
            done.set()

    def reader() -> None:
        try:
            while not done.is_set():
                report = dora_report(store, MARCH)
                pairs.append(
                    (report.deployment_frequency.deployments, report.change_failure_rate.rate.denominator)
                )
        except BaseException as error:  # reported by the test, not lost in the thread
            errors.append(error)

    _run([threading.Thread(target=f) for f in (writer, reader)])
    assert errors == []
    assert len(pairs) > 2
    assert [p for p in pairs if p[0] != p[1]] == []
    assert {p[0] for p in pairs} <= {2 * k for k in range(WRITES + 1)}


def _run(threads: list[threading.Thread]) -> None:
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
        assert not t.is_alive()


def test_a_read_that_fails_takes_its_snapshot_along_and_the_next_read_builds_one(store: Store) -> None:
    """A snapshot made inside a read (`Store.reading`) that then fails is rolled back with it; the next
    figure must not look for it."""
    _loaded(store)
    try:
        with store.reading():
            assert flow_velocity(store, MARCH, PAY).completed == 3
            raise RuntimeError("a figure failed")
    except RuntimeError:
        pass
    assert flow_velocity(store, MARCH, PAY).completed == 3
