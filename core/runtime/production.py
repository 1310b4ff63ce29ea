"""The host's standing collector: the promoted pipeline, scraping this host until stopped.

``phoenix collector --production`` runs ``run_production``: it reads the production
record of the ``local`` target (``core.services.promotion``), scrapes this host's
processes every interval (psutil, hostmetrics semantics, as the experiment emulator
does), evaluates the promoted pipeline through the engine and serves the result at
``/metrics`` (plus the collector's self-telemetry) through the same ``ExpositionServer``
the experiment variants use. Labels: ``host_name`` and ``phoenix_pipeline`` (no
experiment/variant labels: this is not an experiment).

The process registers itself in ``collector_processes`` (owner ``production``) and marks
the row stopped on exit, so a supervisor (``ProductionSupervisor``) or an operator can
find it by PID; before signalling a stored PID, its command line is checked (PIDs get
reused).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from core.domain.critical import CriticalPolicy
from core.domain.pipeline import Pipeline
from core.runtime.collector import HostScraper, ServedPipeline
from core.runtime.exposition import MetricsState

log = logging.getLogger(__name__)

OWNER = "production"
ROLE = "production"
DEFAULT_INTERVAL_S = 10.0


class ProductionCollector:
    """One pipeline over this host's processes, served at one ``/metrics`` endpoint.

    Each interval is the experiment emulator's loop (``core.runtime.collector``): one
    ``HostScraper`` scrape, then ``ServedPipeline`` tunes, evaluates, measures and serves.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        interval_s: float,
        policy: CriticalPolicy | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        reader: Any = None,
        retune_every: int = 6,
    ) -> None:
        self.interval_s = float(interval_s)
        self.policy = policy
        self.scraper = HostScraper(reader)
        self.host_name = self.scraper.host_name
        self.retune_every = retune_every
        self.ticks = 0
        self._proc = psutil.Process(os.getpid())
        state = MetricsState(OWNER, OWNER, self.host_name, stale_after_s=max(30.0, 6 * self.interval_s))
        # Not an experiment: drop the experiment/variant labels, name the pipeline instead.
        state.labels = {"host_name": self.host_name, "phoenix_pipeline": pipeline.name}
        state.update(series_text="")
        self.served = ServedPipeline(OWNER, pipeline, state)
        self._port, self._host = int(port), host

    @property
    def pipeline(self) -> Pipeline:
        return self.served.pipeline

    @property
    def state(self) -> MetricsState:
        return self.served.state

    def start_server(self) -> int:
        return self.served.start_server(self._host, self._port)

    def stop_server(self) -> None:
        self.served.stop_server()

    def tick(self, now: datetime | None = None) -> dict[str, float]:
        """One interval: scrape, tune, evaluate, serve. Returns the interval's gauges."""
        t = now or datetime.now(UTC)
        c0 = time.process_time()  # one pipeline per process: the scrape is its own cost too
        snap = self.scraper.scrape()
        self.served.retune(snap, tick=self.ticks, every=self.retune_every, policy=self.policy, source="production")
        fig = self.served.measure(snap, policy=self.policy, interval_s=self.interval_s)
        self.served.publish(fig, t, cpu_seconds=time.process_time() - c0,
                            rss_bytes=float(self._proc.memory_info().rss))  # fmt: skip
        self.ticks += 1
        return fig.gauges(t)


def run_production(
    uow_factory: Callable[[], Any],
    *,
    port: int = 0,
    interval_s: float | None = None,
    target: str = "local",
    stop: threading.Event | None = None,
    max_ticks: int | None = None,
    on_ready: Callable[[int], None] | None = None,
) -> int:
    """The body of ``phoenix collector --production``. Runs until ``stop`` is set; returns 0."""
    from core.domain.critical import policy_from_rules
    from core.domain.production import require_production

    stop = stop or threading.Event()
    rec = require_production(uow_factory, target)
    interval = float(interval_s or rec.interval_s or DEFAULT_INTERVAL_S)
    policy = policy_from_rules(rec.critical_rules, source="production") if rec.critical_rules else None
    coll = ProductionCollector(rec.pipeline_object(), interval_s=interval, policy=policy, port=port)
    bound = coll.start_server()
    with uow_factory() as uow:
        row_id = uow.processes.add(OWNER, ROLE, os.getpid(), bound)
        uow.audit.add(f"collector:{OWNER}", "production.start", OWNER,
                      {"pipeline": rec.ref, "experiment_id": rec.experiment_id, "port": bound, "pid": os.getpid()})  # fmt: skip
        uow.commit()
    if on_ready:
        on_ready(bound)
    try:
        next_t = time.monotonic()
        while not stop.is_set():
            try:
                coll.tick()
            except Exception:  # noqa: BLE001 - one bad scrape must not stop the host's collector
                log.exception("production collector: interval failed; trying again next interval")
            if max_ticks is not None and coll.ticks >= max_ticks:
                break
            next_t += interval
            stop.wait(max(0.0, next_t - time.monotonic()))
    finally:
        coll.stop_server()
        with contextlib.suppress(Exception), uow_factory() as uow:
            uow.processes.set_status(row_id, "stopped")
            uow.commit()
    return 0


