"""A cache of figure responses, keyed by the request and the store's data version.

Figures change only when data does, and every write bumps the store's data version in its own
transaction (`Store.data_version`). A GET for figures (metrics, evidence, value stream map,
traceability) is answered from the cache while the version it was computed at is current; after a write
the next request recomputes and replaces the entry. The cache holds a bounded number of answers.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
    headers: list[tuple[bytes, bytes]]  # as ASGI sends them, without content-length


class FigureCache:
    """An LRU of responses keyed by (URL, data version)."""

    def __init__(self, store: Store, max_entries: int = 512) -> None:
        self.store = store
        self.max_entries = max_entries
        self._answers: OrderedDict[tuple[str, int], _Answer] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[str, int]) -> _Answer | None:
        with self._lock:
            answer = self._answers.get(key)
            if answer is not None:
                self._answers.move_to_end(key)
                self.hits += 1
            else:
                self.misses += 1
            return answer

    def put(self, key: tuple[str, int], answer: _Answer) -> None:
        with self._lock:
            self._answers[key] = answer
            self._answers.move_to_end(key)
            while len(self._answers) > self.max_entries:
                self._answers.popitem(last=False)


class FigureCacheMiddleware:
    """The cache as a plain ASGI middleware (``app.add_middleware(FigureCacheMiddleware, cache=...)``):
    a GET for figures is answered from the cache or computed and kept; every other request (webhooks,
    writes, the landing page) goes straight through, untouched and unbuffered."""

    def __init__(self, app: ASGIApp, cache: FigureCache) -> None:
        self.app = app
        self.cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or not str(scope["path"]).startswith(CACHED_PATHS)
        ):
            await self.app(scope, receive, send)
            return
        key = (str(Request(scope).url), await run_in_threadpool(self.cache.store.data_version))
        answer = self.cache.get(key)
        if answer is None:
            answer = await _computed(self.app, scope, receive)
            if answer.status_code == 200:
                self.cache.put(key, answer)
        headers = [*answer.headers, (b"content-length", str(len(answer.body)).encode())]
        await send({"type": "http.response.start", "status": answer.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})


async def _computed(app: ASGIApp, scope: Scope, receive: Receive) -> _Answer:
    """Run `app` for the request and collect its whole answer."""
    start: dict[str, Any] = {}
    chunks: list[bytes] = []

    async def collect(message: Message) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))

    await app(scope, receive, collect)
    headers = [
        (bytes(k), bytes(v)) for k, v in start.get("headers", []) if bytes(k).lower() != b"content-length"
    ]
    return _Answer(b"".join(chunks), int(start["status"]), headers)
