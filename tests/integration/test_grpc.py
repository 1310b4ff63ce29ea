"""The gRPC API for real: a grpcio server on a free loopback port over the in-memory services,
called through the stubs generated from proto/: every RPC, the role matrix, the error mapping,
the audit source, and ``phoenix api`` serving gRPC beside REST."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from argon2 import PasswordHasher

from core.api import grpc_build
from core.api.grpc_gen.grpc.health.v1 import health_pb2, health_pb2_grpc
from core.api.grpc_gen.phoenix.v1 import experiments_pb2 as xpb
from core.api.grpc_gen.phoenix.v1 import experiments_pb2_grpc as xrpc
from core.api.grpc_gen.phoenix.v1 import pipelines_pb2 as ppb
from core.api.grpc_gen.phoenix.v1 import pipelines_pb2_grpc as prpc
from core.api.grpc_server import GrpcServer, serve
from core.api.security import Tokens
from core.bootstrap import bootstrap
from core.catalog.templates import TEMPLATE_NAMES, get_template
from core.domain.accounts import PERMISSIONS, Role
from core.domain.pipeline import Pipeline
from core.services.authz import declared
from core.services.experiments import ExperimentService
from core.services.pipelines import PipelineService
from core.services.promotion import PromotionService
from core.services.requests import CancelExperiment, SavePipelineVersion
from core.services.secret import server_secret
from core.settings import Settings
from tests.actors import ADMIN, add_account
from tests.conftest import free_port

PASSWORD = "correct horse battery"
ROLES = {"viewer": Role.VIEWER, "operator": Role.OPERATOR, "admin": Role.ADMIN}
NEW = {"name": "grpc run", "baseline": "process-baseline-v1", "candidate": "process-topk-v1",
       "duration_s": 30, "interval_s": 5}
UNLIMITED = {"rate_per_s": 1e6, "burst": 10**6}  # the role matrix makes many calls from one peer


def _pipeline_json(name: str) -> str:
    graph = get_template("process-topk-v1").to_dict()
    graph["name"] = name
    return json.dumps(graph)


@dataclass
class World:
    svc: Any
    server: GrpcServer
    channel: grpc.Channel
    tokens: dict[str, str]  # identity → bearer credential

    @property
    def experiments(self) -> xrpc.ExperimentServiceStub:
        return xrpc.ExperimentServiceStub(self.channel)

    @property
    def pipelines(self) -> prpc.PipelineServiceStub:
        return prpc.PipelineServiceStub(self.channel)

    def auth(self, identity: str) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.tokens[identity]}")]

    def pending(self) -> Any:
        return self.svc.experiments.create(ADMIN, **NEW)

    def finished(self, verdict: str = "PROMOTE") -> Any:
        eid = self.pending().id
        with self.svc.uow() as uow:
            e = uow.experiments.get(eid)
            e.start("test"), e.mark_running("test"), e.begin_analysis("test")
            e.complete({"verdict": verdict, "reasons": [], "series_reduction_pct": 10}, "test")
            uow.experiments.save(e)
            uow.commit()
        return self.svc.experiments.get(ADMIN, eid)


def _start(svc: Any, **options: float) -> GrpcServer:
    return serve(svc, "127.0.0.1", 0, env={}, **{"watch_poll_s": 0.05, **UNLIMITED, **options})  # type: ignore[arg-type]


@pytest.fixture
def world(memory_services: Any) -> Iterator[World]:
    svc = memory_services
    # real argon2id with cheap parameters, as tests/unit/test_api.py
    svc.accounts.hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    add_account(svc, ADMIN)
    for name, role in {**ROLES, "gone": Role.ADMIN}.items():
        svc.accounts.add_user(ADMIN, name, role, PASSWORD)
    svc.pipelines.save_version(ADMIN, SavePipelineVersion.of(pipeline=Pipeline.from_dict(json.loads(
        _pipeline_json("p"))), message="v1"))
    jwt = Tokens(server_secret(svc.settings, {}))
    tokens = {name: jwt.issue(name).access_token for name in ROLES}
    tokens["disabled account"] = jwt.issue("gone").access_token
    svc.accounts.disable(ADMIN, "gone")
    tokens["forged API token"] = "phx_forged"
    tokens["bad JWT"] = "not.a.jwt"
    server = _start(svc)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield World(svc, server, channel, tokens)
    finally:
        channel.close()
        server.stop(grace_s=0)


def code_of(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str, dict[str, Any]]:
    """The status, details and trailing metadata of a call that fails (the test fails if it succeeds)."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    err: Any = caught.value
    return err.code(), err.details(), dict(err.trailing_metadata() or ())


