"""The normalization worker: stored deliveries settled on a thread of their own, after their answer.

The intake hands each committed group on with `submit`; the worker collects what arrives within
`BATCH_SECONDS` of the first item (at most `MAX_BATCH` items) and gives it to its `settle` function at
once, so a batch's records and notes are written in one transaction rather than one per delivery: a
transaction costs a few milliseconds on DuckDB whatever its size, a delivery's records a fraction of one.
So a delivery reaches the store about `BATCH_SECONDS` after its answer, plus the batch's own time.

Nothing here can lose a delivery: it is stored before it is queued, a delivery whose batch fails is
settled again alone by the receiver (`WebhookReceiver.settle_batch`), and what a crash leaves unsettled
is found again at the next start. `wait_idle` (tests, shutdown) returns once everything submitted so far
has been settled, settling the batch being collected at once.

After settling, the worker runs its `after` function (the receiver's: derive the trace links the new
records can change, `obeya.linking.update_links`), debounced: right after a batch when nothing else is
waiting, and otherwise at most once every `AFTER_SECONDS` while deliveries keep coming. At 500 deliveries/s
the batches follow each other and links are derived about once a second, not once per delivery or batch;
a lone delivery gets its links right after its batch. `wait_idle` also waits for that run.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

log = logging.getLogger("obeya.webhooks")

MAX_BATCH = 500
"""The most deliveries settled in one transaction."""
BATCH_SECONDS = 0.25
"""How long the worker collects deliveries after the first one before settling them together."""
AFTER_SECONDS = 1.0
"""Under a steady stream of deliveries, the longest the worker goes between two runs of `after`."""

Item = TypeVar("Item")


class _Signal:
    """A queue marker: `_FLUSH` ends the batch being collected now; `_STOP` also ends the thread."""


_FLUSH = _Signal()
_STOP = _Signal()


class NormalizationWorker(Generic[Item]):
    """Runs `settle` over batches of submitted items on one thread (started on first use)."""

    def __init__(
        self,
        settle: Callable[[list[Item]], None],
        max_batch: int = MAX_BATCH,
        batch_seconds: float = BATCH_SECONDS,
        after: Callable[[], None] | None = None,
        after_seconds: float = AFTER_SECONDS,
    ) -> None:
        self._settle = settle
        self._after = after
        self._after_seconds = after_seconds
        self._after_pending = False  # settled batches whose `after` has not run yet
        self._after_last = time.monotonic()
        self._max_batch = max_batch
        self._batch_seconds = batch_seconds
        self._queue: queue.SimpleQueue[Item | _Signal] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._idle = threading.Condition()
        self._unsettled = 0

    @property
    def unsettled(self) -> int:
        """Items submitted and not settled yet."""
        with self._idle:
            return self._unsettled

    def submit(self, items: Sequence[Item]) -> None:
        """Queue items to settle, in order."""
        if not items:
            return
        with self._idle:
            self._unsettled += len(items)
        for item in items:
            self._queue.put(item)
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="obeya-webhook-worker", daemon=True)
                self._thread.start()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every item submitted so far is settled (the batch being collected is settled at
        once); whether that happened within `timeout` s."""
        self._queue.put(_FLUSH)
        with self._idle:
            return self._idle.wait_for(lambda: self._unsettled == 0 and not self._after_pending, timeout)

    def close(self, timeout: float) -> bool:
        """Settle what is queued (waiting at most `timeout` s), then stop the thread; whether all was
        settled (what was not stays stored, unsettled, for the next start)."""
        idle = self.wait_idle(timeout)
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is not None:
                self._queue.put(_STOP)
                thread.join(timeout if not idle else None)
        return idle

    def _run_after(self) -> None:
        """Run `after` for the batches settled since it last ran (its failure is logged, never raised)."""
        try:
            if self._after is not None:
                self._after()
        except Exception:
            log.exception("webhook worker: deriving links after the settled deliveries failed")
        finally:
            self._after_last = time.monotonic()
            with self._idle:
                self._after_pending = False
                self._idle.notify_all()

    def _next(self) -> Item | _Signal | None:
        """The next queued item; None when `after` is pending and came due while waiting."""
        if not self._after_pending:
            return self._queue.get()
        due = self._after_last + self._after_seconds - time.monotonic()
        try:
            return self._queue.get(timeout=max(due, 0))
        except queue.Empty:
            return None

    def _run(self) -> None:
        while True:
            item = self._next()
            if item is None:
                self._run_after()
                continue
            if isinstance(item, _Signal):
                if self._after_pending:  # a flush or a stop: nothing more to wait for
                    self._run_after()
                if item is _STOP:
                    return
                continue
            batch: list[Item] = [item]
            stop = False
            until = time.monotonic() + self._batch_seconds
            while len(batch) < self._max_batch:
                try:
                    more = self._queue.get(timeout=max(until - time.monotonic(), 0))
                except queue.Empty:
                    break
                if isinstance(more, _Signal):
                    stop = more is _STOP
                    break
                batch.append(more)
            try:
                self._settle(batch)
            except Exception:  # settle handles its own failures; this is a last resort, never a lost delivery
                log.exception("webhook worker: a batch of %d deliveries was not settled", len(batch))
            finally:
                with self._idle:
                    self._unsettled -= len(batch)
                    self._after_pending = self._after is not None
                    self._idle.notify_all()
            if self._after_pending and (
                stop or self._queue.empty() or time.monotonic() - self._after_last >= self._after_seconds
            ):
                self._run_after()
            if stop:
                return
