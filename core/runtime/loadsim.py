"""Load simulator: real processes with realistic kernel names, bounded and always cleaned up.

How a process gets its name: the simulator makes a private temp directory with one
symlink per name (``nginx``, ``postgres``, ...) pointing at the Python interpreter binary
itself, and execs the symlink (``argv[0] = "nginx"``). The kernel sets ``/proc/PID/comm``
from the exec'd file name, so ``comm`` — what the hostmetrics receiver reports as
``process.executable.name`` — is ``nginx``. (A ``#!`` script would not do: comm would
become the interpreter.) Each process runs :mod:`core.runtime.loadworker` with ``-S -I``
(stdlib only, ~2.5 MB private memory).

Bounds (``LoadLimits``): a maximum process count, a cap on the summed CPU duty cycle
(in % of one core) and on the summed memory; a plan over the caps is scaled down, never
refused, and the scaling is reported.

Cleanup, in every case:
- all workers share ONE process group, anchored by a sleeper started first, so a single
  ``killpg`` ends everything (completion, cancel/SIGTERM);
- each worker dies with the simulator (``PR_SET_PDEATHSIG`` + a ``getppid`` check);
- the status file records pid, pgid and the run's private directory, so a later
  ``cleanup_leftovers(status_file)`` (e.g. after a restart) kills what a SIGKILLed run
  left, after checking each process's command line really belongs to that run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from core.domain.criteria import CPU_PATTERNS, DEFAULT_PATTERN, MEMORY_PATTERNS, LoadProfile, ensure_valid
from core.domain.errors import ValidationError
from core.observability.context import child_env
from core.runtime.procs import cmdline, pid_alive

log = logging.getLogger(__name__)

WORKER_FILE = Path(__file__).with_name("loadworker.py")
ANCHOR_NAME = "phoenix-loadsim"
#: New processes started per step at most: spreads interpreter start-up CPU over time.
SPAWN_BURST = 25
STEP_S = 0.25


@dataclass(frozen=True)
class LoadLimits:
    """Hard bounds of one simulation. Defaults suit a shared two-core host."""

    max_processes: int = 300
    cpu_cap_pct: float = 50.0  # summed duty-cycle targets, % of one core
    memory_cap_mb: float = 512.0  # summed memory targets

    def validate(self) -> list[str]:
        p = []
        if not isinstance(self.max_processes, int) or not 1 <= self.max_processes <= 2000:
            p.append(f"max processes must be between 1 and 2000, got {self.max_processes!r}")
        if not 0 <= self.cpu_cap_pct <= 200:
            p.append(f"CPU cap must be between 0 and 200 % of one core, got {self.cpu_cap_pct!r}")
        if not 0 <= self.memory_cap_mb <= 8192:
            p.append(f"memory cap must be between 0 and 8192 MB, got {self.memory_cap_mb!r}")
        return p


@dataclass(frozen=True)
class ProcessPattern:
    """``count`` processes named from ``name_template`` (``{i}`` = slot number).

    ``lifetime_s`` > 0: each process exits after that long and its slot is refilled with a
    new process (new PID). ``churn_rate``: processes of this pattern killed and replaced
    per second on top of that.
    """

    name_template: str = DEFAULT_PATTERN["name_template"]
    count: int = DEFAULT_PATTERN["count"]
    lifetime_s: float = DEFAULT_PATTERN["lifetime_s"]
    cpu_pattern: str = DEFAULT_PATTERN["cpu_pattern"]
    cpu_pct: float = DEFAULT_PATTERN["cpu_pct"]
    memory_mb: float = DEFAULT_PATTERN["memory_mb"]
    memory_pattern: str = DEFAULT_PATTERN["memory_pattern"]
    churn_rate: float = DEFAULT_PATTERN["churn_rate"]

    def name(self, i: int) -> str:
        return self.name_template.format(i=i)


def _p(name: str, count: int, cpu: float, mem: float, cpu_pattern: str = "steady", **kw: Any) -> ProcessPattern:
    return ProcessPattern(name_template=name, count=count, cpu_pct=cpu, memory_mb=mem, cpu_pattern=cpu_pattern, **kw)


# Built-in profiles. Per-process targets are small on purpose: the point is realistic
# names, counts and churn for the collectors to see, not load on the host.
BUILTIN_PROFILES: dict[str, tuple[ProcessPattern, ...]] = {
    # A typical application host: web tier, databases, caches, app runtimes, agents.
    "realistic": (
        _p("nginx", 4, 0.5, 4, "spiky"),
        _p("postgres", 6, 0.5, 6, "spiky", memory_pattern="growing"),
        _p("redis-server", 1, 0.8, 8),
        _p("python-app", 4, 1.0, 8, "random"),
        _p("java", 2, 1.5, 16, "growing", memory_pattern="growing"),
        _p("node", 3, 0.8, 8, "random"),
        _p("sshd", 1, 0.1, 1),
        _p("cron", 1, 0.05, 1),
        _p("rsyslogd", 1, 0.2, 2),
        _p("containerd", 1, 0.4, 6),
        _p("kubelet", 1, 0.8, 8, "spiky"),
    ),
    # Many distinct process names: a cardinality stress for label-keeping pipelines.
    "high-cardinality": (
        _p("worker-{i}", 150, 0.05, 1, "random"),
        _p("nginx", 4, 0.5, 4, "spiky"),
        _p("postgres", 4, 0.5, 6),
    ),
    # Short-lived jobs: new PIDs every few seconds, i.e. series created and removed.
    "process-churn": (
        _p("batch-job-{i}", 10, 0.3, 2, "spiky", lifetime_s=6.0),
        _p("cron-task", 5, 0.2, 1, "random", churn_rate=0.5),
        _p("nginx", 4, 0.5, 4, "spiky"),
        _p("postgres", 4, 0.5, 6),
    ),
}


def patterns_for(profile: LoadProfile) -> list[ProcessPattern]:
    """The profile's patterns: custom ones as given, built-ins scaled by ``params.scale``."""
    ensure_valid(profile)
    if profile.name == "none":
        return []
    if profile.name == "custom":
        return [ProcessPattern(**pat) for pat in profile.patterns()]
    scale = float(profile.params.get("scale", 1.0))
    return [replace(p, count=max(1, round(p.count * scale))) for p in BUILTIN_PROFILES[profile.name]]


