"""The intake: new deliveries' raw events stored in shared transactions (a group commit).

Each request hands its delivery to `DeliveryIntake.submit` and waits for the returned future. One writer
thread takes the first queued delivery, waits `GROUP_SECONDS` for more (and takes whatever queued while
the previous group committed), and stores them with one statement in one transaction
(`DeliveryLedger.store_new`). An insert and its commit cost about 1.5 ms of CPU on DuckDB whatever the
group's size, so under load a commit is paid per group rather than per delivery; the wait adds a few
milliseconds to an answer and keeps the writer from committing one delivery at a time. A
future is resolved only after its delivery's raw event is committed: the answer never comes before the
delivery is durable. Two copies of one delivery id in the same group are stored once: the later copy is
a redelivery.

After the commit, and before any future is resolved, the group is handed on (to the normalization worker)
in commit order, so a redelivery never reaches the worker before the delivery it repeats.

One writer of deliveries also keeps the insert-if-absent atomic on DuckDB, which has no unique index.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from obeya.api.webhooks.deliveries import DeliveryLedger
from obeya.api.webhooks.envelopes import Delivery
from obeya.model.records import RawEvent

log = logging.getLogger("obeya.webhooks")

MAX_GROUP = 256
"""The most deliveries one commit stores (a bound on the statement's size)."""
GROUP_SECONDS = 0.008
"""How long the writer waits after a group's first delivery for others to share its commit."""


@dataclass(frozen=True)
class Taken:
    """A delivery the intake has committed: new, or a redelivery with what became of the first copy."""

    raw: RawEvent
    delivery: Delivery
    new: bool
    outcome: str | None = None


_Entry = tuple[RawEvent, Delivery, "Future[Taken]"]


class DeliveryIntake:
    """Stores deliveries in groups on a writer thread of its own (started on first use)."""

    def __init__(
        self,
        ledger: DeliveryLedger,
        then: Callable[[list[Taken]], None],
        max_group: int = MAX_GROUP,
        group_seconds: float = GROUP_SECONDS,
    ) -> None:
        self.ledger = ledger
        self._then = then
        self._max_group = max_group
        self._group_seconds = group_seconds
        self._queue: queue.SimpleQueue[_Entry | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, raw: RawEvent, delivery: Delivery) -> Future[Taken]:
        """Queue a delivery for the next group; the future resolves once it is committed."""
        future: Future[Taken] = Future()
        self._queue.put((raw, delivery, future))
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="obeya-webhook-intake", daemon=True)
                self._thread.start()
        return future

    def close(self) -> None:
        """Store what is queued, then stop the writer thread (a later `submit` starts it again)."""
        with self._lock:  # held until the thread is gone: a submit meanwhile waits, never starts a second
            thread, self._thread = self._thread, None
            if thread is not None:
                self._queue.put(None)
                thread.join()

    def _run(self) -> None:
        while True:
            entry = self._queue.get()
            if entry is None:
                return
            group = [entry]
            until = time.monotonic() + self._group_seconds
            while len(group) < self._max_group:
                try:
                    more = self._queue.get(timeout=max(until - time.monotonic(), 0))
                except queue.Empty:
                    break
                if more is None:
                    self._commit(group)
                    return
                group.append(more)
            self._commit(group)

    def _store(self, group: list[_Entry]) -> list[Taken]:
        new = self.ledger.store_new([raw for raw, _, _ in group])
        repeated = [raw for (raw, _, _), is_new in zip(group, new, strict=True) if not is_new]
        outcomes = iter(self.ledger.outcomes(repeated) if repeated else [])
        return [
            Taken(raw, delivery, is_new, None if is_new else next(outcomes))
            for (raw, delivery, _), is_new in zip(group, new, strict=True)
        ]

    def _commit(self, group: list[_Entry]) -> None:
        try:
            taken: list[Taken | BaseException] = list(self._store(group))
        except Exception as error:
            if len(group) == 1:
                taken = [error]
            else:  # one bad delivery must not fail the others: each alone
                taken = []
                for entry in group:
                    try:
                        taken.extend(self._store([entry]))
                    except Exception as alone:
                        taken.append(alone)
        stored = [t for t in taken if isinstance(t, Taken)]
        if stored:
            try:
                self._then(stored)
            except Exception:  # they are stored: a restart settles them (DeliveryLedger.unsettled)
                log.exception("webhook deliveries stored but not handed to the worker")
        for (_, _, future), outcome in zip(group, taken, strict=True):
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