# ---------------------------------------------------------------- supervision


def is_production_collector(pid: int) -> bool:
    """PID is alive (not a zombie) and runs ``collector --production``."""
    from core.runtime.procs import cmdline, is_running

    if not is_running(pid):
        return False
    argv = cmdline(pid)
    return "collector" in argv and "--production" in argv


@dataclass
class ProductionSupervisor:
    """Start/stop ``phoenix collector --production`` as a child in its own session."""

    uow_factory: Callable[[], Any]
    data_dir: Path = Path("./data")
    database_url: str | None = None
    python: str = sys.executable
    _child: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def running_pids(self) -> list[int]:
        with self.uow_factory() as uow:
            rows = uow.processes.list(owner_ref=OWNER, status="running")
        return [r.pid for r in rows if is_production_collector(r.pid)]

    def start(self, port: int, interval_s: float | None = None) -> int:
        """Start the standing collector unless one already runs (idempotent); returns its PID."""
        alive = self.running_pids()
        if alive:
            return alive[0]
        Path(self.data_dir).mkdir(parents=True, exist_ok=True)
        argv = [self.python, "-m", "core.cli", "collector", "--production", "--port", str(port)]
        if interval_s:
            argv += ["--interval", f"{interval_s:g}s"]
        env = {**os.environ, "PHOENIX_DATA_DIR": str(self.data_dir)}
        if self.database_url:
            env["PHOENIX_DATABASE_URL"] = self.database_url
        with (Path(self.data_dir) / "collector-production.log").open("ab") as logf:
            self._child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, env=env,
                                           start_new_session=True)  # fmt: skip
        return self._child.pid

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM (then SIGKILL) every verified production collector; returns how many were stopped."""
        pids = set(self.running_pids())
        if self._child is not None and self._child.poll() is None:
            pids.add(self._child.pid)
        for pid in pids:
            if is_production_collector(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        end = time.monotonic() + timeout
        while time.monotonic() < end and any(is_production_collector(p) for p in pids):
            if self._child is not None:
                self._child.poll()  # reap our own child so it does not linger as a zombie
            time.sleep(0.1)
        for pid in pids:
            if is_production_collector(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if self._child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._child.wait(timeout=5)
            self._child = None
        with self.uow_factory() as uow:
            for r in uow.processes.list(owner_ref=OWNER, status="running"):
                if r.pid in pids or not is_production_collector(r.pid):
                    uow.processes.set_status(r.id, "stopped")
            uow.commit()
        return len(pids)

    # ------------------------------------------------------------ reconcile

    @property
    def _state_file(self) -> Path:
        return Path(self.data_dir) / "production-collector.json"

    def _serving(self) -> dict[str, Any]:
        """What the supervised collector was started for (pid + record key), if it still runs."""
        import json

        try:
            state = json.loads(self._state_file.read_text())
        except (OSError, ValueError):
            return {}
        return state if is_production_collector(int(state.get("pid", 0))) else {}

    def reconcile(self, port: int, target: str = "local", interval_s: float | None = None) -> str:
        """Make the standing collector match the promoted record (idempotent, kopf-style).

        Returns what it did: ``none`` (nothing promoted), ``up-to-date``, ``started`` or
        ``restarted`` (a newer promotion replaced the pipeline it was serving).
        """
        import json

        from core.domain.production import current_production

        rec = current_production(self.uow_factory, target)
        if rec is None:
            return "none"
        key = f"{rec.experiment_id}@{rec.promoted_at}"
        serving = self._serving()
        if serving.get("key") == key:
            return "up-to-date"
        restarted = bool(serving) or bool(self.running_pids())
        if restarted:
            self.stop()
        pid = self.start(port, interval_s)
        self._state_file.write_text(json.dumps({"pid": pid, "key": key, "target": target}))
        log.info("production collector for %s (%s) %s as pid %d", target, rec.ref,
                 "restarted" if restarted else "started", pid)  # fmt: skip
        return "restarted" if restarted else "started"
