"""The webhook receivers' HTTP routes: one per tool, a generic one, each delivery's outcome, the status.

The router's lifespan (merged into the app's by ``include_router``) settles, at start, the deliveries a
previous process stored but never settled, and at shutdown stops the intake and lets the worker finish
(at most `SHUTDOWN_SECONDS`; what it does not finish is settled at the next start).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel

from obeya.api.webhooks.deliveries import DeliveryOutcome, SourceStatus
from obeya.api.webhooks.receiver import Checked, WebhookReceiver, WebhookRefused
from obeya.config.webhooks import WebhookSettings
from obeya.connectors.config import ConnectionConfig
from obeya.linking import LinkingRules
from obeya.normalize.rules import MappingRules
from obeya.store.base import Store

PREFIX = "/api/v1/webhooks"
SHUTDOWN_SECONDS = 10.0
INLINE_BODY_BYTES = 256 * 1024
"""Bodies up to this size are checked on the event loop (a few microseconds); larger ones in a thread."""

Connection = Annotated[
    str | None,
    Query(
        description="The connection the delivery belongs to (also X-Obeya-Connection); kept on its raw event."
    ),
]


class SourceStatusOut(BaseModel):
    """One source's deliveries, counted from the stored raw events."""

    received: int
    duplicates: int
    normalized: int
    stored_raw_only: int
    ignored: int
    unknown_scope: int
    normalization_failures: int
    pending: int
    last_received_at: str | None


class DeliveryOut(BaseModel):
    """One stored delivery and what became of it (``pending`` until the worker has settled it)."""

    source: str
    delivery_id: str
    raw_event_id: str
    event_type: str
    connection: str | None
    received_at: str
    outcome: str
    records: dict[str, int]
    redeliveries: int
    reason: str | None = None
    error: str | None = None
    unknown_scope: str | None = None
    skipped: list[str] | None = None


def _delivery_out(found: DeliveryOutcome) -> DeliveryOut:
    note, raw = found.note, found.delivery
    return DeliveryOut(
        source=raw.source,
        delivery_id=str(raw.delivery_id),
        raw_event_id=raw.id,
        event_type=raw.event_type,
        connection=raw.connection,
        received_at=raw.received_at.isoformat() + "Z",
        outcome=found.outcome,
        records=note.get("records") or {},
        redeliveries=int(note.get("redeliveries") or 0),
        reason=note.get("reason"),
        error=note.get("error"),
        unknown_scope=note.get("unknown_scope"),
        skipped=note.get("skipped"),
    )


class WebhookStatusOut(BaseModel):
    """Every source's deliveries."""

    sources: dict[str, SourceStatusOut]


def _status_out(status: SourceStatus) -> SourceStatusOut:
    last = status.last_received_at
    return SourceStatusOut(
        **{k: v for k, v in vars(status).items() if k != "last_received_at"},
        last_received_at=last.isoformat() + "Z" if last else None,
    )


def _json(body: dict[str, Any], status_code: int) -> Response:
    """A JSON answer encoded with orjson (the receivers answer hundreds a second)."""
    return Response(orjson.dumps(body), status_code, media_type="application/json")


