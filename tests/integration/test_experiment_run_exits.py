"""``phoenix experiment run --wait`` leaves no process behind however it exits, and drives only its own experiment.

One test per way out — normal completion, Ctrl-C (SIGINT to the command's process group, as
a terminal sends it), SIGTERM, SIGKILL — each checking afterwards, by every handle there is,
that nothing of the run is left: the PIDs stored for the experiment, the sessions those
collectors lead (their load workers live in them), the load simulator's process group and
private directory, and any command line mentioning the experiment id.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from core.domain.experiment import State
from core.runtime.loadsim import group_members, leftover_pids
from core.runtime.local import LocalDeployer
from core.runtime.memory import InMemoryAnalyzer, InMemoryDeployer
from core.runtime.procs import cmdline, is_running, session_members
from core.scheduler import Scheduler
from core.services.experiments import ExperimentService
from core.store.migrate import upgrade
from core.store.uow import Database
from tests.actors import admin, store_account

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'phoenix.db'}"
    store_account(url, admin("runner"))  # the CLI acts as a stored account (PHOENIX_USER below)
    return {**os.environ, "PHOENIX_DATABASE_URL": url, "PHOENIX_USER": "runner", "PHOENIX_RUNTIME": "local",
            "PHOENIX_DATA_DIR": str(tmp_path), "PHOENIX_GITOPS_REPO": str(tmp_path / "gitops"),
            "PHOENIX_SCHEDULER_INTERVAL": "1", "PHOENIX_PROMETHEUS_URL": "", **extra}  # fmt: skip


def _argv(duration: str, load: str) -> list[str]:
    return [sys.executable, "-m", "core.cli", "experiment", "run", "--duration", duration, "--interval", "1s",
            "--baseline", "process-baseline-v1", "--candidate", "process-topk-v1", "--load", load,
            "--min-samples", "3", "--wait", "--json"]  # fmt: skip


def _procs_mentioning(text: str) -> list[int]:
    return [int(d.name) for d in Path("/proc").iterdir()
            if d.name.isdigit() and int(d.name) != os.getpid() and is_running(int(d.name))
            and any(text in a for a in cmdline(int(d.name)))]  # fmt: skip


@dataclass
class Seen:
    """What the run had up while it was running (to look for afterwards)."""

    collector_pids: set[int] = field(default_factory=set)
    load_pgid: int | None = None
    load_run_dir: str | None = None
    load_pids: set[int] = field(default_factory=set)


class Run:
    """``experiment run --wait`` as a user starts it: its own process group, stderr read live."""

    def __init__(self, tmp_path: Path, duration: str, load: str, **env: str) -> None:
        self.tmp_path = tmp_path
        self.env = _env(tmp_path, **env)
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(_argv(duration, load), cwd=ROOT, env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
        self.lines: list[str] = []
        self.out: list[str] = []
        self.running = threading.Event()
        self._readers = [threading.Thread(target=self._read, daemon=True),
                         threading.Thread(target=lambda: self.out.extend(self.proc.stdout or ()), daemon=True)]  # fmt: skip
        for t in self._readers:
            t.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            if "Initializing -> Running" in line:
                self.running.set()

    @property
    def eid(self) -> str:
        for line in self.lines:
            m = re.match(r"(exp-[0-9a-f]+):", line)
            if m:
                return m.group(1)
        raise AssertionError("no experiment id on stderr:\n" + "".join(self.lines))

    def db(self) -> Database:
        return Database(self.env["PHOENIX_DATABASE_URL"])

    def wait_running(self, with_load: bool) -> Seen:
        """Until Running with its collector (and, ``with_load``, load workers) up; what is up then."""
        assert self.running.wait(120), "".join(self.lines)
        eid, seen = self.eid, Seen()
        status = self.tmp_path / f"loadsim-{eid}.json"
        end = time.monotonic() + 60
        while time.monotonic() < end:
            db = self.db()
            try:
                with db.uow() as uow:
                    seen.collector_pids = {p.pid for p in uow.processes.list(owner_ref=eid) if p.status == "running"}
            finally:
                db.dispose()
            if with_load and status.exists():
                st = json.loads(status.read_text())
                seen.load_pgid, seen.load_run_dir = st.get("pgid"), st.get("run_dir")
                if seen.load_run_dir:
                    seen.load_pids = set(leftover_pids(seen.load_run_dir))
            if seen.collector_pids and (not with_load or len(seen.load_pids) >= 5):
                break
            time.sleep(0.3)
        assert seen.collector_pids and all(is_running(p) for p in seen.collector_pids), "".join(self.lines)
        assert _procs_mentioning(eid), "the collector should be up while Running"
        if with_load:
            assert seen.load_pgid and len(seen.load_pids) >= 5, "load workers should be up while Running"
            assert set(group_members(seen.load_pgid)) >= seen.load_pids
        # the collectors lead their own sessions; the load workers live in them
        assert set(session_members(seen.collector_pids)) >= seen.load_pids | seen.collector_pids
        return seen

    def finish(self, timeout: float = 90) -> str:
        try:
            self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        for t in self._readers:
            t.join(5)
        return "".join(self.out)

    def elapsed(self) -> float:
        return time.monotonic() - self.t0


def _left(eid: str, seen: Seen, tmp_path: Path) -> dict[str, list[int]]:
    """Every process of the run that is still alive, by each way of finding it."""
    db = Database(_env(tmp_path)["PHOENIX_DATABASE_URL"])
    try:
        with db.uow() as uow:
            stored = {p.pid for p in uow.processes.list(owner_ref=eid)}
    finally:
        db.dispose()
    status = tmp_path / f"loadsim-{eid}.json"
    st = json.loads(status.read_text()) if status.exists() else {}
    run_dirs = {d for d in (seen.load_run_dir, st.get("run_dir")) if d}
    pgids = {g for g in (seen.load_pgid, st.get("pgid")) if g}
    left = {
        "stored pids": sorted(p for p in stored | seen.collector_pids if is_running(p)),
        "collector sessions": sorted(session_members(stored | seen.collector_pids)),
        "load process group": sorted(p for g in pgids for p in group_members(g)),
        "load run dir": sorted(p for d in run_dirs for p in leftover_pids(d)),
        "load workers seen": sorted(p for p in seen.load_pids if is_running(p) and any(
            d in a for d in run_dirs for a in cmdline(p))),  # fmt: skip
        "cmdline mentions": _procs_mentioning(eid),
    }
    return {k: v for k, v in left.items() if v}


def _assert_nothing_left(eid: str, seen: Seen, tmp_path: Path, within: float = 10.0) -> float:
    """Waits (at most ``within`` s) until nothing is left; returns how long that took."""
    t0 = time.monotonic()
    while _left(eid, seen, tmp_path) and time.monotonic() - t0 < within:
        time.sleep(0.1)
    assert _left(eid, seen, tmp_path) == {}
    return time.monotonic() - t0


def _stored(tmp_path: Path, eid: str):  # noqa: ANN202
    db = Database(_env(tmp_path)["PHOENIX_DATABASE_URL"])
    try:
        with db.uow() as uow:
            return uow.experiments.get(eid), uow.processes.list(owner_ref=eid)
    finally:
        db.dispose()


# ---------------------------------------------------------------- one test per way out


def test_normal_completion_leaves_nothing(tmp_path: Path) -> None:
    run = Run(tmp_path, "6s", "realistic")
    seen = run.wait_running(with_load=True)
    out = run.finish()
    assert run.proc.returncode == 0, "".join(run.lines)
    assert json.loads(out)["state"] == "Completed"
    _assert_nothing_left(run.eid, seen, tmp_path, within=2)  # torn down before the command returned
    exp, procs = _stored(tmp_path, run.eid)
    assert exp.state is State.COMPLETED and not exp.deployed and all(p.status == "stopped" for p in procs)


def test_ctrl_c_cancels_and_leaves_nothing(tmp_path: Path) -> None:
    run = Run(tmp_path, "120s", "realistic")
    seen = run.wait_running(with_load=True)
    os.killpg(run.proc.pid, signal.SIGINT)  # what a terminal does on Ctrl-C: the command's process group
    out = run.finish(timeout=60)
    assert run.proc.returncode == 128 + signal.SIGINT, "".join(run.lines)
    assert json.loads(out)["state"] == "Cancelled"
    _assert_nothing_left(run.eid, seen, tmp_path, within=2)
    exp, procs = _stored(tmp_path, run.eid)
    assert exp.state is State.CANCELLED and not exp.deployed and all(p.status == "stopped" for p in procs)


def test_sigterm_cancels_and_leaves_nothing(tmp_path: Path) -> None:
    run = Run(tmp_path, "120s", "none")
    seen = run.wait_running(with_load=False)
    run.proc.send_signal(signal.SIGTERM)
    out = run.finish(timeout=60)
    assert run.proc.returncode == 128 + signal.SIGTERM, "".join(run.lines)
    assert json.loads(out)["state"] == "Cancelled"
    _assert_nothing_left(run.eid, seen, tmp_path, within=2)
    exp, _ = _stored(tmp_path, run.eid)
    assert exp.state is State.CANCELLED and not exp.deployed


def test_sigkill_of_the_command_leaves_nothing_and_nobody_resumes_it(tmp_path: Path) -> None:
    run = Run(tmp_path, "120s", "realistic", PHOENIX_SCHEDULER_LEASE="2")
    seen = run.wait_running(with_load=True)
    run.proc.kill()  # no handler runs: only the kernel's parent-death signal can clean up
    run.finish(timeout=10)
    assert run.proc.returncode == -signal.SIGKILL
    # SIGTERM to the collector → it stops its load group; workers also die with the collector
    took = _assert_nothing_left(run.eid, seen, tmp_path, within=10)
    assert took < 10
    exp, _ = _stored(tmp_path, run.eid)
    assert exp.state is State.RUNNING  # nobody was left to record anything

    # A standing scheduler (the app's) gets the lease once it expires. It must not resume the
    # experiment (restart its collectors for a command that is gone) but fail and tear it down.
    time.sleep(2.5)
    url = run.env["PHOENIX_DATABASE_URL"]
    db = Database(url)
    try:
        sched = Scheduler(db.uow, LocalDeployer(db.uow, data_dir=tmp_path, database_url=url), InMemoryAnalyzer(),
                          interval_s=0.5, lease_s=5)  # fmt: skip
        for _ in range(3):
            sched.run_once()
        with db.uow() as uow:
            exp = uow.experiments.get(run.eid)
        assert exp.state is State.FAILED and "abandoned" in (exp.error or "")
        assert not exp.deployed and not exp.needs_teardown
        sched.shutdown()
    finally:
        db.dispose()
    assert _left(run.eid, seen, tmp_path) == {}


# ---------------------------------------------------------------- others' experiments


def _running_experiment(url: str, *, dry_run: bool, name: str) -> str:
    """A Running experiment as another scheduler left it (its lease released: that scheduler is down)."""
    db = Database(url)
    try:
        svc = ExperimentService(db.uow, dry_run=dry_run)
        exp = svc.create(admin("someone-else"), name=name, baseline="process-baseline-v1", candidate="process-topk-v1", duration_s=3600,
                         interval_s=1)  # fmt: skip
        sched = Scheduler(db.uow, InMemoryDeployer(), InMemoryAnalyzer(), scheduler_id=f"app-{name}",
                          experiment_ids=[exp.id])  # fmt: skip
        while svc.get(admin("someone-else"), exp.id).state is not State.RUNNING:
            sched.run_once()
        sched.shutdown()
    finally:
        db.dispose()
    return exp.id


def test_run_wait_does_not_touch_other_running_experiments(tmp_path: Path) -> None:
    url = _env(tmp_path)["PHOENIX_DATABASE_URL"]
    upgrade(url)
    dry = _running_experiment(url, dry_run=True, name="dry-run-of-the-memory-runtime")
    real = _running_experiment(url, dry_run=False, name="the-apps-local-experiment")
    before = {eid: _stored(tmp_path, eid) for eid in (dry, real)}

    proc = subprocess.run(_argv("4s", "none"), cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["state"] == "Completed"
    assert dry not in proc.stderr and real not in proc.stderr

    db = Database(url)
    try:
        with db.uow() as uow:
            claims = uow.experiments.claims()
            audit = {eid: [a.action for a in uow.audit.list(subject=eid)] for eid in (dry, real)}
    finally:
        db.dispose()
    for eid in (dry, real):
        exp, procs = _stored(tmp_path, eid)
        old, _ = before[eid]
        assert (exp.state, exp.version, len(exp.events), exp.runtime_info) == (
            State.RUNNING, old.version, len(old.events), old.runtime_info)  # fmt: skip
        assert procs == [] and claims[eid] is None and _procs_mentioning(eid) == []
        assert not any(a.startswith("collector.") for a in audit[eid])


# ---------------------------------------------------------------- real collector binaries too

TIED_RUNNER = """
import sys, threading, time
from pathlib import Path
from core.domain.criteria import LoadProfile, Timing
from core.domain.experiment import Experiment
from core.runtime.local import LocalDeployer
from core.store.uow import Database
db = Database(sys.argv[1])
exp = Experiment.create(name="tied", baseline="process-baseline-v1", candidate="process-topk-v1",
                        timing=Timing(120, 1), load=LoadProfile(name="none"))
