"""How a gRPC call is let in and how it fails: bearer metadata → Actor, Phoenix errors → status codes.

The status code is gRPC's; the stable code of REST's problem ``type`` (``core.api.problems``)
travels in the trailing metadata ``phoenix-problem-type``, so a client tells a stale version
from a state that forbids the change without parsing messages. A validation error also sends
its sentences as ``phoenix-problems-bin`` (a UTF-8 JSON list: metadata text must be ASCII).
Anything that is not a Phoenix error is a bug: logged here with its traceback, answered
INTERNAL with a message that says nothing more.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
from collections.abc import Callable, Iterator
from typing import NoReturn, TypeVar

import grpc
from opentelemetry.trace import SpanKind

from core.api.limits import TokenBucket
from core.api.problems import ERROR_MAP, RETRY_AFTER_TEMPORARY_S
from core.api.security import Tokens, actor_for
from core.domain.accounts import Actor
from core.domain.errors import AuthenticationError, PhoenixError, TemporaryError, ValidationError
from core.observability.context import correlation, correlation_id, new_id, sane_id
from core.observability.tracing import span
from core.services.accounts import AccountService

log = logging.getLogger(__name__)

PROBLEM_TYPE_KEY = "phoenix-problem-type"
PROBLEMS_KEY = "phoenix-problems-bin"
RETRY_AFTER_KEY = "retry-after"
#: The call's correlation id: taken from the client's metadata when sane, sent back in the initial metadata.
REQUEST_ID_KEY = "x-request-id"
INTERNAL_MESSAGE = "the server failed to answer this call; it has been logged"

#: REST's stable problem code → the gRPC status that means the same.
STATUS_OF: dict[str, grpc.StatusCode] = {
    "validation": grpc.StatusCode.INVALID_ARGUMENT,
    "not-found": grpc.StatusCode.NOT_FOUND,
    "forbidden": grpc.StatusCode.PERMISSION_DENIED,
    "share-link": grpc.StatusCode.PERMISSION_DENIED,
    "unauthenticated": grpc.StatusCode.UNAUTHENTICATED,
    # the caller must read again before retrying (gRPC's FAILED_PRECONDITION), or the state
    # does not allow the change at all
    "precondition-failed": grpc.StatusCode.FAILED_PRECONDITION,
    "precondition-required": grpc.StatusCode.FAILED_PRECONDITION,
    "invalid-transition": grpc.StatusCode.FAILED_PRECONDITION,
    "refused": grpc.StatusCode.FAILED_PRECONDITION,
    # a concurrent change or a request_id reused with another request: retry at a higher level
    "conflict": grpc.StatusCode.ABORTED,
    "unavailable": grpc.StatusCode.UNAVAILABLE,
    "rate-limited": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "internal": grpc.StatusCode.INTERNAL,
}


class RateLimited(PhoenixError):
    """Over the call budget of this peer or credential, or too many watches at once."""

    def __init__(self, wait_s: float, message: str = "too many calls; slow down and retry after the time "
                                                   "in 'retry-after'"):
        self.retry_after_s = wait_s
        super().__init__(message)


def problem_code(exc: PhoenixError) -> str:
    """The stable code REST answers with for ``exc`` (its first ``ERROR_MAP`` match)."""
    if isinstance(exc, RateLimited):
        return "rate-limited"
    return next((code for kind, _, code in ERROR_MAP if isinstance(exc, kind)), "refused")


def trailers(exc: PhoenixError, code: str) -> list[tuple[str, str | bytes]]:
    out: list[tuple[str, str | bytes]] = [(PROBLEM_TYPE_KEY, code)]
    if isinstance(exc, ValidationError):
        out.append((PROBLEMS_KEY, json.dumps(exc.problems, ensure_ascii=False).encode()))
    retry = getattr(exc, "retry_after_s", None)
    if isinstance(exc, TemporaryError):
        retry = RETRY_AFTER_TEMPORARY_S
    if retry is not None:
        out.append((RETRY_AFTER_KEY, str(max(1, math.ceil(retry)))))
    return out


Servicer = TypeVar("Servicer")
Request = TypeVar("Request")
Reply = TypeVar("Reply")
Handler = Callable[[Servicer, Request, grpc.ServicerContext], Reply]


def _fail(context: grpc.ServicerContext, exc: Exception, where: str) -> NoReturn:
    if isinstance(exc, PhoenixError):
        code = problem_code(exc)
        context.set_trailing_metadata(trailers(exc, code))
        context.abort(STATUS_OF[code], str(exc))
    log.error("unhandled error in gRPC %s", where, exc_info=exc)
    context.set_trailing_metadata([(PROBLEM_TYPE_KEY, "internal"), (REQUEST_ID_KEY, correlation_id() or "")])
    context.abort(grpc.StatusCode.INTERNAL, f"{INTERNAL_MESSAGE} with reference {correlation_id()}")


def _call_id(context: grpc.ServicerContext) -> str:
    """The client's ``x-request-id`` when sane, else a new one; sent back before the reply."""
    given = next((v for k, v in context.invocation_metadata() or () if k == REQUEST_ID_KEY), None)
    cid = sane_id(given if isinstance(given, str) else None) or new_id()
    context.send_initial_metadata(((REQUEST_ID_KEY, cid),))
    return cid


