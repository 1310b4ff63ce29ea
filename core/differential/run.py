"""Run the differential truth test on this host: real collectors vs the engine.

One run: start the load simulator (real, realistically named processes), take a tuning
snapshot and tune the threshold-based templates on it (``core.engine.tuning.tune``, what
``phoenix pipeline render NAME --snapshot`` does), render every template with a short
``collection_interval`` and a prometheus exporter on a free loopback port, run all the
collectors at once, then, template by template:

1. learn the collector's scrape phase from its point timestamps (``send_timestamps``);
2. take two psutil reads that start *at* two consecutive collector scrapes (utilisation
   then covers the same window on both sides), each bracketed by pid censuses;
3. wait for that scrape to reach ``/metrics`` and compare it with the engine's prediction
   (``evaluate`` + ``EstimateResult.series_out_frame``, the ``--series-out`` path) on those
   two reads, with :mod:`core.differential.compare`.

Every collector runs in its own process group, tied to this process (it dies with it),
and is stopped in ``finally``; the load simulator kills its whole group on stop.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from core.catalog.registry import get as get_node_type
from core.catalog.templates import TEMPLATE_NAMES, get_template
from core.differential import compare as d
from core.domain.critical import classify
from core.domain.pipeline import Pipeline
from core.engine.estimate import EstimateResult
from core.engine.evaluate import evaluate
from core.engine.hostsnapshot import snapshot_this_host
from core.engine.tuning import tunable_nodes, tune
from core.machine import machine as host_machine
from core.render.collector import RenderOptions, build

BASELINE = "process-baseline-v1"
DEFAULT_INTERVAL_S = 2.0
CENSUS_LEAD_S = 0.15  # census this long before a collector scrape
POLL_S = 0.4  # how often a watcher reads /metrics
TICK_SLACK_S = 0.25  # how early a scrape may start against the estimated tick


# ---------------------------------------------------------------- collectors


def free_ports(n: int) -> list[int]:
    """``n`` distinct free loopback ports (bound once, released before the collector binds)."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def with_interval(pipeline: Pipeline, interval_s: float) -> Pipeline:
    pipeline.receiver().params["collection_interval"] = f"{interval_s:g}s"
    return pipeline


def collector_config(pipeline: Pipeline, ports: Sequence[int]) -> dict[str, Any]:
    """The rendered config on loopback ports, plus ``send_timestamps`` on the prometheus
    exporter: the harness needs each point's scrape time (stale series of exited
    processes are served until ``metric_expiration``). Nothing else is changed."""
    metrics, telemetry, health = ports
    config = build(pipeline, RenderOptions(
        prometheus_host="127.0.0.1", prometheus_port=metrics, telemetry_host="127.0.0.1",
        telemetry_port=telemetry, health_host="127.0.0.1", health_port=health)).config
    for exporter_id, exporter in config["exporters"].items():
        if exporter_id.split("/")[0] == "prometheus":
            exporter["send_timestamps"] = True
    return config


@dataclass
class Collector:
    name: str
    pipeline: Pipeline
    config_path: Path
    metrics_url: str
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self, binary: Path) -> None:
        from core.runtime.procs import popen_tied

        with self.log_path.open("wb") as log:
            self.proc = popen_tied([str(binary), f"--config=file:{self.config_path}"], stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT, process_group=0)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def fetch(self, timeout: float = 3.0) -> str | None:
        if self.proc is not None and self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"collector {self.name} exited with {self.proc.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(self.metrics_url, timeout=timeout) as resp:  # noqa: S310 - loopback
                return resp.read().decode("utf-8")
        except OSError:
            return None


