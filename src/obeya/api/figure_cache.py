"""A cache of figure responses, keyed by the request and the store's data version.

Figures change only when data does, and every write bumps the store's data version in its own
transaction (`Store.data_version`). A GET for figures (metrics, evidence, value stream map,
traceability) is answered from the cache while the version it was computed at is current; after a write
the next request recomputes and replaces the entry. The cache holds a bounded number of answers.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from obeya.store import Store

CACHED_PATHS = (
    "/api/v1/metrics/",
    "/api/v1/vsm",
    "/api/v1/traceability",
    "/api/v1/insights",
    "/api/v1/maturity",
)


@dataclass(frozen=True)
class _Answer:
    body: bytes
    status_code: int
    headers: list[tuple[str, str]]
    media_type: str | None


class FigureCache:
    """An LRU of responses keyed by (URL, data version)."""

    def __init__(self, store: Store, max_entries: int = 512) -> None:
        self.store = store
        self.max_entries = max_entries
        self._answers: OrderedDict[tuple[str, int], _Answer] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def _get(self, key: tuple[str, int]) -> _Answer | None:
        with self._lock:
            answer = self._answers.get(key)
            if answer is not None:
                self._answers.move_to_end(key)
                self.hits += 1
            else:
                self.misses += 1
            return answer

    def _put(self, key: tuple[str, int], answer: _Answer) -> None:
        with self._lock:
            self._answers[key] = answer
            self._answers.move_to_end(key)
            while len(self._answers) > self.max_entries:
                self._answers.popitem(last=False)

    async def __call__(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        """The middleware: answer cached figures, compute and keep the others."""
        if request.method != "GET" or not request.url.path.startswith(CACHED_PATHS):
            return await call_next(request)
        key = (str(request.url), await run_in_threadpool(self.store.data_version))
        cached = self._get(key)
        if cached is None:
            response = await call_next(request)
            body = b"".join([chunk async for chunk in response.body_iterator])  # type: ignore[attr-defined]
            headers = [(k, v) for k, v in response.headers.items() if k.lower() != "content-length"]
            cached = _Answer(body, response.status_code, headers, response.media_type)
            if response.status_code == 200:
                self._put(key, cached)
        answer = Response(cached.body, cached.status_code, media_type=cached.media_type)
        for name, value in cached.headers:
            if name.lower() not in answer.headers:
                answer.headers[name] = value
        return answer
