"""/proc facts the supervisors rely on before signalling a stored PID."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from core.runtime.procs import cmdline, is_running, pid_alive


def test_self_is_alive_running_and_has_its_argv():
    assert pid_alive(os.getpid()) and is_running(os.getpid())
    assert cmdline(os.getpid())[0].endswith(("python", "python3")) or "python" in cmdline(os.getpid())[0]


def test_a_zombie_is_alive_but_not_running_and_a_reaped_pid_is_neither():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while is_running(child.pid) and time.monotonic() < deadline:
        time.sleep(0.05)  # exited but not yet reaped: a zombie
    assert pid_alive(child.pid) and not is_running(child.pid)
    child.wait()
    assert not pid_alive(child.pid) and cmdline(child.pid) == []


def test_stopping_an_experiment_collector_by_pid_leaves_no_zombie():
    from core.runtime.local import stop_pid

    # a child whose argv reads as one of exp-zombie's collectors, stopped by PID only (as after adoption)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "collector", "--experiment",
                              "exp-zombie"])
    try:
        deadline = time.monotonic() + 10
        while cmdline(child.pid)[-1:] != ["exp-zombie"] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert stop_pid(child.pid, "exp-zombie", timeout=5)
        assert not pid_alive(child.pid), "stopped, but left as a zombie of this process"
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