def with_churn(patterns: list[ProcessPattern], per_minute: float) -> list[ProcessPattern]:
    """Add churn: ``per_minute`` of each pattern's processes killed and replaced every minute
    (a LoadSimulationJob's ``churnRate``), on top of what the pattern already churns."""
    return [replace(p, churn_rate=p.churn_rate + p.count * per_minute / 60.0) for p in patterns]


@dataclass(frozen=True)
class Plan:
    patterns: tuple[ProcessPattern, ...]
    notes: tuple[str, ...] = ()

    @property
    def processes(self) -> int:
        return sum(p.count for p in self.patterns)

    @property
    def cpu_pct(self) -> float:
        return sum(p.count * p.cpu_pct for p in self.patterns)

    @property
    def memory_mb(self) -> float:
        return sum(p.count * p.memory_mb for p in self.patterns)


def plan(patterns: list[ProcessPattern], limits: LoadLimits) -> Plan:
    """Fit patterns under the limits by scaling counts, CPU and memory down (never up)."""
    ensure_valid(limits)
    for i, p in enumerate(patterns):
        if p.cpu_pattern not in CPU_PATTERNS or p.memory_pattern not in MEMORY_PATTERNS:
            raise ValidationError(f"pattern {i + 1}: unknown cpu or memory pattern")
        if p.count < 1:
            raise ValidationError(f"pattern {i + 1}: count must be at least 1")
    notes: list[str] = []
    pats = list(patterns)
    total = sum(p.count for p in pats)
    if total > limits.max_processes:
        f = limits.max_processes / total
        pats = [replace(p, count=max(1, math.floor(p.count * f))) for p in pats]
        # floors of at least one each can still overshoot when there are many patterns
        while sum(p.count for p in pats) > limits.max_processes:
            j = max(range(len(pats)), key=lambda k: pats[k].count)
            if pats[j].count == 1:
                pats.pop(j)
            else:
                pats[j] = replace(pats[j], count=pats[j].count - 1)
        notes.append(f"process count scaled from {total} to {sum(p.count for p in pats)} (max {limits.max_processes})")
    cpu = sum(p.count * p.cpu_pct for p in pats)
    if cpu > limits.cpu_cap_pct:
        f = limits.cpu_cap_pct / cpu
        pats = [replace(p, cpu_pct=p.cpu_pct * f) for p in pats]
        notes.append(f"CPU targets scaled by {f:.3f} to fit the {limits.cpu_cap_pct:g}% cap")
    mem = sum(p.count * p.memory_mb for p in pats)
    if mem > limits.memory_cap_mb:
        f = limits.memory_cap_mb / mem
        pats = [replace(p, memory_mb=p.memory_mb * f) for p in pats]
        notes.append(f"memory targets scaled by {f:.3f} to fit the {limits.memory_cap_mb:g} MB cap")
    return Plan(tuple(pats), tuple(notes))