class Watcher:
    """Polls a collector's ``/metrics`` and keeps the raw texts of the last ``keep_s`` seconds.

    Polling only fetches (cheap, so no export is missed on a busy host); texts are parsed
    when a scrape is asked for. A scrape is taken from the text that holds most of it: a
    poll may land while the exporter is still taking a batch in, and the next scrape
    overwrites its series.
    """

    def __init__(self, collector: Collector, interval_s: float, keep_s: float = 30.0) -> None:
        self.collector = collector
        self.gap_s = 0.6 * interval_s
        self.interval_s = interval_s
        self.keep_s = keep_s
        self.texts: list[tuple[float, str]] = []  # (fetched at, text)
        self.error: BaseException | None = None
        self._parsed: dict[int, list[list[d.Point]]] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name=f"watch-{collector.name}", daemon=True)

    def start(self) -> Watcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception as exc:  # noqa: BLE001 - reported to the waiting caller
                self.error = exc
                return
            self._stop.wait(POLL_S)

    def poll(self) -> None:
        text = self.collector.fetch()
        if text is None:
            return
        now = time.time()
        with self._lock:
            if self.texts and self.texts[-1][1] == text:
                return  # nothing exported since the last poll: nothing to parse twice
            self.texts.append((now, text))
            while self.texts and self.texts[0][0] < now - self.keep_s:
                self.texts.pop(0)

    def _points(self, fetched_from: float) -> list[list[d.Point]]:
        """Parsed points of every text fetched since ``fetched_from`` (parsed once each)."""
        with self._lock:
            texts = [x for t, x in self.texts if t >= fetched_from]
            alive = {id(x) for _, x in self.texts}
        self._parsed = {k: v for k, v in self._parsed.items() if k in alive}
        out = []
        for text in texts:
            if id(text) not in self._parsed:
                self._parsed[id(text)] = d.parse_collector(text)
            out.append(self._parsed[id(text)])
        return out

    def starts(self, last: int = 4) -> list[tuple[float, int]]:
        """(start time, points) of the scrapes in the last few texts (for the phase)."""
        with self._lock:
            if not self.texts:
                return []
            since = self.texts[-min(last, len(self.texts))][0]
        return sorted({(d.scrape_start(g), len(g)) for pts in self._points(since) for g in d.scrapes(pts, self.gap_s)})

    def window(self, t0: float, t1: float) -> list[d.Point]:
        """Points stamped in [t0, t1), from the text that holds most of them."""
        best: list[d.Point] = []
        for pts in self._points(t0):
            got = [p for p in pts if p.timestamp is not None and t0 <= p.timestamp < t1]
            if len(got) > len(best):
                best = got
        return best

    def scrape_near(self, t: float) -> list[d.Point] | None:
        """The scrape of tick ``t``: every point stamped from ``t`` (a little before, for the
        phase estimate's error) to the next tick. Windows, not gaps: on a busy host a scrape
        can stall mid-way, and a template may export only processes read late in it."""
        return self.window(t - TICK_SLACK_S, t + self.interval_s - TICK_SLACK_S) or None

    def scrapes_around(self, at: float) -> tuple[list[d.Point], list[d.Point]] | None:
        """The scrape whose tick is the last at or before ``at`` and the next one."""
        starts = self.starts(last=8)
        if not starts:
            return None
        phase = tick_phase(starts, self.interval_s)
        tick = phase + math.floor((at - phase) / self.interval_s) * self.interval_s
        before = self.scrape_near(tick)
        after = self.scrape_near(tick + self.interval_s)
        return (before, after) if before and after else None

    def wait(self, pred: Callable[[], Any], timeout: float) -> Any:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.error is not None:
                raise self.error
            got = pred()
            if got:
                return got
            time.sleep(0.2)
        return pred()


# ---------------------------------------------------------------- host reads


Identity = tuple[float, str, str]  # start time, name, command line


def _command_line(pid: int) -> str:
    """``/proc/PID/cmdline`` as the scraper joins it (trailing NULs trimmed, split on NUL)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            raw = fh.read()
    except OSError:
        return ""
    return " ".join(a.decode("utf-8", "replace") for a in raw.rstrip(b"\0").split(b"\0")) if raw else ""


def census(rss: dict[int, list[float]] | None = None) -> dict[int, Identity]:
    """pid → (start time, name, command line) of every process now: what makes a series
    identity (processes retitle themselves, e.g. postgres backends per query). Each
    process's RSS is appended to ``rss`` (samples for threshold crossings)."""
    import psutil

    out = {}
    for p in psutil.process_iter(["create_time", "name", "memory_info"]):
        started = p.info.get("create_time")
        if started is not None:
            out[p.pid] = (float(started), str(p.info.get("name") or ""), _command_line(p.pid))
            mem = p.info.get("memory_info")
            if rss is not None and mem is not None:
                rss.setdefault(p.pid, []).append(float(mem.rss))
    return out


