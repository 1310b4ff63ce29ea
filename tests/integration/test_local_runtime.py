"""Experiments on this host, for real: collector child, load, both endpoints, Prometheus, verdict."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from core.analysis.analyzer import ExperimentAnalyzer
from core.analysis.prometheus_reader import PrometheusReader
from core.analysis.verdict import analyze_samples
from core.domain.criteria import LoadProfile, SuccessCriteria, Timing
from core.domain.experiment import Experiment, State
from core.domain.samples import MeasurementSample
from core.runtime import local as local_runtime
from core.runtime.collector import identical_input
from core.runtime.loadsim import WORKER_FILE
from core.runtime.local import LocalDeployer, is_collector_of, otelcol_argv
from core.scheduler import Scheduler
from core.store.migrate import upgrade
from core.store.uow import Database
from tests.integration.prometheus_harness import RealPrometheus

pytestmark = pytest.mark.slow


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'phoenix.db'}"
    upgrade(url)
    d = Database(url)
    yield d
    d.dispose()


def _workers() -> set[int]:
    out = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if str(WORKER_FILE).encode() in (d / "cmdline").read_bytes():
                    out.add(int(d.name))
            except OSError:
                pass
    return out


def _wait(pred, timeout=15.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.2)
    return pred()


def _new(db, duration=24.0, interval=2.0, load="realistic", candidate="process-topk-v1") -> Experiment:
    exp = Experiment.create(
        name="local", baseline="process-baseline-v1", candidate=candidate, timing=Timing(duration, interval),
        load=LoadProfile(load, params={"scale": 0.5}) if load != "none" else LoadProfile("none"),
        criteria=SuccessCriteria(min_series_reduction_pct=10, min_samples=5),
    )  # fmt: skip
    with db.uow() as u:
        u.experiments.add(exp)
        u.commit()
    return exp


def _get(db, eid) -> Experiment:
    with db.uow() as u:
        return u.experiments.get(eid)


def _pids(db, eid) -> set[int]:
    with db.uow() as u:
        return {p.pid for p in u.processes.list(owner_ref=eid)}


def _ports(db, eid) -> dict[str, int]:
    with db.uow() as u:
        return {p.role: p.port for p in u.processes.list(owner_ref=eid) if p.status == "running"}


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode()


def test_experiment_end_to_end_with_real_prometheus(db, tmp_path):
    before = _workers()
    exp = _new(db, duration=36.0)  # ~40 s with start-up, 18 intervals
    dep = LocalDeployer(db.uow, data_dir=tmp_path, database_url=db.url)
    sch = Scheduler(db.uow, dep, ExperimentAnalyzer(), interval_s=0.5, lease_s=10)
    prom = None
    scraped: dict[str, str] = {}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            sch.run_once()
            e = _get(db, exp.id)
            if e.state == State.RUNNING and prom is None:
                ports = _ports(db, exp.id)
                prom = RealPrometheus([f"127.0.0.1:{p}" for p in ports.values()]).start()
                prom.wait_targets_up()
            if e.state == State.RUNNING and len(scraped) < 2 and _wait(lambda: True):
                for v, p in _ports(db, exp.id).items():
                    body = _scrape(p)
                    if "process_cpu_time_seconds_total{" in body:
                        scraped[v] = body
            if e.is_terminal:
                break
            time.sleep(0.5)
        e = _get(db, exp.id)
        assert e.state == State.COMPLETED, e.error
        with db.uow() as u:
            samples = u.samples.list(exp.id)
        if prom is not None:
            start = min(s.t for s in samples)
            end = max(s.t for s in samples)
            from datetime import timedelta

            prom_samples = PrometheusReader(prom.url).read_samples(exp.id, start - timedelta(seconds=2),
                                                                   end + timedelta(seconds=2), 2.0)  # fmt: skip
    finally:
        if prom is not None:
            prom.stop()
        dep.teardown(exp)

    # both endpoints were served and scraped while running, each with its own label
    assert set(scraped) == {"baseline", "candidate"}
    assert 'phoenix_variant="baseline"' in scraped["baseline"] and 'phoenix_variant="candidate"' in scraped["candidate"]
    assert f'phoenix_experiment_id="{exp.id}"' in scraped["candidate"]
    assert "otelcol_processor_incoming_items_total{" in scraped["candidate"]
    assert 'process_executable_name="nginx"' in scraped["baseline"]  # the load is visible
    # identical input, topk reduces, critical coverage full
    assert len(samples) >= 2 * 8
    assert identical_input(samples)
    r = e.result
    assert r["identical_input"] is True
    assert r["series_reduction_pct"] > 0
    assert r["critical_coverage_pct"] == 100.0
    assert r["verdict"] in {"PROMOTE", "REJECT", "INCONCLUSIVE"} and r["reasons"]
    # the real-Prometheus path agrees with the database path within 1 %
    seen = {s["t"] for s in prom_samples}
    assert len(seen) >= 6
    db_r = analyze_samples([s for s in samples if s.t in seen], e.criteria, interval_s=2.0)
    pr_r = analyze_samples(prom_samples, e.criteria, interval_s=2.0)
    assert pr_r["series_reduction_pct"] == pytest.approx(db_r["series_reduction_pct"], rel=0.01)
    assert pr_r["bytes_reduction_pct"] == pytest.approx(db_r["bytes_reduction_pct"], rel=0.01)
    # nothing left behind
    assert all(not is_collector_of(pid, exp.id) for pid in _pids(db, exp.id))
    assert _wait(lambda: not (_workers() - before), 10)


def test_cancel_during_running_leaves_nothing(db, tmp_path):
    before = _workers()
    exp = _new(db, duration=120)
    dep = LocalDeployer(db.uow, data_dir=tmp_path, database_url=db.url)
    sch = Scheduler(db.uow, dep, ExperimentAnalyzer(), interval_s=0.5, lease_s=10)
    try:
        assert _wait(lambda: (sch.run_once(), _get(db, exp.id).state == State.RUNNING)[1], 60)
        assert _wait(lambda: bool(_workers() - before), 15)  # load is running
        pid = next(iter(_pids(db, exp.id)))
        assert is_collector_of(pid, exp.id)
        with db.uow() as u:
            e = u.experiments.get(exp.id)
            e.cancel("tester", "changed my mind")
            u.experiments.save(e)
            u.commit()
        assert _wait(lambda: (sch.run_once(), not is_collector_of(pid, exp.id))[1], 30)
    finally:
        dep.teardown(exp)
    assert _get(db, exp.id).state == State.CANCELLED
    assert _wait(lambda: not (_workers() - before), 10)


RUNNER = """
import sys, time
from pathlib import Path
from core.store.uow import Database
from core.runtime.local import LocalDeployer
db = Database(sys.argv[1])
with db.uow() as u:
    exp = u.experiments.get(sys.argv[2])
