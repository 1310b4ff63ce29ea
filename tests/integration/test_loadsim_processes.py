"""The load simulator starts real, realistically named processes and never leaves any behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.runtime.loadsim import (
    WORKER_FILE,
    LoadLimits,
    LoadSimulator,
    ProcessPattern,
    cleanup_leftovers,
    group_members,
    leftover_pids,
)

SMALL = [
    ProcessPattern("nginx", 2, cpu_pct=0.2, memory_mb=2),
    ProcessPattern("postgres", 2, cpu_pct=0.2, memory_mb=2, cpu_pattern="spiky"),
    ProcessPattern("redis-server", 1, cpu_pct=0.2, memory_mb=2),
    ProcessPattern("python-app", 1, cpu_pct=0.2, memory_mb=2, cpu_pattern="random"),
]


def _workers() -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if str(WORKER_FILE).encode() in (d / "cmdline").read_bytes():
                    out.append(int(d.name))
            except OSError:
                pass
    return out


def _wait_for(pred, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def _comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


@pytest.fixture(autouse=True)
def _no_leftovers():
    before = set(_workers())
    yield
    assert _wait_for(lambda: not (set(_workers()) - before), 5), "worker processes left behind"


def test_names_in_proc_comm_one_group_and_cleanup_on_completion(tmp_path):
    status = tmp_path / "status.json"
    sim = LoadSimulator(SMALL, duration_s=30, status_path=status)
    try:
        sim.start()
        assert _wait_for(lambda: sim.step().live == 6)
        pids = sim.pids()
        comms = sorted(_comm(p) for p in pids)
        assert comms == ["nginx", "nginx", "postgres", "postgres", "python-app", "redis-server"]
        # one process group, anchored by the sleeper, not our own group
        pgids = {os.getpgid(p) for p in pids}
        assert pgids == {sim.status.pgid} and sim.status.pgid != os.getpgid(0)
        st = json.loads(status.read_text())
        assert st["state"] == "running" and st["live"] == 6 and st["names"]["postgres"] == 2
        assert sorted(leftover_pids(st["run_dir"], st["pgid"])) == sorted([*pids, sim.status.pgid])
    finally:
        sim.stop("completed")
    assert group_members(sim.status.pgid) == []
    assert json.loads(status.read_text())["state"] == "completed"
    assert not Path(sim.status.run_dir).exists()


def test_duration_ends_run_and_churn_replaces_processes(tmp_path):
    pats = [
        ProcessPattern("short-job-{i}", 2, lifetime_s=1.0, cpu_pct=0.1, memory_mb=1),
        ProcessPattern("cron-task", 2, churn_rate=2.0, cpu_pct=0.1, memory_mb=1),
    ]
    sim = LoadSimulator(pats, duration_s=3.5, limits=LoadLimits(max_processes=10))
    st = sim.run()
    assert st.state == "completed" and st.live == 0
    assert st.exited_total >= 4  # lifetimes of 1 s refilled within 3.5 s
    assert st.killed_by_churn >= 3
    assert st.spawned_total >= 4 + st.exited_total - 4


def test_cli_sigterm_cancels_and_kills_everything(tmp_path):
    status = tmp_path / "s.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "loadsim", "run", "--profile", "custom", "--patterns",
         str(_patterns_file(tmp_path)), "--duration", "60s", "--status-file", str(status), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert _wait_for(lambda: status.exists() and json.loads(status.read_text())["live"] == 3, 20)
        pgid = json.loads(status.read_text())["pgid"]
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert json.loads(out)["state"] == "cancelled"
    assert group_members(pgid) == []


def test_sigkill_of_simulator_children_die_and_cleanup_finds_nothing(tmp_path):
    status = tmp_path / "s.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "loadsim", "run", "--profile", "custom", "--patterns",
         str(_patterns_file(tmp_path)), "--duration", "60s", "--status-file", str(status)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert _wait_for(lambda: status.exists() and json.loads(status.read_text())["live"] == 3, 20)
        st = json.loads(status.read_text())
        proc.kill()
        proc.wait(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
    # workers notice their parent is gone (death signal / getppid check)
    assert _wait_for(lambda: leftover_pids(st["run_dir"], st["pgid"]) == [], 5)
    assert cleanup_leftovers(status) == 0


def test_cleanup_leftovers_kills_a_recorded_run_by_cmdline(tmp_path):
    status = tmp_path / "s.json"
    sim = LoadSimulator(SMALL[:2], duration_s=30, status_path=status)
    try:
        sim.start()
        assert _wait_for(lambda: sim.step().live == 4)
        # as if this run belonged to a dead process: forced cleanup from the status file alone
        killed = cleanup_leftovers(status, force=True)
        assert killed == 5  # four workers + the group anchor
        assert _wait_for(lambda: group_members(sim.status.pgid) == [], 5)
    finally:
        sim.stop("cancelled")


def test_cleanup_of_missing_or_foreign_status_is_harmless(tmp_path):
    assert cleanup_leftovers(tmp_path / "missing.json") == 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"run_dir": "/tmp/not-a-run", "pgid": os.getpgid(0), "pid": 1}))
    assert cleanup_leftovers(bad, force=True) == 0  # our own group has no worker of that run
    assert os.getpgid(0)  # still alive


def _patterns_file(tmp_path: Path) -> Path:
    f = tmp_path / "patterns.json"
    f.write_text(json.dumps([{"name_template": "svc-{i}", "count": 3, "cpu_pct": 0.1, "memory_mb": 1}]))
    return f