@dataclass
class _Slot:
    pattern: int
    index: int
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0


@dataclass
class LoadSimStatus:
    state: str  # starting | running | completed | cancelled | failed
    pid: int
    pgid: int | None
    run_dir: str
    duration_s: float
    elapsed_s: float = 0.0
    live: int = 0
    target: int = 0
    spawned_total: int = 0
    exited_total: int = 0
    killed_by_churn: int = 0
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    names: dict[str, int] = field(default_factory=dict)

    @property
    def progress(self) -> float:
        return min(1.0, self.elapsed_s / self.duration_s) if self.duration_s > 0 else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "progress": round(self.progress, 4)}


def _interpreter() -> str:
    # The real binary, not the venv's symlink chain: the name symlinks point straight at it.
    return os.path.realpath(sys.executable)


class LoadSimulator:
    """Runs one simulation. ``start()``, then ``step()`` periodically (or ``run()``), ``stop()``.

    Spawn from a thread that outlives the workers (``PR_SET_PDEATHSIG`` fires when the
    spawning *thread* exits); ``run()`` in the calling thread does that naturally.
    """

    def __init__(
        self,
        patterns: list[ProcessPattern],
        *,
        duration_s: float,
        limits: LoadLimits | None = None,
        status_path: Path | None = None,
        seed: int = 0,
        on_progress: Callable[[LoadSimStatus], None] | None = None,
    ) -> None:
        if not duration_s > 0:
            raise ValidationError(f"load duration must be positive, got {duration_s!r}")
        self.plan = plan(patterns, limits or LoadLimits())
        self.duration_s = float(duration_s)
        self.status_path = Path(status_path) if status_path else None
        self.on_progress = on_progress
        self._rng = random.Random(seed)
        self._seed = seed
        self._slots = [_Slot(pi, i) for pi, p in enumerate(self.plan.patterns) for i in range(p.count)]
        self._churn_debt = [0.0] * len(self.plan.patterns)
        self._lock = threading.RLock()
        self._anchor: subprocess.Popen[bytes] | None = None
        self._t0 = 0.0
        self._run_dir = Path(tempfile.mkdtemp(prefix="phoenix-loadsim-"))
        self.status = LoadSimStatus(
            state="starting",
            pid=os.getpid(),
            pgid=None,
            run_dir=str(self._run_dir),
            duration_s=self.duration_s,
            target=len(self._slots),
            notes=list(self.plan.notes),
        )

    # ------------------------------------------------------------ spawning

    def _exe(self, name: str) -> str:
        link = self._run_dir / name
        if not link.exists():
            os.symlink(_interpreter(), link)
        return str(link)

    def _spawn(self, name: str, extra: list[str]) -> subprocess.Popen[bytes]:
        argv = [name, "-S", "-I", str(WORKER_FILE), "--parent", str(os.getpid()), "--run", str(self._run_dir), *extra]
        kw: dict[str, Any] = {
            "executable": self._exe(name),
            "stdin": subprocess.DEVNULL,
            "stdout": subprocess.DEVNULL,
            "stderr": subprocess.DEVNULL,
            "close_fds": True,
            # argv[0] is the bare name; the interpreter finds its stdlib by resolving argv[0]
            # through PATH, so PATH must hold only our symlinks (a real /usr/bin/postgres
            # would otherwise win and the interpreter would look for its stdlib there).
            "cwd": str(self._run_dir),
            # plus the work's ids (PHOENIX_CORRELATION_ID…): a worker found by `ps e` names its experiment
            "env": child_env({"PATH": str(self._run_dir), "LC_ALL": "C"}),
        }
        if self._anchor is None:
            # The anchor leads a new process group in OUR session: setpgid() can only join
            # groups of the caller's session, so a new session would lock the workers out.
            kw["process_group"] = 0
        else:
            kw["process_group"] = self._anchor.pid
        return subprocess.Popen(argv, **kw)

    def start(self) -> None:
        with self._lock:
            if self._anchor is not None:
                return
            self._anchor = self._spawn(ANCHOR_NAME, ["--anchor"])
            self.status.pgid = self._anchor.pid
            self.status.state = "running"
            self._t0 = time.monotonic()
            self._write_status()
            self.step()

    def _start_slot(self, slot: _Slot) -> None:
        pat = self.plan.patterns[slot.pattern]
        slot.proc = self._spawn(
            pat.name(slot.index),
            [
                "--cpu-pattern", pat.cpu_pattern, "--cpu-pct", f"{pat.cpu_pct:.4f}",
                "--memory-pattern", pat.memory_pattern, "--memory-mb", f"{pat.memory_mb:.3f}",
                "--lifetime", f"{pat.lifetime_s:g}", "--seed", str(self._rng.randrange(1 << 30)),
            ],
        )  # fmt: skip
        slot.started = time.monotonic()
        self.status.spawned_total += 1

    # ------------------------------------------------------------ loop

    def step(self) -> LoadSimStatus:
        """Reap, churn, refill (bounded burst), record. Idempotent; call every ~0.25 s."""
        with self._lock:
            if self.status.state != "running":
                return self.status
            now = time.monotonic()
            elapsed = now - self._t0
            self.status.elapsed_s = elapsed
            if elapsed >= self.duration_s:
                self.stop("completed")
                return self.status
            dt = min(1.0, now - getattr(self, "_last_step", now))
            self._last_step = now
            for pi, pat in enumerate(self.plan.patterns):
                if pat.churn_rate <= 0:
                    continue
                self._churn_debt[pi] += pat.churn_rate * dt
                live = [s for s in self._slots if s.pattern == pi and s.proc and s.proc.poll() is None]
                while self._churn_debt[pi] >= 1 and live:
                    victim = live.pop(self._rng.randrange(len(live)))
                    with contextlib.suppress(ProcessLookupError):
                        victim.proc.kill()  # type: ignore[union-attr]
                    self.status.killed_by_churn += 1
                    self._churn_debt[pi] -= 1
            budget = SPAWN_BURST
            for slot in self._slots:
                if slot.proc is not None and slot.proc.poll() is not None:
                    self.status.exited_total += 1
                    slot.proc = None
                if slot.proc is None and budget > 0:
                    self._start_slot(slot)
                    budget -= 1
            self._refresh_counts()
            self._write_status()
            if self.on_progress:
                self.on_progress(self.status)
            return self.status

    def _refresh_counts(self) -> None:
        names: dict[str, int] = {}
        live = 0
        for s in self._slots:
            if s.proc is not None and s.proc.poll() is None:
                live += 1
                n = self.plan.patterns[s.pattern].name(s.index)
                names[n] = names.get(n, 0) + 1
        self.status.live = live
        self.status.names = names

    def run(self, stop_event: threading.Event | None = None) -> LoadSimStatus:
        """Blocking: start, step until the duration elapses or ``stop_event`` is set, stop."""
        try:
            self.start()
            while self.status.state == "running":
                if stop_event is not None and stop_event.wait(STEP_S):
                    self.stop("cancelled")
                    break
                if stop_event is None:
                    time.sleep(STEP_S)
                self.step()
        except BaseException as exc:
            self.stop("cancelled" if isinstance(exc, KeyboardInterrupt) else "failed", error=str(exc) or type(exc).__name__)
            raise
        return self.status

    def pids(self) -> list[int]:
        with self._lock:
            return [s.proc.pid for s in self._slots if s.proc is not None and s.proc.poll() is None]

    def stop(self, state: str = "cancelled", error: str | None = None) -> LoadSimStatus:
        """Kill the whole process group, reap, remove the run directory. Safe to repeat."""
        with self._lock:
            if self.status.state in {"completed", "cancelled", "failed"}:
                return self.status
            if self._anchor is not None:
                kill_group(self._anchor.pid)
                for s in self._slots:
                    if s.proc is not None:
                        with contextlib.suppress(subprocess.TimeoutExpired):
                            s.proc.wait(timeout=5)
                        s.proc = None
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._anchor.wait(timeout=5)
            if self._t0:
                self.status.elapsed_s = min(self.duration_s, time.monotonic() - self._t0)
            self.status.state = state
            self.status.error = error
            self.status.live = 0
            self.status.names = {}
            self._write_status()
            shutil.rmtree(self._run_dir, ignore_errors=True)
            if self.on_progress:
                self.on_progress(self.status)
            return self.status

    def _write_status(self) -> None:
        if self.status_path is None:
            return
        tmp = self.status_path.with_suffix(self.status_path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.status.to_dict(), indent=1))
        os.replace(tmp, self.status_path)  # readers never see half a file


