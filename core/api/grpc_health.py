"""The standard gRPC health service (``grpc.health.v1.Health``: Check and Watch).

Served from Phoenix's own stubs (``proto/grpc/health/v1/health.proto``), so what users
install stays what ``requirements.txt`` names. Semantics of the protocol
(grpc/grpc doc/health-checking.md):

- ``Check`` answers the status set for a service, or ``NOT_FOUND`` for one never set;
- ``Watch`` sends the current status at once (``SERVICE_UNKNOWN`` for one never set), then
  every change, until the client leaves or the server shuts down;
- ``enter_graceful_shutdown`` turns every service ``NOT_SERVING`` and freezes them there.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc

from core.api.grpc_gen.grpc.health.v1 import health_pb2, health_pb2_grpc

Status = health_pb2.HealthCheckResponse.ServingStatus
SERVING: Status = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING: Status = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN: Status = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
#: How often a Watch re-checks that its client is still there while nothing changes.
WATCH_RECHECK_S = 1.0


class HealthServicer(health_pb2_grpc.HealthServicer):
    def __init__(self) -> None:
        self._status: dict[str, Status] = {}
        self._changed = threading.Condition()
        self._shutting_down = False

    def set(self, service: str, status: Status) -> None:
        with self._changed:
            if self._shutting_down:
                return  # after shutdown began, everything stays NOT_SERVING
            self._status[service] = status
            self._changed.notify_all()

    def enter_graceful_shutdown(self) -> None:
        with self._changed:
            self._status = dict.fromkeys(self._status, NOT_SERVING)
            self._shutting_down = True
            self._changed.notify_all()

    def Check(self, request: health_pb2.HealthCheckRequest,  # noqa: N802 - the protocol's name
              context: grpc.ServicerContext) -> health_pb2.HealthCheckResponse:
        with self._changed:
            status = self._status.get(request.service)
        if status is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return health_pb2.HealthCheckResponse(status=status)

    def Watch(self, request: health_pb2.HealthCheckRequest,  # noqa: N802 - the protocol's name
              context: grpc.ServicerContext) -> Iterator[health_pb2.HealthCheckResponse]:
        sent: Status | None = None
        while context.is_active():
            with self._changed:
                status = self._status.get(request.service, SERVICE_UNKNOWN)
                if status == sent:
                    if self._shutting_down:
                        return  # NOT_SERVING was sent; nothing will change any more
                    self._changed.wait(WATCH_RECHECK_S)
                    continue
            sent = status
            yield health_pb2.HealthCheckResponse(status=status)