def names_of(pids: set[int], *frames: pd.DataFrame) -> dict[int, str]:
    out: dict[int, str] = {}
    for f in frames:
        sel = f[f["pid"].isin(pids)]
        out.update({int(p): str(n) for p, n in zip(sel["pid"], sel["executable_name"], strict=True)})
    return out


def sleep_until(t: float) -> None:
    delay = t - time.time()
    if delay > 0:
        time.sleep(delay)


@dataclass
class AlignedRead:
    """Two psutil reads starting at two consecutive collector scrapes, with censuses."""

    snapshot: pd.DataFrame  # two scrapes: the engine's input
    t_a: float
    t_b: float
    censuses: dict[str, dict[int, Identity]]
    rss: dict[int, list[float]]  # every RSS sample of each pid around the two scrapes

    def exclusions(self) -> dict[str, set[int]]:
        """Pids that started/stopped, or changed name or command line, around a scrape."""
        c = self.censuses
        windows = [(c["before_a"], c["after_a"]), (c["before_b"], c["after_b"]),
                   (c["before_b"], c.get("exported", c["after_b"]))]
        return {"started_or_stopped": set().union(*(d.churn_pids(a, b) for a, b in windows)),
                "renamed_or_retitled": set().union(*(d.identity_changed(a, b) for a, b in windows))}


def tick_phase(starts: Sequence[tuple[float, int]], interval_s: float) -> float:
    """The scraper's tick instant nearest the largest recent scrape.

    ``starts``: (first point's time, points) of the scrapes seen. A scrape starts at its tick
    or late (busy host), never early, so the earliest start modulo the interval is the
    tick; only full-sized scrapes count (series of exited processes linger as small
    groups), and only starts within ±0.3 interval of the largest one's.
    """
    biggest = max(n for _, n in starts)
    ref = max(starts, key=lambda sn: sn[1])[0]
    offsets = [((s - ref + interval_s / 2) % interval_s) - interval_s / 2 for s, n in starts if 2 * n >= biggest]
    return ref + min(o for o in offsets if abs(o) <= 0.3 * interval_s)


def aligned_read(t_a: float, interval_s: float) -> AlignedRead:
    t_b = t_a + interval_s
    censuses: dict[str, dict[int, Identity]] = {}
    rss: dict[int, list[float]] = {}
    sleep_until(t_a - CENSUS_LEAD_S)
    censuses["before_a"] = census(rss)
    sleep_until(t_a)

    def between(_: float) -> None:
        # late enough for a collector scrape that started late or ran slowly to be over
        sleep_until(t_a + 0.6 * interval_s)
        censuses["after_a"] = census(rss)
        sleep_until(t_b - CENSUS_LEAD_S)
        censuses["before_b"] = census(rss)
        sleep_until(t_b)

    snap = snapshot_this_host(2, interval_s, sleep=between)
    censuses["after_b"] = census(rss)
    for pid, mem in zip(snap["pid"].astype(int), snap["memory_usage"], strict=True):
        if mem == mem:
            rss.setdefault(pid, []).append(float(mem))
    return AlignedRead(snap, t_a, t_b, censuses, rss)


# ---------------------------------------------------------------- one template


def churn_groups(pipeline: Pipeline, names: Sequence[str]) -> set[str]:
    """Rollup group names processes with these executable names land in."""
    out: set[str] = set()
    for node in pipeline.chain():
        if node.type != "rollup":
            continue
        p = get_node_type("rollup").with_defaults(node.params)
        if p["group_by"] == "executable_name":
            cut = p["strip_after"]
            out |= {n.split(cut, 1)[0] if cut else n for n in names}
        else:
            out |= {str(p["default_category"]), *map(str, p["categories"])}
    return out


