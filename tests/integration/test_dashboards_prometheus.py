"""Every dashboard query returns data from a real Prometheus scraping a real Phoenix.

One scenario for the module (heavy, ~60-90 s): Debian's Prometheus (1 s scrapes, the recording
rules and the alert rules of k8s/prometheus/ loaded) scrapes

- ``phoenix api`` (REST ``/metrics``, gRPC on, its embedded scheduler) as job ``phoenix-api``,
- a standalone ``phoenix scheduler`` on ``PHOENIX_METRICS_PORT`` as job ``phoenix-scheduler``,
- the real collectors of a real experiment (local runtime, the built Phoenix collector: tap,
  baseline, candidate), discovered the way prometheus.yml documents it: a file_sd JSON kept
  up to date from the configs the runtime writes (ports are chosen per run, and change if a
  collector is restarted).

The test drives REST requests (one of them a 404), a gRPC call, kills the candidate collector
once (the runtime restarts the collectors), lets the experiment run to its analysis, and promotes it. Then
every panel query of every dashboard, variables filled with the experiment's id and ``.*``,
must return data over the run, and every metric name a panel uses must exist in Prometheus.
Failures name the dashboard, the panel and the query.

One exception, computed and not listed by hand: a Phoenix instrument that no module of this
checkout ever updates (``unfed_instruments``; e.g. the cache's counters before the cache
exists) cannot have data, so its panels are only checked by the unit test's name check; the
moment a module uses the instrument, its panels are held to "returns data" like every other.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import yaml

from core.bootstrap import bootstrap
from core.domain.accounts import Actor, Role
from core.settings import Settings
from dashboards.queries import PanelQuery, only_after_failure, panel_queries, selected_metrics, substitute
from tests.actors import ADMIN, add_account
from tests.conftest import free_port
from tests.integration.prometheus_harness import RealPrometheus

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PROM_DIR = ROOT / "k8s" / "prometheus"
PASSWORD = "dashboards operator 1"
OPERATOR = Actor("ops", Role.ADMIN, "cli")  # admin: it promotes
ROLES = ("tap", "baseline", "candidate")


@pytest.fixture(scope="module")
def otelcol_bin() -> str:
    from core.otelcol.distribution import build

    return build().path  # the real Phoenix collector (built by `make collector`; built here if absent)


class PhoenixPrometheus(RealPrometheus):
    """The harness's Prometheus with Phoenix's jobs, a file_sd job for the collectors, and rules."""

    def __init__(self, jobs: dict[str, list[str]]) -> None:
        super().__init__([], scrape_interval="1s", rule_files=[PROM_DIR / "rules.yml", PROM_DIR / "phoenix-alerts.yml"])
        self.jobs = jobs
        self.sd_dir = self.dir / "targets"
        self.sd_dir.mkdir()

    def config(self) -> dict[str, Any]:
        cfg = super().config()
        cfg["scrape_configs"] = [{"job_name": job, "static_configs": [{"targets": t}]} for job, t in self.jobs.items()]
        cfg["scrape_configs"].append({"job_name": "phoenix-collectors-files", "file_sd_configs": [
            {"files": [str(self.sd_dir / "*.json")], "refresh_interval": "1s"}]})  # fmt: skip
        return cfg

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.loads(r.read())
        assert body["status"] == "success", body
        return body["data"]


class CollectorTargets(threading.Thread):
    """Keeps ``sd_dir/collectors.json`` equal to the scrape targets of the experiment's collectors.

    Reads the configs the local runtime writes (``otelcol-<id>-<role>.yaml``): each prometheus
    exporter's endpoint (its series carry phoenix_experiment_id/phoenix_variant themselves) and
    each collector's self-telemetry port, labelled with the experiment and role as the
    Kubernetes job does by relabelling.
    """

    def __init__(self, data_dir: Path, sd_dir: Path) -> None:
        super().__init__(daemon=True)
        self.data_dir, self.sd_dir = data_dir, sd_dir
        self.stop = threading.Event()

    def targets(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = []
        for path in sorted(self.data_dir.glob("otelcol-*.yaml")):
            eid, role = path.stem.removeprefix("otelcol-").rsplit("-", 1)
            if role not in ROLES:
                continue
            try:
                cfg = yaml.safe_load(path.read_text())
            except (OSError, yaml.YAMLError):  # being rewritten: next round
                continue
            exporters = [c["endpoint"] for k, c in (cfg.get("exporters") or {}).items() if k.startswith("prometheus")]
            groups.append({"targets": exporters})
            reader = cfg["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]
            groups.append({"targets": [f"{reader['host']}:{reader['port']}"],
                           "labels": {"phoenix_experiment_id": eid, "phoenix_variant": role}})
        return groups

    def run(self) -> None:
        last = None
        while not self.stop.wait(0.3):
            text = json.dumps(self.targets(), sort_keys=True)
            if text != last:
                tmp = self.sd_dir / "collectors.json.tmp"
                tmp.write_text(text)
                tmp.replace(self.sd_dir / "collectors.json")  # atomic: Prometheus never reads half a file
                last = text


@dataclass
class Run:
    prometheus: PhoenixPrometheus
    experiment_id: str
    started: float
    ended: float


def _wait(what: str, cond: Callable[[], Any], timeout: float, log: Path | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.5)
    tail = log.read_text()[-3000:] if log and log.exists() else ""
    raise AssertionError(f"timed out waiting for {what}\n{tail}")


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _prepare_database(tmp: Path, env: dict[str, str]) -> str:
    svc = bootstrap(Settings(data_dir=tmp, database_url=env["PHOENIX_DATABASE_URL"], gitops_repo=tmp / "gitops",
                             runtime="memory", embedded_scheduler=False))
    try:
        add_account(svc, ADMIN)
        svc.accounts.add_user(ADMIN, OPERATOR.name, OPERATOR.role, PASSWORD)
        _, token = svc.accounts.create_token(OPERATOR, "dashboards test", "1h")
    finally:
        svc.close()
    return token


def _drive_api(http: httpx.Client, grpc_port: int, token: str) -> None:
    """REST traffic on several routes, one client error, a gRPC call."""
    from core.api.grpc_gen.phoenix.v1 import experiments_pb2 as xpb
    from core.api.grpc_gen.phoenix.v1 import experiments_pb2_grpc as xrpc

    assert http.get("/api/v1/experiments").status_code == 200
    assert http.get("/api/v1/experiments").status_code == 200  # nothing changed between: a hit of the list cache
    for _ in range(2):  # computed once (phoenix_estimate_seconds), then a hit of the estimate cache (in Redis)
        r = http.post("/api/v1/pipelines/estimate", data={"pipeline": "process-topk-v1"},
                      files={"snapshot": ("fleet.csv", _snapshot_csv())})
        assert r.status_code == 200, r.text
    assert http.get("/api/v1/templates").status_code == 200
    assert http.get("/api/v1/experiments/exp-does-not-exist").status_code == 404
    assert http.get("/api/v1/templates/process-topk-v1").status_code == 200
    assert http.get("/api/v1/templates/process-topk-v1").status_code == 200  # twice: a cache hit once there is a cache
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        reply = xrpc.ExperimentServiceStub(channel).ListExperiments(
            xpb.ListExperimentsRequest(), metadata=[("authorization", f"Bearer {token}")], timeout=10)
        assert reply is not None


def _snapshot_csv() -> bytes:
    from core.engine.fleet import generate_fleet
    from core.engine.snapshot import write_snapshot

    buf = io.BytesIO()
    write_snapshot(generate_fleet(3, 20, seed=2, scrapes=2), buf)
    return buf.getvalue()


def _open_ui(url: str) -> None:
    """A real browser session on the UI (the sign-in page): Streamlit runs a page only for a client."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                     args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page()
            page.goto(url, timeout=60_000)
            page.get_by_text("Sign in", exact=False).first.wait_for(timeout=60_000)
        finally:
            browser.close()


