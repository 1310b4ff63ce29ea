"""Local runtime: both variants of an experiment as one supervised child process on this host.

``run_collector`` is the child (``phoenix collector --experiment ID``): it serves the two
variant endpoints, runs the experiment's load profile, writes one sample per variant per
interval to the database and exits when told (SIGTERM), when the experiment is no longer
Initializing/Running, or at a hard deadline (duration × 2 + 60 s) so a child whose
scheduler died never runs forever.

``LocalDeployer`` implements the ``Deployer`` port in the scheduler's process:
- ``deploy`` cleans orphans of an earlier attempt, picks two free ports, starts the child
  in its own session and stores PID + ports (``collector_processes`` table);
- ``is_ready`` = both ``/healthz`` answer 200;
- ``healthy`` = the stored PID is alive and still a phoenix collector of this experiment;
  a dead child is restarted with exponential backoff (each crash recorded in the audit
  log, each restart counted in ``phoenix_collector_restarts_total``) up to ``max_restarts``,
  after which the experiment is reported unhealthy;
- ``teardown`` stops it (SIGTERM, then SIGKILL) — also any orphan whose PID is stored.
With ``tie_children`` (``experiment run --wait``) every child also dies with the deployer's
process, however that ends: the kernel sends it SIGTERM (``PR_SET_PDEATHSIG``, set by an
exec wrapper, ``procs.popen_tied``); the emulator's load workers die with the emulator the
same way (``core.runtime.loadsim``). Standing schedulers leave it off: their collectors
outlive a scheduler restart and are adopted again by stored PID.
PIDs are never trusted alone: before signalling, ``/proc/PID/cmdline`` must show a
``collector --experiment ID`` command line (PIDs get reused).

``PHOENIX_OTELCOL_BIN``: when set to a real otelcol-contrib binary the deployer runs it
twice with the rendered configs instead of the emulator (``otelcol_argv``), plus a
measuring child (``collector --experiment ID --measure-otelcol``, role ``measurer``) that
scrapes both collectors' ``/metrics`` and self-telemetry and the host once per interval
and writes the same samples as the emulator (``core.runtime.scrape_measure``). No real
binary exists on this machine: the tests use a stand-in that serves both endpoints.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.domain.errors import PermanentError, TemporaryError
from core.domain.experiment import MEASURING_STATES, Experiment
from core.observability.context import child_env
from core.observability.logs import json_line
from core.observability.metrics import COLLECTOR_RESTARTS, COLLECTORS_RUNNING
from core.runtime.configs import TAP_PORT_NAMES
from core.runtime.procs import cmdline, is_running, pid_alive, popen_tied, reap

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def is_collector_of(pid: int, experiment_id: str) -> bool:
    """PID is alive (not a zombie) and runs ``collector --experiment <experiment_id>``."""
    if not is_running(pid):
        return False
    argv = cmdline(pid)
    if "collector" in argv and "--experiment" in argv and experiment_id in argv:
        return True
    # a real otelcol-contrib started with one of this experiment's rendered configs
    marker = f"otelcol-{experiment_id}-"
    return any(a.startswith("--config=file:") and marker in a for a in argv)


def stop_pid(pid: int, experiment_id: str, timeout: float = 10.0) -> bool:
    """SIGTERM, wait, SIGKILL — only if the PID is that experiment's collector."""
    if not is_collector_of(pid, experiment_id):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    end = time.monotonic() + timeout
    while time.monotonic() < end and is_collector_of(pid, experiment_id):
        time.sleep(0.1)
    if is_collector_of(pid, experiment_id):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    reap(pid)  # our own child would otherwise stay a zombie as long as this process lives
    return True


def otelcol_argv(binary: str, config_path: str) -> list[str]:
    """Command line of a real collector for one rendered config."""
    if not binary:
        raise PermanentError("PHOENIX_OTELCOL_BIN is empty")
    return [binary, f"--config=file:{config_path}"]