# ------------------------------------------------------------------ every RPC, as a role that may call it

def test_experiments_create_get_list_cancel_samples(world: World) -> None:
    op = world.auth("operator")
    exp = world.experiments.CreateExperiment(xpb.CreateExperimentRequest(
        name="over grpc", baseline="process-baseline-v1", candidate="process-topk-v1", duration_s=30,
        description="two\nlines", criteria_json=json.dumps({"min_series_reduction_pct": 20})), metadata=op)
    assert exp.state == "Pending" and exp.owner == "operator" and exp.duration_s == 30 and exp.interval_s == 5
    assert exp.description == "two\nlines" and not exp.HasField("verdict") and not exp.HasField("started_at")
    got = world.experiments.GetExperiment(xpb.GetExperimentRequest(id=exp.id), metadata=world.auth("viewer"))
    assert got.id == exp.id and got.version == exp.version and got.created_at.seconds > 0
    assert world.svc.experiments.get(ADMIN, exp.id).criteria.min_series_reduction_pct == 20
    listed = world.experiments.ListExperiments(xpb.ListExperimentsRequest(), metadata=world.auth("viewer"))
    assert [e.id for e in listed.experiments] == [exp.id] and listed.next_page_token == ""
    assert world.experiments.ListSamples(xpb.ListSamplesRequest(id=exp.id), metadata=op).samples == []
    done = world.experiments.CancelExperiment(xpb.CancelExperimentRequest(
        id=exp.id, expected_version=got.version, reason="enough"), metadata=op)
    assert done.state == "Cancelled" and done.version > got.version


def test_rerun_and_promote_a_finished_experiment(world: World) -> None:
    old = world.finished()
    again = world.experiments.RerunExperiment(xpb.RerunExperimentRequest(id=old.id), metadata=world.auth("operator"))
    assert again.name == "grpc run (re-run)" and again.state == "Pending" and again.id != old.id
    got = world.experiments.GetExperiment(xpb.GetExperimentRequest(id=old.id), metadata=world.auth("viewer"))
    assert got.verdict == "PROMOTE" and json.loads(got.result_json)["series_reduction_pct"] == 10
    promoted = world.experiments.PromoteExperiment(xpb.PromoteExperimentRequest(id=old.id),
                                                   metadata=world.auth("admin"))
    assert promoted.experiment_id == old.id and promoted.pipeline == "process-topk-v1" and promoted.actor == "admin"
    assert not promoted.forced and not promoted.HasField("version") and promoted.commit_id


def test_list_pages_by_token_and_filters_by_state(world: World) -> None:
    ids = [world.pending().id for _ in range(4)] + [world.finished().id]
    viewer = world.auth("viewer")
    seen: list[str] = []
    token = ""
    while True:
        page = world.experiments.ListExperiments(xpb.ListExperimentsRequest(page_size=2, page_token=token),
                                                 metadata=viewer)
        seen += [e.id for e in page.experiments]
        token = page.next_page_token
        if not token:
            break
    assert sorted(seen) == sorted(ids)
    done = world.experiments.ListExperiments(xpb.ListExperimentsRequest(states=["Completed"]), metadata=viewer)
    assert [e.id for e in done.experiments] == [ids[-1]] and done.experiments[0].verdict == "PROMOTE"
    for bad in (xpb.ListExperimentsRequest(page_size=501), xpb.ListExperimentsRequest(page_token="exp-nope")):
        code, details, trailers = code_of(lambda b=bad: world.experiments.ListExperiments(b, metadata=viewer))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and trailers["phoenix-problem-type"] == "validation"


