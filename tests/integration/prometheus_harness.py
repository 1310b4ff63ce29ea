"""A real Prometheus (Debian's ``/usr/bin/prometheus``) for integration tests.

``RealPrometheus(targets).start()`` writes a scrape config (1 s interval) for the given
``host:port`` endpoints, starts Prometheus on a free loopback port with a temp TSDB,
waits for ``/-/ready`` and stops (and deletes everything) on ``stop()``. Use it as a
context manager, or through the ``prometheus`` fixture factory in ``conftest.py``.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

PROMETHEUS_BIN = shutil.which("prometheus") or "/usr/bin/prometheus"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RealPrometheus:
    def __init__(self, targets: list[str], *, scrape_interval: str = "1s", rule_files: list[Path] | None = None,
                 scrape_configs: list[dict] | None = None, binary: str = PROMETHEUS_BIN):
        """``scrape_configs`` replaces the static job over ``targets``; ``binary`` another build
        (Debian's has no kubernetes_sd_configs: tests/integration/test_k8s_prometheus.py)."""
        self.targets = list(targets)
        self.scrape_interval = scrape_interval
        self.rule_files = [str(p) for p in rule_files or []]
        self.scrape_configs = scrape_configs
        self.binary = binary
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="phoenix-prom-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> dict:
        return {
            "global": {"scrape_interval": self.scrape_interval, "evaluation_interval": self.scrape_interval},
            "rule_files": self.rule_files,
            "scrape_configs": self.scrape_configs if self.scrape_configs is not None else [
                {"job_name": "phoenix-collectors", "static_configs": [{"targets": self.targets}]},
            ],
        }

    def start(self, timeout: float = 30.0) -> RealPrometheus:
        cfg = self.dir / "prometheus.yml"
        cfg.write_text(yaml.safe_dump(self.config()))
        self.proc = subprocess.Popen(
            [self.binary, f"--config.file={cfg}", f"--storage.tsdb.path={self.dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=(self.dir / "prometheus.log").open("wb"),
        )  # fmt: skip
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited: {(self.dir / 'prometheus.log').read_text()[-2000:]}")
            with contextlib.suppress(OSError), urllib.request.urlopen(self.url + "/-/ready", timeout=1) as r:
                if r.status == 200:
                    return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("prometheus did not become ready in time")

    def targets_up(self) -> dict[str, str]:
        with urllib.request.urlopen(self.url + "/api/v1/targets", timeout=5) as r:
            data = json.loads(r.read())
        return {t["labels"]["instance"]: t["health"] for t in data["data"]["activeTargets"]}

    def wait_targets_up(self, timeout: float = 20.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with contextlib.suppress(OSError, KeyError, ValueError):
                health = self.targets_up()
                if health and all(h == "up" for h in health.values()) and len(health) == len(self.targets):
                    return
            time.sleep(0.3)
        raise RuntimeError(f"scrape targets not up: {self.targets_up()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RealPrometheus:
        # Already started (``with harness.start() as p``): a second start would leave the first
        # server running with nobody to stop it.
        if self.proc is not None and self.proc.poll() is None:
            return self
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
