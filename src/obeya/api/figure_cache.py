"""A cache of figure responses, keyed by the request and the store's data version.

Figures change only when data does, and every write bumps the store's data version in its own
transaction (`Store.data_version`). A GET for figures (metrics, evidence, value stream map,
traceability) is answered from the cache while the version it was computed at is current; after a write
the next request recomputes and replaces the entry. The cache holds a bounded number of answers.

Readable while recomputed: with `stale_after` set (`obeya serve --stale-after`, 1 s by default), a
request whose figures are not cached at the current version waits that long for them; if they take
longer and an answer of the same request at an earlier version is cached, that one is sent at once,
marked ``X-Obeya-Stale: <its data version>``, and the computation goes on and replaces it when done.
Requests arriving meanwhile for the same figures share that one computation (never two at once).
"""

from __future__ import annotations

import asyncio
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

    def __init__(self, store: Store, max_entries: int = 512, stale_after: float | None = None) -> None:
        self.store = store
        self.max_entries = max_entries
        self.stale_after = stale_after  # None: always wait for the current figures
        self._answers: OrderedDict[tuple[str, int], _Answer] = OrderedDict()
        self._lock = threading.Lock()
        self.computing: dict[tuple[str, int], asyncio.Future[_Answer]] = {}  # on the server's loop only
        self.hits = 0
        self.misses = 0
        self.stale_answers = 0

    def get(self, key: tuple[str, int]) -> _Answer | None:
        with self._lock:
            answer = self._answers.get(key)
            if answer is not None:
                self._answers.move_to_end(key)
                self.hits += 1
            else:
                self.misses += 1
            return answer

    def latest(self, url: str) -> tuple[int, _Answer] | None:
        """The answer to `url` at the newest data version cached, with that version."""
        with self._lock:
            versions = [(version, answer) for (u, version), answer in self._answers.items() if u == url]
        return max(versions, key=lambda found: found[0]) if versions else None

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
        answer = self.cache.get(key) or await self._recomputed(key, scope, receive)
        headers = [*answer.headers, (b"content-length", str(len(answer.body)).encode())]
        await send({"type": "http.response.start", "status": answer.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})

    async def _recomputed(self, key: tuple[str, int], scope: Scope, receive: Receive) -> _Answer:
        """The figures of `key` computed (or being computed for another request), or, when they take
        longer than `stale_after` and an earlier version's answer is cached, that answer marked stale."""
        cache = self.cache
        computing = cache.computing.get(key)
        if computing is None:
            computing = asyncio.ensure_future(_computed(self.app, scope, receive))
            cache.computing[key] = computing

            def kept(done: asyncio.Future[_Answer]) -> None:
                cache.computing.pop(key, None)
                if not done.cancelled() and done.exception() is None and done.result().status_code == 200:
                    cache.put(key, done.result())

            computing.add_done_callback(kept)
        earlier = cache.latest(key[0]) if cache.stale_after is not None else None
        if earlier is None:
            return await asyncio.shield(computing)
        try:
            return await asyncio.wait_for(asyncio.shield(computing), cache.stale_after)
        except TimeoutError:
            version, answer = earlier
            cache.stale_answers += 1
            return _Answer(
                answer.body, answer.status_code, [*answer.headers, (b"x-obeya-stale", str(version).encode())]
            )


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
