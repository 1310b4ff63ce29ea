"""Experiment collector overhead, real collectors and emulator side by side in ONE run.

``python bench/collector_overhead.py [--interval 10 --duration 60 --procs 300 --out FILE]``

Target (issue 5 / issue 11 item 5): the Phoenix-managed experiment processes together use
≤ 5 % of one core and ≤ 150 MB RSS at a 10 s interval on a host with ~300 processes.

Both runtimes are started exactly as the local deployer starts them (``LocalDeployer.deploy``,
each with its own throwaway SQLite store, children tied to this process) and measured over
the same window on the same host:

- **real**: the tap collector (the only hostmetrics receiver) + the baseline and candidate
  collectors (``phoenix-otelcol``, configs from ``render_tap`` via ``otelcol_plan``), and the
  measuring child (``phoenix collector --experiment ID --measure-otelcol``: scrapes the three
  each interval and writes the samples). ``real_collectors`` = tap + baseline + candidate;
  ``real_managed`` = those + the measurer (everything Phoenix starts for a real experiment).
- **emulator**: ``phoenix collector --experiment ID``, both variants in one Python process.

Per process, over the window (after every child wrote its first samples, i.e. imports and
the first evaluation are done): CPU = Δ(user + system) of ``psutil`` cpu_times / Δwall, in %
of one core; RSS sampled every second (peak, mean), USS and PSS every few seconds. A set's
RSS is the peak (and mean) of the per-instant sum over its processes. RSS double counts
pages the processes share (the three collectors run one 127 MB binary); PSS splits them.
The collectors' own self-telemetry (``otelcol_process_cpu_seconds``,
``otelcol_process_memory_rss``) is read on their telemetry ports as the anchor, and the
samples each runtime wrote are summarised as Phoenix itself reports them.

The load simulator tops the host up to ``--procs`` processes (idle Python workers with
realistic names, one process group, always stopped). This process (sampling, simulator
bookkeeping) is reported as ``harness`` and counted in no set. Table on stderr, JSON on
stdout (and ``--out``). ``--collector-env K=V`` sets an environment variable for the
children (e.g. ``GOMEMLIMIT``) to try a reduction.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil  # noqa: E402

from core.machine import machine as host_machine  # noqa: E402

MB = 1048576.0
TARGET = {"cpu_pct_of_one_core": 5.0, "rss_mb": 150.0}
SETS = {
    "real_collectors": ("tap", "baseline", "candidate"),
    "real_managed": ("tap", "baseline", "candidate", "measurer"),
    "emulator": ("emulator",),
}


# ---------------------------------------------------------------- the machine


def machine() -> dict[str, Any]:
    return host_machine()


def _busy(t0: Any, t1: Any) -> float:
    """Host CPU busy over [t0, t1], % of all cores."""
    total = sum(t1) - sum(t0)
    idle = (t1.idle + getattr(t1, "iowait", 0)) - (t0.idle + getattr(t0, "iowait", 0))
    return round(100.0 * (1 - idle / total), 1) if total > 0 else 0.0


# ---------------------------------------------------------------- one watched process


def _telemetry(url: str) -> dict[str, float] | None:
    """cpu seconds, RSS and Go heap in use from a collector's self-telemetry; None when unreadable."""
    from core.runtime.scrape_measure import parse_samples

    names = {"otelcol_process_cpu_seconds_total": "cpu", "otelcol_process_cpu_seconds": "cpu",
             "otelcol_process_memory_rss": "rss", "otelcol_process_runtime_heap_alloc_bytes": "heap"}  # fmt: skip
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            text = r.read().decode("utf-8", errors="replace")
        return {names[n]: v for n, _, v in parse_samples(text, url) if n in names}
    except Exception:  # noqa: BLE001 - a missed telemetry read is reported as missing, not fatal
        return None