def _pids_of(data_dir: Path, eid: str, role: str) -> list[int]:
    """PIDs whose command line runs this experiment's ``role`` config."""
    return _pids_running(str(data_dir / f"otelcol-{eid}-{role}.yaml"))


def _pids_with_env(key: str, value: str) -> list[int]:
    """PIDs of processes (other than this one) started with ``key=value`` in their environment."""
    entry, pids = f"{key}={value}".encode(), []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            with contextlib.suppress(OSError):
                if entry in (d / "environ").read_bytes().split(b"\0"):
                    pids.append(int(d.name))
    return pids


def _pids_running(cfg: str) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if cfg in (d / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(d.name))
            except OSError:
                continue
    return pids


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, otelcol_bin: str, redis_url: str) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("dash")
    api_port, grpc_port, sched_port, ui_port, ui_metrics_port = (free_port() for _ in range(5))
    env = {**os.environ, "PHOENIX_DATA_DIR": str(tmp), "PHOENIX_DATABASE_URL": f"sqlite:///{tmp / 'phoenix.db'}",
           "PHOENIX_GITOPS_REPO": str(tmp / "gitops"), "PHOENIX_RUNTIME": "local", "PHOENIX_COLLECTOR": "real",
           "PHOENIX_OTELCOL_BIN": otelcol_bin, "PHOENIX_SCHEDULER_INTERVAL": "0.5",
           "PHOENIX_COLLECTOR_PORT_BASE": str(free_port()), "PHOENIX_PROMETHEUS_URL": "", "PYTHONPATH": str(ROOT),
           "PHOENIX_REDIS_URL": redis_url}  # as in production: the shared cache and bus (phoenix_cache_backend_up)
    token = _prepare_database(tmp, env)
    prom = PhoenixPrometheus({"phoenix-api": [f"127.0.0.1:{api_port}"],
                              "phoenix-scheduler": [f"127.0.0.1:{sched_port}"],
                              "phoenix-ui": [f"127.0.0.1:{ui_metrics_port}"]})
    sd = CollectorTargets(tmp, prom.sd_dir)
    procs: list[subprocess.Popen[bytes]] = []
    log = tmp / "phoenix.log"
    try:
        prom.start()
        sd.start()
        with open(log, "wb") as out:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "core", "api", "--port", str(api_port), "--grpc-port", str(grpc_port)],
                env={**env, "PHOENIX_EMBEDDED_SCHEDULER": "1"}, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT))
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "core", "scheduler"], env={**env, "PHOENIX_METRICS_PORT": str(sched_port)},
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT))
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "core", "ui", "--port", str(ui_port)],
                env={**env, "PHOENIX_METRICS_PORT": str(ui_metrics_port), "PHOENIX_EMBEDDED_SCHEDULER": "0"},
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT))
        base = f"http://127.0.0.1:{api_port}"
        # 2 shared cores: a cold start of the API can take half a minute
        _wait("the API to answer /readyz", lambda: _answers(f"{base}/readyz") or procs[0].poll() is not None, 90, log)
        assert procs[0].poll() is None, log.read_text()[-3000:]
        started = time.time()
        with httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {token}"}) as http:
            exp = http.post("/api/v1/experiments", json={
                "name": "dashboards", "baseline": "process-baseline-v1", "candidate": "process-topk-v1",
                "duration_s": 24, "interval_s": 1, "load": {"name": "none"}})
            assert exp.status_code == 201, exp.text
            eid = exp.json()["id"]

            def state() -> str:
                return str(http.get(f"/api/v1/experiments/{eid}").json()["state"])

            _wait("the experiment to run", lambda: state() == "Running", 60, log)
            _drive_api(http, grpc_port, token)
            victims = _pids_of(tmp, eid, "candidate")
            assert victims, "no candidate collector process found"
            # A crash: the runtime restarts the collectors (new ports; the file_sd follows).
            os.kill(victims[0], signal.SIGKILL)
            _wait("the collectors to be restarted", lambda: (p := _pids_of(tmp, eid, "candidate")) and
                  p[0] not in victims, 45, log)  # fmt: skip
            _wait("the analysis", lambda: state() in ("Completed", "Failed", "Cancelled"), 90, log)
            assert state() == "Completed", http.get(f"/api/v1/experiments/{eid}").text
            promoted = http.post(f"/api/v1/experiments/{eid}/promote",
                                 json={"force": True, "reason": "dashboards integration test"})
            assert promoted.status_code == 200, promoted.text
            _drive_api(http, grpc_port, token)
            # the UI started with the rest and is long up by now
            _wait("the UI to answer", lambda: _answers(f"http://127.0.0.1:{ui_port}/_stcore/health"), 90, log)
            _open_ui(f"http://127.0.0.1:{ui_port}/")
        time.sleep(4)  # a few more scrapes and rule evaluations after the last event
        yield Run(prom, eid, started, time.time())
    finally:
        sd.stop.set()
        for proc in reversed(procs):
            _stop(proc)
        # The promoted pipeline's standing collector outlives Phoenix by design (production keeps
        # reporting while Phoenix restarts); this one belongs to the test, so it goes too.
        for pid in _pids_with_env("PHOENIX_DATA_DIR", str(tmp)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for cfg in tmp.glob("otelcol-*.yaml"):  # the runtime stops its collectors; make sure, whatever happened
            for pid in _pids_running(str(cfg)):
                with contextlib.suppress(ProcessLookupError):  # it may end on its own meanwhile
                    os.kill(pid, signal.SIGKILL)
        prom.stop()


def unfed_instruments() -> dict[str, str]:
    """Series names of Phoenix instruments no runtime module updates (name → instrument)."""
    from prometheus_client.metrics import MetricWrapperBase

    from core.observability import metrics

    sources = [p.read_text(encoding="utf-8") for pkg in ("core", "app", "pages") for p in (ROOT / pkg).rglob("*.py")
               if p != ROOT / "core" / "observability" / "metrics.py"]  # fmt: skip
    feeders = {"BUILD_INFO": "mark_process"}  # set inside metrics.py by the helper the entry points call
    unfed: dict[str, str] = {}
    for attr, inst in vars(metrics).items():
        used_as = feeders.get(attr, attr)
        if isinstance(inst, MetricWrapperBase) and not any(used_as in text for text in sources):
            for suffix in ("", "_total", "_bucket", "_sum", "_count"):
                unfed[inst._name + suffix] = attr  # noqa: SLF001 - prometheus_client keeps it private
    return unfed


#: Phoenix series that a healthy run has none of: the UI's error counter has a series only
#: once a page showed an error (its panel is name-checked, not data-checked).
PHOENIX_ONLY_AFTER_FAILURE = {"phoenix_ui_errors_total"}


def _fed(query: PanelQuery) -> bool:
    absent_when_healthy = set(unfed_instruments()) | only_after_failure() | PHOENIX_ONLY_AFTER_FAILURE
    return not any(sel.name in absent_when_healthy for sel in selected_metrics(substitute(query.expr)))


def test_every_instrument_is_updated_somewhere() -> None:
    """An instrument no code updates would be a panel that is only name-checked: there are none."""
    assert unfed_instruments() == {}, unfed_instruments()


def _range_query(run: Run, expr: str) -> list[Any]:
    return run.prometheus.api("query_range", query=expr, start=f"{run.started - 5:.3f}", end=f"{run.ended:.3f}",
                              step="1")["result"]


def _filled(query: PanelQuery, run: Run) -> str:
    return substitute(query.expr, {"__rate_interval": "5s", "experiment": run.experiment_id, "variant": ".*",
                                   "price_per_series": "0.008"})


def test_every_dashboard_query_returns_data(run: Run) -> None:
    empty = [f"{q.where()}\n    as run: {_filled(q, run)}" for q in panel_queries()
             if _fed(q) and not _range_query(run, _filled(q, run))]
    assert not empty, f"{len(empty)} dashboard queries returned no data:\n" + "\n".join(empty)


def test_every_metric_name_a_dashboard_uses_exists(run: Run) -> None:
    import re

    names = set(run.prometheus.api("label/__name__/values"))
    missing = []
    for q in filter(_fed, panel_queries()):
        for sel in selected_metrics(_filled(q, run)):
            if not (any(re.fullmatch(sel.name, n) for n in names) if sel.regex else sel.name in names):
                missing.append(f"{sel.name}  ({q.where()})")
    assert not missing, "metric names no series has:\n" + "\n".join(missing)


def test_the_rules_load_and_the_promotion_alert_fires(run: Run) -> None:
    groups = run.prometheus.api("rules")["groups"]
    rules = {r["name"]: r for g in groups for r in g["rules"]}
    assert {"PhoenixDown", "PhoenixPromotionDone", "phoenix:process_series:count"} <= set(rules)
    bad = {name: r.get("lastError") for name, r in rules.items() if r.get("health") != "ok"}
    assert not bad, bad
    assert rules["PhoenixPromotionDone"]["state"] == "firing", rules["PhoenixPromotionDone"]
    assert rules["PhoenixDown"]["state"] == "inactive"  # everything Phoenix runs was up


def test_the_analysis_reader_reads_real_collectors(run: Run) -> None:
    """The real collector writes its counters without ``_total``: the reader's CPU figure and
    run totals must still find them (they read the emulator's ``_total`` names too)."""
    from datetime import UTC, datetime

    from core.analysis.prometheus_reader import PrometheusReader, queries

    reader = PrometheusReader(run.prometheus.url)
    start, end = (datetime.fromtimestamp(t, UTC) for t in (run.started, run.ended))
    totals = reader.counter_totals(run.experiment_id, start, end)
    for variant in ("baseline", "candidate"):
        assert totals.get(variant, {}).get("sent_points", 0) > 0, totals
        assert totals.get(variant, {}).get("accepted_points", 0) > 0, totals
    # The CPU query alone: read_samples also needs the measuring wrapper's interval stamps,
    # which raw collectors do not serve.
    cpu = _range_query(run, queries(run.experiment_id, 1.0, 4.0)["collector_cpu_pct"])
    assert {r["metric"].get("phoenix_variant") for r in cpu} >= {"baseline", "candidate"}, cpu
