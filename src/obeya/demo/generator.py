"""The demo generator: the organisation, then each value stream's simulated year, as Arrow batches."""

from __future__ import annotations

import datetime as dt
import resource
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa

from obeya.demo.batches import BatchSink
from obeya.demo.calendar import DemoCalendar
from obeya.demo.dependencies import ItemLedger, dependency_batches
from obeya.demo.organisation import DEPENDENCIES, STREAMS, build_organisation, organisation_batches
from obeya.demo.simulation import StreamSimulation
from obeya.model.schema import TABLES
from obeya.store.base import Store

DEFAULT_SEED = 7
DEFAULT_ITEMS = 5200
MIN_ITEMS = 100
MAX_ITEMS = 1_000_000


def stream_sizes(items: int) -> list[int]:
    """How many work items each stream gets (40 / 35 / 25 %), summing to `items`."""
    sizes = [round(items * s.share) for s in STREAMS]
    sizes[-1] = items - sum(sizes[:-1])
    return sizes


def generate(
    seed: int = DEFAULT_SEED,
    items: int = DEFAULT_ITEMS,
    as_of: dt.date | None = None,
    chunk_rows: int = 100_000,
) -> Iterator[tuple[str, pa.Table]]:
    """Yield (record kind, Arrow batch) for the whole demo organisation, twelve months ending at `as_of`.

    `items` work items (stories, bugs, ...; epics and defects opened from incidents come on top) are
    split across the three value streams. The same seed, items and as_of give byte-identical batches.
    """
    if not MIN_ITEMS <= items <= MAX_ITEMS:
        raise ValueError(f"items must be between {MIN_ITEMS} and {MAX_ITEMS}, not {items}")
    if as_of is None:
        as_of = dt.datetime.now(dt.UTC).date()
    calendar = DemoCalendar.ending(as_of)
    organisation = build_organisation(seed, items / DEFAULT_ITEMS)
    yield from organisation_batches(organisation)
    ledgers: dict[str, ItemLedger] = {}
    for profile, size in zip(STREAMS, stream_sizes(items), strict=True):
        sink = BatchSink(calendar.origin, chunk_rows)
        simulation = StreamSimulation(profile, organisation, calendar, size, seed, sink, first_number=1)
        yield from simulation.run()
        yield from sink.flush()
        ledgers[profile.key] = simulation.ledger
    yield from dependency_batches(ledgers, DEPENDENCIES, seed, BatchSink(calendar.origin, chunk_rows))


def peak_rss_mib() -> float:
    """The process's peak resident memory so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


@dataclass
class DemoReport:
    """What `load_demo` wrote: rows per record kind, time spent, and peak memory."""

    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    generate_seconds: float = 0.0
    write_seconds: float = 0.0
    peak_memory_mib: float = 0.0

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def load_demo(
    store: Store, seed: int = DEFAULT_SEED, items: int = DEFAULT_ITEMS, as_of: dt.date | None = None
) -> DemoReport:
    """Generate the demo organisation and write every batch with `store.upsert`."""
    written: Counter[str] = Counter()
    started = time.perf_counter()
    writing = 0.0
    for kind, batch in generate(seed, items, as_of):
        before = time.perf_counter()
        written[kind] += store.upsert(kind, batch)
        writing += time.perf_counter() - before
    seconds = time.perf_counter() - started
    return DemoReport(
        rows={kind: written[kind] for kind in TABLES if written[kind]},
        seconds=seconds,
        generate_seconds=seconds - writing,
        write_seconds=writing,
        peak_memory_mib=peak_rss_mib(),
    )