class Watched:
    def __init__(self, role: str, pid: int, telemetry_url: str | None = None) -> None:
        self.role, self.pid, self.telemetry_url = role, pid, telemetry_url
        self.proc = psutil.Process(pid)
        self.create_time = self.proc.create_time()
        self.cmd = " ".join(self.proc.cmdline())[:200]
        try:  # what the Go runtime was told (the deployer's otelcol_env)
            self.go_env = {k: v for k, v in self.proc.environ().items() if k in ("GOGC", "GOMEMLIMIT")}
        except psutil.Error:
            self.go_env = {}
        self.cpu0 = self.cpu1 = 0.0
        self.rss: list[float] = []
        self.uss: list[float] = []
        self.pss: list[float] = []
        self.alive_throughout = True
        self.tel0: tuple[float, float] | None = None
        self.tel1: tuple[float, float] | None = None
        self.tel_rss: list[float] = []
        self.tel_heap: list[float] = []
        self.cleaned_up: bool | None = None

    def cpu(self) -> float:
        t = self.proc.cpu_times()
        return float(t.user + t.system)

    def begin(self) -> None:
        self.cpu0 = self.cpu()
        self.sample(full=True)
        self.tel0 = self.read_telemetry()

    def end(self) -> None:
        try:
            self.cpu1 = self.cpu()
        except psutil.Error:
            self.alive_throughout = False
        self.tel1 = self.read_telemetry()

    def sample(self, full: bool = False) -> float:
        """RSS now (MB), 0 when the process is gone; USS/PSS too when ``full``."""
        try:
            if not self.proc.is_running() or self.proc.status() == psutil.STATUS_ZOMBIE:
                raise psutil.NoSuchProcess(self.pid)
            if full:
                m = self.proc.memory_full_info()
                self.uss.append(m.uss / MB)
                self.pss.append(getattr(m, "pss", m.uss) / MB)
            else:
                m = self.proc.memory_info()
        except psutil.Error:
            self.alive_throughout = False
            return 0.0
        self.rss.append(m.rss / MB)
        return m.rss / MB

    def read_telemetry(self) -> tuple[float, float] | None:
        if not self.telemetry_url:
            return None
        tel = _telemetry(self.telemetry_url)
        if tel is None:
            return None
        if "rss" in tel:
            self.tel_rss.append(tel["rss"] / MB)
        if "heap" in tel:
            self.tel_heap.append(tel["heap"] / MB)
        return (time.monotonic(), tel["cpu"]) if "cpu" in tel else None

    def gone(self) -> bool:
        """Not running any more (a reused PID with another start time counts as gone)."""
        try:
            p = psutil.Process(self.pid)
            return p.create_time() != self.create_time or p.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    def report(self, wall: float) -> dict[str, Any]:
        out: dict[str, Any] = {
            "pid": self.pid, "cmd": self.cmd, "existed": bool(self.rss), "alive_throughout": self.alive_throughout,
            "cleaned_up": self.cleaned_up,
            "cpu_pct_of_one_core": round(100.0 * (self.cpu1 - self.cpu0) / wall, 2) if wall > 0 else None,
            "rss_peak_mb": round(max(self.rss), 1) if self.rss else None,
            "rss_mean_mb": round(sum(self.rss) / len(self.rss), 1) if self.rss else None,
            "uss_peak_mb": round(max(self.uss), 1) if self.uss else None,
            "pss_peak_mb": round(max(self.pss), 1) if self.pss else None,
        }  # fmt: skip
        if self.telemetry_url:
            out["go_env"] = self.go_env
            cpu = None
            if self.tel0 and self.tel1 and self.tel1[0] > self.tel0[0]:
                cpu = round(100.0 * (self.tel1[1] - self.tel0[1]) / (self.tel1[0] - self.tel0[0]), 2)
            out["self_telemetry"] = {
                "cpu_pct_of_one_core": cpu,
                "rss_peak_mb": round(max(self.tel_rss), 1) if self.tel_rss else None,
                "rss_mean_mb": round(sum(self.tel_rss) / len(self.tel_rss), 1) if self.tel_rss else None,
                "go_heap_alloc_peak_mb": round(max(self.tel_heap), 1) if self.tel_heap else None,
            }  # fmt: skip
        return out


# ---------------------------------------------------------------- deploying both runtimes


