"""Guards in front of every route: request counts and latency, rate limits, body size.

Pure ASGI middleware (not ``BaseHTTPMiddleware``) so a refused body is never read into
memory and streaming answers stay streaming. Rate limits are in-process token buckets, one
per client IP and one per bearer credential: several API processes each keep their own.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.api.problems import MEDIA_TYPE, TYPE_PREFIX
from core.observability.metrics import API_LATENCY, API_REQUESTS

MAX_BUCKETS = 10_000  # bounded: a flood of addresses or tokens cannot grow memory without end


class TokenBucket:
    """``rate`` requests a second on average, bursts up to ``burst``, per key."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 when a request may go ahead; otherwise seconds until one may."""
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            wait = 0.0
            if tokens >= 1:
                tokens -= 1
            else:
                wait = (1 - tokens) / self.rate
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
        return wait


async def _send_problem(send: Send, status: int, code: str, title: str, detail: str,
                        headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"type": TYPE_PREFIX + code, "title": title, "status": status,
                       "detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class RateLimit:
    """429 with Retry-After when the caller's IP or credential is over its budget."""

    def __init__(self, app: ASGIApp, per_ip: TokenBucket, per_token: TokenBucket, exempt: tuple[str, ...] = ()):
        self.app, self.per_ip, self.per_token, self.exempt = app, per_ip, per_token, exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        wait = self.per_ip.take(f"ip:{client[0] if client else '?'}")
        auth = _header(scope, b"authorization")
        if auth and not wait:
            # keyed by a hash: the bucket table never holds a credential
            wait = self.per_token.take("tok:" + hashlib.sha256(auth.encode()).hexdigest())
        if wait:
            await _send_problem(send, 429, "rate-limited", "Too many requests",
                                f"slow down: try again in {math.ceil(wait)} s",
                                [(b"retry-after", str(max(1, math.ceil(wait))).encode())])
            return
        await self.app(scope, receive, send)


class BodyLimit:
    """413 for a body larger than ``max_bytes``, by Content-Length or while it streams in.

    ``per_path`` gives a few exact paths their own limit (a snapshot upload is larger than
    any JSON body)."""

    def __init__(self, app: ASGIApp, max_bytes: int, per_path: Mapping[str, int] | None = None):
        self.app, self.default_max, self.per_path = app, max_bytes, dict(per_path or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.per_path.get(scope["path"], self.default_max)
        too_large = f"the request body is larger than {max_bytes} bytes"
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > max_bytes:
            await _send_problem(send, 413, "too-large", "Request body too large", too_large)
            return
        seen = 0
        over = False  # the body went past the limit: whatever the app answers becomes a 413
        started = False

        async def guarded_receive() -> Message:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_bytes:
                    over = True
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over:
                return  # e.g. the framework's "error parsing the body" 400: replaced below
            started = started or message["type"] == "http.response.start"
            await send(message)

        with contextlib.suppress(_TooLarge):  # the app may also have caught it (and answered 400)
            await self.app(scope, guarded_receive, guarded_send)
        if over and not started:
            await _send_problem(send, 413, "too-large", "Request body too large", too_large)


class _TooLarge(Exception):
    pass


class Metrics:
    """Request counts and latency by route template (never the raw path: ids would explode labels).

    The instruments are the process-wide ones of ``core.observability.metrics``
    (``phoenix_api_requests_total``, ``phoenix_api_request_seconds``): every app of the
    process adds to them and ``/metrics`` serves them with the scheduler's and the rest.
    """

    def __init__(self, app: ASGIApp):
        self.app = app
        self.requests = API_REQUESTS
        self.latency = API_LATENCY

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = [500]

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, tracking_send)
        finally:
            route: Any = scope.get("route")
            name = getattr(route, "path", None) or "unmatched"
            self.requests.labels(scope["method"], name, str(status[0])).inc()
            self.latency.labels(scope["method"], name).observe(time.perf_counter() - started)
