"""The webhook receivers' HTTP routes: one per tool, a generic one, and the status of them all."""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from obeya.api.webhooks.deliveries import SourceStatus
from obeya.api.webhooks.receiver import WebhookReceiver, WebhookRefused
from obeya.config.webhooks import WebhookSettings
from obeya.normalize.rules import MappingRules
from obeya.store.base import Store

PREFIX = "/api/v1/webhooks"

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


class WebhookStatusOut(BaseModel):
    """Every source's deliveries."""

    sources: dict[str, SourceStatusOut]


def _status_out(status: SourceStatus) -> SourceStatusOut:
    last = status.last_received_at
    return SourceStatusOut(
        **{k: v for k, v in vars(status).items() if k != "last_received_at"},
        last_received_at=last.isoformat() + "Z" if last else None,
    )


def webhooks_router(settings: WebhookSettings | None = None, rules: MappingRules | None = None) -> APIRouter:
    """The routes under /api/v1/webhooks, receiving into the app's store (``app.state.store``)."""
    router = APIRouter(prefix=PREFIX, tags=["webhooks"])
    lock = threading.Lock()
    receivers: dict[int, WebhookReceiver] = {}

    def receiver(request: Request) -> WebhookReceiver:
        store: Store = request.app.state.store
        with lock:
            found = receivers.get(id(store))
            if found is None or found.store is not store:
                found = WebhookReceiver(store, settings, rules)
                receivers[id(store)] = found
            return found

    async def take(
        request: Request, tool: str, source: str | None = None, connection: str | None = None
    ) -> JSONResponse:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        connection = connection or headers.get("x-obeya-connection") or None
        target = receiver(request)
        try:
            answer = await run_in_threadpool(
                target.receive, tool, headers, body, source=source, connection=connection
            )
        except WebhookRefused as refused:
            return JSONResponse({"status": "refused", "detail": refused.message}, refused.status_code)
        return JSONResponse(answer.body, answer.status_code)

    responses: dict[int | str, dict[str, Any]] = {
        200: {"description": "Stored and normalized, or a redelivery (`duplicate`): nothing written again."},
        202: {"description": "Stored; not normalized (`ignored`, raw only, unknown scope, or an error)."},
        400: {"description": "The body or a header the tool always sends is missing or malformed."},
        401: {"description": "No secret configured, or the signature/token does not match."},
        413: {"description": "The body is over the size limit."},
    }

    @router.post("/github", responses=responses, summary="GitHub webhook (X-Hub-Signature-256)")
    async def github(request: Request, connection: Connection = None) -> JSONResponse:
        """A GitHub delivery; pull requests, reviews, pushes, runs, jobs, deployments, issues, releases."""
        return await take(request, "github", connection=connection)

    @router.post("/gitlab", responses=responses, summary="GitLab webhook (X-Gitlab-Token)")
    async def gitlab(request: Request, connection: Connection = None) -> JSONResponse:
        """A GitLab delivery (stored raw until a GitLab normalizer exists)."""
        return await take(request, "gitlab", connection=connection)

    @router.post("/jira", responses=responses, summary="Jira webhook (X-Hub-Signature)")
    async def jira(request: Request, connection: Connection = None) -> JSONResponse:
        """A Jira delivery (stored raw until a Jira normalizer is wired in)."""
        return await take(request, "jira", connection=connection)

    @router.post("/pagerduty", responses=responses, summary="PagerDuty v3 webhook (X-PagerDuty-Signature)")
    async def pagerduty(request: Request, connection: Connection = None) -> JSONResponse:
        """A PagerDuty v3 delivery (stored raw until a PagerDuty normalizer exists)."""
        return await take(request, "pagerduty", connection=connection)

    @router.post("/generic/{source}", responses=responses, summary="Any tool (X-Obeya-Signature)")
    async def generic(
        request: Request,
        source: Annotated[str, Path(description="The source name kept on the raw events, e.g. argocd")],
        connection: Connection = None,
        x_obeya_event: Annotated[str | None, Header(description="The event type")] = None,
        x_obeya_delivery: Annotated[str | None, Header(description="The delivery id")] = None,
    ) -> JSONResponse:
        """A delivery from any tool, signed ``sha256=<hex HMAC-SHA256 of the body>`` (stored raw)."""
        return await take(request, "generic", source=source, connection=connection)

    @router.get("/status", summary="What the receivers have taken")
    def status(request: Request) -> WebhookStatusOut:
        """Per source: deliveries received, redeliveries, normalized, raw only, ignored, unknown scope,
        normalization failures, and pending (stored but never settled)."""
        return WebhookStatusOut(
            sources={name: _status_out(s) for name, s in receiver(request).status().items()}
        )

    return router
