"""The REST API v1 routers, one module per area; `create_app` includes every router in `ROUTERS`."""

from fastapi import APIRouter

from obeya.api.routes import evidence, insights, metrics, trace, vsm

ROUTERS: list[APIRouter] = [metrics.router, evidence.router, vsm.router, trace.router, insights.router]

__all__ = ["ROUTERS"]
