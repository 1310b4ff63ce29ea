"""The ``/api/v1`` routes, one module per resource: parse, call one service method with the
Actor, shape the answer. ``permissions(app)`` reads back what each route declared."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from core.api.routes import admin, auth, experiments, pipelines, shares
from core.api.routes._common import PERMISSION_KEY, PUBLIC

PREFIX = "/api/v1"

router = APIRouter(prefix=PREFIX)
for module in (auth, experiments, pipelines, shares, admin):
    router.include_router(module.router)


def permissions(app: FastAPI) -> dict[tuple[str, str], str]:
    """``(method, path template)`` → the permission it needs (``"public"``) for every ``/api/v1`` route."""
    out: dict[tuple[str, str], str] = {}
    for route in app.routes:
        if isinstance(route, APIRoute) and route.path.startswith(PREFIX):
            for method in route.methods:
                out[(method, route.path)] = (route.openapi_extra or {}).get(PERMISSION_KEY, "")
    return out


__all__ = ["PREFIX", "PUBLIC", "permissions", "router"]