def test_pipelines_list_get_save_validate_render_and_templates(world: World) -> None:
    viewer, op = world.auth("viewer"), world.auth("operator")
    saved = world.pipelines.SavePipelineVersion(ppb.SavePipelineVersionRequest(
        pipeline_json=_pipeline_json("mine"), message="first"), metadata=op)
    assert (saved.name, saved.number) == ("mine", 1) and saved.commit_id
    listed = {p.name: p for p in world.pipelines.ListPipelines(ppb.ListPipelinesRequest(), metadata=viewer).pipelines}
    assert listed["mine"].latest_version == 1 and listed["p"].latest_version == 1
    latest = world.pipelines.GetPipelineVersion(ppb.GetPipelineVersionRequest(name="mine"), metadata=viewer)
    first = world.pipelines.GetPipelineVersion(ppb.GetPipelineVersionRequest(name="mine", number=1), metadata=viewer)
    assert latest == first and first.message == "first" and first.author == "operator"
    assert "receivers" in first.collector_yaml and Pipeline.from_dict(json.loads(first.graph_json)).name == "mine"

    ok = world.pipelines.ValidatePipeline(ppb.ValidatePipelineRequest(pipeline_json=_pipeline_json("x")),
                                          metadata=viewer)
    assert ok.valid and list(ok.problems) == []
    broken = json.loads(_pipeline_json("x"))
    broken["edges"] = []
    bad = world.pipelines.ValidatePipeline(ppb.ValidatePipelineRequest(pipeline_json=json.dumps(broken)),
                                           metadata=viewer)
    assert not bad.valid and bad.problems

    by_ref = world.pipelines.RenderPipeline(ppb.RenderPipelineRequest(ref="mine@1"), metadata=viewer)
    by_json = world.pipelines.RenderPipeline(ppb.RenderPipelineRequest(pipeline_json=_pipeline_json("mine")),
                                             metadata=viewer)
    assert by_ref.collector_yaml == first.collector_yaml == by_json.collector_yaml
    assert by_ref.manifests and all(name.endswith(".yaml") for name in by_ref.manifests)

    names = world.pipelines.ListTemplates(ppb.ListTemplatesRequest(), metadata=viewer).names
    assert list(names) == list(TEMPLATE_NAMES)
    t = world.pipelines.GetTemplate(ppb.GetTemplateRequest(name="process-topk-v1"), metadata=viewer)
    assert Pipeline.from_dict(json.loads(t.graph_json)).to_dict() == get_template("process-topk-v1").to_dict()


def test_an_api_token_works_and_is_capped_at_its_role(world: World) -> None:
    _, secret = world.svc.accounts.create_token(world.svc.accounts.actor_for_name("viewer", "cli"), "ci", "1h")
    meta = [("authorization", f"Bearer {secret}")]
    assert world.pipelines.ListTemplates(ppb.ListTemplatesRequest(), metadata=meta).names
    code, _, trailers = code_of(lambda: world.experiments.CreateExperiment(
        xpb.CreateExperimentRequest(**NEW), metadata=meta))
    assert code == grpc.StatusCode.PERMISSION_DENIED and trailers["phoenix-problem-type"] == "forbidden"


# ------------------------------------------------------------------ the role matrix

@dataclass(frozen=True)
class Rpc:
    call: Callable[[World, list[tuple[str, str]]], Any]
    #: the service methods it goes through: the role it needs is derived from their declared actions
    uses: tuple[Callable[..., Any], ...]


