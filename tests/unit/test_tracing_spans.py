"""core.observability.tracing: spans for API requests, services, scheduler ticks and SQL, in one trace.

Spans go to an ``InMemorySpanExporter``; the OTLP path is exercised in a child process
against a real HTTP listener (setting the global provider is once per process).
"""

from __future__ import annotations

import http.server
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from core.api import create_app
from core.domain.accounts import Role
from core.observability.context import correlation
from core.observability.tracing import configure_tracing, reset_tracing, span
from core.services.requests import CreateExperiment
from tests.actors import ADMIN, add_account, operator

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"
NEW = {"name": "traced", "baseline": "process-baseline-v1", "candidate": "process-topk-v1",
       "duration_s": 30, "interval_s": 5}


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    assert configure_tracing("phoenix-test", exporter=exporter) is not None
    try:
        yield exporter
    finally:
        reset_tracing()


@pytest.fixture
def sql_services(tmp_path: Path) -> Iterator[Any]:
    """Services over a real SQLite file (SQL spans need a real engine) with the in-memory runtime."""
    from core.bootstrap import bootstrap
    from core.gitops import InMemoryGitOps
    from core.runtime.memory import InMemoryAnalyzer, InMemoryDeployer
    from core.settings import Settings
    from core.store.migrate import upgrade
    from core.store.uow import Database

    url = f"sqlite:///{tmp_path / 'phoenix.db'}"
    upgrade(url)
    db = Database(url)
    svc = bootstrap(Settings(data_dir=tmp_path, database_url=url, gitops_repo=tmp_path / "gitops", runtime="memory",
                             embedded_scheduler=False), InMemoryDeployer(), InMemoryAnalyzer(), database=db,
                    gitops=InMemoryGitOps())
    svc.accounts.hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    try:
        yield svc
    finally:
        db.dispose()


def by_name(finished: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    (found,) = [s for s in finished if s.name == name]
    return found


def ancestors(s: ReadableSpan, finished: tuple[ReadableSpan, ...]) -> list[str]:
    """Names of the span's parents, nearest first (all of them finished in this test)."""
    index = {x.context.span_id: x for x in finished}
    out = []
    while s.parent is not None and s.parent.span_id in index:
        s = index[s.parent.span_id]
        out.append(s.name)
    return out


def test_without_an_endpoint_nothing_is_installed_and_spans_are_free() -> None:
    assert configure_tracing("phoenix-api", env={}) is None
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)  # OpenTelemetry's no-op default
    with span("anything") as current:
        assert current is trace.INVALID_SPAN and not current.is_recording()


def test_one_api_create_is_one_trace_server_then_service_then_sql(spans: InMemorySpanExporter,
                                                                   sql_services: Any) -> None:
    add_account(sql_services, ADMIN)
    sql_services.accounts.add_user(ADMIN, "olivia", Role.OPERATOR, PASSWORD)
    client = TestClient(create_app(sql_services, env={}), raise_server_exceptions=False)
    token = client.post("/api/v1/auth/token", data={"username": "olivia", "password": PASSWORD}).json()["access_token"]
    spans.clear()

    r = client.post("/api/v1/experiments", json=NEW, headers={"Authorization": f"Bearer {token}",
                                                             "X-Request-ID": "req-trace-1"})
    assert r.status_code == 201, r.text
    assert r.headers["X-Request-ID"] == "req-trace-1"
    finished = spans.get_finished_spans()
    server = by_name(finished, "POST /api/v1/experiments")
    create = by_name(finished, "ExperimentService.create")
    assert server.kind is SpanKind.SERVER and server.parent is None
    assert server.attributes["http.route"] == "/api/v1/experiments"
    assert server.attributes["http.response.status_code"] == 201
    assert {s.context.trace_id for s in finished} == {server.context.trace_id}  # ONE trace
    assert create.parent is not None and create.parent.span_id == server.context.span_id
    assert create.attributes["phoenix.actor.role"] == "operator"
    assert create.attributes["phoenix.experiment_id"] == r.json()["id"]
    assert create.attributes["phoenix.correlation_id"] == "req-trace-1"
    inserts = [s for s in finished if s.name == "INSERT sqlite"]
    assert inserts and all(s.kind is SpanKind.CLIENT for s in inserts)
    insert_into_experiments = [s for s in inserts if "INSERT INTO experiments" in str(s.attributes["db.query.text"])]
    assert len(insert_into_experiments) == 1
    assert ancestors(insert_into_experiments[0], finished)[:1] == ["ExperimentService.create"]
    assert ancestors(insert_into_experiments[0], finished)[-1] == "POST /api/v1/experiments"
    assert "?" in str(insert_into_experiments[0].attributes["db.query.text"])  # placeholders, never the values


def test_a_scheduler_tick_has_a_step_per_experiment_with_its_sql(spans: InMemorySpanExporter,
                                                                  sql_services: Any) -> None:
    with correlation("req-sched-1"):
        exp = sql_services.experiments.create(operator(), CreateExperiment(**NEW))
    scheduler = sql_services.new_scheduler()
    spans.clear()

    report = scheduler.run_once()
    assert report.transitions == [(exp.id, "Pending", "Initializing")]
    finished = spans.get_finished_spans()
    tick = by_name(finished, "scheduler.tick")
    step = by_name(finished, "scheduler.step")
    assert tick.parent is None and step.parent is not None and step.parent.span_id == tick.context.span_id
    assert {s.context.trace_id for s in finished} == {tick.context.trace_id}
    assert step.attributes["phoenix.experiment_id"] == exp.id
    assert step.attributes["phoenix.correlation_id"] == "req-sched-1"  # the request that created it
    step_sql = [s for s in finished if s.parent is not None and s.parent.span_id == step.context.span_id
                and s.attributes.get("db.system.name") == "sqlite"]
    (save,) = [s for s in step_sql if s.name == "UPDATE sqlite" and "UPDATE experiments" in str(s.attributes["db.query.text"])]
    assert all(s.attributes["phoenix.experiment_id"] == exp.id for s in step_sql)
    # known once the step has read the experiment: its write carries the creating request's id
    assert save.attributes["phoenix.correlation_id"] == "req-sched-1"
    claim_sql = [s for s in finished if s.parent is not None and s.parent.span_id == tick.context.span_id
                 and s.attributes.get("db.system.name") == "sqlite"]
    assert claim_sql  # the heartbeat and the claim run in the tick, outside any step
    scheduler.shutdown()


class _Receiver(http.server.BaseHTTPRequestHandler):
    bodies: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).bodies.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_with_an_endpoint_spans_go_out_over_otlp_http(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    code = textwrap.dedent("""
        from opentelemetry import trace
        from core.observability.tracing import configure_tracing, span
        provider = configure_tracing("phoenix-scheduler")
        assert trace.get_tracer_provider() is provider, "the global provider is the configured one"
        with span("scheduler.tick"):
            pass
        provider.shutdown()  # flushes the batch
    """)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
           "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.server_address[1]}"}
    try:
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr
    ((path, body),) = _Receiver.bodies
    assert path == "/v1/traces"
    request = ExportTraceServiceRequest.FromString(body)
    resource = request.resource_spans[0]
    names = [s.name for scope in resource.scope_spans for s in scope.spans]
    service = {a.key: a.value.string_value for a in resource.resource.attributes}["service.name"]
    assert names == ["scheduler.tick"] and service == "phoenix-scheduler"
