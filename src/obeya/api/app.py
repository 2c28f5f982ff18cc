"""The FastAPI application: REST API under /api/v1, OpenAPI at /docs, a landing page at /."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel

from obeya import __version__
from obeya.api.figure_cache import FigureCache, FigureCacheMiddleware
from obeya.api.routes import ROUTERS
from obeya.api.routes.dependencies import StoreDep
from obeya.api.routes.sync_status import router as sync_status_router
from obeya.api.webhooks import webhooks_router
from obeya.config import ObeyaConfig
from obeya.connectors.schedule import SyncScheduler
from obeya.connectors.scopes import apply_value_streams
from obeya.engine.portfolio import value_stream_summaries
from obeya.store import LATEST_VERSION, Store

_TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")


class Health(BaseModel):
    """Whether the service and its store are usable."""

    status: str
    version: str
    database: str
    schema_version: int
    latest_schema_version: int


class ValueStreamOut(BaseModel):
    """A value stream with the counts of the work items in its scope."""

    id: str
    name: str
    stream_type: str
    work_items: int
    in_progress: int
    done: int
    stages: list[str]


def quiet_garbage_collector() -> None:
    """For a serving process, once the app is built: keep the collector's pauses out of request latency.
    What startup built (modules, the app, its routes) is frozen out of every later collection, and the
    youngest generation is collected after 50 000 allocations rather than 700 (a request allocates a
    few thousand objects). Measured: webhook p99 at 500/s halved (docs/performance.md)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def create_app(store: Store, config: ObeyaConfig | None = None, stale_after: float | None = None) -> FastAPI:
    """The application, serving from `store` (opened and migrated by the caller, closed on shutdown);
    `config` gives the webhook secrets' variables, the mapping rules and the sync schedule (defaults —
    no schedule — without it). `stale_after`: how long a request waits for figures being recomputed
    before it is answered with the previous ones, marked stale (`obeya.api.figure_cache`; None: always
    waits)."""
    if config is not None:
        apply_value_streams(store, config)  # obeya.yaml's value streams and their scopes
    config = config or ObeyaConfig()
    scheduler = SyncScheduler(
        store,
        config.sync,
        config.connections,
        config.rules.mapping_rules(),
        linking=config.linking.linking_rules(),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        scheduler.start()
        yield
        scheduler.stop()
        store.close()

    app = FastAPI(
        title="Obeya",
        version=__version__,
        description="Value stream management: flow, DORA and the value stream map from your toolchain.",
        lifespan=lifespan,
    )

    app.state.store = store
    app.state.config = config
    app.state.sync_scheduler = scheduler
    app.state.figure_cache = FigureCache(store, stale_after=stale_after)
    app.add_middleware(FigureCacheMiddleware, cache=app.state.figure_cache)
    for router in (*ROUTERS, sync_status_router):
        app.include_router(router)
    app.include_router(
        webhooks_router(
            config.webhooks,
            config.rules.mapping_rules(),
            config.linking.linking_rules(),
            connections=config.connections,
        )
    )

    @app.get("/api/v1/health", tags=["service"])
    def health(s: StoreDep) -> Health:
        """Liveness and the store's schema version."""
        version = s.schema_version()
        return Health(
            status="ok" if version == LATEST_VERSION else "schema-outdated",
            version=__version__,
            database=s.dialect,
            schema_version=version,
            latest_schema_version=LATEST_VERSION,
        )

    @app.get("/api/v1/value-streams", tags=["portfolio"])
    def list_value_streams(s: StoreDep) -> list[ValueStreamOut]:
        """Every value stream with its stages and the counts of its work items."""
        return [ValueStreamOut(**vars(v)) for v in value_stream_summaries(s)]

    @app.get("/api/v1/value-streams/{stream_id}", tags=["portfolio"])
    def get_value_stream(stream_id: str, s: StoreDep) -> ValueStreamOut:
        """One value stream by id (e.g. ``demo:payments``)."""
        for summary in value_stream_summaries(s):
            if summary.id == stream_id:
                return ValueStreamOut(**vars(summary))
        raise HTTPException(status_code=404, detail=f"no value stream with id {stream_id!r}")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def landing(request: Request, s: StoreDep) -> HTMLResponse:
        return _TEMPLATES.TemplateResponse(
            request, "landing.html", {"streams": value_stream_summaries(s), "version": __version__}
        )

    return app