E, P = ExperimentService, PipelineService
RPCS: dict[str, Rpc] = {
    "ListExperiments": Rpc(lambda w, m: w.experiments.ListExperiments(xpb.ListExperimentsRequest(), metadata=m),
                           (E.list,)),
    "GetExperiment": Rpc(lambda w, m: w.experiments.GetExperiment(xpb.GetExperimentRequest(id=w.pending().id),
                                                                  metadata=m), (E.get,)),
    "CreateExperiment": Rpc(lambda w, m: w.experiments.CreateExperiment(xpb.CreateExperimentRequest(**NEW),
                                                                        metadata=m), (E.create,)),
    "CancelExperiment": Rpc(lambda w, m: (lambda e: w.experiments.CancelExperiment(xpb.CancelExperimentRequest(
        id=e.id, expected_version=e.version), metadata=m))(w.pending()), (E.get, E.cancel)),
    "RerunExperiment": Rpc(lambda w, m: w.experiments.RerunExperiment(xpb.RerunExperimentRequest(
        id=w.finished().id), metadata=m), (E.rerun,)),
    "PromoteExperiment": Rpc(lambda w, m: w.experiments.PromoteExperiment(xpb.PromoteExperimentRequest(
        id=w.finished().id), metadata=m), (PromotionService.promote,)),
    "ListSamples": Rpc(lambda w, m: w.experiments.ListSamples(xpb.ListSamplesRequest(id=w.pending().id), metadata=m),
                       (E.get, E.samples)),
    "WatchExperiment": Rpc(lambda w, m: list(w.experiments.WatchExperiment(xpb.WatchExperimentRequest(
        id=w.finished().id), metadata=m)), (E.get,)),
    "ListPipelines": Rpc(lambda w, m: w.pipelines.ListPipelines(ppb.ListPipelinesRequest(), metadata=m),
                         (P.list_pipelines,)),
    "GetPipelineVersion": Rpc(lambda w, m: w.pipelines.GetPipelineVersion(ppb.GetPipelineVersionRequest(
        name="p", number=1), metadata=m), (P.version,)),
    "SavePipelineVersion": Rpc(lambda w, m: w.pipelines.SavePipelineVersion(ppb.SavePipelineVersionRequest(
        pipeline_json=_pipeline_json("p"), message="again"), metadata=m), (P.save_version,)),
    "ValidatePipeline": Rpc(lambda w, m: w.pipelines.ValidatePipeline(ppb.ValidatePipelineRequest(
        pipeline_json=_pipeline_json("p")), metadata=m), (P.validate,)),
    "RenderPipeline": Rpc(lambda w, m: w.pipelines.RenderPipeline(ppb.RenderPipelineRequest(ref="p"), metadata=m),
                          (P.resolve, P.render)),
    "ListTemplates": Rpc(lambda w, m: w.pipelines.ListTemplates(ppb.ListTemplatesRequest(), metadata=m),
                         (P.templates,)),
    "GetTemplate": Rpc(lambda w, m: w.pipelines.GetTemplate(ppb.GetTemplateRequest(name="process-topk-v1"),
                                                            metadata=m), (P.template,)),
}
UNAUTHENTICATED = ("no token", "forged API token", "bad JWT", "disabled account")


def lowest_role(rpc: Rpc) -> Role:
    actions = [declared(method) for method in rpc.uses]
    assert all(actions), "every service method an RPC uses is a declared query or mutation"
    return max(PERMISSIONS[action] for _, action in actions)  # type: ignore[misc]


def test_the_matrix_covers_every_rpc_of_both_services() -> None:
    in_proto = {m.name for f in (xpb, ppb) for s in f.DESCRIPTOR.services_by_name.values() for m in s.methods}
    assert set(RPCS) == in_proto
    # the derivation is not vacuous: all three roles appear as the lowest one somewhere
    assert {lowest_role(r) for r in RPCS.values()} == set(Role)


@pytest.mark.parametrize("name", sorted(RPCS))
def test_role_matrix(world: World, name: str) -> None:
    rpc = RPCS[name]
    needed = lowest_role(rpc)
    for identity in [*ROLES, *UNAUTHENTICATED]:
        metadata = world.auth(identity) if identity in world.tokens else []
        try:
            rpc.call(world, metadata)
            outcome, problem = grpc.StatusCode.OK, None
        except grpc.RpcError as err:
            outcome, problem = err.code(), dict(err.trailing_metadata() or ()).get("phoenix-problem-type")
        if identity in UNAUTHENTICATED:
            expected = (grpc.StatusCode.UNAUTHENTICATED, "unauthenticated")
        elif ROLES[identity] >= needed:
            expected = (grpc.StatusCode.OK, None)
        else:
            expected = (grpc.StatusCode.PERMISSION_DENIED, "forbidden")
        assert (outcome, problem) == expected, (name, identity)