def webhooks_router(
    settings: WebhookSettings | None = None,
    rules: MappingRules | None = None,
    linking: LinkingRules | None = None,
    connections: Sequence[ConnectionConfig] = (),
) -> APIRouter:
    """The routes under /api/v1/webhooks, receiving into the app's store (``app.state.store``); a
    delivery belongs to the connection it names, else to its receiver's, else to the one of
    `connections` that declares its repository, project or service."""
    lock = threading.Lock()

    def receiver_of(app: Any) -> WebhookReceiver:
        """The app's receiver (``app.state.webhook_receiver``), made on first use for its store."""
        store: Store = app.state.store
        found: WebhookReceiver | None = getattr(app.state, "webhook_receiver", None)
        if found is not None and found.store is store:  # every delivery comes here: no lock once made
            return found
        with lock:
            found = getattr(app.state, "webhook_receiver", None)
            if found is None or found.store is not store:
                found = app.state.webhook_receiver = WebhookReceiver(
                    store, settings, rules, linking=linking, connections=connections
                )
            return found

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        target = receiver_of(app)
        await run_in_threadpool(target.start)
        yield
        await run_in_threadpool(target.close, SHUTDOWN_SECONDS)

    router = APIRouter(prefix=PREFIX, tags=["webhooks"], lifespan=lifespan)

    def receiver(request: Request) -> WebhookReceiver:
        return receiver_of(request.app)

    async def take(
        request: Request, tool: str, source: str | None = None, connection: str | None = None
    ) -> Response:
        body = await request.body()
        headers = dict(request.headers.items())  # names come lowercase from the server
        connection = connection or headers.get("x-obeya-connection") or None
        target = receiver(request)
        try:
            checked: Checked
            if len(body) <= INLINE_BODY_BYTES:
                checked = target.check(tool, headers, body, source=source, connection=connection)
            else:
                checked = await run_in_threadpool(
                    target.check, tool, headers, body, source=source, connection=connection
                )
        except WebhookRefused as refused:
            return _json({"status": "refused", "detail": refused.message}, refused.status_code)
        try:
            taken = await asyncio.wrap_future(target.submit(checked))
        except Exception as error:  # nothing stored: the tool should send it again
            detail = f"the delivery could not be stored, send it again: {type(error).__name__}: {error}"
            return _json({"status": "error", "detail": detail[:1000]}, 503)
        answer = target.answer(taken)
        outcome_url = f"{PREFIX}/deliveries/{taken.raw.source}/{taken.raw.delivery_id}"
        return _json({**answer.body, "outcome_url": outcome_url}, answer.status_code)

    responses: dict[int | str, dict[str, Any]] = {
        200: {"description": "A redelivery (`duplicate`): nothing written again; `outcome` of the first."},
        202: {
            "description": "Stored (`accepted`: being normalized; `ignored`: an event Obeya does not use)."
        },
        400: {"description": "The body or a header the tool always sends is missing or malformed."},
        401: {"description": "No secret configured, or the signature/token does not match."},
        413: {"description": "The body is over the size limit."},
        503: {"description": "The delivery could not be stored (nothing was): send it again."},
    }

    @router.post("/github", responses=responses, summary="GitHub webhook (X-Hub-Signature-256)")
    async def github(request: Request, connection: Connection = None) -> Response:
        """A GitHub delivery; pull requests, reviews, pushes, runs, jobs, deployments, issues, releases."""
        return await take(request, "github", connection=connection)

    @router.post("/gitlab", responses=responses, summary="GitLab webhook (X-Gitlab-Token)")
    async def gitlab(request: Request, connection: Connection = None) -> Response:
        """A GitLab delivery; merge requests and pipelines are normalized, other kinds kept raw."""
        return await take(request, "gitlab", connection=connection)

    @router.post("/jira", responses=responses, summary="Jira webhook (X-Hub-Signature)")
    async def jira(request: Request, connection: Connection = None) -> Response:
        """A Jira delivery; issue created/updated and sprint events are normalized."""
        return await take(request, "jira", connection=connection)

    @router.post("/pagerduty", responses=responses, summary="PagerDuty v3 webhook (X-PagerDuty-Signature)")
    async def pagerduty(request: Request, connection: Connection = None) -> Response:
        """A PagerDuty v3 delivery; ``incident.*`` events are normalized."""
        return await take(request, "pagerduty", connection=connection)

    @router.post(
        "/azuredevops", responses=responses, summary="Azure DevOps service hook (basic auth or X-Obeya-Token)"
    )
    async def azuredevops(request: Request, connection: Connection = None) -> Response:
        """An Azure DevOps service hook (Web Hooks consumer); pull requests, builds and work items are
        normalized. Azure signs nothing: the secret is the basic authentication password."""
        return await take(request, "azuredevops", connection=connection)

    @router.post("/generic/{source}", responses=responses, summary="Any tool (X-Obeya-Signature)")
    async def generic(
        request: Request,
        source: Annotated[str, Path(description="The source name kept on the raw events, e.g. argocd")],
        connection: Connection = None,
        x_obeya_event: Annotated[str | None, Header(description="The event type")] = None,
        x_obeya_delivery: Annotated[str | None, Header(description="The delivery id")] = None,
    ) -> Response:
        """A delivery from any tool, signed ``sha256=<hex HMAC-SHA256 of the body>`` (stored raw)."""
        return await take(request, "generic", source=source, connection=connection)

    @router.get("/deliveries/{source}/{delivery_id}", summary="One delivery and what became of it")
    def delivery(
        request: Request,
        source: Annotated[str, Path(description="A tool (github, azuredevops, ...) or a generic source")],
        delivery_id: Annotated[str, Path(description="The delivery id the tool sent")],
    ) -> DeliveryOut:
        """A stored delivery's outcome: ``pending`` until normalized, then ``normalized`` (with the records
        written per kind), ``stored`` (raw only, with the reason), ``ignored``, ``unknown_scope`` or
        ``failed`` (with the error); and how many times the tool redelivered it."""
        found = receiver(request).ledger.delivery(source, delivery_id)
        if found is None:
            raise HTTPException(404, f"no {source} delivery {delivery_id!r} is stored")
        return _delivery_out(found)

    @router.get("/status", summary="What the receivers have taken")
    def status(request: Request) -> WebhookStatusOut:
        """Per source: deliveries received, redeliveries, normalized, raw only, ignored, unknown scope,
        normalization failures, and pending (stored, not settled yet)."""
        return WebhookStatusOut(
            sources={name: _status_out(s) for name, s in receiver(request).status().items()}
        )

    return router