class Runtime:
    """One experiment deployed by ``LocalDeployer`` into its own SQLite store."""

    def __init__(
        self, name: str, root: Path, a: argparse.Namespace, otelcol_bin: str | None, window_s: float
    ):
        from core.domain.criteria import LoadProfile, Timing
        from core.domain.experiment import Experiment
        from core.runtime.local import LocalDeployer
        from core.store.migrate import upgrade
        from core.store.uow import Database

        self.name, self.dir = name, root / name
        self.dir.mkdir(parents=True)
        url = f"sqlite:///{self.dir / 'phoenix.db'}"
        upgrade(url)
        self.db = Database(url)
        # The child's own deadline is duration × 2 + 60 s: it outlives the window but not us.
        self.exp = Experiment.create(name=f"overhead-{name}", baseline=a.baseline, candidate=a.candidate,
                                     timing=Timing(window_s, a.interval), load=LoadProfile("none"))  # fmt: skip
        with self.db.uow() as u:
            u.experiments.add(self.exp)
            u.commit()
        self.dep = LocalDeployer(self.db.uow, data_dir=self.dir, database_url=url, otelcol_bin=otelcol_bin,
                                 tie_children=True)  # fmt: skip
        self.info: dict[str, Any] = {}
        self.deployed = False

    def deploy(self) -> None:
        self.deployed = True
        self.info = self.dep.deploy(self.exp)

    def roles(self) -> dict[str, int]:
        with self.db.uow() as u:
            procs = [p for p in u.processes.list(owner_ref=self.exp.id) if p.status == "running"]
        if self.dep.otelcol_bin:
            return {p.role: p.pid for p in procs}
        return {"emulator": procs[0].pid} if procs else {}

    def telemetry_urls(self) -> dict[str, str]:
        import yaml

        from core.runtime.scrape_measure import endpoints_from_config, input_endpoint_from_config

        out = {}
        for role, path in (self.info.get("configs") or {}).items():
            conf = yaml.safe_load(Path(path).read_text()) or {}
            ep = input_endpoint_from_config(conf) if role == "tap" else endpoints_from_config(conf)
            out[role] = ep.telemetry_url
        return out

    def samples(self) -> int:
        with self.db.uow() as u:
            return int(u.samples.count(self.exp.id))

    def reported(self, t0: datetime, t1: datetime) -> dict[str, Any]:
        """What the runtime itself wrote for each variant over the window (mean)."""
        with self.db.uow() as u:
            rows = [s for s in u.samples.list(self.exp.id) if t0 <= _utc(s.t) <= t1]
        out: dict[str, Any] = {}
        for v in ("baseline", "candidate"):
            mine = [s for s in rows if s.variant == v]
            cpu = [s.collector_cpu_pct for s in mine if s.collector_cpu_pct is not None]
            rss = [s.collector_rss_mb for s in mine if s.collector_rss_mb is not None]
            out[v] = {"intervals": len(mine),
                      "series_mean": round(sum(s.series for s in mine) / len(mine), 1) if mine else None,
                      "critical_coverage_pct_min": min((s.critical_coverage_pct for s in mine
                                                        if s.critical_coverage_pct is not None), default=None),
                      "collector_cpu_pct_mean": round(sum(cpu) / len(cpu), 2) if cpu else None,
                      "collector_rss_mb_mean": round(sum(rss) / len(rss), 1) if rss else None}  # fmt: skip
        return out

    def log_problems(self) -> dict[str, int]:
        """Intervals the child skipped and error lines per log (collectors log ``\terror\t``)."""
        out: dict[str, int] = {}
        for log in sorted(self.dir.glob("*.log")):
            text = log.read_text(errors="replace")
            role = log.stem.rsplit("-", 1)[-1] if log.stem.startswith("otelcol-") else "child"
            out[f"{role}_error_lines"] = sum(("\terror\t" in ln or "Traceback" in ln or " ERROR " in ln)
                                             for ln in text.splitlines())  # fmt: skip
            if role == "child":
                out["intervals_skipped"] = text.count("interval skipped")
        return out

    def teardown(self) -> None:
        if self.deployed:
            self.dep.teardown(self.exp)
        self.db.dispose()