# ------------------------------------------------------------------ errors

def test_not_found_and_validation_with_every_sentence(world: World) -> None:
    viewer, op = world.auth("viewer"), world.auth("operator")
    for call in (lambda: world.experiments.GetExperiment(xpb.GetExperimentRequest(id="missing"), metadata=viewer),
                 lambda: world.experiments.ListSamples(xpb.ListSamplesRequest(id="missing"), metadata=viewer),
                 lambda: world.pipelines.GetTemplate(ppb.GetTemplateRequest(name="nope"), metadata=viewer),
                 lambda: world.pipelines.GetPipelineVersion(ppb.GetPipelineVersionRequest(name="p", number=9),
                                                            metadata=viewer)):
        code, details, trailers = code_of(call)
        assert code == grpc.StatusCode.NOT_FOUND and trailers["phoenix-problem-type"] == "not-found" and details

    code, details, trailers = code_of(lambda: world.experiments.CreateExperiment(xpb.CreateExperimentRequest(
        **{**NEW, "candidate": "nope", "duration_s": -1}), metadata=op))
    problems = json.loads(trailers["phoenix-problems-bin"])
    assert code == grpc.StatusCode.INVALID_ARGUMENT and trailers["phoenix-problem-type"] == "validation"
    assert len(problems) >= 2 and any("nope" in p for p in problems) and details == "; ".join(problems)

    code, details, _ = code_of(lambda: world.experiments.CreateExperiment(xpb.CreateExperimentRequest(
        **NEW, load_json="{not json"), metadata=op))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("load_json: not valid JSON")
    code, details, _ = code_of(lambda: world.pipelines.SavePipelineVersion(ppb.SavePipelineVersionRequest(
        pipeline_json=_pipeline_json("mine")), metadata=op))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "a version message is required" in details
    world.pipelines.SavePipelineVersion(ppb.SavePipelineVersionRequest(
        pipeline_json=_pipeline_json("shared"), message="v1", expected_version=0), metadata=op)
    code, details, _ = code_of(lambda: world.pipelines.SavePipelineVersion(ppb.SavePipelineVersionRequest(
        pipeline_json=_pipeline_json("shared"), message="from a stale v0", expected_version=0), metadata=op))
    assert code == grpc.StatusCode.ABORTED and "at version 1 now, not 0" in details
    code, details, _ = code_of(lambda: world.pipelines.RenderPipeline(ppb.RenderPipelineRequest(), metadata=viewer))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "ref" in details


def test_cancel_needs_the_current_version(world: World) -> None:
    op = world.auth("operator")
    exp = world.pending()
    code, _, trailers = code_of(lambda: world.experiments.CancelExperiment(xpb.CancelExperimentRequest(id=exp.id),
                                                                           metadata=op))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and trailers["phoenix-problem-type"] == "precondition-required"
    code, details, trailers = code_of(lambda: world.experiments.CancelExperiment(xpb.CancelExperimentRequest(
        id=exp.id, expected_version=exp.version + 7), metadata=op))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and trailers["phoenix-problem-type"] == "precondition-failed"
    assert f"at version {exp.version}" in details
    done = world.experiments.CancelExperiment(xpb.CancelExperimentRequest(id=exp.id, expected_version=exp.version),
                                              metadata=op)
    code, _, trailers = code_of(lambda: world.experiments.CancelExperiment(xpb.CancelExperimentRequest(
        id=exp.id, expected_version=done.version), metadata=op))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and trailers["phoenix-problem-type"] == "invalid-transition"


