"""``phoenix ui`` serves Phoenix's metrics from its start, before any browser opens a page
(Streamlit runs the app's script only for a session, so Prometheus would see the UI down)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_the_ui_serves_its_metrics_before_any_page_runs(tmp_path: Path) -> None:
    ui_port, metrics_port = free_port(), free_port()
    env = {**os.environ, "PHOENIX_METRICS_PORT": str(metrics_port), "PHOENIX_DATA_DIR": str(tmp_path),
           "PHOENIX_DATABASE_URL": f"sqlite:///{tmp_path / 'phoenix.db'}", "PHOENIX_EMBEDDED_SCHEDULER": "0"}
    log = tmp_path / "ui.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "core", "ui", "--port", str(ui_port)], env=env, cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        body, deadline = "", time.monotonic() + 90  # a cold start on 2 shared cores
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2) as r:
                    body = r.read().decode()
                break
            except OSError:
                time.sleep(0.5)
        assert body, f"no /metrics on {metrics_port}; log:\n{log.read_text()[-2000:]}"
        info = {s.labels["process"] for f in text_string_to_metric_families(body) if f.name == "phoenix_build_info"
                for s in f.samples}
        assert info == {"ui"}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