def _utc(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _reap(pids: list[int]) -> None:
    """Collect our exited children (the deployer keeps no handle on the collectors)."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)


def _set_figures(members: list[Watched], series: list[dict[str, float]], wall: float) -> dict[str, Any]:
    roles = [w.role for w in members]
    sums = [sum(s.get(r, 0.0) for r in roles) for s in series]
    cpu = sum(100.0 * (w.cpu1 - w.cpu0) / wall for w in members) if wall > 0 else 0.0
    rss_peak = max(sums) if sums else 0.0
    tel = [w.report(wall).get("self_telemetry") or {} for w in members]
    out = {
        "processes": roles,
        "cpu_pct_of_one_core": round(cpu, 2),
        "rss_peak_mb": round(rss_peak, 1),
        "rss_mean_mb": round(sum(sums) / len(sums), 1) if sums else None,
        "uss_sum_of_peaks_mb": round(sum(max(w.uss) for w in members if w.uss), 1),
        "pss_sum_of_peaks_mb": round(sum(max(w.pss) for w in members if w.pss), 1),
        "meets_target": cpu <= TARGET["cpu_pct_of_one_core"] and rss_peak <= TARGET["rss_mb"],
    }
    if tel and all(t for t in tel):
        c = [t.get("cpu_pct_of_one_core") for t in tel]
        r = [t.get("rss_peak_mb") for t in tel]
        out["self_telemetry"] = {
            "cpu_pct_of_one_core": round(sum(c), 2) if None not in c else None,  # type: ignore[arg-type]
            "rss_sum_of_peaks_mb": round(sum(r), 1) if None not in r else None,  # type: ignore[arg-type]
        }
    return out


# ---------------------------------------------------------------- the run


def run(a: argparse.Namespace) -> dict[str, Any]:
    from core.otelcol.distribution import built_binary
    from core.runtime.loadsim import LoadLimits, LoadSimulator, ProcessPattern

    binary = a.otelcol_bin or os.environ.get("PHOENIX_OTELCOL_BIN") or (str(built_binary() or "") or None)
    if not binary and not a.no_real:
        raise SystemExit(
            "no real collector: build it (`phoenix otelcol build`), pass --otelcol-bin, or --no-real"
        )
    for kv in a.collector_env:
        k, _, v = kv.partition("=")
        os.environ[k] = v  # inherited by every child the deployers start
    me = psutil.Process(os.getpid())
    out: dict[str, Any] = {
        "machine": machine(), "interval_s": a.interval, "baseline": a.baseline, "candidate": a.candidate,
        "otelcol_bin": None if a.no_real else binary, "collector_env": dict(kv.partition("=")[::2] for kv in a.collector_env),
        "target": TARGET, "sets": {}, "processes": {},
    }  # fmt: skip
    root = Path(tempfile.mkdtemp(prefix="phoenix-overhead-"))
    runtimes: list[Runtime] = []
    watched: dict[str, Watched] = {}
    sim = None
    window_s = a.duration + 3 * a.interval + 60  # the experiments' nominal duration: outlives the window
    try:
        existing = len(psutil.pids())
        children = (0 if a.no_real else 4) + (0 if a.no_emulator else 1)
        extra = max(0, a.procs - existing - children)
        if extra:
            sim = LoadSimulator([ProcessPattern("worker-{i}", extra, cpu_pct=0.0, memory_mb=0.5)],
                                duration_s=window_s * 2, limits=LoadLimits(max_processes=max(1, extra)),
                                status_path=root / "loadsim.json")  # fmt: skip
            sim.start()
            t_end = time.monotonic() + 120
            while sim.step().live < extra and time.monotonic() < t_end:
                time.sleep(0.25)
        out["load_workers"] = extra
        if not a.no_real:
            runtimes.append(Runtime("real", root, a, binary, window_s))
        if not a.no_emulator:
            runtimes.append(Runtime("emulator", root, a, None, window_s))
        for rt in runtimes:
            rt.deploy()
        # Ready = every child wrote its first samples (imports, first evaluation, first scrape done).
        t_end = time.monotonic() + 3 * a.interval + 90
        while time.monotonic() < t_end and not all(rt.samples() >= 2 for rt in runtimes):
            if sim:
                sim.step()
            time.sleep(0.25)
        not_ready = [rt.name for rt in runtimes if rt.samples() < 2]
        if not_ready:
            raise RuntimeError(f"no samples from {', '.join(not_ready)} within {3 * a.interval + 90:.0f}s "
                               f"(logs in {root})")  # fmt: skip
        for rt in runtimes:
            urls = rt.telemetry_urls()
            for role, pid in rt.roles().items():
                watched[role] = Watched(role, pid, urls.get(role))

        # ------------------------------------------------ the window
        host0, me0, w0, d0 = psutil.cpu_times(), me.cpu_times(), time.monotonic(), datetime.now(UTC)
        load = [os.getloadavg()]
        nprocs = [len(psutil.pids())]
        for w in watched.values():
            w.begin()
        series: list[dict[str, float]] = []
        next_sample, next_full, i = w0, w0, 0
        while time.monotonic() - w0 < a.duration:
            now = time.monotonic()
            if now >= next_sample:
                full = now >= next_full
                series.append({r: w.sample(full=full) for r, w in watched.items()})
                next_sample += 1.0
                if full:
                    next_full += 5.0
                    nprocs.append(len(psutil.pids()))
                    load.append(os.getloadavg())
                    for w in watched.values():
                        if w.telemetry_url:  # RSS only: CPU is taken at both ends of the window
                            w.read_telemetry()
                i += 1
            if sim:
                sim.step()
            time.sleep(0.25)
        for w in watched.values():
            w.end()
        host1, me1, w1, d1 = psutil.cpu_times(), me.cpu_times(), time.monotonic(), datetime.now(UTC)
        load.append(os.getloadavg())
        wall = w1 - w0
        out["window_s"] = round(wall, 1)
        out["host"] = {
            "processes_min": min(nprocs), "processes_max": max(nprocs),
            "loadavg_1m_start": round(load[0][0], 2), "loadavg_1m_end": round(load[-1][0], 2),
            "loadavg_1m_max": round(max(x[0] for x in load), 2),
            "loadavg_1_5_15_end": [round(x, 2) for x in load[-1]],
            "cpu_busy_pct_of_all_cores": _busy(host0, host1),
        }  # fmt: skip
        out["harness"] = {"cpu_pct_of_one_core": round(100.0 * ((me1.user + me1.system) - (me0.user + me0.system)) / wall, 2),
                          "rss_mb": round(me.memory_info().rss / MB, 1),
                          "note": "this process (sampling, load simulator bookkeeping): in no set"}  # fmt: skip
        for name, roles in SETS.items():
            members = [watched[r] for r in roles if r in watched]
            if len(members) == len(roles):
                out["sets"][name] = _set_figures(members, series, wall)
        out["reported_by_phoenix"] = {rt.name: rt.reported(d0, d1) for rt in runtimes}
        for rt in runtimes:
            if rt.name == "real" and "measurer" in watched:
                out["reported_by_phoenix"]["real"]["note"] = (
                    "the measurer's per-variant figures from the collectors' self-telemetry"
                )
        out["_wall"] = wall
    finally:
        for rt in runtimes:
            with contextlib.suppress(Exception):
                rt.teardown()
        if sim:
            sim.stop("completed")
        _reap([w.pid for w in watched.values()])
        for rt in runtimes:
            with contextlib.suppress(OSError, KeyError):
                out["reported_by_phoenix"][rt.name]["log_problems"] = rt.log_problems()
        t_end = time.monotonic() + 15
        while time.monotonic() < t_end and not all(w.gone() for w in watched.values()):
            _reap([w.pid for w in watched.values()])
            time.sleep(0.2)
        for w in watched.values():
            w.cleaned_up = w.gone()
        if not a.keep:
            shutil.rmtree(root, ignore_errors=True)
    wall = out.pop("_wall", 0.0)
    out["processes"] = {r: w.report(wall) for r, w in watched.items()}
    out["load_workers_left"] = sim.step().live if sim else 0
    return out


# ---------------------------------------------------------------- the table


def table(r: dict[str, Any]) -> str:
    m, h = r["machine"], r.get("host", {})
    lines = [
        f"machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['memory_gb']} GB RAM, kernel {m['kernel']}",
        f"run: {r.get('window_s')} s window, {r['interval_s']:g} s interval, {h.get('processes_min')}-"
        f"{h.get('processes_max')} host processes ({r.get('load_workers', 0)} load workers); load average 1m "
        f"{h.get('loadavg_1m_start')} → {h.get('loadavg_1m_end')} (max {h.get('loadavg_1m_max')}), "
        f"host CPU busy {h.get('cpu_busy_pct_of_all_cores')} % of all cores",
        f"pair: {r['baseline']} vs {r['candidate']}"
        + (f"; collector env {r['collector_env']}" if r.get("collector_env") else "")
        + f"; collectors ran with {(r['processes'].get('tap') or {}).get('go_env') or 'Go defaults'}",
        "",
        f"{'process':<11}{'CPU % core':>11}{'RSS peak':>10}{'RSS mean':>10}{'USS peak':>10}{'PSS peak':>10}"
        f"{'self CPU %':>12}{'self RSS':>10}",
    ]

    def f(x: Any, nd: int = 1) -> str:
        return "-" if x is None else f"{x:.{nd}f}"

    for role, p in r["processes"].items():
        st = p.get("self_telemetry") or {}
        lines.append(f"{role:<11}{f(p['cpu_pct_of_one_core'], 2):>11}{f(p['rss_peak_mb']):>10}{f(p['rss_mean_mb']):>10}"
                     f"{f(p['uss_peak_mb']):>10}{f(p['pss_peak_mb']):>10}{f(st.get('cpu_pct_of_one_core'), 2):>12}"
                     f"{f(st.get('rss_peak_mb')):>10}")  # fmt: skip
    lines += ["", f"{'set (target ≤ 5 % core, ≤ 150 MB RSS)':<48}{'CPU %':>8}{'RSS peak':>10}{'RSS mean':>10}"
                  f"{'USS Σ':>8}{'PSS Σ':>8}  meets"]  # fmt: skip
    for name, s in r["sets"].items():
        lines.append(f"{name + ' = ' + '+'.join(s['processes']):<48}{f(s['cpu_pct_of_one_core'], 2):>8}"
                     f"{f(s['rss_peak_mb']):>10}{f(s['rss_mean_mb']):>10}{f(s['uss_sum_of_peaks_mb']):>8}"
                     f"{f(s['pss_sum_of_peaks_mb']):>8}  {'yes' if s['meets_target'] else 'NO'}")  # fmt: skip
    hr = r.get("harness", {})
    lines.append(f"(harness, in no set: {hr.get('cpu_pct_of_one_core')} % core, {hr.get('rss_mb')} MB RSS)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--interval", type=float, default=10.0)
    ap.add_argument("--duration", type=float, default=60.0, help="measuring window, seconds")
    ap.add_argument("--procs", type=int, default=300, help="top the host up to this many processes (0: none)")
    ap.add_argument("--baseline", default="process-baseline-v1")
    ap.add_argument("--candidate", default="process-topk-v1")
    ap.add_argument(
        "--otelcol-bin", default=None, help="default: PHOENIX_OTELCOL_BIN, else the built distribution"
    )
    ap.add_argument("--collector-env", action="append", default=[], metavar="K=V")
    ap.add_argument("--no-real", action="store_true")
    ap.add_argument("--no-emulator", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the run directory (configs, logs, stores)")
    ap.add_argument("--out", default=None, help="also write the JSON here")
    a = ap.parse_args(argv)

    def _term(signum: int, _frame: Any) -> None:  # run the finally blocks: stop everything we started
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _term)
    r = run(a)
    print(table(r), file=sys.stderr)
    text = json.dumps(r, indent=2)
    if a.out:
        Path(a.out).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