def test_request_id_replays_the_first_answer_and_refuses_another_request(world: World) -> None:
    op = world.auth("operator")
    first = world.experiments.CreateExperiment(xpb.CreateExperimentRequest(**NEW, request_id="ci-42"), metadata=op)
    again = world.experiments.CreateExperiment(xpb.CreateExperimentRequest(**NEW, request_id="ci-42"), metadata=op)
    assert again == first and len(world.svc.experiments.list(ADMIN)) == 1
    code, _, trailers = code_of(lambda: world.experiments.CreateExperiment(xpb.CreateExperimentRequest(
        **{**NEW, "name": "other"}, request_id="ci-42"), metadata=op))
    assert code == grpc.StatusCode.ABORTED and trailers["phoenix-problem-type"] == "conflict"
    other = world.experiments.CreateExperiment(xpb.CreateExperimentRequest(**NEW, request_id="ci-43"), metadata=op)
    assert other.id != first.id


def _broken() -> Any:
    raise RuntimeError("connection to server at db.internal (password=hunter2) refused")


def test_a_bug_is_internal_and_says_nothing_more(world: World, caplog: pytest.LogCaptureFixture) -> None:
    world.svc.experiments.uow_factory = _broken
    code, details, trailers = code_of(lambda: world.experiments.ListExperiments(
        xpb.ListExperimentsRequest(), metadata=world.auth("viewer")))
    assert code == grpc.StatusCode.INTERNAL and trailers["phoenix-problem-type"] == "internal"
    assert "hunter2" not in details and "db.internal" not in details and "Traceback" not in details
    assert "hunter2" in caplog.text  # the server log keeps the cause


def test_calls_over_the_budget_are_resource_exhausted(memory_services: Any) -> None:
    server = _start(memory_services, rate_per_s=0.01, burst=2)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = prpc.PipelineServiceStub(channel)
            codes = []
            for _ in range(3):
                codes.append(code_of(lambda: stub.ListTemplates(ppb.ListTemplatesRequest()))[0])
            _, _, trailers = code_of(lambda: stub.ListTemplates(ppb.ListTemplatesRequest()))
    finally:
        server.stop(grace_s=0)
    assert codes == [grpc.StatusCode.UNAUTHENTICATED] * 2 + [grpc.StatusCode.RESOURCE_EXHAUSTED]
    assert trailers["phoenix-problem-type"] == "rate-limited" and int(trailers["retry-after"]) >= 1


def test_a_message_above_one_mib_is_refused_before_any_service(world: World) -> None:
    big = xpb.CreateExperimentRequest(**NEW, description="x" * (1 << 20))
    code, _, _ = code_of(lambda: world.experiments.CreateExperiment(big, metadata=world.auth("operator")))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and world.svc.experiments.list(ADMIN) == []


def test_watch_streams_each_change_until_the_experiment_ends(world: World) -> None:
    exp = world.pending()
    stream = world.experiments.WatchExperiment(xpb.WatchExperimentRequest(id=exp.id), metadata=world.auth("viewer"))
    first = next(stream)
    assert (first.state, first.version) == ("Pending", exp.version)
    world.svc.experiments.cancel(ADMIN, CancelExperiment(experiment_id=exp.id, reason="watched"))
    rest = list(stream)  # ends by itself: Cancelled is final
    assert [e.state for e in rest] == ["Cancelled"] and rest[0].version > first.version
    code, _, trailers = code_of(lambda: next(world.experiments.WatchExperiment(
        xpb.WatchExperimentRequest(id="missing"), metadata=world.auth("viewer"))))
    assert code == grpc.StatusCode.NOT_FOUND and trailers["phoenix-problem-type"] == "not-found"


def test_a_watch_wakes_on_the_event_bus_not_on_its_poll(memory_services: Any) -> None:
    svc = memory_services
    add_account(svc, ADMIN)
    _, secret = svc.accounts.create_token(ADMIN, "watcher", "1h")
    exp = svc.experiments.create(ADMIN, **NEW)
    server = _start(svc, watch_poll_s=120.0)  # a poll alone would not see the cancel for two minutes
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stream = xrpc.ExperimentServiceStub(channel).WatchExperiment(
                xpb.WatchExperimentRequest(id=exp.id), metadata=[("authorization", f"Bearer {secret}")], timeout=30)
            assert next(stream).state == "Pending"
            svc.experiments.cancel(ADMIN, CancelExperiment(experiment_id=exp.id, reason="bus"))
            assert [e.state for e in stream] == ["Cancelled"]  # within the 30 s deadline: the bus woke it
    finally:
        server.stop(grace_s=0)