def rpc(method: Handler[Servicer, Request, Reply]) -> Handler[Servicer, Request, Reply]:
    """Wrap a unary servicer method: a Phoenix error becomes its status; anything else INTERNAL, logged."""

    @functools.wraps(method)
    def call(self: Servicer, request: Request, context: grpc.ServicerContext) -> Reply:
        with correlation(_call_id(context)), span(f"grpc {method.__qualname__}", kind=SpanKind.SERVER):
            try:
                return method(self, request, context)
            except Exception as exc:  # noqa: BLE001 - every failure gets a status; _fail logs the unexpected
                _fail(context, exc, method.__qualname__)

    return call


def rpc_stream(method: Handler[Servicer, Request, Iterator[Reply]]) -> Handler[Servicer, Request, Iterator[Reply]]:
    """``rpc`` for a server-streaming method: errors raised while it streams end the stream the same way."""

    @functools.wraps(method)
    def call(self: Servicer, request: Request, context: grpc.ServicerContext) -> Iterator[Reply]:
        with correlation(_call_id(context)), span(f"grpc {method.__qualname__}", kind=SpanKind.SERVER):
            try:
                yield from method(self, request, context)
            except Exception as exc:  # noqa: BLE001 - as in rpc
                _fail(context, exc, method.__qualname__)

    return call


class Authenticator:
    """The Actor of a call from its ``authorization: Bearer <token>`` metadata (source ``grpc``)."""

    def __init__(self, accounts: AccountService, tokens: Tokens,
                 limits: tuple[TokenBucket, TokenBucket] | None = None):
        self.accounts = accounts
        self.tokens = tokens
        self.limits = limits  # (per peer address, per credential), as REST's RateLimit; None: unlimited

    def actor(self, context: grpc.ServicerContext) -> Actor:
        metadata = {key: value for key, value in context.invocation_metadata() if isinstance(value, str)}
        scheme, _, credential = metadata.get("authorization", "").partition(" ")
        credential = credential.strip()
        if self.limits is not None:
            per_peer, per_credential = self.limits
            wait = per_peer.take("ip:" + _peer_host(context.peer()))
            if credential and not wait:  # kept by hash: a bucket key is no place for a secret
                wait = per_credential.take("tok:" + hashlib.sha256(credential.encode()).hexdigest())
            if wait > 0:
                raise RateLimited(wait)
        if scheme.lower() != "bearer" or not credential:
            raise AuthenticationError("sign in: send the metadata 'authorization: Bearer <token>' (an access token "
                                      "from POST /api/v1/auth/token, or an API token from 'phoenix token create')")
        return actor_for(self.accounts, self.tokens, credential, "grpc")


def _peer_host(peer: str) -> str:
    """``ipv4:127.0.0.1:5123`` → ``ipv4:127.0.0.1`` (the port changes with every connection)."""
    return peer.rsplit(":", 1)[0] if peer.startswith(("ipv4:", "ipv6:")) else peer
