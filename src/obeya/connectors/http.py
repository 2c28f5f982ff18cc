"""The HTTP client every connector shares: auth, paging, rate limits, retries, timeouts, per-host limits.

A sync must survive what real APIs do: rate limits (wait, then go on), flaky networks and 5xx answers
(retry with exponential backoff and jitter, then fail with the URL and status), bad tokens and broken
pages (fail at once with a message that says what to fix). Sleeping and the clock are injectable so tests
never wait for real.
"""

from __future__ import annotations

import base64
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from obeya import __version__
from obeya.connectors.errors import (
    AuthenticationError,
    ConnectorError,
    MalformedResponseError,
    MissingCredentialError,
    NotFoundError,
    PermissionDeniedError,
    RetriesExhaustedError,
)

Sleep = Callable[[float], None]
Clock = Callable[[], float]


# --- auth ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenAuth:
    """A token read from the environment variable a connection names; sent as ``Authorization``."""

    tool: str
    variable: str
    token: str = field(repr=False)
    scheme: str = "Bearer"
    hint: str = "check that it is valid and has not expired"

    @classmethod
    def from_environment(
        cls,
        tool: str,
        variable: str,
        *,
        hint: str = "check that it is valid and has not expired",
        scheme: str = "Bearer",
        environ: Mapping[str, str] | None = None,
    ) -> TokenAuth:
        """The token in ``$variable``; a missing or empty variable is an error that names it."""
        token = (os.environ if environ is None else environ).get(variable, "").strip()
        if not token:
            raise MissingCredentialError(
                f"{tool} needs a token: the environment variable ${variable} is not set "
                f"(set it, or name another variable with `token_env` in the connection)"
            )
        return cls(tool=tool, variable=variable, token=token, scheme=scheme, hint=hint)

    @classmethod
    def basic_from_environment(
        cls,
        tool: str,
        user_variable: str,
        token_variable: str,
        *,
        user_is: str,
        user_key: str,
        connection: str,
        hint: str,
        environ: Mapping[str, str] | None = None,
    ) -> TokenAuth:
        """Basic auth with the user in ``$user_variable`` and the token (or password) in
        ``$token_variable``; a missing variable is an error naming it, `user_is` saying what the user is
        and `user_key` the connection's key that names the variable."""
        env = os.environ if environ is None else environ
        user = env.get(user_variable, "").strip()
        if not user:
            raise MissingCredentialError(
                f"{user_is}: the environment variable ${user_variable} is not set (set it, or name another "
                f"variable with `{user_key}` in the connection {connection!r})"
            )
        token = cls.from_environment(tool, token_variable, environ=env)
        return cls(
            tool=tool,
            variable=token_variable,
            token=base64.b64encode(f"{user}:{token.token}".encode()).decode(),
            scheme="Basic",
            hint=hint,
        )

    def header(self) -> str:
        """The value of the ``Authorization`` header."""
        return f"{self.scheme} {self.token}"


# --- paging ----------------------------------------------------------------------------------------


class Paging(Protocol):
    """How a tool splits a list over pages: the first page's URL and, from an answer, the next one's."""

    def first(self, url: httpx.URL) -> httpx.URL:
        """The URL of the first page."""
        ...

    def next(self, url: httpx.URL, response: httpx.Response, body: Any, items: list[Any]) -> httpx.URL | None:
        """The URL of the page after the one `url` answered, or None when that was the last."""
        ...


@dataclass(frozen=True)
class LinkHeaderPaging:
    """RFC 8288 ``Link: <...>; rel="next"`` (GitHub, GitLab keyset paging)."""

    size_param: str = "per_page"
    size: int = 100

    def first(self, url: httpx.URL) -> httpx.URL:
        """The URL with the page size set, unless it names one already."""
        return url if self.size_param in url.params else url.copy_set_param(self.size_param, self.size)

    def next(self, url: httpx.URL, response: httpx.Response, body: Any, items: list[Any]) -> httpx.URL | None:
        """The ``rel="next"`` link, resolved against the page's URL."""
        link = response.links.get("next", {}).get("url")
        return url.join(link) if link else None


@dataclass(frozen=True)
class PageNumberPaging:
    """``page``/``per_page`` numbering: a page shorter than the size is the last."""

    page_param: str = "page"
    size_param: str = "per_page"
    size: int = 100
    first_page: int = 1

    def first(self, url: httpx.URL) -> httpx.URL:
        """The URL of page `first_page` with the page size set."""
        return url.copy_set_param(self.page_param, self.first_page).copy_set_param(self.size_param, self.size)

    def next(self, url: httpx.URL, response: httpx.Response, body: Any, items: list[Any]) -> httpx.URL | None:
        """The next page number, unless this page was short."""
        if len(items) < self.size:
            return None
        page = int(url.params.get(self.page_param, self.first_page))
        return url.copy_set_param(self.page_param, page + 1)


