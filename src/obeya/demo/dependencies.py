"""Cross-stream dependencies: the issue links between work items of different value streams.

Product teams need the platform: a Payments or Mobile App story often waits for a gateway route or an
auth scope that Platform delivers, and the app needs Payments' APIs. The demo writes these as the
issue links a Jira connector normalizes (docs/connectors.md): a `trace_link` between two work items,
``Blocks`` from the blocking item to the blocked one (Jira's default link type, outward "blocks"), or
``Dependency`` from the dependent item to the one it depends on (a custom link type, outward
"depends on"). Platform's work blocks the product streams; they depend on one another, and now and
then Platform depends on one of them.

The links are drawn after the simulations from each stream's `ItemLedger`, with their own random
streams, so they change none of the simulated flow. They agree with it: a dependency of an item that
started was done between the item's creation and its start (it was waited for before work began);
one of an item not started yet was done after the item's creation or is still open at as-of.
"""

from __future__ import annotations

import bisect
import math
import random
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa

from obeya.demo.batches import BatchSink

BLOCKS = "Blocks"
DEPENDENCY = "Dependency"


@dataclass(frozen=True)
class StreamDependency:
    """Items of stream `dependent` depend, each with probability `share`, on an item of `provider`."""

    dependent: str  # stream key
    provider: str
    share: float


@dataclass
class ItemLedger:
    """The work items (epics left out) one stream's simulation wrote, in the order it wrote them.

    Times are calendar days from the demo's origin, NaN for "not yet" (as in `obeya.demo.batches`).
    """

    key: str
    project: str
    numbers: array[int] = field(default_factory=lambda: array("q"))
    created: array[float] = field(default_factory=lambda: array("d"))
    started: array[float] = field(default_factory=lambda: array("d"))
    done: array[float] = field(default_factory=lambda: array("d"))
    canceled: array[int] = field(default_factory=lambda: array("b"))

    def add(self, number: int, created: float, started: float, done: float, canceled: bool) -> None:
        """Record one written item."""
        self.numbers.append(number)
        self.created.append(created)
        self.started.append(started)
        self.done.append(done)
        self.canceled.append(int(canceled))

    def item_id(self, index: int) -> str:
        """The work item id of the item at `index`."""
        return f"demo:work-item/{self.project}-{self.numbers[index]}"


def _providers_by_done(ledger: ItemLedger) -> tuple[list[float], list[int]]:
    """The provider's items that can be depended on (not canceled), by done time; open ones last."""
    order = sorted(
        (math.inf if math.isnan(ledger.done[i]) else ledger.done[i], i)
        for i in range(len(ledger.numbers))
        if not ledger.canceled[i]
    )
    return [done for done, _ in order], [i for _, i in order]


def dependency_batches(
    ledgers: dict[str, ItemLedger],
    dependencies: tuple[StreamDependency, ...],
    seed: int,
    sink: BatchSink,
) -> Iterator[tuple[str, pa.Table]]:
    """The `trace_link` rows of the cross-stream dependencies, as Arrow batches."""
    for dependency in dependencies:
        dependent, provider = ledgers[dependency.dependent], ledgers[dependency.provider]
        rng = random.Random(f"obeya-demo-dependencies-{dependent.key}-{provider.key}-{seed}")
        done, order = _providers_by_done(provider)
        for i in range(len(dependent.numbers)):
            if rng.random() >= dependency.share:
                continue
            created, started = dependent.created[i], dependent.started[i]
            low = bisect.bisect_right(done, created)
            high = len(done) if math.isnan(started) else bisect.bisect_left(done, started)
            if low >= high:  # nothing of the provider's finished in time: no link
                continue
            _link(sink, dependent, i, provider, order[rng.randrange(low, high)])
            yield from sink.drain()
    yield from sink.flush()


def _link(sink: BatchSink, dependent: ItemLedger, i: int, provider: ItemLedger, j: int) -> None:
    dependent_id, provider_id = dependent.item_id(i), provider.item_id(j)
    dependent_key, provider_key = dependent_id.rsplit("/", 1)[1], provider_id.rsplit("/", 1)[1]
    if provider.key == "platform":  # Platform's work blocks the product streams (Jira's default type)
        sink.add(
            "trace_link",
            f"link/{provider_key}-blocks-{dependent_key}",
            "work_item",
            provider_id,
            "work_item",
            dependent_id,
            BLOCKS,
            "Jira issue link: blocks",
            1.0,
        )
    else:
        sink.add(
            "trace_link",
            f"link/{dependent_key}-depends-on-{provider_key}",
            "work_item",
            dependent_id,
            "work_item",
            provider_id,
            DEPENDENCY,
            "Jira issue link: depends on",
            1.0,
        )
