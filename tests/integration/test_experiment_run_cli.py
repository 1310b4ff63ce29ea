"""``phoenix experiment run --wait`` end to end on the local runtime, as a user runs it (subprocess)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.domain.experiment import State
from core.runtime.loadsim import leftover_pids
from core.store.uow import Database
from tests.actors import admin, store_account

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'phoenix.db'}"
    store_account(url, admin("runner"))  # the CLI acts as a stored account (PHOENIX_USER below)
    return {**os.environ, "PHOENIX_DATABASE_URL": url, "PHOENIX_USER": "runner", "PHOENIX_RUNTIME": "local",
            "PHOENIX_DATA_DIR": str(tmp_path), "PHOENIX_GITOPS_REPO": str(tmp_path / "gitops"),
            "PHOENIX_SCHEDULER_INTERVAL": "1", "PHOENIX_PROMETHEUS_URL": ""}  # fmt: skip


def _procs_mentioning(text: str) -> list[int]:
    """Live (non-zombie) processes whose command line contains ``text``."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            if text.encode() not in (d / "cmdline").read_bytes():
                continue
            stat = (d / "stat").read_text()
        except OSError:
            continue
        if stat[stat.rfind(")") + 2] not in "ZX":
            out.append(int(d.name))
    return out


def _no_leftovers(tmp_path: Path, eid: str) -> None:
    deadline = time.monotonic() + 10
    while _procs_mentioning(eid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _procs_mentioning(eid) == []
    status = tmp_path / f"loadsim-{eid}.json"
    if status.exists():  # the load simulator's workers are gone too
        run_dir = json.loads(status.read_text()).get("run_dir")
        assert not run_dir or leftover_pids(run_dir) == []


def test_run_wait_json_completes_with_a_verdict(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "core.cli", "experiment", "run", "--duration", "12s", "--interval", "2s",
         "--baseline", "process-baseline-v1", "--candidate", "process-topk-v1", "--wait", "--json"],
        cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    eid = d["id"]
    assert d["state"] == "Completed" and d["dry_run"] is False
    res = d["result"]
    assert res["verdict"] in {"PROMOTE", "REJECT", "INCONCLUSIVE"}
    assert res["series_reduction_pct"] > 0
    assert res["critical_coverage_pct"] == 100
    assert set(res["samples"]) == {"baseline", "candidate"} and min(res["samples"].values()) >= 3
    assert res["samples"] == d["samples_recorded"]
    assert len(res["reasons"]) >= 2 and any("critical coverage" in r for r in res["reasons"])
    # Progress went to stderr: every transition in order, and samples while running.
    for a, b in (("Pending", "Initializing"), ("Initializing", "Running"), ("Running", "Analyzing"),
                 ("Analyzing", "Completed")):  # fmt: skip
        assert f"{eid}: {a} -> {b}" in proc.stderr
    assert re.search(rf"{eid}: running, [1-9]\d* samples recorded", proc.stderr)
    _no_leftovers(tmp_path, eid)


def test_sigterm_cancels_and_tears_down(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "experiment", "run", "--duration", "90s", "--interval", "2s",
         "--baseline", "process-baseline-v1", "--candidate", "process-topk-v1", "--wait", "--json"],
        cwd=ROOT, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[str] = []
    running = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "Initializing -> Running" in line:
                running.set()

    t = threading.Thread(target=read, daemon=True)
    t.start()
    try:
        assert running.wait(90), "".join(lines)
        eid = re.match(r"(exp-[0-9a-f]+):", lines[0]).group(1)  # type: ignore[union-attr]
        assert _procs_mentioning(eid), "the collector child should be up while Running"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    t.join(5)
    assert proc.returncode == 128 + signal.SIGTERM, "".join(lines)
    assert json.loads(out)["state"] == "Cancelled"
    db = Database(_env(tmp_path)["PHOENIX_DATABASE_URL"])
    try:
        with db.uow() as uow:
            exp = uow.experiments.get(eid)
            assert exp.state is State.CANCELLED and not exp.deployed
            assert all(p.status != "running" for p in uow.processes.list(owner_ref=eid))
    finally:
        db.dispose()
    _no_leftovers(tmp_path, eid)


def test_run_without_wait_only_creates(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "core.cli", "experiment", "run", "--baseline", "process-baseline-v1",
         "--candidate", "process-topk-v1", "--name", "later"],
        cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    eid = proc.stdout.strip()
    assert re.fullmatch(r"exp-[0-9a-f]+", eid) and "scheduler" in proc.stderr
    db = Database(_env(tmp_path)["PHOENIX_DATABASE_URL"])
    try:
        with db.uow() as uow:
            exp = uow.experiments.get(eid)
        assert (exp.state, exp.name) == (State.PENDING, "later")
    finally:
        db.dispose()
    bad = subprocess.run(
        [sys.executable, "-m", "core.cli", "experiment", "run", "--baseline", "process-baseline-v1",
         "--candidate", "process-topk-v1", "--duration", "soon", "--interval=-1s", "--wait"],
        cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "--duration must be a duration" in bad.stderr and "--interval must be positive" in bad.stderr