@dataclass(frozen=True)
class OffsetPaging:
    """``startAt``/``maxResults`` offsets with a ``total`` in the body (Jira)."""

    start_param: str = "startAt"
    size_param: str = "maxResults"
    size: int = 50
    total_key: str = "total"

    def first(self, url: httpx.URL) -> httpx.URL:
        """The URL of offset 0 with the page size set."""
        return url.copy_set_param(self.start_param, 0).copy_set_param(self.size_param, self.size)

    def next(self, url: httpx.URL, response: httpx.Response, body: Any, items: list[Any]) -> httpx.URL | None:
        """The offset after this page's items, unless there are none or the total is reached."""
        if not items:
            return None
        start = int(url.params.get(self.start_param, 0)) + len(items)
        total = body.get(self.total_key) if isinstance(body, dict) else None
        if isinstance(total, int) and start >= total:
            return None
        return url.copy_set_param(self.start_param, start)


@dataclass(frozen=True)
class TokenPaging:
    """An opaque next-page token in the body, sent back as a query parameter (Jira ``nextPageToken``)."""

    token_key: str = "nextPageToken"
    token_param: str = "nextPageToken"
    size_param: str | None = "maxResults"
    size: int = 100

    def first(self, url: httpx.URL) -> httpx.URL:
        """The URL with the page size set (when the API takes one)."""
        return url if self.size_param is None else url.copy_set_param(self.size_param, self.size)

    def next(self, url: httpx.URL, response: httpx.Response, body: Any, items: list[Any]) -> httpx.URL | None:
        """The URL carrying the body's next-page token; None when the body has none."""
        token = body.get(self.token_key) if isinstance(body, dict) else None
        return url.copy_set_param(self.token_param, token) if token else None


@dataclass(frozen=True)
class Page:
    """One page of a list: its URL, its items, and the URL of the next page (None on the last)."""

    url: str
    items: list[Any]
    next_url: str | None


# --- retries and rate limits -------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: transient failures back off exponentially (with jitter) up to `max_attempts`."""

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0
    max_rate_limit_waits: int = 20
    secondary_limit_delay: float = 60.0
    reset_margin: float = 1.0
    """Seconds added to ``X-RateLimit-Reset`` before a spent quota is used again (clock skew)."""
    pace_below: float = 0.5
    """Once fewer than this share of ``X-RateLimit-Limit`` remain, requests are spread evenly until the
    reset instead of bursting into the limit."""

    def backoff(self, attempt: int, jitter: float) -> float:
        """The wait before retry number `attempt` (1-based); `jitter` in [0, 1) spreads clients apart."""
        delay: float = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return delay / 2 + delay / 2 * jitter


@dataclass
class _Quota:
    """What one host's rate-limit headers said last, and the requests under way against it."""

    limit: float | None = None
    remaining: float | None = None
    reset: float | None = None
    pending: int = 0
    next_send: float = 0.0


