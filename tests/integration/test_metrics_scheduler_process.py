"""``phoenix scheduler --metrics-port``: a real scheduler process serving the text format."""

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
from prometheus_client.parser import text_string_to_metric_families

from core.domain.criteria import Timing
from core.domain.experiment import Experiment
from core.store.migrate import upgrade
from core.store.uow import Database
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PHOENIX_METRICS_PORT"}
    env.update(PHOENIX_DATABASE_URL=f"sqlite:///{tmp_path / 'phoenix.db'}", PHOENIX_RUNTIME="memory",
               PHOENIX_DATA_DIR=str(tmp_path), PYTHONPATH=str(ROOT), **extra)
    return env


def _scrape(port: int) -> list[tuple[str, dict[str, str], float]] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return None
    return [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples]


def _value(found: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    return sum(v for n, lab, v in found if n == name and lab == labels)


def test_scheduler_serves_its_metrics_on_the_flagged_port(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'phoenix.db'}"
    upgrade(url)
    db = Database(url)
    exp = Experiment.create(name="m", baseline="process-baseline-v1", candidate="process-topk-v1", timing=Timing(60, 5),
                            dry_run=True)
    with db.uow() as uow:
        uow.experiments.add(exp)
        uow.commit()
    db.dispose()
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "core.cli", "scheduler", "--metrics-port", str(port),
                             "--interval", "0.2"], env=_env(tmp_path), cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        found = None
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            found = _scrape(port)
            if found and _value(found, "phoenix_scheduler_ticks_total", outcome="ok") >= 2:
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.3)
        assert found, "no metrics answered"
        assert _value(found, "phoenix_scheduler_ticks_total", outcome="ok") >= 2
        assert [lab["process"] for n, lab, _ in found if n == "phoenix_build_info"] == ["scheduler"]
        assert _value(found, "phoenix_experiment_transitions_total", from_state="Pending",
                      to_state="Initializing") == 1
        assert _value(found, "phoenix_database_up") == 1
        assert sum(v for n, _, v in found if n == "phoenix_experiments") == 1
        assert _value(found, "phoenix_scheduler_tick_seconds_count") >= 2
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert f"metrics on http://127.0.0.1:{port}/metrics" in out


def test_a_taken_port_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = subprocess.run([sys.executable, "-m", "core.cli", "scheduler"], env=_env(
            tmp_path, PHOENIX_METRICS_PORT=str(port)), cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        f"error: cannot serve metrics on 127.0.0.1:{port}: Address already in use "
        "(choose another --metrics-port / PHOENIX_METRICS_PORT)"]


@pytest.mark.parametrize("bad", ["abc", "0", "70000"])
def test_a_bad_port_is_refused_clearly(tmp_path: Path, bad: str) -> None:
    from core.commands.scheduler import metrics_port
    from core.domain.errors import ValidationError

    with pytest.raises(ValidationError, match="PHOENIX_METRICS_PORT must be a port number from 1 to 65535"):
        metrics_port(None, {"PHOENIX_METRICS_PORT": bad})
    assert metrics_port(None, {}) is None and metrics_port(None, {"PHOENIX_METRICS_PORT": " 9464 "}) == 9464
    assert metrics_port(9100, {"PHOENIX_METRICS_PORT": "9464"}) == 9100  # the flag wins
