"""gRPC calls counted and timed by method and status code (``MetricsInterceptor``) on a real server."""

from __future__ import annotations

import grpc
from prometheus_client import REGISTRY

from core.api.grpc_gen.phoenix.v1 import experiments_pb2 as xpb
from tests.integration.test_grpc import World, code_of, world  # noqa: F401 - world is the fixture

GET = "/phoenix.v1.ExperimentService/GetExperiment"
WATCH = "/phoenix.v1.ExperimentService/WatchExperiment"


def calls(method: str, code: str) -> float:
    return REGISTRY.get_sample_value("phoenix_grpc_requests_total", {"method": method, "code": code}) or 0.0


def timed(method: str) -> float:
    return REGISTRY.get_sample_value("phoenix_grpc_request_seconds_count", {"method": method}) or 0.0


def test_unary_calls_by_method_and_code(world: World) -> None:  # noqa: F811
    viewer = world.auth("viewer")
    exp = world.pending()
    ok, missing, unauth, n = calls(GET, "OK"), calls(GET, "NOT_FOUND"), calls(GET, "UNAUTHENTICATED"), timed(GET)
    world.experiments.GetExperiment(xpb.GetExperimentRequest(id=exp.id), metadata=viewer)
    assert code_of(lambda: world.experiments.GetExperiment(xpb.GetExperimentRequest(id="missing"),
                                                           metadata=viewer))[0] is grpc.StatusCode.NOT_FOUND
    assert code_of(lambda: world.experiments.GetExperiment(xpb.GetExperimentRequest(id=exp.id))
                   )[0] is grpc.StatusCode.UNAUTHENTICATED
    assert (calls(GET, "OK"), calls(GET, "NOT_FOUND"), calls(GET, "UNAUTHENTICATED")) == (ok + 1, missing + 1, unauth + 1)
    assert timed(GET) == n + 3


def test_a_server_stream_is_counted_when_it_ends(world: World) -> None:  # noqa: F811
    exp = world.finished()  # terminal: the watch sends what happened and ends
    ok, n = calls(WATCH, "OK"), timed(WATCH)
    events = list(world.experiments.WatchExperiment(xpb.WatchExperimentRequest(id=exp.id),
                                                    metadata=world.auth("viewer"), timeout=20))
    assert events
    assert calls(WATCH, "OK") == ok + 1 and timed(WATCH) == n + 1
