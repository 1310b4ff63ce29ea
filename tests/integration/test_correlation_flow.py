"""One correlation id from a REST request to every log line it causes: the request's own line,
the service's, the scheduler's step of the experiment it created, and a real child process the
local runtime starts for that experiment (its JSON log file)."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from core.api import create_app
from core.bootstrap import bootstrap
from core.domain.accounts import Role
from core.gitops import InMemoryGitOps
from core.observability.logs import configure_logging
from core.runtime.memory import InMemoryAnalyzer, InMemoryDeployer
from core.settings import Settings
from core.store.migrate import upgrade
from core.store.uow import Database
from tests.actors import ADMIN, add_account

PASSWORD = "correct horse battery"
NEW = {"name": "correlated", "baseline": "process-baseline-v1", "candidate": "process-topk-v1",
       "duration_s": 30, "interval_s": 5, "load": {"name": "none"}}


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    buf = io.StringIO()
    handler = configure_logging("api", stream=buf, fmt="json", level="INFO", env={})
    try:
        yield buf
    finally:
        logging.getLogger().removeHandler(handler)


def parsed(buf: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def sqlite_services(tmp_path: Path, deployer: Any) -> tuple[Any, Database]:
    url = f"sqlite:///{tmp_path / 'phoenix.db'}"
    upgrade(url)
    db = Database(url)
    svc = bootstrap(Settings(data_dir=tmp_path, database_url=url, gitops_repo=tmp_path / "gitops", runtime="memory",
                             embedded_scheduler=False), deployer, InMemoryAnalyzer(), database=db,
                    gitops=InMemoryGitOps())
    svc.accounts.hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    add_account(svc, ADMIN)
    svc.accounts.add_user(ADMIN, "olivia", Role.OPERATOR, PASSWORD)
    return svc, db


def create_over_rest(svc: Any, request_id: str) -> str:
    client = TestClient(create_app(svc, env={}), raise_server_exceptions=False)
    token = client.post("/api/v1/auth/token", data={"username": "olivia", "password": PASSWORD}).json()["access_token"]
    r = client.post("/api/v1/experiments", json=NEW,
                    headers={"Authorization": f"Bearer {token}", "X-Request-ID": request_id})
    assert r.status_code == 201, r.text
    assert r.headers["X-Request-ID"] == request_id
    return str(r.json()["id"])


def test_request_service_and_scheduler_lines_carry_the_request_id(tmp_path: Path, log_lines: io.StringIO) -> None:
    svc, db = sqlite_services(tmp_path, InMemoryDeployer())
    try:
        eid = create_over_rest(svc, "req-flow-0001")
        with db.uow() as uow:  # stored with it, so any scheduler process finds it
            assert uow.experiments.get(eid).correlation_id == "req-flow-0001"
        scheduler = svc.new_scheduler()
        assert scheduler.run_once().transitions == [(eid, "Pending", "Initializing")]
        scheduler.run_once()  # deploys (the in-memory deployer) under the same id
        scheduler.shutdown()
    finally:
        db.dispose()
    lines = parsed(log_lines)
    request = [x for x in lines if x["logger"] == "core.api.access" and x["message"] == "POST /api/v1/experiments 201"]
    service = [x for x in lines if x["logger"] == "core.services.experiments" and f"experiment {eid} created" in x["message"]]
    step = [x for x in lines if x["logger"] == "core.scheduler" and x["message"].startswith(f"experiment {eid}: Pending")]
    assert len(request) == len(service) == len(step) == 1, lines
    for line in (*request, *service, *step):
        assert line["correlation_id"] == "req-flow-0001", line
    assert service[0]["experiment_id"] == step[0]["experiment_id"] == eid
    # the sign-in before it is another request: another id, never this one
    sign_in = [x for x in lines if x["logger"] == "core.api.access" and "/auth/token" in x["message"]]
    assert sign_in and all(x["correlation_id"] not in (None, "req-flow-0001") for x in sign_in)


def _wait_for_line(path: Path, needle: str, timeout_s: float = 60.0) -> dict[str, Any] | None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if path.exists():
            for raw in path.read_text(errors="replace").splitlines():
                if needle in raw and raw.startswith("{"):
                    return json.loads(raw)  # type: ignore[no-any-return]
        time.sleep(0.2)
    return None


def test_the_collector_child_of_a_scheduled_experiment_logs_under_the_request_id(tmp_path: Path,
                                                                                  log_lines: io.StringIO) -> None:
    from core.runtime.local import LocalDeployer

    url = f"sqlite:///{tmp_path / 'phoenix.db'}"
    deployer = LocalDeployer(uow_factory=lambda: None, data_dir=tmp_path / "run", database_url=url)
    svc, db = sqlite_services(tmp_path, deployer)
    deployer.uow_factory = db.uow
    try:
        eid = create_over_rest(svc, "req-child-0001")
        scheduler = svc.new_scheduler()
        scheduler.run_once()  # Pending → Initializing
        scheduler.run_once()  # deploy: starts `phoenix collector --experiment ID` (the emulator)
        exp = svc.experiments.get(ADMIN, eid)
        assert exp.runtime_info.get("pids"), exp.runtime_info
        line = _wait_for_line(tmp_path / "run" / f"collector-{eid}.log", "emulated collectors of experiment")
        deployer.teardown(exp)
        scheduler.shutdown()
    finally:
        db.dispose()
    assert line is not None, (tmp_path / "run" / f"collector-{eid}.log").read_text(errors="replace")[-2000:]
    assert line["process"] == "collector" and line["pid"] == exp.runtime_info["pids"][0]
    assert line["correlation_id"] == "req-child-0001" and line["experiment_id"] == eid


def test_a_grpc_call_keeps_its_x_request_id_metadata_and_logs_under_it(tmp_path: Path,
                                                                       log_lines: io.StringIO) -> None:
    import grpc

    from core.api.grpc_gen.phoenix.v1 import experiments_pb2 as xpb
    from core.api.grpc_gen.phoenix.v1 import experiments_pb2_grpc as xrpc
    from core.api.grpc_server import serve
    from core.api.security import Tokens
    from core.services.secret import server_secret

    svc, db = sqlite_services(tmp_path, InMemoryDeployer())
    server = serve(svc, "127.0.0.1", 0, env={})
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    auth = ("authorization", f"Bearer {Tokens(server_secret(svc.settings, {})).issue('olivia').access_token}")
    try:
        stub = xrpc.ExperimentServiceStub(channel)
        exp, call = stub.CreateExperiment.with_call(xpb.CreateExperimentRequest(
            name="over grpc", baseline="process-baseline-v1", candidate="process-topk-v1"),
            metadata=[auth, ("x-request-id", "grpc-req-0001")])
        _, made_up = stub.GetExperiment.with_call(xpb.GetExperimentRequest(id=exp.id),
                                                  metadata=[auth, ("x-request-id", "not a sane id!")])
        with db.uow() as uow:
            stored = uow.experiments.get(exp.id).correlation_id
    finally:
        channel.close()
        server.stop(grace_s=0)
        db.dispose()
    assert dict(call.initial_metadata())["x-request-id"] == "grpc-req-0001" and stored == "grpc-req-0001"
    replaced = dict(made_up.initial_metadata())["x-request-id"]
    assert replaced != "not a sane id!" and len(replaced) == 16  # an insane id is replaced, never echoed
    (created,) = [x for x in parsed(log_lines) if f"experiment {exp.id} created" in x["message"]]
    assert created["correlation_id"] == "grpc-req-0001"


def test_a_5xx_reference_is_the_request_id_and_finds_the_logged_traceback(tmp_path: Path,
                                                                          log_lines: io.StringIO) -> None:
    svc, db = sqlite_services(tmp_path, InMemoryDeployer())

    def broken() -> Any:
        raise RuntimeError("driver says: postgresql://phoenix:hunter2@db.internal/phoenix is away")

    try:
        client = TestClient(create_app(svc, env={}), raise_server_exceptions=False)
        token = client.post("/api/v1/auth/token", data={"username": "olivia", "password": PASSWORD}).json()
        svc.experiments.uow_factory = broken
        r = client.get("/api/v1/experiments", headers={"Authorization": f"Bearer {token['access_token']}",
                                                       "X-Request-ID": "req-5xx-0001"})
    finally:
        db.dispose()
    assert r.status_code == 500 and r.headers["X-Request-ID"] == "req-5xx-0001"
    assert r.json()["reference"] == "req-5xx-0001" and "hunter2" not in r.text
    (logged,) = [x for x in parsed(log_lines) if x.get("exc")]
    assert logged["correlation_id"] == "req-5xx-0001" and "RuntimeError" in logged["exc"]
    assert "hunter2" not in logged["exc"] and "phoenix:***@db.internal" in logged["exc"]


def test_real_collectors_get_the_ids_in_their_environment_and_atop_their_log(tmp_path: Path) -> None:
    from core.domain.criteria import LoadProfile, Timing
    from core.domain.experiment import Experiment
    from core.observability.context import correlation
    from core.otelcol import distribution
    from core.runtime.local import LocalDeployer

    binary = distribution.built_binary() or Path(distribution.build().path)  # built by `make collector`
    url = f"sqlite:///{tmp_path / 'phoenix.db'}"
    upgrade(url)
    db = Database(url)
    exp = Experiment.create(name="otelcol ids", baseline="process-baseline-v1", candidate="process-topk-v1",
                            timing=Timing(60, 5), load=LoadProfile("none"))
    with db.uow() as uow:
        uow.experiments.add(exp)
        uow.commit()
    deployer = LocalDeployer(db.uow, data_dir=tmp_path / "run", database_url=url, otelcol_bin=str(binary))
    try:
        with correlation("req-otelcol-0001", experiment=exp.id):  # as the scheduler's step binds them
            info = deployer.deploy(exp)
        environs = {pid: Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") for pid in info["pids"]}
    finally:
        deployer.teardown(exp)
        db.dispose()
    assert len(environs) == 3  # tap, baseline, candidate
    for pid, env in environs.items():
        assert b"PHOENIX_CORRELATION_ID=req-otelcol-0001" in env and f"PHOENIX_EXPERIMENT_ID={exp.id}".encode() in env, pid
    for role in ("tap", "baseline", "candidate"):
        first = (tmp_path / "run" / f"otelcol-{exp.id}-{role}.log").read_text().splitlines()[0]
        line = json.loads(first)
        assert line["correlation_id"] == "req-otelcol-0001" and line["experiment_id"] == exp.id
        assert line["message"].startswith(f"starting the {role} collector: {binary}")