with db.uow() as u:
    u.experiments.add(exp)
    u.commit()
dep = LocalDeployer(db.uow, data_dir=Path(sys.argv[2]), database_url=sys.argv[1], otelcol_bin=sys.argv[3],
                    tie_children=True)
# deployed from a short-lived thread: the children must not die when it ends, only with us
t = threading.Thread(target=dep.deploy, args=(exp,))
t.start()
t.join()
print(exp.id, flush=True)
time.sleep(600)
"""


def test_tied_real_collectors_and_measurer_die_with_their_parent(tmp_path: Path) -> None:
    url = _env(tmp_path)["PHOENIX_DATABASE_URL"]
    upgrade(url)
    from core.otelcol.distribution import build

    binary = build().path  # the real Phoenix collector (built by `make collector`)
    runner = subprocess.Popen([sys.executable, "-c", TIED_RUNNER, url, str(tmp_path), binary], cwd=ROOT,
                              env=_env(tmp_path), stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert runner.stdout is not None
        eid = runner.stdout.readline().strip()
        _, procs = _stored(tmp_path, eid)
        pids = {p.role: p.pid for p in procs}
        assert set(pids) == {"tap", "baseline", "candidate", "measurer"}
        time.sleep(1.0)  # well after the spawning thread ended
        assert all(is_running(pids[r]) for r in ("tap", "baseline", "candidate"))
        assert any(f"otelcol-{eid}-baseline" in a for a in cmdline(pids["baseline"]))  # exec'd: the real argv
        runner.kill()
        runner.wait(timeout=10)
        end = time.monotonic() + 10
        while (any(is_running(p) for p in pids.values()) or session_members(set(pids.values()))) and (
                time.monotonic() < end):  # fmt: skip
            time.sleep(0.1)
        assert [r for r, p in pids.items() if is_running(p)] == []
        assert session_members(set(pids.values())) == [] and _procs_mentioning(eid) == []
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
