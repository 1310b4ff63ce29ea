"""The gRPC API: ``phoenix.v1.ExperimentService`` and ``PipelineService`` over the same services as REST.

Servicers hold no rules of their own, exactly like the REST routes: each parses the message,
calls one service method with the Actor of the call's ``authorization`` metadata (source
``grpc``, so the audit log tells the two apart) and shapes the answer. Errors map to status
codes in ``core.api.grpc_problems``. The stubs are generated at build time from ``proto/``
(``core.api.grpc_build``). See docs/api.md, "gRPC".
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc

from core.api import grpc_messages as msg
from core.api.grpc_gen.grpc.health.v1 import health_pb2_grpc
from core.api.grpc_gen.phoenix.v1 import experiments_pb2 as xpb
from core.api.grpc_gen.phoenix.v1 import experiments_pb2_grpc as xrpc
from core.api.grpc_gen.phoenix.v1 import pipelines_pb2 as ppb
from core.api.grpc_gen.phoenix.v1 import pipelines_pb2_grpc as prpc
from core.api.grpc_health import SERVING, HealthServicer
from core.api.grpc_problems import Authenticator, RateLimited, rpc, rpc_stream
from core.api.idempotency import IdempotencyKeys
from core.api.idempotency_redis import idempotency_for
from core.api.limits import TokenBucket
from core.api.paging import Cursors
from core.api.problems import PreconditionRequired
from core.api.security import Tokens
from core.bootstrap import Services
from core.domain.errors import ValidationError
from core.observability.metrics import GRPC_LATENCY, GRPC_REQUESTS
from core.services.requests import CancelExperiment, Promote, RerunExperiment, SavePipelineVersion
from core.services.secret import server_secret

log = logging.getLogger(__name__)

DEFAULT_GRPC_PORT = 50051
MAX_MESSAGE_BYTES = 1 << 20  # as REST's body limit: the largest pipeline JSON is a few KiB
WORKERS = 8
RATE_PER_S = 20.0
BURST = 60
DEFAULT_PAGE = 50
MAX_PAGE = 500
SERVICE_NAMES = ("phoenix.v1.ExperimentService", "phoenix.v1.PipelineService")
#: WatchExperiment reads the experiment this often, and holds a worker thread while it streams:
#: a few at once leave the other workers to the unary calls.
WATCH_POLL_S = 1.0
MAX_WATCHES = WORKERS // 2


class Watches:
    """At most ``limit`` WatchExperiment streams at once in this server."""

    def __init__(self, limit: int, poll_s: float):
        self.poll_s = poll_s
        self._slots = threading.BoundedSemaphore(limit)

    def __enter__(self) -> Watches:
        if not self._slots.acquire(blocking=False):
            raise RateLimited(self.poll_s * 10, "too many experiments are being watched on this server; "
                                                "retry later, or poll GetExperiment")
        return self

    def __exit__(self, *exc: object) -> None:
        self._slots.release()


class ExperimentServicer(xrpc.ExperimentServiceServicer):
    def __init__(self, services: Services, auth: Authenticator, idempotency: IdempotencyKeys, watches: Watches,
                 cursors: Cursors):
        self.svc, self.auth, self.idempotency, self.watches = services, auth, idempotency, watches
        self.cursors = cursors  # the same signed keyset cursors as REST's next_cursor

    @rpc
    def ListExperiments(self, request: xpb.ListExperimentsRequest,
                        context: grpc.ServicerContext) -> xpb.ListExperimentsResponse:
        actor = self.auth.actor(context)
        size = request.page_size or DEFAULT_PAGE
        if not 1 <= size <= MAX_PAGE:
            raise ValidationError(f"page_size: 1 to {MAX_PAGE} (0 means {DEFAULT_PAGE}), got {size}")
        after = self.cursors.decode(request.page_token) if request.page_token else None
        page = self.svc.experiments.page(actor, states=list(request.states) or None, after=after, limit=size)
        return xpb.ListExperimentsResponse(
            experiments=[msg.summary(r) for r in page.items],
            next_page_token=self.cursors.encode(page.next_after) if page.next_after else "")

    @rpc
    def GetExperiment(self, request: xpb.GetExperimentRequest, context: grpc.ServicerContext) -> xpb.Experiment:
        return msg.experiment(self.svc.experiments.get(self.auth.actor(context), request.id))

    @rpc
    def CreateExperiment(self, request: xpb.CreateExperimentRequest,
                         context: grpc.ServicerContext) -> xpb.Experiment:
        actor = self.auth.actor(context)
        if not request.request_id:
            return msg.experiment(self.svc.experiments.create(actor, msg.create_request(request)))
        # the request without its id, serialized deterministically: "the same request"
        body = xpb.CreateExperimentRequest()
        body.CopyFrom(request)
        body.ClearField("request_id")
        digest = hashlib.sha256(body.SerializeToString(deterministic=True)).hexdigest()

        def create() -> dict[str, bytes]:
            created = msg.experiment(self.svc.experiments.create(actor, msg.create_request(request)))
            return {"message": created.SerializeToString()}

        answer = self.idempotency.run(actor.name, request.request_id, digest, create)
        return xpb.Experiment.FromString(answer["message"])

    @rpc
    def CancelExperiment(self, request: xpb.CancelExperimentRequest,
                         context: grpc.ServicerContext) -> xpb.Experiment:
        actor = self.auth.actor(context)
        if not request.HasField("expected_version"):
            raise PreconditionRequired("send expected_version: the version of the experiment you read")
        # checked in the unit of work that saves (StaleVersion → FAILED_PRECONDITION), as REST's If-Match
        return msg.experiment(self.svc.experiments.cancel(actor, CancelExperiment.of(
            experiment_id=request.id, reason=request.reason, expected_version=request.expected_version)))

    @rpc
    def RerunExperiment(self, request: xpb.RerunExperimentRequest, context: grpc.ServicerContext) -> xpb.Experiment:
        actor = self.auth.actor(context)
        return msg.experiment(self.svc.experiments.rerun(actor, RerunExperiment.of(experiment_id=request.id)))

    @rpc
    def PromoteExperiment(self, request: xpb.PromoteExperimentRequest,
                          context: grpc.ServicerContext) -> xpb.Promotion:
        actor = self.auth.actor(context)
        return msg.promotion(self.svc.promotion.promote(actor, Promote.of(
            experiment_id=request.id, force=request.force, reason=msg.optional(request, "reason"))))

    @rpc
    def ListSamples(self, request: xpb.ListSamplesRequest, context: grpc.ServicerContext) -> xpb.ListSamplesResponse:
        actor = self.auth.actor(context)
        self.svc.experiments.get(actor, request.id)  # NOT_FOUND for an unknown id rather than no samples
        return xpb.ListSamplesResponse(samples=[msg.sample(s) for s in self.svc.experiments.samples(actor, request.id)])

    @rpc_stream
    def WatchExperiment(self, request: xpb.WatchExperimentRequest,
                        context: grpc.ServicerContext) -> Iterator[xpb.Experiment]:
        actor = self.auth.actor(context)
        with self.watches, contextlib.closing(self.svc.experiments.watch(actor, request.id)) as news:
            seen = None
            while context.is_active():  # False once the caller cancels or the server stops
                exp = self.svc.experiments.get(actor, request.id)
                if exp.version != seen:
                    seen = exp.version
                    yield msg.experiment(exp)
                if exp.is_terminal:
                    return
                # woken at once by the event bus (Redis across processes); the poll covers a
                # scheduler in another process without Redis
                news.wait(self.watches.poll_s)


class PipelineServicer(prpc.PipelineServiceServicer):
    def __init__(self, services: Services, auth: Authenticator):
        self.svc, self.auth = services, auth

    @rpc
    def ListPipelines(self, request: ppb.ListPipelinesRequest,
                      context: grpc.ServicerContext) -> ppb.ListPipelinesResponse:
        rows = self.svc.pipelines.list_pipelines(self.auth.actor(context))
        return ppb.ListPipelinesResponse(pipelines=[msg.pipeline(r) for r in rows])

    @rpc
    def GetPipelineVersion(self, request: ppb.GetPipelineVersionRequest,
                           context: grpc.ServicerContext) -> ppb.PipelineVersion:
        actor = self.auth.actor(context)
        return msg.pipeline_version(self.svc.pipelines.version(actor, request.name, msg.optional(request, "number")))

    @rpc
    def SavePipelineVersion(self, request: ppb.SavePipelineVersionRequest,
                            context: grpc.ServicerContext) -> ppb.SavedVersion:
        actor = self.auth.actor(context)
        saved = self.svc.pipelines.save_version(actor, SavePipelineVersion.of(
            pipeline=msg.pipeline_of(request.pipeline_json), message=request.message,
            expected_version=msg.optional(request, "expected_version")))
        return ppb.SavedVersion(name=saved.name, number=saved.number, commit_id=saved.commit_id)

    @rpc
    def ValidatePipeline(self, request: ppb.ValidatePipelineRequest, context: grpc.ServicerContext) -> ppb.Validation:
        actor = self.auth.actor(context)
        problems = self.svc.pipelines.validate(actor, msg.pipeline_of(request.pipeline_json))
        return ppb.Validation(valid=not problems, problems=problems)

    @rpc
    def RenderPipeline(self, request: ppb.RenderPipelineRequest,
                       context: grpc.ServicerContext) -> ppb.RenderedPipeline:
        actor = self.auth.actor(context)
        source = request.WhichOneof("source")
        if source == "ref":
            pipeline = self.svc.pipelines.resolve(actor, request.ref)
        elif source == "pipeline_json":
            pipeline = msg.pipeline_of(request.pipeline_json)
        else:
            raise ValidationError("give ref (a template, NAME or NAME@VERSION) or pipeline_json")
        return msg.rendered(self.svc.pipelines.render(actor, pipeline))

    @rpc
    def ListTemplates(self, request: ppb.ListTemplatesRequest,
                      context: grpc.ServicerContext) -> ppb.ListTemplatesResponse:
        return ppb.ListTemplatesResponse(names=self.svc.pipelines.templates(self.auth.actor(context)))

    @rpc
    def GetTemplate(self, request: ppb.GetTemplateRequest, context: grpc.ServicerContext) -> ppb.Template:
        return msg.template(self.svc.pipelines.template(self.auth.actor(context), request.name))


def _code_name(context: grpc.ServicerContext, failed: bool) -> str:
    code = context.code()
    if code is None:
        return "UNKNOWN" if failed else "OK"
    return str(getattr(code, "name", code))


class MetricsInterceptor(grpc.ServerInterceptor):
    """``phoenix_grpc_requests_total{method,code}`` and ``phoenix_grpc_request_seconds{method}``.

    ``method`` is the full registered method name (``/phoenix.v1.ExperimentService/GetExperiment``):
    a call to a method nobody registered is answered UNIMPLEMENTED by grpc and not counted, so
    the label stays bounded. A server stream (``WatchExperiment``) is timed until it ends.
    """

    def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        method = details.method
        if handler.unary_unary is not None:
            return handler._replace(unary_unary=self._unary(method, handler.unary_unary))
        if handler.unary_stream is not None:
            return handler._replace(unary_stream=self._stream(method, handler.unary_stream))
        if handler.stream_unary is not None:
            return handler._replace(stream_unary=self._unary(method, handler.stream_unary))
        if handler.stream_stream is not None:
            return handler._replace(stream_stream=self._stream(method, handler.stream_stream))
        return handler

    @staticmethod
    def _unary(method: str, behavior: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[..., Any]:
        def measured(request: Any, context: grpc.ServicerContext) -> Any:
            started, failed = time.perf_counter(), True
            try:
                answer = behavior(request, context)
                failed = False
                return answer
            finally:
                GRPC_LATENCY.labels(method).observe(time.perf_counter() - started)
                GRPC_REQUESTS.labels(method, _code_name(context, failed)).inc()

        return measured

    @staticmethod
    def _stream(method: str, behavior: Callable[[Any, grpc.ServicerContext], Iterator[Any]]) -> Callable[..., Any]:
        def measured(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            started, failed = time.perf_counter(), True
            try:
                yield from behavior(request, context)
                failed = False
            finally:  # also when the client goes away (GeneratorExit): cancelled, not failed
                GRPC_LATENCY.labels(method).observe(time.perf_counter() - started)
                code = "CANCELLED" if failed and not context.is_active() else _code_name(context, failed)
                GRPC_REQUESTS.labels(method, code).inc()

        return measured


@dataclass
class GrpcServer:
    """A started server, its health service, and the port it listens on (the chosen one for port 0)."""

    server: grpc.Server
    health: HealthServicer
    port: int

    def stop(self, grace_s: float = 5.0) -> None:
        """Say NOT_SERVING, refuse new calls, let running ones finish for ``grace_s``, cancel the rest."""
        self.health.enter_graceful_shutdown()
        self.server.stop(grace_s).wait()


def create_server(services: Services, *, env: Mapping[str, str] | None = None, workers: int = WORKERS,
                  rate_per_s: float = RATE_PER_S, burst: int = BURST, watch_poll_s: float = WATCH_POLL_S,
                  max_watches: int = MAX_WATCHES) -> tuple[grpc.Server, HealthServicer]:
    """A gRPC server with both services and the standard health service (not bound, not started)."""
    env = os.environ if env is None else env
    secret = server_secret(services.settings, env)
    auth = Authenticator(services.accounts, Tokens(secret),
                         (TokenBucket(rate_per_s, burst), TokenBucket(rate_per_s, burst)))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc"),
                         interceptors=[MetricsInterceptor()],
                         options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)])
    watches = Watches(max_watches, watch_poll_s)
    keys = idempotency_for(services.settings.redis_url)  # shared with REST's through Redis when configured
    xrpc.add_ExperimentServiceServicer_to_server(ExperimentServicer(services, auth, keys, watches, Cursors(secret)),
                                                 server)
    prpc.add_PipelineServiceServicer_to_server(PipelineServicer(services, auth), server)
    checks = HealthServicer()
    for name in ("", *SERVICE_NAMES):
        checks.set(name, SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(checks, server)
    return server, checks


def serve(services: Services, host: str, port: int, *, env: Mapping[str, str] | None = None,
          rate_per_s: float = RATE_PER_S, burst: int = BURST, watch_poll_s: float = WATCH_POLL_S,
          max_watches: int = MAX_WATCHES) -> GrpcServer:
    """Bind ``host:port`` (plaintext: put TLS in front, as for the REST API) and start serving."""
    server, checks = create_server(services, env=env, rate_per_s=rate_per_s, burst=burst,
                                   watch_poll_s=watch_poll_s, max_watches=max_watches)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:  # grpcio raises where older versions returned 0
        bound = 0
    if bound == 0:
        raise OSError(f"gRPC: cannot listen on {host}:{port} (in use, or not an address of this machine)")
    server.start()
    log.info("gRPC API listening on %s:%d", host, bound)
    return GrpcServer(server, checks, bound)
