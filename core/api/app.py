"""``create_app(services)``: the FastAPI application over one wired ``Services``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from core.api import events, openapi, problems, routes
from core.api.correlation import RequestContext
from core.api.idempotency_redis import idempotency_for
from core.api.limits import BodyLimit, Metrics, RateLimit, TokenBucket
from core.api.paging import Cursors
from core.api.routes.pipelines import ESTIMATE_PATH, RECOMMEND_PATH, SNAPSHOT_MAX_BYTES
from core.api.schemas import Problem
from core.api.security import Tokens
from core.bootstrap import Services
from core.domain.accounts import Actor, Role
from core.services.secret import server_secret

CORS_ENV = "PHOENIX_API_CORS_ORIGINS"
MAX_BODY_BYTES = 1 << 20  # 1 MiB: the largest pipeline JSON is a few KiB
RATE_PER_S = 20.0
BURST = 60
#: Probes answer without a sign-in, so these stay outside the rate limits too.
OPEN_PATHS = ("/healthz", "/readyz", "/metrics")
#: Who the readiness probe reads the database as (a read, never audited).
PROBE = Actor("api-probe", Role.VIEWER, "api")


def cors_origins(env: Mapping[str, str]) -> list[str]:
    """Closed unless ``PHOENIX_API_CORS_ORIGINS`` lists origins (comma-separated)."""
    return [o.strip() for o in env.get(CORS_ENV, "").split(",") if o.strip()]


def create_app(services: Services, *, rate_per_s: float = RATE_PER_S, burst: int = BURST,
               max_body_bytes: int = MAX_BODY_BYTES, env: Mapping[str, str] | None = None,
               stream_lifetime_s: float = events.LIFETIME_S) -> FastAPI:
    env = os.environ if env is None else env
    app = FastAPI(title="Phoenix API", version="1", description="Experiments and pipelines of Phoenix "
                  "(docs/api.md). Errors are RFC 9457 problem+json.")
    app.state.services = services
    secret = server_secret(services.settings, env)
    app.state.tokens = Tokens(secret)
    app.state.cursors = Cursors(secret)
    app.state.idempotency = idempotency_for(services.settings.redis_url)
    app.openapi = lambda: openapi.document(app)  # type: ignore[method-assign]
    problems.install(app)
    app.include_router(routes.router)
    app.include_router(events.router)
    app.state.event_streams = events.StreamGate(lifetime_s=stream_lifetime_s)  # open SSE streams: their threads, their cap, shutdown

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """The process answers (liveness)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"],
             responses={503: {"model": Problem, "description": "not ready: `failing` names the checks that failed"}})
    def readyz(request: Request) -> Any:
        """Ready when the database answers, Redis answers (when configured) and, when
        ``PHOENIX_READYZ_REQUIRE_SCHEDULER`` is on, a scheduler beat recently (docs/api.md)."""
        result = request.app.state.services.system.readiness(PROBE)
        if not result.ready:
            problems.log.warning("readiness: %s", "; ".join(f"{k}: {result.checks[k]}" for k in result.failing))
            return problems.problem(503, "unavailable", "not ready: " + "; ".join(
                f"{k}: {result.checks[k]}" for k in result.failing), failing=result.failing, checks=result.checks,
                headers={"Retry-After": str(problems.RETRY_AFTER_TEMPORARY_S)})
        return {"status": "ready", "checks": result.checks}

    @app.get("/metrics", tags=["operations"], response_class=Response,
             responses={200: {"description": "Prometheus text exposition",
                              "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}})
    def metrics() -> Response:
        """Phoenix's own metrics: the whole process registry (this API, its embedded scheduler,
        the database-reading collectors of ``core.services.metrics``); docs/observability.md."""
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    # Added innermost first: Metrics sees every answer, including 413 and 429.
    origins = cors_origins(env)
    if origins:
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["*"],
                           allow_headers=["Authorization", "Content-Type", "If-Match", "Idempotency-Key"],
                           expose_headers=["ETag", "Location", "Retry-After"])
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes,
                       per_path={path: max(max_body_bytes, SNAPSHOT_MAX_BYTES) for path in (ESTIMATE_PATH, RECOMMEND_PATH)})
    app.add_middleware(RateLimit, per_ip=TokenBucket(rate_per_s, burst), per_token=TokenBucket(rate_per_s, burst),
                       exempt=OPEN_PATHS)
    app.add_middleware(Metrics)
    app.add_middleware(RequestContext)  # outermost: everything above logs and traces under the request's id
    return app