def _header_float(response: httpx.Response, name: str) -> float | None:
    value = response.headers.get(name)
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class HttpClient:
    """A synchronous client for one tool's API, safe to share between threads.

    `get` and `pages` return only successful answers: rate limits are waited out, transient failures
    retried, and anything else raised as a `ConnectorError` subclass naming the URL and the status.
    """

    def __init__(
        self,
        base_url: str,
        *,
        tool: str,
        auth: TokenAuth | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        max_concurrency_per_host: int = 4,
        sleep: Sleep = time.sleep,
        clock: Clock = time.time,
        jitter: Callable[[], float] = random.random,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = httpx.URL(base_url.rstrip("/") + "/")
        self.tool = tool
        self.auth = auth
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._jitter = jitter
        self._max_concurrency = max_concurrency_per_host
        self._semaphores: dict[str, threading.BoundedSemaphore] = {}
        self._quotas: dict[str, _Quota] = {}
        self._lock = threading.Lock()
        default_headers = {"User-Agent": f"obeya/{__version__}", "Accept": "application/json"}
        default_headers.update(headers or {})
        if auth is not None:
            default_headers["Authorization"] = auth.header()
        self._client = httpx.Client(
            headers=default_headers, timeout=timeout, transport=transport, follow_redirects=True
        )

    # --- public --------------------------------------------------------------------------------------

    def url(self, path_or_url: str, params: Mapping[str, Any] | None = None) -> httpx.URL:
        """An absolute URL: `path_or_url` resolved against the base URL, with `params` added."""
        url = (
            self.base_url.join(path_or_url.lstrip("/"))
            if "://" not in path_or_url
            else httpx.URL(path_or_url)
        )
        for key, value in (params or {}).items():
            if value is not None:
                url = url.copy_set_param(key, value)
        return url

    def get(self, url: httpx.URL | str) -> httpx.Response:
        """GET `url` (absolute, or relative to the base URL), waiting out rate limits and retrying."""
        target = url if isinstance(url, httpx.URL) else self.url(url)
        return self._send(target)

    def get_json(self, url: httpx.URL | str) -> Any:
        """The JSON body of GET `url`; a body that is not JSON is a `MalformedResponseError`."""
        target = url if isinstance(url, httpx.URL) else self.url(url)
        return self._json(target, self._send(target))

    def pages(self, url: httpx.URL | str, paging: Paging, items_key: str | None = None) -> Iterator[Page]:
        """The pages of a list, starting at `url`'s first page.

        `items_key` names the body's field holding the items when the body is an object (GitHub's
        ``workflow_runs``); with None the body must be the list itself.
        """
        target = url if isinstance(url, httpx.URL) else self.url(url)
        yield from self.pages_from(paging.first(target), paging, items_key)

    def pages_from(
        self, url: httpx.URL | str, paging: Paging, items_key: str | None = None
    ) -> Iterator[Page]:
        """Like `pages`, but `url` is a page's URL as is (a `Page.next_url` kept to resume a walk)."""
        current: httpx.URL | None = url if isinstance(url, httpx.URL) else httpx.URL(url)
        while current is not None:
            response = self._send(current)
            body = self._json(current, response)
            items = self._items(current, body, items_key)
            following = paging.next(current, response, body, items)
            yield Page(url=str(current), items=items, next_url=str(following) if following else None)
            current = following

    def close(self) -> None:
        """Close the connections."""
        self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- sending -------------------------------------------------------------------------------------

    @contextmanager
    def _slot(self, host: str) -> Iterator[None]:
        with self._lock:
            semaphore = self._semaphores.setdefault(host, threading.BoundedSemaphore(self._max_concurrency))
        with semaphore:
            yield

    def _wait_for_quota(self, host: str) -> None:
        """Wait until a request to `host` fits the quota, then count it as under way.

        A spent quota (counting requests under way, whose answers have not said so yet) waits for its
        reset. Once less than `RetryPolicy.pace_below` of the limit remains, requests are spread evenly
        over the time left until the reset, so a long sync uses the whole budget without being refused.
        """
        margin = self.retry.reset_margin
        while True:
            with self._lock:
                quota = self._quotas.setdefault(host, _Quota())
                now = self._clock()
                if quota.reset is not None and now >= quota.reset + margin:
                    quota.remaining = quota.reset = None  # a new window: the next answer tells
                wait = 0.0
                if quota.remaining is not None and quota.reset is not None:
                    left = quota.remaining - quota.pending
                    if left <= 0:
                        wait = quota.reset + margin - now
                    elif quota.limit and quota.remaining <= quota.limit * self.retry.pace_below:
                        start = max(now, quota.next_send)
                        quota.next_send = start + max(quota.reset - start, 0.0) / left
                        wait = start - now
                        quota.pending += 1
                        break
                if wait <= 0:
                    quota.pending += 1
                    return
            self._sleep(wait)
        if wait > 0:
            self._sleep(wait)

    def _done(self, host: str) -> None:
        with self._lock:
            quota = self._quotas.get(host)
            if quota is not None:
                quota.pending = max(quota.pending - 1, 0)

    def _note_quota(self, host: str, response: httpx.Response) -> None:
        """Remember the quota the answer reports (the lowest remaining of the newest window)."""
        remaining = _header_float(response, "X-RateLimit-Remaining")
        reset = _header_float(response, "X-RateLimit-Reset")
        if remaining is None or reset is None:
            return
        limit = _header_float(response, "X-RateLimit-Limit")
        with self._lock:
            quota = self._quotas.setdefault(host, _Quota())
            if reset + self.retry.reset_margin <= self._clock():
                return  # a window that is over already
            if quota.reset is None or reset > quota.reset:
                quota.limit, quota.remaining, quota.reset = limit, remaining, reset
            elif reset == quota.reset:
                known = quota.remaining if quota.remaining is not None else remaining
                quota.remaining = min(known, remaining)
                quota.limit = limit or quota.limit

    def _rate_limit_delay(self, response: httpx.Response) -> float | None:
        """How long to wait before trying again when the answer is a rate limit; None when it is not."""
        if response.status_code not in (403, 429):
            return None
        retry_after = _header_float(response, "Retry-After")
        if retry_after is not None:
            return max(retry_after, 0.0)
        remaining = _header_float(response, "X-RateLimit-Remaining")
        reset = _header_float(response, "X-RateLimit-Reset")
        if remaining is not None and remaining <= 0:
            if reset is None:
                return self.retry.secondary_limit_delay
            return max(reset - self._clock(), 0.0) + 1.0
        if response.status_code == 429 or "rate limit" in response.text.lower():
            # GitHub's secondary limits without Retry-After: "wait at least one minute".
            return self.retry.secondary_limit_delay
        return None

    def _send(self, url: httpx.URL) -> httpx.Response:
        host = url.host
        attempt = 0
        rate_limit_waits = 0
        while True:
            try:
                with self._slot(host):
                    self._wait_for_quota(host)
                    try:
                        response = self._client.get(url)
                    finally:
                        self._done(host)
            except (httpx.TimeoutException, httpx.TransportError) as error:
                attempt += 1
                cause = "timed out" if isinstance(error, httpx.TimeoutException) else f"failed ({error})"
                if attempt >= self.retry.max_attempts:
                    raise RetriesExhaustedError(
                        f"{self.tool}: GET {url} {cause} {attempt} times; check the network and the "
                        f"connection's base_url, then run the sync again (it resumes where it stopped)",
                        url=str(url),
                    ) from error
                self._sleep(self.retry.backoff(attempt, self._jitter()))
                continue
            self._note_quota(host, response)
            delay = self._rate_limit_delay(response)
            if delay is not None:
                rate_limit_waits += 1
                if rate_limit_waits > self.retry.max_rate_limit_waits:
                    raise RetriesExhaustedError(
                        f"{self.tool}: GET {url} was rate limited {rate_limit_waits} times in a row "
                        f"({response.status_code}); run the sync again later",
                        url=str(url),
                        status=response.status_code,
                    )
                self._sleep(delay)
                continue
            if response.status_code >= 500 or response.status_code == 408:
                attempt += 1
                if attempt >= self.retry.max_attempts:
                    raise RetriesExhaustedError(
                        f"{self.tool}: GET {url} failed with {response.status_code} "
                        f"{response.reason_phrase} {attempt} times; the service may be down, run the sync "
                        f"again later (it resumes where it stopped)",
                        url=str(url),
                        status=response.status_code,
                    )
                retry_after = _header_float(response, "Retry-After")
                self._sleep(
                    retry_after if retry_after is not None else self.retry.backoff(attempt, self._jitter())
                )
                continue
            if response.status_code >= 400:
                raise self._client_error(url, response)
            return response

    def _client_error(self, url: httpx.URL, response: httpx.Response) -> ConnectorError:
        status = response.status_code
        detail = _error_detail(response)
        where = f"GET {url}"
        if status == 401:
            if self.auth is None:
                return AuthenticationError(
                    f"{self.tool} requires a token for {where} (401): set one with `token_env`",
                    url=str(url),
                    status=status,
                )
            return AuthenticationError(
                f"{self.tool} rejected the token in ${self.auth.variable} ({status}): {self.auth.hint} "
                f"[{where}{detail}]",
                url=str(url),
                status=status,
            )
        if status == 403:
            token = f"the token in ${self.auth.variable}" if self.auth else "anonymous access"
            return PermissionDeniedError(
                f"{self.tool} refused {where} to {token} ({status}{detail}): grant it read access to this "
                f"resource ({self.auth.hint if self.auth else 'set a token'})",
                url=str(url),
                status=status,
            )
        if status == 404:
            return NotFoundError(
                f"{self.tool} has nothing at {where} (404{detail}): check the name in obeya.yaml and "
                "that the token can see it",
                url=str(url),
                status=status,
            )
        return ConnectorError(f"{self.tool}: {where} failed ({status}{detail})", url=str(url), status=status)

    def _json(self, url: httpx.URL, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as error:
            snippet = response.text[:80]
            content_type = response.headers.get("Content-Type", "none")
            raise MalformedResponseError(
                f"{self.tool} answered GET {url} with a body that is not JSON "
                f"(status {response.status_code}, Content-Type {content_type}): "
                f"{snippet!r}; nothing from this page was stored, run the sync again (a proxy or captive "
                "portal in between?)",
                url=str(url),
                status=response.status_code,
            ) from error

    def _items(self, url: httpx.URL, body: Any, items_key: str | None) -> list[Any]:
        items = body.get(items_key) if items_key is not None and isinstance(body, dict) else body
        if not isinstance(items, list):
            expected = f"an object with a list in {items_key!r}" if items_key else "a list"
            raise MalformedResponseError(
                f"{self.tool} answered GET {url} with {type(body).__name__}, expected {expected}",
                url=str(url),
            )
        return items


def _error_detail(response: httpx.Response) -> str:
    """The API's own error message, when the body carries one."""
    try:
        body = response.json()
    except ValueError:
        return ""
    message = body.get("message") if isinstance(body, dict) else None
    return f": {message}" if isinstance(message, str) and message else ""
