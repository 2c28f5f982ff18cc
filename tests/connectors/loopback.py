"""The local HTTP server the connector tests' tool servers share, and the faults they can be told to answer.

`LocalServer` is the lifecycle every tool server shares: a threaded HTTP server on 127.0.0.1 (a free port)
serving the handler class its `_handler` makes, `base_url` for the connection, `start` and `stop`.
`LoopbackServer` is a `LocalServer` that records every GET in `requests`, checks the
credentials with `authorized` (401 with `unauthorized` otherwise) and answers with `answer`; a tool's server
fills in those three. `Fault`s set in `faults` (by path suffix) are answered instead, after the
credentials were checked, so a test can make one path answer 403, 5xx or something that is not JSON the
way the tool does; `send` writes one answer (a `str` body as HTML, anything else as JSON).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

Item = dict[str, Any]


@dataclass
class Request:
    """A request the server received; `query` keeps every value of a repeated parameter."""

    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]

    def one(self, name: str) -> str | None:
        """The last value of a query parameter."""
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass
class Fault:
    """An answer to give instead of the tool's own: `status`, `body` (a `str` is sent as HTML), headers.

    `times` answers it that many times only (None: every time); `delay` waits that long before answering
    (a client with a shorter timeout sees a timeout); `after` lets that many matching requests through
    first (answered as usual), so a walk can fail halfway, on a later page of the same path.
    """

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    times: int | None = None
    delay: float = 0.0
    after: int = 0


_FAULTS_LOCK = threading.Lock()


def fault_for(faults: dict[str, Fault], path: str) -> Fault | None:
    """The fault set for a path (the longest matching suffix), if any; one of its `times` is used up."""
    with _FAULTS_LOCK:
        matching = [suffix for suffix in faults if path.endswith(suffix)]
        if not matching:
            return None
        suffix = max(matching, key=len)
        fault = faults[suffix]
        if fault.after > 0:
            fault.after -= 1
            return None
        if fault.times is not None:
            fault.times -= 1
            if fault.times <= 0:
                del faults[suffix]
        return fault


def send(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: Any,
    headers: dict[str, str] | None = None,
    delay: float = 0.0,
) -> None:
    """Write one answer, `delay` seconds from now: a `str` body as ``text/html``, anything else as JSON."""
    if delay:
        time.sleep(delay)
    if isinstance(body, str):
        data, content_type = body.encode(), "text/html;charset=utf-8"
    else:
        data, content_type = json.dumps(body).encode(), "application/json"
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(data)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(data)


class LocalServer:
    """A threaded HTTP server on 127.0.0.1 serving the handler `_handler` makes.

    A subclass sets up its data, then calls `_listen` (at the end of its ``__init__``).
    """

    def _listen(self) -> None:
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: what goes into the connection's `base_url`."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        """Serve in a background thread; the server itself, to write ``server = FakeX().start()``."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError


class LoopbackServer(LocalServer):
    """A `LocalServer` answering GETs with `answer` once `authorized`, or with a `Fault` set for the path."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.faults: dict[str, Fault] = {}
        self._listen()

    def received(self, path: str) -> list[Request]:
        """The requests to exactly `path`."""
        return [r for r in self.requests if r.path == path]

    def authorized(self, headers: dict[str, str]) -> bool:
        raise NotImplementedError

    def unauthorized(self) -> Item:
        return {"message": "Unauthorized"}

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        raise NotImplementedError

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query, keep_blank_values=True)
                headers = dict(self.headers.items())
                delay = 0.0
                with server._lock:
                    server.requests.append(Request(parts.path, query, headers))
                    extra: dict[str, str] = {}
                    if not server.authorized(headers):
                        status, body = 401, server.unauthorized()
                    elif (fault := fault_for(server.faults, parts.path)) is not None:
                        status, body, extra, delay = fault.status, fault.body, fault.headers, fault.delay
                    else:
                        status, body, extra = server.answer(parts.path, query)
                send(self, status, body, extra, delay)

        return Handler