def test_watches_beyond_the_limit_are_refused_and_a_cancelled_one_frees_its_slot(memory_services: Any) -> None:
    svc = memory_services
    add_account(svc, ADMIN)
    _, secret = svc.accounts.create_token(ADMIN, "watcher", "1h")
    meta = [("authorization", f"Bearer {secret}")]
    exp = svc.experiments.create(ADMIN, **NEW)
    server = _start(svc, max_watches=1)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = xrpc.ExperimentServiceStub(channel)
            held = stub.WatchExperiment(xpb.WatchExperimentRequest(id=exp.id), metadata=meta)
            assert next(held).state == "Pending"
            code, _, trailers = code_of(lambda: next(stub.WatchExperiment(
                xpb.WatchExperimentRequest(id=exp.id), metadata=meta)))
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and trailers["phoenix-problem-type"] == "rate-limited"
            held.cancel()
            for _ in range(200):  # the server notices the cancel on its next read; then the slot is free
                again = stub.WatchExperiment(xpb.WatchExperimentRequest(id=exp.id), metadata=meta)
                try:
                    assert next(again).state == "Pending"
                    again.cancel()
                    break
                except grpc.RpcError as err:
                    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                    time.sleep(0.05)
            else:
                pytest.fail("a cancelled watch never gave its slot back")
    finally:
        server.stop(grace_s=0)


# ------------------------------------------------------------------ audit, health

def test_changes_made_over_grpc_are_audited_with_source_grpc(world: World) -> None:
    exp = world.experiments.CreateExperiment(xpb.CreateExperimentRequest(**NEW), metadata=world.auth("operator"))
    world.experiments.CancelExperiment(xpb.CancelExperimentRequest(id=exp.id, expected_version=exp.version),
                                       metadata=world.auth("operator"))
    entries = world.svc.accounts.audit_log(ADMIN, subject=exp.id)
    assert {(e.action, e.actor, e.source) for e in entries} == {("experiment.create", "operator", "grpc"),
                                                               ("experiment.cancel", "operator", "grpc")}


def test_the_standard_health_service_answers_for_both_services(world: World) -> None:
    health = health_pb2_grpc.HealthStub(world.channel)
    for service in ("", "phoenix.v1.ExperimentService", "phoenix.v1.PipelineService"):
        assert health.Check(health_pb2.HealthCheckRequest(service=service)).status == \
            health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as unknown:
        health.Check(health_pb2.HealthCheckRequest(service="phoenix.v1.Nope"))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    # the protocol on the wire: a generic call by full method name, decoded by hand
    raw = world.channel.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=10)
    assert raw == b"\x08\x01"  # field 1 (status), varint 1 = SERVING


def test_health_watch_sends_the_status_then_not_serving_on_shutdown(memory_services: Any) -> None:
    from core.api.grpc_server import serve

    running = serve(memory_services, "127.0.0.1", 0)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stream = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""), timeout=30)
            assert next(stream).status == health_pb2.HealthCheckResponse.SERVING
            unknown = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service="nope"),
                                                               timeout=30)
            assert next(unknown).status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
            unknown.cancel()
            running.health.enter_graceful_shutdown()
            assert next(stream).status == health_pb2.HealthCheckResponse.NOT_SERVING
            stream.cancel()
    finally:
        running.stop(grace_s=1)


# ------------------------------------------------------------------ the stubs are the build's

def test_the_generated_stubs_match_the_proto_files() -> None:
    """What the build generated is what the .proto files of this checkout generate (no stale stub)."""
    assert grpc_build.differences() == []


