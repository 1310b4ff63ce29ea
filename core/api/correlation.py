"""Every REST request gets a correlation id and a server span; the id comes back in ``X-Request-ID``.

Pure ASGI middleware (as in ``core.api.limits``), outermost of Phoenix's, so the rate limits,
the body limit and every route log under the id. A client's ``X-Request-ID`` is kept when it
is a sane token (≤ 64 of ``[A-Za-z0-9._-]``); otherwise the server makes one. The id is also
left in the ASGI scope (``SCOPE_KEY``): Starlette answers an unexpected exception outside all
middleware, and that handler (``core.api.problems``) logs and answers under the same id.
"""

from __future__ import annotations

import logging
import time

from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.observability.context import correlation, new_id, sane_id
from core.observability.tracing import span

HEADER = "X-Request-ID"
SCOPE_KEY = "phoenix.correlation_id"

log = logging.getLogger("core.api.access")


def _request_id(scope: Scope) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"x-request-id":
            return sane_id(value.decode("latin-1"))
    return None


class RequestContext:
    """Bind the request's correlation id, trace it as a server span named by its route template."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cid = _request_id(scope) or new_id()
        scope[SCOPE_KEY] = cid
        method = scope.get("method", "GET")
        status = 0
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, (b"x-request-id", cid.encode())]}
            await send(message)

        with correlation(cid), span(f"{method}", kind=SpanKind.SERVER, **{
                "http.request.method": method, "url.path": scope.get("path", "")}) as server:
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                route = getattr(scope.get("route"), "path", None)  # set by the router once it matched
                # the request's own line (uvicorn's access line runs outside the request and lacks its id)
                log.info("%s %s %s", method, route or "unmatched", status or "-",
                         extra={"http_method": method, "http_route": route, "http_status": status or None,
                                "client": (scope.get("client") or ("",))[0] or None,
                                "duration_ms": round((time.perf_counter() - started) * 1000, 1)})
                if server.is_recording():
                    if route:
                        server.update_name(f"{method} {route}")
                        server.set_attribute("http.route", route)
                    if status:
                        server.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        server.set_status(Status(StatusCode.ERROR))