#: Go's GC target for the experiment's collectors: collect at +50 % heap growth instead of
#: Go's +100 %. Measured (bench/collector_overhead.py, ~300 host processes, 10 s interval,
#: tap + baseline + candidate): private memory (USS) 122-126 → 86-91 MB, RSS 311-314 →
#: 279-280 MB, CPU +0.3-0.9 points of one core. Proportional to the heap, so unlike a fixed
#: GOMEMLIMIT it cannot make the GC thrash on a bigger host. GOGC or GOMEMLIMIT already in
#: the environment wins.
OTELCOL_GOGC = "50"


def otelcol_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a real collector of an experiment runs with (``OTELCOL_GOGC``)."""
    env = dict(os.environ if base is None else base)
    if "GOGC" not in env and "GOMEMLIMIT" not in env:
        env["GOGC"] = OTELCOL_GOGC
    return env




def otelcol_plan(
    experiment_id: str,
    pipelines: dict[str, Any],
    binary: str,
    config_dir: Path,
    ports: dict[str, int],
) -> dict[str, dict[str, Any]]:
    """Render the tap's and each variant's config for this host and the command to run each.

    ``ports`` has every name in ``TAP_PORT_NAMES`` (core.render.tap.TapPorts). Writes
    ``config_dir/otelcol-<id>-{tap,baseline,candidate}.yaml``; returns role → {argv, config,
    port} where port is what the role serves for measuring (variants: their prometheus
    exporter; the tap: the experiment's input as Prometheus text). Every config passes the
    schema check and, this being the real binary, the collector's own ``validate``.
    """
    from core.runtime.configs import ports_file, render_otelcol_configs

    texts = render_otelcol_configs(experiment_id, pipelines, ports)
    config_dir.mkdir(parents=True, exist_ok=True)
    # Kept for the closed loop (core.runtime.closed_loop): the measurer re-renders the candidate
    # with new thresholds and must reproduce every other line, ports included.
    ports_file(config_dir, experiment_id).write_text(json.dumps({n: int(ports[n]) for n in TAP_PORT_NAMES}))
    plan: dict[str, dict[str, Any]] = {}
    served = {"tap": ports["input_metrics"], "baseline": ports["baseline_metrics"],
              "candidate": ports["candidate_metrics"]}  # fmt: skip
    for role, text in texts.items():
        path = config_dir / f"otelcol-{experiment_id}-{role}.yaml"
        path.write_text(text)
        plan[role] = {"argv": otelcol_argv(binary, str(path)), "config": str(path), "port": served[role]}
    return plan


# ---------------------------------------------------------------- the child


def run_collector(
    experiment_id: str,
    uow_factory: Callable[[], Any],
    *,
    ports: dict[str, int],
    data_dir: Path,
    stop: threading.Event | None = None,
    max_ticks: int | None = None,
    measure_otelcol: bool = False,
) -> int:
    """The body of ``phoenix collector --experiment ID``. Returns an exit code.

    ``measure_otelcol``: the deployer runs two real collectors (``PHOENIX_OTELCOL_BIN``);
    instead of emulating, measure them from outside (``core.runtime.scrape_measure``).
    """
    from core.domain.critical import policy_from_rules
    from core.runtime.collector import CollectorEmulator
    from core.runtime.loadsim import LoadLimits, LoadSimulator, cleanup_leftovers, patterns_for
    from core.store.refs import load_pipeline

    stop = stop or threading.Event()
    with uow_factory() as uow:
        exp = uow.experiments.get(experiment_id)
    baseline = load_pipeline(str(exp.baseline), uow_factory())
    candidate = load_pipeline(str(exp.candidate), uow_factory())
    policy = policy_from_rules(exp.critical_rules, source="experiment") if exp.critical_rules else None
    interval = float(exp.timing.interval_s)

    def sink(samples: list[Any]) -> None:
        with uow_factory() as uow:
            uow.samples.add_many(samples)
            uow.commit()

    def on_event(kind: str, details: dict[str, Any]) -> None:
        with uow_factory() as uow:
            uow.audit.add(f"collector:{experiment_id}", f"experiment.{kind}", experiment_id, details)
            uow.commit()

    emu: Any
    if measure_otelcol:
        from core.runtime.scrape_measure import ScrapeMeasurer

        emu = ScrapeMeasurer.from_configs(experiment_id, {"baseline": baseline, "candidate": candidate},
                                          Path(data_dir), interval_s=interval, policy=policy, sink=sink,
                                          on_event=on_event)  # fmt: skip
    else:
        emu = CollectorEmulator(experiment_id, baseline, candidate, interval_s=interval, policy=policy, ports=ports,
                                sink=sink, on_event=on_event)  # fmt: skip
    emu.start_servers()
    sim = None
    status = Path(data_dir) / f"loadsim-{experiment_id}.json"
    cleanup_leftovers(status)  # a previous child of this experiment was killed
    if exp.load.name != "none":
        sim = LoadSimulator(
            patterns_for(exp.load), duration_s=exp.timing.duration_s * 2 + 60,
            limits=LoadLimits(max_processes=exp.load.max_processes, cpu_cap_pct=25.0, memory_cap_mb=256.0),
            status_path=status,
        )  # fmt: skip
        sim.start()
    deadline = time.monotonic() + exp.timing.duration_s * 2 + 60
    # The deployer's process (scheduler/app). If it dies, a restarted one kills us by the
    # stored PID; if none comes back within the grace period we leave on our own.
    parent = int(os.environ.get("PHOENIX_COLLECTOR_PARENT", "0") or 0)
    grace = float(os.environ.get("PHOENIX_COLLECTOR_ORPHAN_GRACE", "60"))
    # Tied to a one-off command (``experiment run --wait``): the kernel's death signal stops
    # us when it dies; re-parenting is the fallback sign (a reused PID cannot fool it).
    tied = os.environ.get("PHOENIX_COLLECTOR_TIED") == "1"
    orphan_since: float | None = None
    ticks = 0
    try:
        if sim is not None:  # let the load settle before the first measurement
            settle = time.monotonic() + min(3.0, interval)
            while time.monotonic() < settle and not stop.is_set():
                sim.step()
                stop.wait(0.25)
        next_t = time.monotonic()
        while not stop.is_set() and time.monotonic() < deadline:
            with uow_factory() as uow:
                state = uow.experiments.get(experiment_id).state
            if state not in MEASURING_STATES:
                break
            if parent and (not pid_alive(parent) or (tied and os.getppid() != parent)):
                orphan_since = orphan_since or time.monotonic()
                if time.monotonic() - orphan_since > grace:
                    log.warning("deployer process %s is gone for %.0fs; collector exits", parent, grace)
                    break
            emu.tick()
            ticks += 1
            if max_ticks is not None and ticks >= max_ticks:
                break
            next_t += interval
            while not stop.is_set() and time.monotonic() < next_t:
                if sim is not None:
                    sim.step()
                stop.wait(min(0.25, max(0.0, next_t - time.monotonic())))
    finally:
        if sim is not None:
            sim.stop("completed")
        emu.stop_servers()
    return 0


# ---------------------------------------------------------------- the deployer

#: How long the restart counters of a torn-down experiment stay exported.
RESTART_LABELS_KEEP_S = 3600.0

#: Every live LocalDeployer of this process (weakly: tests make many), for the gauge below.
_deployers: weakref.WeakValueDictionary[int, LocalDeployer] = weakref.WeakValueDictionary()


def _collectors_running() -> float:
    """``phoenix_collectors_running{runtime="local"}``: supervised processes alive right now (read at scrape)."""
    return float(sum(d.running_processes() for d in list(_deployers.values())))


COLLECTORS_RUNNING.labels("local").set_function(_collectors_running)


@dataclass
class LocalDeployer:
    uow_factory: Callable[[], Any]
    data_dir: Path = Path("./data")
    #: handed to the child as PHOENIX_DATABASE_URL (None: the child reads the environment)
    database_url: str | None = None
    python: str = sys.executable
    max_restarts: int = 3
    backoff_s: float = 1.0
    otelcol_bin: str | None = None
    dry_run: bool = False
    #: Children die with this process (``experiment run --wait``): the kernel sends them
    #: SIGTERM when it exits in any way, SIGKILL included (``procs.popen_tied``). Off for
    #: standing schedulers (the app, ``phoenix scheduler``): their collectors must survive
    #: a scheduler restart, which adopts them by stored PID (orphan grace in the child).
    tie_children: bool = False
    _children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)
    _restarts: dict[str, int] = field(default_factory=dict, repr=False)
    _next_restart: dict[str, float] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _production: Any = field(default=None, repr=False)
    #: experiment id → PIDs this deployer started or adopted (``phoenix_collectors_running``)
    _supervised: dict[str, set[int]] = field(default_factory=dict, repr=False)
    #: experiment id → when it was torn down: its restart counters go an hour later (bounded labels)
    _torn_down: dict[str, float] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        _deployers[id(self)] = self

    def running_processes(self) -> int:
        """How many of the collector processes this deployer supervises are running (zombies are not)."""
        with self._lock:
            pids = {pid for pids in self._supervised.values() for pid in pids}
        return sum(1 for pid in pids if is_running(pid))

    def _supervise(self, eid: str, info: dict[str, Any]) -> dict[str, Any]:
        pids = {int(p) for p in info.get("pids", ())}
        if info.get("measurer_pid"):
            pids.add(int(info["measurer_pid"]))
        with self._lock:
            self._supervised[eid] = pids
        return info

    def _stored(self, eid: str) -> list[Any]:
        with self.uow_factory() as uow:
            return [p for p in uow.processes.list(owner_ref=eid) if p.status == "running"]

    def _popen(self, argv: list[str], **kw: Any) -> subprocess.Popen[bytes]:
        """Each child leads its own session (a terminal's Ctrl-C reaches only us: we cancel and
        tear down in order); with ``tie_children`` the kernel also stops it when we die."""
        if self.tie_children:
            return popen_tied(argv, sig=signal.SIGTERM, start_new_session=True, **kw)
        return subprocess.Popen(argv, start_new_session=True, **kw)

    def _popen_child(self, exp: Experiment, args: list[str]) -> subprocess.Popen[bytes]:
        """Start ``phoenix collector --experiment ID <args>`` in its own session (our child)."""
        Path(self.data_dir).mkdir(parents=True, exist_ok=True)
        argv = [self.python, "-m", "core.cli", "collector", "--experiment", exp.id, *args]
        logf = (Path(self.data_dir) / f"collector-{exp.id}.log").open("ab")
        env = child_env({**os.environ, "PHOENIX_DATA_DIR": str(self.data_dir),
                         "PHOENIX_COLLECTOR_PARENT": str(os.getpid())})  # + PHOENIX_CORRELATION_ID: its log lines carry it
        if self.database_url:
            env["PHOENIX_DATABASE_URL"] = self.database_url
        if self.tie_children:  # and should the death signal be missed: leave at the next interval
            env.update(PHOENIX_COLLECTOR_TIED="1", PHOENIX_COLLECTOR_ORPHAN_GRACE="0")
        proc = self._popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, env=env, cwd=os.getcwd())
        logf.close()
        with self._lock:
            self._children[exp.id] = proc
        return proc

    def _spawn(self, exp: Experiment, ports: dict[str, int]) -> int:
        proc = self._popen_child(exp, ["--baseline-port", str(ports["baseline"]),
                                       "--candidate-port", str(ports["candidate"])])  # fmt: skip
        with self.uow_factory() as uow:
            for p in uow.processes.list(owner_ref=exp.id):
                if p.status == "running":
                    uow.processes.set_status(p.id, "lost")
            for variant in ("baseline", "candidate"):
                uow.processes.add(exp.id, variant, proc.pid, ports[variant])
            uow.commit()
        return proc.pid

    def cleanup_orphans(self, exp: Experiment) -> int:
        """Stop collectors of ``exp`` recorded in the database that this process did not start."""
        killed = 0
        mine = self._children.get(exp.id)
        for pid in {p.pid for p in self._stored(exp.id)}:
            if mine is not None and mine.pid == pid and mine.poll() is None:
                continue
            if stop_pid(pid, exp.id):
                killed += 1
                log.warning("stopped orphan collector pid %s of experiment %s", pid, exp.id)
        if killed:
            with self.uow_factory() as uow:
                uow.audit.add("runtime:local", "collector.orphan_killed", exp.id, {"count": killed})
                uow.commit()
        return killed

    def deploy(self, experiment: Experiment) -> dict[str, Any]:
        if experiment.target.kind != "local":
            # Running it here would measure this host while claiming a cluster.
            raise PermanentError(f"experiment {experiment.id} targets {experiment.target.describe()}, but this "
                                 "Phoenix runs the local runtime; set PHOENIX_RUNTIME=kubernetes (docs/kubernetes.md)")
        running = [p for p in self._stored(experiment.id) if is_collector_of(p.pid, experiment.id)]
        stored = self._stored(experiment.id)
        # two emulated variants in one child, or tap + two real collectors + their measuring child
        expected = 4 if self.otelcol_bin else 2
        if running and len(running) == len(stored) == expected:  # idempotent: already deployed
            ports = {p.role: p.port for p in running}
            info = self._info(running[0].pid, ports)
            with self._lock:  # adopted (e.g. after a scheduler restart): supervised from now on
                self._supervised[experiment.id] = {p.pid for p in running}
            return info
        self.cleanup_orphans(experiment)
        if self.otelcol_bin:
            return self._supervise(experiment.id, self._deploy_otelcol(experiment))
        ports = {"baseline": free_port(), "candidate": free_port()}
        while ports["candidate"] == ports["baseline"]:
            ports["candidate"] = free_port()
        pid = self._spawn(experiment, ports)
        return self._supervise(experiment.id, self._info(pid, ports))

    def _deploy_otelcol(self, experiment: Experiment) -> dict[str, Any]:
        """Tap + baseline + candidate real collectors (identical input by construction) and the
        measuring child; variants start first so the tap's first batch finds them listening."""
        from core.store.refs import load_pipeline

        if not Path(str(self.otelcol_bin)).is_file():
            raise PermanentError(f"the collector binary {self.otelcol_bin} is not a file")
        ports: dict[str, int] = {}
        for n in TAP_PORT_NAMES:
            port = free_port()
            while port in ports.values():
                port = free_port()
            ports[n] = port
        pipelines = {v: load_pipeline(str(getattr(experiment, v)), self.uow_factory()) for v in ("baseline", "candidate")}
        plan = otelcol_plan(experiment.id, pipelines, str(self.otelcol_bin), Path(self.data_dir), ports)
        pids = []
        with self.uow_factory() as uow:
            for p in uow.processes.list(owner_ref=experiment.id):
                if p.status == "running":
                    uow.processes.set_status(p.id, "lost")
            for role, item in plan.items():
                proc = self._start_otelcol(experiment.id, role, item["argv"])
                pids.append(proc.pid)
                uow.processes.add(experiment.id, role, proc.pid, item["port"])
            # The measuring child (no port): scrapes the three collectors, writes samples.
            measurer = self._popen_child(experiment, ["--measure-otelcol"])
            uow.processes.add(experiment.id, "measurer", measurer.pid, None)
            uow.commit()
        info = self._info(pids[0], {v: ports[f"{v}_metrics"] for v in ("baseline", "candidate")})
        info["pids"] = pids
        info["runtime"] = "local-otelcol"
        info["collector"] = {"kind": "real", "binary": str(self.otelcol_bin)}
        info["configs"] = {role: item["config"] for role, item in plan.items()}
        info["input_url"] = f"http://127.0.0.1:{ports['input_metrics']}/metrics"
        info["measurer_pid"] = measurer.pid
        return info

    def _start_otelcol(self, eid: str, role: str, argv: list[str]) -> subprocess.Popen[bytes]:
        logf = (Path(self.data_dir) / f"otelcol-{eid}-{role}.log").open("ab")
        # otelcol's own lines cannot carry Phoenix's ids: this first line of each start does
        logf.write(json_line("collector", __name__, f"starting the {role} collector: {shlex.join(argv)}"))
        logf.flush()
        proc = self._popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, env=child_env(otelcol_env()))
        logf.close()
        return proc

    def _restart_requested(self, experiment: Experiment) -> None:
        """Restart a variant whose config the closed loop re-rendered (core.runtime.closed_loop).

        Not a crash: audited as ``collector.restarted`` with its reason, and the crash counter
        (``phoenix_collector_restarts_total``, the crash-loop alert) does not move."""
        if not self.otelcol_bin:
            return
        from core.runtime.closed_loop import take_restart_request
        from core.runtime.scrape_measure import config_path

        for variant in ("baseline", "candidate"):
            live = config_path(Path(self.data_dir), experiment.id, variant)
            request = take_restart_request(Path(self.data_dir), experiment.id, variant, live)
            if request is None:
                continue
            old = [p for p in self._stored(experiment.id) if p.role == variant]
            for p in old:
                stop_pid(p.pid, experiment.id)
            proc = self._start_otelcol(experiment.id, variant, otelcol_argv(str(self.otelcol_bin), str(live)))
            with self.uow_factory() as uow:
                port = None
                for p in old:
                    uow.processes.set_status(p.id, "stopped")
                    port = p.port
                uow.processes.add(experiment.id, variant, proc.pid, port)
                uow.audit.add("runtime:local", "collector.restarted", experiment.id,
                              {"variant": variant, "reason": str(request.get("reason", "retune")),
                               "interval": request.get("interval"), "old_pids": [p.pid for p in old],
                               "pid": proc.pid})  # fmt: skip
                uow.commit()
            with self._lock:
                pids = self._supervised.setdefault(experiment.id, set())
                pids.difference_update(p.pid for p in old)
                pids.add(proc.pid)
            log.info("restarted the %s collector of %s with its re-tuned config", variant, experiment.id)

    @staticmethod
    def _info(pid: int, ports: dict[str, Any]) -> dict[str, Any]:
        return {"runtime": "local", "collector": {"kind": "emulator"}, "dry_run": False, "pids": [pid],
                "ports": dict(ports),
                "urls": {v: f"http://127.0.0.1:{p}/metrics" for v, p in ports.items()}}  # fmt: skip

    def _ports(self, eid: str) -> dict[str, int]:
        return {p.role: int(p.port) for p in self._stored(eid) if p.port}

    def is_ready(self, experiment: Experiment) -> bool:
        ports = self._ports(experiment.id)
        if set(ports) != ({"baseline", "candidate", "tap"} if self.otelcol_bin else {"baseline", "candidate"}):
            return False
        # the emulator has /healthz next to /metrics; a real collector's prometheus exporter only /metrics
        path = "/metrics" if self.otelcol_bin else "/healthz"
        for role, port in ports.items():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                    if r.status != 200:
                        return False
                    # Real collectors: running starts once the tap's first scrape has gone out,
                    # so the experiment's duration is all measured intervals, not start-up.
                    if role == "tap" and b"\nprocess_" not in r.read():
                        return False
            except OSError:
                return False
        if self.otelcol_bin:  # and the measuring child has read its first interval of all three
            with self.uow_factory() as uow:
                return bool(uow.samples.count(experiment.id))
        return True

    def healthy(self, experiment: Experiment) -> bool:
        self._restart_requested(experiment)  # before the liveness check: a planned stop is no crash
        stored = self._stored(experiment.id)
        if stored and all(is_collector_of(p.pid, experiment.id) for p in stored):
            return True
        for p in stored:  # one of the real collectors died: stop the others before restarting
            stop_pid(p.pid, experiment.id)
        # Dead: reap our child if it was ours, then restart with backoff.
        with self._lock:
            child = self._children.pop(experiment.id, None)
        code = child.wait() if child is not None else None
        n = self._restarts.get(experiment.id, 0)
        with self.uow_factory() as uow:
            uow.audit.add("runtime:local", "collector.crashed", experiment.id,
                          {"exit_code": code, "restarts_so_far": n})  # fmt: skip
            uow.commit()
        if n >= self.max_restarts:
            return False
        now = time.monotonic()
        due = self._next_restart.setdefault(experiment.id, now + self.backoff_s * (2**n))
        if now < due:
            raise TemporaryError(f"collector of {experiment.id} died (exit {code}); restarting after backoff")
        self._restarts[experiment.id] = n + 1
        self._next_restart.pop(experiment.id, None)
        if self.otelcol_bin:
            self._supervise(experiment.id, self._deploy_otelcol(experiment))
        else:
            ports = {p.role: int(p.port) for p in stored if p.port} or {"baseline": free_port(), "candidate": free_port()}
            self._supervise(experiment.id, {"pids": [self._spawn(experiment, ports)]})
        # Both variants restart together (they must keep seeing identical input): one each.
        for variant in ("baseline", "candidate"):
            COLLECTOR_RESTARTS.labels(experiment.id, variant).inc()
        log.warning("restarted the collectors of %s (restart %d of %d)", experiment.id, n + 1, self.max_restarts)
        return True

    def teardown(self, experiment: Experiment) -> None:
        with self._lock:
            child = self._children.pop(experiment.id, None)
            self._supervised.pop(experiment.id, None)
        self._forget_old_restart_counts(experiment.id)
        pids = {p.pid for p in self._stored(experiment.id)} | ({child.pid} if child else set())
        for pid in pids:
            stop_pid(pid, experiment.id)
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=10)
        from core.runtime.loadsim import cleanup_leftovers

        cleanup_leftovers(Path(self.data_dir) / f"loadsim-{experiment.id}.json", force=True)
        from core.runtime.closed_loop import next_config_path, request_path

        for variant in ("baseline", "candidate"):  # a closed-loop restart asked for too late
            request_path(Path(self.data_dir), experiment.id, variant).unlink(missing_ok=True)
            next_config_path(Path(self.data_dir), experiment.id, variant).unlink(missing_ok=True)
        with self.uow_factory() as uow:
            for p in uow.processes.list(owner_ref=experiment.id):
                if p.status == "running":
                    uow.processes.set_status(p.id, "stopped")
            uow.commit()

    def _forget_old_restart_counts(self, torn_down: str) -> None:
        """Drop the restart counters of experiments torn down over ``RESTART_LABELS_KEEP_S`` ago.

        Kept a while so Prometheus scrapes the last restarts of a finished experiment; then
        dropped, so a long-running scheduler's label sets stay bounded."""
        now = time.monotonic()
        with self._lock:
            self._torn_down.setdefault(torn_down, now)
            old = [eid for eid, at in self._torn_down.items() if now - at > RESTART_LABELS_KEEP_S]
            for eid in old:
                del self._torn_down[eid]
        for eid in old:
            for variant in ("baseline", "candidate"):
                with contextlib.suppress(KeyError):  # never restarted: no counter to drop
                    COLLECTOR_RESTARTS.remove(eid, variant)

    def reconcile_production(self, port: int) -> str:
        """Run the promoted pipeline as this host's standing collector (``collector --production``)."""
        from core.runtime.production import ProductionSupervisor

        if self._production is None:
            self._production = ProductionSupervisor(self.uow_factory, data_dir=self.data_dir,
                                                    database_url=self.database_url)  # fmt: skip
        return self._production.reconcile(port)

    def describe(self, experiment: Experiment) -> str:
        return json.dumps({"ports": self._ports(experiment.id)})


def local_runtime(settings: Any) -> tuple[LocalDeployer, Any]:
    """``(Deployer, Analyzer)`` for ``PHOENIX_RUNTIME=local`` (registered in ``core.bootstrap``).

    The deployer keeps its own database handle (same URL as the app's): it records PIDs
    and ports and reads them back on restart.
    """
    from core.analysis.analyzer import ExperimentAnalyzer, default_prices
    from core.settings import Settings

    settings = settings or Settings.from_env()
    url = settings.database_url
    holder: list[Any] = []

    def uow() -> Any:  # the engine is made on first use: building a runtime does no I/O
        if not holder:
            from core.store.uow import Database

            holder.append(Database(url))
        return holder[0].uow()

    deployer = LocalDeployer(uow, data_dir=Path(settings.data_dir), database_url=url,
                             otelcol_bin=settings.collector_binary())  # fmt: skip
    return deployer, ExperimentAnalyzer(prices=default_prices, prometheus_url=settings.prometheus_url)
