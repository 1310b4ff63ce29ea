"""RFC 9457 ``application/problem+json`` answers with stable ``type`` codes.

Every Phoenix error maps to one status and one code; anything else is a 500 whose body says
only that, so a traceback, a SQL statement or a secret never reaches a client.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from core.api.correlation import HEADER, SCOPE_KEY
from core.domain.errors import (
    AuthenticationError,
    ConcurrencyError,
    InvalidTransitionError,
    NotFoundError,
    PermanentError,
    PermissionDenied,
    PhoenixError,
    ShareLinkError,
    TemporaryError,
    ValidationError,
)
from core.observability.context import correlation, correlation_id
from core.services.experiments import StaleVersion
from core.services.settings import StaleSetting

log = logging.getLogger(__name__)


class PreconditionFailed(ConcurrencyError):
    """If-Match named another version than the current one."""


class PreconditionRequired(ConcurrencyError):
    """A change that needs If-Match came without it."""


MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:phoenix:problem:"
RETRY_AFTER_TEMPORARY_S = 5

#: Phoenix error → (status, stable code). Order matters: the first ``isinstance`` match wins.
ERROR_MAP: tuple[tuple[type[PhoenixError], int, str], ...] = (
    (ValidationError, 422, "validation"),
    (NotFoundError, 404, "not-found"),
    (PermissionDenied, 403, "forbidden"),
    (AuthenticationError, 401, "unauthenticated"),
    (PreconditionFailed, 412, "precondition-failed"),
    (StaleVersion, 412, "precondition-failed"),  # If-Match checked where the change is saved
    (StaleSetting, 412, "precondition-failed"),
    (PreconditionRequired, 428, "precondition-required"),
    (ConcurrencyError, 409, "conflict"),
    (InvalidTransitionError, 409, "invalid-transition"),
    (ShareLinkError, 403, "share-link"),
    (TemporaryError, 503, "unavailable"),
    (PermanentError, 409, "refused"),
)

#: Codes for answers the API itself gives (not from a service error).
HTTP_CODES = {400: "bad-request", 401: "unauthenticated", 403: "forbidden", 404: "not-found",
              405: "method-not-allowed", 409: "conflict", 412: "precondition-failed",
              413: "too-large", 415: "unsupported-media-type", 422: "validation",
              428: "precondition-required", 429: "rate-limited", 500: "internal", 503: "unavailable"}

TITLES = {"validation": "The request is not valid", "not-found": "Not found", "forbidden": "Not allowed",
          "unauthenticated": "Sign-in required", "conflict": "Conflict",
          "invalid-transition": "Not possible in the current state", "share-link": "Share link refused",
          "unavailable": "Temporarily unavailable", "refused": "Refused",
          "precondition-failed": "The resource changed", "precondition-required": "If-Match required",
          "too-large": "Request body too large", "rate-limited": "Too many requests",
          "internal": "Internal error"}


def problem(status: int, code: str, detail: str, *, headers: dict[str, str] | None = None,
            **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": TYPE_PREFIX + code, "title": TITLES.get(code, code.replace("-", " ")),
                            "status": status, "detail": detail, **extra}
    cid = correlation_id()
    if status >= 500 and cid and "reference" not in body:
        # the id the server's log lines carry (X-Request-ID): what a client quotes in a report
        body["reference"] = cid
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def from_error(exc: PhoenixError) -> JSONResponse:
    status, code = next(((s, c) for kind, s, c in ERROR_MAP if isinstance(exc, kind)), (400, "bad-request"))
    headers: dict[str, str] = {}
    extra: dict[str, Any] = {}
    if isinstance(exc, ValidationError):
        extra["problems"] = exc.problems
    if isinstance(exc, AuthenticationError):
        headers["WWW-Authenticate"] = 'Bearer realm="phoenix"'
        if exc.retry_after_s is not None:
            headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
    if isinstance(exc, TemporaryError):
        headers["Retry-After"] = str(RETRY_AFTER_TEMPORARY_S)
    return problem(status, code, str(exc), headers=headers or None, **extra)


def _pydantic_problem(err: dict[str, Any]) -> str:
    loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
    return f"{'.'.join(loc) or 'request'}: {err.get('msg', 'is not valid')}"


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers on this request's path."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json."""

    @app.exception_handler(PhoenixError)
    async def _phoenix(request: Request, exc: PhoenixError) -> JSONResponse:
        return from_error(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [_pydantic_problem(dict(e)) for e in exc.errors()]
        return problem(422, "validation", "; ".join(problems), problems=problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # the router names one route's methods; a path may have several
            headers["Allow"] = ", ".join(allowed_methods(request))
        return problem(exc.status_code, code, str(exc.detail), headers=headers or None)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Starlette calls this outside every middleware, after the request's binding ended:
        # bind its id again (RequestContext left it in the scope), so the logged traceback and
        # the answer's reference are the same id.
        with correlation(request.scope.get(SCOPE_KEY)) as cid:
            # logged here with the traceback; the client only learns that it failed, and its reference
            log.exception("unhandled error on %s %s", request.method, request.url.path)
            return problem(500, "internal", f"the server failed to answer this request; it has been logged "
                           f"with reference {cid}", headers={HEADER: cid})