LocalDeployer(db.uow, data_dir=Path(sys.argv[3]), database_url=sys.argv[1]).deploy(exp)
print("deployed", flush=True)
time.sleep(600)
"""


def test_sigkill_of_runner_then_restart_cleans_orphans(db, tmp_path):
    before = _workers()
    exp = _new(db, duration=120)
    with db.uow() as u:
        e = u.experiments.get(exp.id)
        e.start("tester")
        u.experiments.save(e)
        u.commit()
    runner = subprocess.Popen([sys.executable, "-c", RUNNER, db.url, exp.id, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert runner.stdout.readline().strip() == "deployed"
        (orphan,) = _pids(db, exp.id)
        assert _wait(lambda: is_collector_of(orphan, exp.id), 10)
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=10)
        time.sleep(1)
        assert is_collector_of(orphan, exp.id)  # the child outlived its runner: an orphan
        # restart: a new deployer finds the stored PID, verifies its cmdline, kills it, redeploys
        dep = LocalDeployer(db.uow, data_dir=tmp_path, database_url=db.url)
        killed = dep.cleanup_orphans(exp)
        assert killed == 1
        assert _wait(lambda: not is_collector_of(orphan, exp.id), 15)
        info = dep.deploy(exp)
        assert info["pids"][0] != orphan and is_collector_of(info["pids"][0], exp.id)
        dep.teardown(exp)
        assert _wait(lambda: not is_collector_of(info["pids"][0], exp.id), 15)
        with db.uow() as u:
            assert any(a.action == "collector.orphan_killed" for a in u.audit.list(subject=exp.id))
    finally:
        if runner.poll() is None:
            runner.kill()
        for pid in _pids(db, exp.id):
            if is_collector_of(pid, exp.id):
                os.kill(pid, signal.SIGKILL)
    assert _wait(lambda: not (_workers() - before), 10)


def _collectors_running() -> float:
    return REGISTRY.get_sample_value("phoenix_collectors_running", {"runtime": "local"}) or 0.0


def _restarts(eid: str, variant: str) -> float | None:
    return REGISTRY.get_sample_value("phoenix_collector_restarts_total",
                                     {"phoenix_experiment_id": eid, "phoenix_variant": variant})


def test_crashed_collector_is_restarted_with_backoff_recorded_and_counted(db, tmp_path, monkeypatch):
    exp = _new(db, duration=120, load="none")
    with db.uow() as u:
        e = u.experiments.get(exp.id)
        e.start("tester")
        u.experiments.save(e)
        u.commit()
    dep = LocalDeployer(db.uow, data_dir=tmp_path, database_url=db.url, backoff_s=0.2, max_restarts=1)
    before = _collectors_running()
    try:
        first = dep.deploy(exp)["pids"][0]
        assert _wait(lambda: dep.is_ready(exp), 30)
        assert dep.deploy(exp)["pids"][0] == first  # idempotent
        assert _collectors_running() == before + 1
        assert _restarts(exp.id, "baseline") is None  # nothing restarted yet: no series at all
        os.kill(first, signal.SIGKILL)
        assert _wait(lambda: not is_collector_of(first, exp.id), 5)
        # a dead (or zombie) collector is not running (once the kernel has finished its exit)
        assert _wait(lambda: _collectors_running() == before, 5)
        from core.domain.errors import TemporaryError

        with pytest.raises(TemporaryError, match="backoff"):
            dep.healthy(exp)
        assert _restarts(exp.id, "baseline") is None  # not before its backoff
        time.sleep(0.3)
        assert dep.healthy(exp) is True  # restarted
        (second,) = {p.pid for p in dep._stored(exp.id)}
        assert second != first and _wait(lambda: dep.is_ready(exp), 30)
        # both variants restart together (identical input): one each
        assert _restarts(exp.id, "baseline") == 1 and _restarts(exp.id, "candidate") == 1
        os.kill(second, signal.SIGKILL)
        assert _wait(lambda: not is_collector_of(second, exp.id), 5)
        assert dep.healthy(exp) is False  # max restarts used up
        assert _restarts(exp.id, "baseline") == 1
        with db.uow() as u:
            crashes = [a for a in u.audit.list(subject=exp.id) if a.action == "collector.crashed"]
        assert len(crashes) >= 2
    finally:
        dep.teardown(exp)
    assert _collectors_running() == before
    # a while after the teardown, its restart counters go (bounded label sets)
    assert _restarts(exp.id, "baseline") == 1
    monkeypatch.setattr(local_runtime, "RESTART_LABELS_KEEP_S", -1.0)
    dep.teardown(exp)
    assert _restarts(exp.id, "baseline") is None and _restarts(exp.id, "candidate") is None


def test_otelcol_argv_and_unsupported_binary_message(tmp_path):
    assert otelcol_argv("/opt/otelcol-contrib", "/tmp/c.yaml") == ["/opt/otelcol-contrib", "--config=file:/tmp/c.yaml"]
    from core.domain.errors import PermanentError

    with pytest.raises(PermanentError):
        otelcol_argv("", "x")


def test_identical_input_helper():
    from datetime import UTC, datetime

    t = datetime.now(UTC)
    same = [MeasurementSample("e", v, t, 1, 1, 1, processes_seen=5) for v in ("baseline", "candidate")]
    assert identical_input(same)
    differ = [MeasurementSample("e", "baseline", t, 1, 1, 1, processes_seen=5),
              MeasurementSample("e", "candidate", t, 1, 1, 1, processes_seen=6)]  # fmt: skip
    assert not identical_input(differ)
    assert json.dumps([s.to_dict() for s in same])


@pytest.fixture(scope="module")
def otelcol_bin() -> str:
    from core.otelcol.distribution import build

    return build().path  # the real Phoenix collector (built by `make collector`; built here if absent)


def test_real_collectors_run_as_tap_and_two_variants_with_rendered_configs(db, tmp_path, otelcol_bin):
    import yaml

    exp = _new(db, duration=60, load="none")
    dep = LocalDeployer(db.uow, data_dir=tmp_path, database_url=db.url, otelcol_bin=otelcol_bin)
    try:
        info = dep.deploy(exp)
        assert info["runtime"] == "local-otelcol" and len(set(info["pids"])) == 3
        assert set(info["configs"]) == {"tap", "baseline", "candidate"}
        confs = {role: yaml.safe_load(Path(cfg).read_text()) for role, cfg in info["configs"].items()}
        for cfg in info["configs"].values():
            assert cmdline_has(info["pids"], f"--config=file:{cfg}")
        tap = confs["tap"]
        assert list(tap["receivers"]) == ["hostmetrics"]
        for variant in ("baseline", "candidate"):
            conf = confs[variant]
            assert list(conf["receivers"]) == ["otlp"]  # its only input is the tap
            listen = conf["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
            assert tap["exporters"][f"otlp/{variant}"]["endpoint"] == listen
            endpoints = [c.get("endpoint") for k, c in conf["exporters"].items() if k.startswith("prometheus")]
            assert f"127.0.0.1:{info['ports'][variant]}" in endpoints
        assert set(tap["service"]["pipelines"]["metrics"]["exporters"]) == {
            "otlp/baseline", "otlp/candidate", "prometheus/input"}
        assert all(is_collector_of(p, exp.id) for p in info["pids"])
        assert _wait(lambda: dep.is_ready(exp), 30)
        assert dep.healthy(exp)
        assert dep.deploy(exp)["pids"][0] in info["pids"]  # idempotent
    finally:
        dep.teardown(exp)
    assert _wait(lambda: not any(is_collector_of(p, exp.id) for p in info["pids"]), 10)


def cmdline_has(pids, arg) -> bool:
    from core.runtime.local import cmdline

    return any(arg in cmdline(p) for p in pids)


def test_real_collectors_measured_with_identical_input(db, tmp_path, otelcol_bin):
    """Tap + baseline + candidate on the real binary → a measured, completed run."""
    exp = _new(db, duration=16.0, load="none")
    dep = LocalDeployer(db.uow, data_dir=tmp_path, database_url=db.url, otelcol_bin=otelcol_bin)
    sch = Scheduler(db.uow, dep, ExperimentAnalyzer(), interval_s=0.5, lease_s=10)
    try:
        assert _wait(lambda: (sch.run_once(), _get(db, exp.id).is_terminal)[1], 60)
        with db.uow() as u:
            procs = u.processes.list(owner_ref=exp.id)
    finally:
        dep.teardown(exp)
    e = _get(db, exp.id)
    assert e.state == State.COMPLETED, e.error
    assert {p.role for p in procs} == {"tap", "baseline", "candidate", "measurer"}
    with db.uow() as u:
        samples = u.samples.list(exp.id)
    by = {v: [s for s in samples if s.variant == v] for v in ("baseline", "candidate")}
    assert len(by["baseline"]) >= 5 and len(by["baseline"]) == len(by["candidate"])
    assert identical_input(samples)  # both read the tap's one input
    for b, c in zip(by["baseline"], by["candidate"], strict=True):
        assert b.processes_seen == c.processes_seen > 10
        # baseline exports every process's default series: ~7 each (fewer where /proc/PID/io is closed)
        assert 3 * b.processes_seen <= b.series <= 8 * b.processes_seen
        assert c.series < b.series  # top-K keeps critical + K per host and rolls up the rest
        for s in (b, c):
            assert s.bytes > 100 * s.series and s.datapoints == s.series
            assert s.collector_rss_mb is not None and 5 < s.collector_rss_mb < 500  # the real process's own RSS
            assert s.critical_coverage_pct == 100.0
    assert all(s.collector_cpu_pct is not None and s.collector_cpu_pct >= 0 for s in samples[2:])
    assert e.result["samples"] == {v: len(by[v]) for v in by}  # the verdict was computed on these samples
    assert e.result["critical_coverage_pct"] == 100.0
    assert not any(is_collector_of(p.pid, exp.id) for p in procs)


def test_stable_pids_judges_only_old_living_processes():
    from core.runtime.scrape_measure import stable_pids

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    now = time.time()
    assert stable_pids([os.getpid(), child.pid], born_before=now) == {os.getpid()}  # the child is gone
    assert stable_pids([os.getpid()], born_before=now - 3600 * 24 * 365 * 50) == set()  # too young
