"""``phoenix collector --production``: the promoted pipeline as this host's standing collector."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from core.gitops import GitRepo
from core.runtime.production import ProductionSupervisor, is_production_collector
from core.store.migrate import upgrade
from core.store.uow import Database
from tests.usecases import promote

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def db(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'phoenix.db'}"
    upgrade(url)
    d = Database(url)
    yield d
    d.dispose()


def _env(db: Database, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "PHOENIX_DATABASE_URL": db.url, "PHOENIX_DATA_DIR": str(tmp_path),
            "PHOENIX_RUNTIME": "memory"}  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _promoted(db: Database, tmp_path: Path) -> str:
    from core.domain.experiment import Experiment

    exp = Experiment.create(name="win", baseline="process-baseline-v1", candidate="process-topk-v1")
    for step in (exp.start, exp.mark_running, exp.begin_analysis):
        step("test")
    exp.complete({"verdict": "PROMOTE", "reasons": []}, "test")
    with db.uow() as uow:
        uow.experiments.add(exp)
        uow.commit()
    promote(db.uow, GitRepo(tmp_path / "gitops"), exp.id, actor="alice")
    return exp.id


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.read().decode()
    except OSError:
        return None


def _wait_for(pred, timeout: float = 30.0):  # noqa: ANN001, ANN202
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = pred()
        if got:
            return got
        time.sleep(0.2)
    return pred()


def test_serves_the_promoted_pipeline_until_sigterm(db: Database, tmp_path: Path) -> None:
    _promoted(db, tmp_path)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "core.cli", "collector", "--production", "--port", str(port),
                             "--interval", "1s"], cwd=ROOT, env=_env(db, tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        # Wait for two intervals: the second one has utilisation and the counters have moved.
        body = _wait_for(lambda: (b := _get(url)) and "process_cpu_time_seconds_total" in b
                         and 'phoenix_processes_seen' in b and b, timeout=40)  # fmt: skip
        assert body, proc.stderr.read() if proc.poll() is not None else "no series served"
        series = [ln for ln in body.splitlines() if ln.startswith("process_")]
        assert series and all('phoenix_pipeline="process-topk-v1"' in ln for ln in series)
        assert "phoenix_experiment_id" not in body and "phoenix_variant" not in body
        assert 'process_executable_name="' in body and 'host_name="' in body
        accepted = next(ln for ln in body.splitlines() if ln.startswith("otelcol_receiver_accepted_metric_points_total"))
        assert float(accepted.rsplit(" ", 1)[1]) > 0
        assert _get(f"http://127.0.0.1:{port}/healthz") == "ok\n"
        with db.uow() as uow:
            (row,) = uow.processes.list(owner_ref="production")
        assert (row.pid, row.port, row.status, row.role) == (proc.pid, port, "running", "production")
        assert is_production_collector(proc.pid)

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "serving http://127.0.0.1:" in proc.stderr.read()
    assert not Path(f"/proc/{proc.pid}").exists() and _get(url) is None
    with db.uow() as uow:
        (row,) = uow.processes.list(owner_ref="production")
    assert row.status == "stopped"


def test_without_a_promotion_it_says_so(db: Database, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "core.cli", "collector", "--production"], cwd=ROOT,
                          env=_env(db, tmp_path), capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "no pipeline has been promoted to production" in proc.stderr


def test_supervisor_starts_once_and_stops(db: Database, tmp_path: Path) -> None:
    _promoted(db, tmp_path)
    sup = ProductionSupervisor(db.uow, data_dir=tmp_path, database_url=db.url)
    port = _free_port()
    pid = sup.start(port, interval_s=1.0)
    try:
        assert _wait_for(lambda: _get(f"http://127.0.0.1:{port}/healthz") == "ok\n", timeout=40)
        assert _wait_for(lambda: sup.running_pids() == [pid])
        assert sup.start(port) == pid  # idempotent: one standing collector per host
        assert sup.stop() == 1
    finally:
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)
    assert not is_production_collector(pid) and sup.running_pids() == []
    with db.uow() as uow:
        assert [r.status for r in uow.processes.list(owner_ref="production")] == ["stopped"]


def test_standing_scheduler_runs_and_replaces_the_promoted_collector(db: Database, tmp_path: Path) -> None:
    """The deployer, driven by a long-running scheduler, keeps the standing collector in line
    with the promotion record: started once, left alone, restarted for a newer promotion."""
    from core.runtime.local import LocalDeployer
    from core.runtime.memory import InMemoryAnalyzer
    from core.scheduler import Scheduler

    deployer = LocalDeployer(db.uow, data_dir=tmp_path, database_url=db.url)
    port = _free_port()
    sched = Scheduler(db.uow, deployer, InMemoryAnalyzer(), production_port=port)
    assert sched.run_once().actions == []  # nothing promoted: nothing started
    _promoted(db, tmp_path)
    pids: list[int] = []
    try:
        assert ("production", "standing collector started") in sched.run_once().actions
        # the child is recognised once it has exec'd (its cmdline): a moment after Popen on a busy host
        assert _wait_for(lambda: deployer._production._serving().get("pid"), timeout=20)
        first = deployer._production._serving()["pid"]
        pids.append(first)
        assert _wait_for(lambda: _get(f"http://127.0.0.1:{port}/healthz") == "ok\n", timeout=40)
        assert sched.run_once().actions == []  # up to date: idempotent
        assert deployer._production._serving()["pid"] == first

        _promoted(db, tmp_path)  # a newer winner replaces production
        assert ("production", "standing collector restarted") in sched.run_once().actions
        assert _wait_for(lambda: deployer._production._serving().get("pid"), timeout=20)
        second = deployer._production._serving()["pid"]
        pids.append(second)
        assert second != first and not is_production_collector(first)
        assert _wait_for(lambda: _get(f"http://127.0.0.1:{port}/healthz") == "ok\n", timeout=40)
    finally:
        deployer._production.stop()
        for pid in pids:
            if Path(f"/proc/{pid}").exists() and is_production_collector(pid):
                os.kill(pid, signal.SIGKILL)
    assert not any(is_production_collector(p) for p in pids)


def test_one_off_scheduler_leaves_production_alone(db: Database, tmp_path: Path) -> None:
    from core.runtime.local import LocalDeployer
    from core.runtime.memory import InMemoryAnalyzer
    from core.scheduler import Scheduler

    _promoted(db, tmp_path)
    deployer = LocalDeployer(db.uow, data_dir=tmp_path, database_url=db.url)
    Scheduler(db.uow, deployer, InMemoryAnalyzer()).run_once()
    assert deployer._production is None