# ---------------------------------------------------------------- cleanup helpers


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid``."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        # zombies are dead already (waiting for their parent to reap them)
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in {"Z", "X"}:
            out.append(int(d.name))
    return out


def leftover_pids(run_dir: str, pgid: int | None = None) -> list[int]:
    """Live processes started by the run whose private directory is ``run_dir``.

    Ownership is proven by the command line (``--run RUN_DIR`` and the worker file), never
    assumed from a stored number: PIDs are reused.
    """
    pids = group_members(pgid) if pgid else [int(d.name) for d in Path("/proc").iterdir() if d.name.isdigit()]
    mine = []
    for pid in pids:
        argv = cmdline(pid)
        if str(WORKER_FILE) in argv and "--run" in argv and run_dir in argv:
            mine.append(pid)
    return mine


def cleanup_leftovers(status_path: Path, *, force: bool = False) -> int:
    """After a crash/restart: kill what the run recorded in ``status_path`` left behind.

    Returns the number of processes killed. A run whose simulator is still alive is left
    alone unless ``force`` (its workers die with it anyway).
    """
    try:
        st = json.loads(Path(status_path).read_text())
    except (OSError, ValueError):
        return 0
    run_dir, pgid, owner = st.get("run_dir"), st.get("pgid"), st.get("pid")
    if not run_dir:
        return 0
    if not force and owner and owner != os.getpid() and pid_alive(owner) and st.get("state") == "running":
        return 0
    pids = leftover_pids(run_dir, pgid)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(run_dir, ignore_errors=True)
    return len(pids)