def engine_prediction(pipeline: Pipeline, snapshot: pd.DataFrame) -> tuple[list[d.Point], pd.Series]:
    """The engine's last-scrape series for ``pipeline`` on ``snapshot`` (the ``--series-out``
    rows) and the series each scraped process must have (by pid). Evaluated as given: the
    pipeline is already tuned."""
    result = evaluate(pipeline, snapshot)
    frame = EstimateResult(report={}, evaluation=result, pipeline=pipeline).series_out_frame()
    inp = result.input.df
    last_in = inp[inp["scrape"].to_numpy() == result.input.n_scrapes - 1]
    return d.engine_points(frame), d.expected_series(last_in, result.ctx.enabled_metrics)


@dataclass
class TemplateResult:
    name: str
    scrape_at: float
    series: d.SeriesAgreement
    critical: d.CriticalCoverage
    rollup: dict[str, d.RollupCheck] | None
    excluded: dict[str, list[int]]  # pids left out of the comparison, by reason
    processes: int
    tuned: dict[str, Any] = field(default_factory=dict)
    values: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (self.series.agrees and self.critical.complete
                and all(c.within for c in (self.rollup or {}).values()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "template": self.name, "ok": self.ok, "processes": self.processes,
            "excluded": self.excluded, "churn_pids": sorted(set().union(*map(set, self.excluded.values()))),
            "series": self.series.to_dict(), "critical": self.critical.to_dict(),
            "rollup": None if self.rollup is None else {m: c.to_dict() for m, c in self.rollup.items()},
            "tuned": self.tuned, "values": self.values,
        }


def has_rollup(pipeline: Pipeline) -> bool:
    return any(n.type == "rollup" for n in pipeline.chain())


def memory_thresholds(pipeline: Pipeline) -> list[float]:
    """The memory thresholds a pipeline's keep statements compare RSS with."""
    from core.catalog._thresholds import DEFAULT_CPU_UTILIZATION, DEFAULT_MEMORY_BYTES, effective, uses_memory

    out = []
    for node in pipeline.chain():
        if node.type in ("topk", "adaptive", "resource_filter"):
            p = get_node_type(node.type).with_defaults(node.params)
            if node.type == "resource_filter":
                mem = int(p["memory_bytes"])
            else:
                _, mem, _ = effective(p["computed"], p["by"], DEFAULT_CPU_UTILIZATION, DEFAULT_MEMORY_BYTES)
            if uses_memory(p["by"]):
                out.append(float(mem))
                # adaptive: one threshold per host besides the fleet's
                hosts = (p.get("computed") or {}).get("hosts") or {}
                out += [float(v["memory_bytes"]) for v in hosts.values()
                        if isinstance(v, dict) and v.get("memory_bytes") is not None]
    return out


def cpu_thresholds(pipeline: Pipeline) -> list[float]:
    """The CPU-utilisation thresholds a pipeline's keep statements compare with."""
    from core.catalog._thresholds import DEFAULT_CPU_UTILIZATION, DEFAULT_MEMORY_BYTES, effective, uses_cpu

    out = []
    for node in pipeline.chain():
        if node.type in ("topk", "adaptive", "resource_filter"):
            p = get_node_type(node.type).with_defaults(node.params)
            if not uses_cpu(p["by"]):
                continue
            if node.type == "resource_filter":
                out.append(float(p["cpu_utilization"]))
                continue
            cpu, _, _ = effective(p["computed"], p["by"], DEFAULT_CPU_UTILIZATION, DEFAULT_MEMORY_BYTES)
            out.append(float(cpu))
            hosts = (p.get("computed") or {}).get("hosts") or {}
            out += [float(v["cpu_utilization"]) for v in hosts.values()
                    if isinstance(v, dict) and v.get("cpu_utilization") is not None]
    return out


# /proc reports CPU time in clock ticks (USER_HZ = 100): two reads of one counter a moment
# apart may differ by a tick or two; as utilisation over the interval that is this tolerance.
CPU_TICK_S = 0.01
CPU_TICKS_TOLERANCE = 2


def utilisation_by_pid(snap: pd.DataFrame) -> tuple[dict[int, list[float]], float]:
    """Per pid: CPU utilisation per state between our two reads; and the tick tolerance."""
    ts = sorted(snap["timestamp"].unique())
    if len(ts) < 2:
        return {}, 0.0
    a, b = snap[snap["timestamp"] == ts[-2]], snap[snap["timestamp"] == ts[-1]]
    cpus = float(b["num_cpus"].iloc[0]) if "num_cpus" in b.columns and len(b) else 1.0
    span = (float(ts[-1]) - float(ts[-2])) * max(cpus, 1.0)
    joined = b.merge(a, on="pid", suffixes=("", "_prev"))
    out = {int(r["pid"]): [(r[f"cpu_time_{s}"] - r[f"cpu_time_{s}_prev"]) / span for s in ("user", "system", "wait")]
           for r in joined.to_dict("records")}  # fmt: skip
    return out, CPU_TICKS_TOLERANCE * CPU_TICK_S / span


def exclusions(collector: Collector, read: AlignedRead, points: Sequence[d.Point],
               last: pd.DataFrame) -> dict[str, set[int]]:
    """Pids left out of the comparison, by reason; each reason is shown by our own reads."""
    out = read.exclusions()
    out["started_or_stopped"] |= {p.pid for p in points if p.pid is not None and p.pid not in set(last["pid"])}
    pids = last["pid"].astype(int)
    kernel = pids[(last["parent_pid"] == 2).to_numpy() | (pids == 2).to_numpy()]
    names = dict(zip(pids, last["executable_name"].astype(str), strict=True))
    out["renamed_or_retitled"] |= d.renamed_kernel_threads(points, names, set(kernel))
    out["renamed_or_retitled"] |= d.seen_retitled(points, last, read.censuses.values())
    # The collector under test reads its own process in the middle of its scrape, while it
    # allocates for it: no outside read sees that memory or CPU.
    out["observer"] = {collector.proc.pid} if collector.proc is not None else set()
    return out


def measure(collector: Collector, watcher: Watcher, baseline: Watcher | None, interval_s: float) -> TemplateResult:
    """Compare one running collector's scrape with the engine on an aligned psutil read."""
    starts = watcher.wait(watcher.starts, 6 * interval_s)
    if not starts:
        raise RuntimeError(f"collector {collector.name} exported nothing")
    phase = tick_phase(starts, interval_s)
    k = math.ceil((time.time() + 3 * CENSUS_LEAD_S - phase) / interval_s)
    read = aligned_read(phase + k * interval_s, interval_s)
    if not watcher.wait(lambda: watcher.scrape_near(read.t_b), 3 * interval_s + 2):
        raise RuntimeError(f"collector {collector.name}: no scrape near {read.t_b:.3f} reached /metrics")
    time.sleep(3 * POLL_S)  # a few more sightings: the largest holds the whole scrape
    points = watcher.scrape_near(read.t_b) or []
    # The collector's scrape may have run past our read (late tick, busy host): pids that
    # changed until its export count too.
    read.censuses["exported"] = census(read.rss)
    snap = read.snapshot
    last = snap[snap["timestamp"] == snap["timestamp"].max()]
    excluded = exclusions(collector, read, points, last)
    engine, expected = engine_prediction(collector.pipeline, snap)
    ch = _churn(collector.pipeline, excluded, read, points, snap)
    series = d.compare_series(points, engine, ch)
    # A process whose RSS our own reads saw on both sides of a memory threshold may be kept
    # by one side and rolled up by the other: a timing difference, not a semantic one.
    one_sided = {k_[1] for k_ in (*series.only_collector, *series.only_engine)}
    one_sided_pids = {int(v) for labels in one_sided for key, v in labels if key == d.PID_LABEL}
    excluded["threshold_crossing"] = d.observed_crossings(one_sided_pids, read.rss,
                                                          memory_thresholds(collector.pipeline))
    utilisation, tolerance = utilisation_by_pid(snap)
    excluded["threshold_crossing"] |= d.near_cpu_thresholds(one_sided_pids, utilisation,
                                                            cpu_thresholds(collector.pipeline), tolerance)
    if excluded["threshold_crossing"]:
        ch = _churn(collector.pipeline, excluded, read, points, snap)
        series = d.compare_series(points, engine, ch)
    policy = collector.pipeline.policy()
    prio = classify(policy, last["executable_name"], last["command_line"], last["owner"])
    crit = last[(prio == "critical").to_numpy()]
    critical = d.critical_coverage(points, dict(zip(crit["pid"].astype(int), crit["executable_name"].astype(str),
                                                    strict=True)),
                                   expected.to_dict(), ch)
    rollup = None
    at = d.scrape_time(points)
    if baseline is not None and has_rollup(collector.pipeline):
        if not baseline.wait(lambda: baseline.scrapes_around(at), 3 * interval_s + 2):
            raise RuntimeError("the baseline collector has no scrapes around the candidate's")
        time.sleep(3 * POLL_S)
        around = baseline.scrapes_around(at)
        assert around is not None
        # only processes that came or went change what a sum covers (a renamed one is still there)
        rollup = d.rollup_checks(points, around[0], around[1], at, set(last["pid"].astype(int)),
                                 excluded["started_or_stopped"], d.psutil_totals(last))
    return TemplateResult(collector.name, at, series, critical, rollup,
                          {k_: sorted(v) for k_, v in excluded.items()}, len(last),
                          tuned=_tuned(collector.pipeline), values=d.value_agreement(points, engine, ch))


def _churn(pipeline: Pipeline, excluded: dict[str, set[int]], read: AlignedRead, points: Sequence[d.Point],
           snap: pd.DataFrame) -> d.Churn:
    pids = set().union(*excluded.values())
    names = {pid: name for c in read.censuses.values() for pid, (_, name, _) in c.items() if pid in pids}
    names |= names_of(pids, snap) | {p.pid: p.name for p in points if p.pid in pids and p.name}
    return d.Churn(frozenset(pids), frozenset(churn_groups(pipeline, list(names.values()))))


def _tuned(p: Pipeline) -> dict[str, Any]:
    out = {}
    for n in tunable_nodes(p):
        tuned = n.params.get(n.node_type.tuned_param) or {}
        if n.node_type.tuning == "learned_names":
            out[n.id] = {"names": tuned.get("names", []), "hosts": tuned.get("hosts", {})}
        else:
            out[n.id] = {k: v for k, v in tuned.items() if k not in ("source", "computed_at")}
    return out


# ---------------------------------------------------------------- a whole run


@contextlib.contextmanager
def load(profile: str = "realistic", duration_s: float = 900.0) -> Iterator[Any]:
    """The load simulator's built-in profile, running in a thread; stopped on exit."""
    from core.runtime.loadsim import BUILTIN_PROFILES, LoadSimulator

    sim = LoadSimulator(list(BUILTIN_PROFILES[profile]), duration_s=duration_s)
    stop = threading.Event()
    thread = threading.Thread(target=sim.run, args=(stop,), name="loadsim", daemon=True)
    thread.start()
    try:
        end = time.monotonic() + 30
        while time.monotonic() < end and (sim.status.state != "running" or sim.status.live < sim.status.target):
            time.sleep(0.2)
        yield sim
    finally:
        stop.set()
        thread.join(15)
        sim.stop("cancelled")


def prepared(names: Sequence[str], tuning_snapshot: pd.DataFrame, interval_s: float) -> dict[str, Pipeline]:
    """Templates with the short interval, tuned on the snapshot when they need it."""
    out = {}
    for name in names:
        p = with_interval(get_template(name), interval_s)
        if tunable_nodes(p):
            p = tune(p, tuning_snapshot, source="differential tuning snapshot")
        out[name] = p
    return out


def machine() -> dict[str, Any]:
    return host_machine()


def run(names: Sequence[str] = TEMPLATE_NAMES, *, interval_s: float = DEFAULT_INTERVAL_S,
        profile: str = "realistic", workdir: Path | None = None, binary: Path | None = None) -> dict[str, Any]:
    """Run every template's real collector beside the load and compare each with the engine."""
    from core.otelcol.distribution import binary_version, require_binary

    binary = binary or require_binary()
    names = list(dict.fromkeys([BASELINE, *names]))  # the baseline is the rollup sums' judge
    started = time.monotonic()
    tmp = tempfile.TemporaryDirectory(prefix="phoenix-differential-") if workdir is None else None
    work = Path(tmp.name) if tmp is not None else Path(workdir)  # type: ignore[arg-type]
    collectors: list[Collector] = []
    watchers: dict[str, Watcher] = {}
    timings: dict[str, float] = {}
    try:
        with load(profile) as sim:
            timings["load_start_s"] = round(time.monotonic() - started, 1)
            t0 = time.monotonic()
            time.sleep(interval_s)  # let the workers reach their memory targets
            pipelines = prepared(names, snapshot_this_host(2, interval_s), interval_s)
            for name, pipeline in pipelines.items():
                ports = free_ports(3)
                path = work / f"{name}.yaml"
                path.write_text(yaml.safe_dump(collector_config(pipeline, ports), sort_keys=False))
                c = Collector(name, pipeline, path, f"http://127.0.0.1:{ports[0]}/metrics", work / f"{name}.log")
                collectors.append(c)
                c.start(binary)
            timings["tune_and_start_s"] = round(time.monotonic() - t0, 1)
            # The baseline is watched throughout (the rollup sums' reference); each other
            # collector only while it is measured (polling costs CPU on a busy host).
            watchers[BASELINE] = Watcher(collectors[0], interval_s).start()
            results = []
            for c in collectors:
                if c.name != BASELINE:
                    watchers[c.name] = Watcher(c, interval_s).start()
                t1 = time.monotonic()
                base = watchers[BASELINE] if c.name != BASELINE else None
                results.append(measure(c, watchers[c.name], base, interval_s))
                timings[f"measure_{c.name}_s"] = round(time.monotonic() - t1, 1)
                if c.name != BASELINE:
                    watchers.pop(c.name).stop()
            load_info = {"profile": profile, "live": sim.status.live, "names": dict(sim.status.names),
                         "pgid": sim.status.pgid}
    finally:
        for w in watchers.values():
            w.stop()
        for c in collectors:
            c.stop()
        if tmp is not None:
            tmp.cleanup()
    return {
        "machine": machine(), "collector": binary_version(binary), "interval_s": interval_s, "load": load_info,
        "seconds": round(time.monotonic() - started, 1), "timings": timings, "templates": [r.to_dict() for r in results],
        "ok": all(r.ok for r in results),
    }


def _excluded_cell(excluded: dict[str, list[int]]) -> str:
    keys = ("started_or_stopped", "renamed_or_retitled", "threshold_crossing", "observer")
    return ", ".join(str(len(excluded.get(k, []))) for k in keys)


def _rollup_cell(c: dict[str, Any]) -> str:
    base = abs(c["baseline"]) or 1.0
    allowance = 1.0 + 100.0 * (c["churn_bound"] + c["interpolation_bound"]) / base
    return (f"{c['error_pct']:+.2f} [{c['psutil_error_pct']:+.2f}] (±{allowance:.1f})"
            + ("" if c["within"] else " ✗"))


def table(report: dict[str, Any]) -> str:
    """The per-template agreement table (markdown)."""
    lines = [
        "| template | series collector / engine | matched | unmatched (collector, engine) | "
        "excluded pids: started/stopped, renamed/retitled, threshold crossing, observer | "
        "critical covered | rollup sum error % vs baseline collector [vs aligned psutil read] "
        "(allowance: 1 % + churn + interpolation) — memory; cpu time; disk io |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in report["templates"]:
        ms = t["series"]["metrics"]
        col = sum(m["collector"] for m in ms.values())
        eng = sum(m["engine"] for m in ms.values())
        matched = sum(m["matched"] for m in ms.values())
        oc = sum(m["only_collector"] for m in ms.values())
        oe = sum(m["only_engine"] for m in ms.values())
        crit = t["critical"]
        roll = t["rollup"]
        roll_s = "n/a" if roll is None else "; ".join(_rollup_cell(roll[m]) for m in d.TOTAL_METRICS)
        per_metric = "; ".join(f"{k.removeprefix('process.')} {v['collector']}/{v['engine']}" for k, v in ms.items())
        lines.append(f"| `{t['template']}` | {col} / {eng} ({per_metric}) | {matched} | {oc}, {oe} | "
                     f"{_excluded_cell(t['excluded'])} | {crit['covered']}/{crit['critical']} | {roll_s} |")
    return "\n".join(lines)