def test_a_changed_proto_makes_the_stubs_stale(tmp_path: Path) -> None:
    protos = tmp_path / "proto"
    shutil.copytree(grpc_build.PROTO_ROOT, protos)
    changed = protos / "phoenix" / "v1" / "pipelines.proto"
    changed.write_text(changed.read_text().replace("message Template {", "message Template {\n  bool new_field = 9;"))
    assert grpc_build.differences(proto_root=protos) == ["phoenix/v1/pipelines_pb2.py", "phoenix/v1/pipelines_pb2.pyi"]
    # and regenerating from them makes a package that imports as core.api.grpc_gen
    out = grpc_build.generate(tmp_path / "grpc_gen", protos)
    assert "from core.api.grpc_gen.phoenix.v1 import pipelines_pb2" in \
        (out / "phoenix" / "v1" / "pipelines_pb2_grpc.py").read_text()
    assert (out / "phoenix" / "v1" / "__init__.py").is_file()


# ------------------------------------------------------------------ phoenix api serves gRPC too

@dataclass
class ApiProcess:
    target: str
    secret: str  # an operator's API token
    settings: Settings


@pytest.fixture
def phoenix_api(tmp_path: Path) -> Iterator[ApiProcess]:
    """``phoenix api`` with gRPC on a free port over SQLite; stopped with SIGTERM, which must be clean."""
    url = f"sqlite:///{tmp_path / 'phoenix.db'}"
    env = {**os.environ, "PHOENIX_DATA_DIR": str(tmp_path), "PHOENIX_DATABASE_URL": url,
           "PHOENIX_GITOPS_REPO": str(tmp_path / "gitops"), "PHOENIX_RUNTIME": "memory",
           "PHOENIX_EMBEDDED_SCHEDULER": "0"}
    settings = Settings(data_dir=tmp_path, database_url=url, gitops_repo=tmp_path / "gitops",
                        runtime="memory", embedded_scheduler=False)
    svc = bootstrap(settings)
    add_account(svc, ADMIN)
    svc.accounts.add_user(ADMIN, "ops", "operator", PASSWORD)
    _, secret = svc.accounts.create_token(svc.accounts.actor_for_name("ops", "cli"), "grpc test", "1h")
    svc.close()
    rest, grpc_port = free_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-m", "core", "api", "--port", str(rest), "--grpc-port", str(grpc_port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    target = f"127.0.0.1:{grpc_port}"
    try:
        with grpc.insecure_channel(target) as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
        yield ApiProcess(target, secret, settings)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGTERM, out
    assert f"gRPC API on {target}" in out and "Finished server process" in out
    assert secret not in out
    with socket.socket() as s:  # the gRPC port was released with the process
        assert s.connect_ex(("127.0.0.1", grpc_port)) != 0


def test_phoenix_api_serves_grpc_beside_rest(phoenix_api: ApiProcess) -> None:
    meta = [("authorization", f"Bearer {phoenix_api.secret}")]
    with grpc.insecure_channel(phoenix_api.target) as channel:
        stub = xrpc.ExperimentServiceStub(channel)
        exp = stub.CreateExperiment(xpb.CreateExperimentRequest(**NEW), metadata=meta)
        assert stub.GetExperiment(xpb.GetExperimentRequest(id=exp.id), metadata=meta).state == "Pending"
    # what the server process did over gRPC is in the database, audited as such
    svc = bootstrap(phoenix_api.settings)
    try:
        entries = svc.accounts.audit_log(ADMIN, subject=exp.id)
    finally:
        svc.close()
    assert [(e.action, e.actor, e.source) for e in entries] == [("experiment.create", "ops", "grpc")]


def test_the_grpc_client_example_in_docs_works_as_written(phoenix_api: ApiProcess) -> None:
    doc = (Path(__file__).parents[2] / "docs" / "api.md").read_text(encoding="utf-8")
    grpc_section = doc.split("\n## gRPC\n", 1)[1]
    example = grpc_section.split("```python\n", 1)[1].split("```", 1)[0]
    env = {**os.environ, "PHOENIX_GRPC_TARGET": phoenix_api.target, "PHOENIX_TOKEN": phoenix_api.secret}
    run = subprocess.run([sys.executable, "-c", example], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.split()
    assert lines[0].startswith("exp-") and lines[1:] == ["Pending", "Cancelled"]
