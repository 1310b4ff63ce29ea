"""The emulator agrees with the real collector on the same tap data (issue 11, item 4).

The emulator (core.runtime.collector) stays the fallback where there is no Go; it must keep
computing what the real Phoenix collector exports. For the baseline against every other
built-in template, this module runs the real experiment layout — a tap collector (the only
hostmetrics receiver) fanning each scrape out over OTLP to a baseline and a candidate
collector, all three the built binary on loopback ports, collection interval 2 s — and:

1. reads the tap's ``prometheus/input`` exposition (what both variants received) at two
   consecutive scrapes and turns it into the two-scrape snapshot the emulator evaluates per
   interval (``tap_rows`` + ``tap_snapshot``: every resource attribute the collector
   exported, each metric point a snapshot column, the emulator's host name and CPU count;
   the engine derives utilisation from the two scrapes, as the collector does);
2. for topk / adaptive / intelligent, tunes the candidate ONCE on that snapshot
   (core.engine.tuning.tune, read from a first run of the same tap config alone) and renders
   the candidate with the ``computed`` / ``learned`` params, which the emulator then uses too;
3. at a later scrape, evaluates each variant's pipeline on the input snapshot exactly as the
   emulator's ``tick`` does (``evaluate`` → ``output_series(-1)`` → ``render_series`` with the
   variant's labels) and compares with the real collector's ``/metrics``: the same series
   identities (metric name + every label) and the same values within ``TOLERANCE``.

Series are matched to scrapes by their timestamps: the test turns on ``send_timestamps`` on
the three collectors' prometheus exporters (it changes nothing but the exposition's
timestamp column) and keeps each collector's series of that scrape only. The prometheus
exporter keeps serving a series for ``metric_expiration`` (5 m) after its process is gone;
those are not the scrape's output and the emulator does not serve them
(docs/pipeline-semantics.md, "What the real collector showed").

No label is ignored (``IGNORED_LABELS`` is empty): the emulator renders ``otel_scope_name`` /
``otel_scope_schema_url`` / ``otel_scope_version``, ``host_name`` / ``os_type`` from
resourcedetection and the ``phoenix_experiment_id`` / ``phoenix_variant`` const labels exactly
as the collector does, and empty attribute values (kernel threads' path and command) as
empty labels on both sides.

The six experiments run concurrently (18 collectors, each on its own ports): 15-55 s on two
busy cores (load 10-40). A scrape is compared when the tap's input and both variants hold it;
up to ``MAX_SCRAPES`` are compared and the best counts (a read while a collector is taking in
a batch shows as a transient mismatch). ``PHOENIX_AGREEMENT_REPORT=path`` writes the agreement
table. Skipped only when the binary is not built and cannot be (no Go).
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from core.catalog.process_metrics import FRAME_METRICS, RESOURCE_ATTRIBUTE_COLUMNS
from core.catalog.templates import TEMPLATE_NAMES, get_template
from core.domain.pipeline import Pipeline
from core.engine.encoding import metric_meta, prometheus_label_name, prometheus_metric_name
from core.engine.snapshot import NULLABLE_REQUIRED, REQUIRED_METRIC_COLUMNS
from core.render.tap import VARIANTS, TapPorts, render_tap
from core.runtime.local import TAP_PORT_NAMES, free_port

pytestmark = pytest.mark.slow

INTERVAL_S = 2.0
BASELINE = "process-baseline-v1"
CANDIDATES = tuple(n for n in TEMPLATE_NAMES if n != BASELINE)
#: labels one side adds by design and the comparison ignores: none (see the module doc)
IGNORED_LABELS: frozenset[str] = frozenset()
#: value agreement: (relative, absolute) per kind of series
TOLERANCE = {
    # the collector's own numbers passed through: identical
    "process": (1e-9, 0.0),
    # rollup sums (no process_pid): float sums in another order, within 1 %
    "rollup": (0.01, 1e-9),
    # utilisation: the engine divides Δcpu by the Δ of ONE timestamp per scrape (as the
    # emulator stamps a psutil scrape), the collector by the Δ of each process's own read time;
    # they differ by how read times shift within a scrape between two scrapes (seen: up to 4 %
    # at load 30, typically < 1 %)
    "utilization": (0.10, 0.005),
}
UTIL_NAME = "process_cpu_utilization_ratio"
DEADLINE_S = 90.0  # per experiment
READ_AFTER_S = 1.2  # read the expositions this long after a scrape (exports done, next not begun)
MAX_SCRAPES = 3  # scrapes compared at most (the best one counts) before giving up
REPORT = os.environ.get("PHOENIX_AGREEMENT_REPORT")  # write the agreement table (JSON) here


# ---------------------------------------------------------------- reading expositions


@dataclass(frozen=True)
class Point:
    name: str
    labels: tuple[tuple[str, str], ...]
    value: float
    ts: float  # seconds (the exporter's send_timestamps); 0 for emulator text

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$")
_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
_UNESCAPE = re.compile(r"\\(.)")


def _point(line: str) -> Point:
    m = _LINE.match(line)
    assert m is not None, f"not a sample line: {line!r}"
    labels = tuple(sorted(
        (k, _UNESCAPE.sub(lambda e: "\n" if e.group(1) == "n" else e.group(1), v) if "\\" in v else v)
        for k, v in _PAIR.findall(m.group(2) or "")))  # fmt: skip
    return Point(m.group(1), labels, float(m.group(3)), int(m.group(4)) / 1000 if m.group(4) else 0.0)


def parse_points(text: str) -> list[Point]:
    """``process_*`` samples of a text exposition (target_info and scope info are not series).

    A strict line parser for what client_golang writes (one sample per line, label values
    with backslash, double quote and newline escaped, an optional millisecond timestamp; lines
    split on newline only, as a command line may hold other line separators):
    prometheus_client's parser takes seconds per collector on two busy cores."""
    return [_point(line) for line in text.split("\n") if line.startswith("process_")]


def _stamped(text: str) -> list[tuple[str, int]]:
    """``process_*`` sample lines with their millisecond timestamps (nothing parsed yet)."""
    lines = [line for line in text.split("\n") if line.startswith("process_")]
    return [(line, int(line.rsplit(" ", 1)[1])) for line in lines]


def latest_scrape(text: str) -> tuple[float | None, frozenset[Point]]:
    """The points of the newest scrape in the tap's input exposition, and its time (the
    median of their timestamps).

    The scraper stamps each process at its own read time, milliseconds apart within one
    scrape and an interval apart between scrapes: the newest scrape is the last run of
    timestamps without a gap of a quarter interval. Older points are series the exporter
    still serves for processes gone since (``metric_expiration``), left out unparsed."""
    stamped = _stamped(text)
    if not stamped:
        return None, frozenset()
    stamps = sorted({t for _, t in stamped})
    gaps = [i for i in range(1, len(stamps)) if stamps[i] - stamps[i - 1] > INTERVAL_S * 250]
    start = stamps[gaps[-1]] if gaps else stamps[0]
    window = frozenset(_point(line) for line, t in stamped if t >= start)
    return float(np.median([t for t in stamps if t >= start])) / 1000, window


def points_of_scrape(text: str, start: float) -> tuple[str, frozenset[Point]]:
    """A variant's output of the scrape that began at ``start`` (the input's earliest stamp):
    "behind" (it has not exported that scrape yet), "ahead" (it already exported the next)
    or "ok" and the points stamped since ``start``. A process's points keep the scraper's
    stamp; a rollup group's points are stamped when the variant aggregated them (``Now()``,
    core/catalog/rollup.py), a little later but before the next scrape."""
    stamped = _stamped(text)
    newest = max((t for _, t in stamped), default=0) / 1000
    if newest < start - 0.05:
        return "behind", frozenset()
    if newest >= start + INTERVAL_S - 0.05:
        return "ahead", frozenset()
    return "ok", frozenset(_point(line) for line, t in stamped if t / 1000 >= start - 0.05)


def fetch(port: int) -> str:
    """The exposition on a loopback port; "" while the collector is not listening yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            return r.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


# ---------------------------------------------------------------- tap input → snapshot


def _point_columns() -> dict[tuple[str, str | None], tuple[str | None, str]]:
    """(prometheus name, data-point label value) → (label, snapshot column), every process metric."""
    out = {}
    for m in FRAME_METRICS:
        meta = metric_meta(m.name)
        name = prometheus_metric_name(meta.name, meta.unit, meta.is_monotonic_sum, is_gauge=meta.kind == "gauge")
        label = prometheus_label_name(m.attribute) if m.attribute else None
        for value, col in m.points:
            out[(name, value)] = (label, col)
    return out


POINT_COLUMNS = _point_columns()
LABEL_OF_METRIC = {name: label for (name, _), (label, _) in POINT_COLUMNS.items()}
ATTRIBUTE_LABELS = {prometheus_label_name(k): col for k, col in RESOURCE_ATTRIBUTE_COLUMNS.items()}
#: a process of the input has these (the snapshot contract requires them; disk io may be absent)
MUST_HAVE = tuple(c for c in REQUIRED_METRIC_COLUMNS if c not in NULLABLE_REQUIRED)
#: computed by the engine from two scrapes (as the collector computes it), never read back
DERIVED_COLUMNS = frozenset(c for m in FRAME_METRICS if m.name == "process.cpu.utilization" for c in m.columns)


def tap_rows(window: frozenset[Point], ts: float, host_name: str, num_cpus: int) -> pd.DataFrame:
    """One scrape of the tap's input as snapshot rows: one row per pid with every resource
    attribute the collector exported (pid, parent pid, executable name/path, command, command
    line, owner) and a value in each column the scrape has a point for (no point → NaN, as in
    a psutil snapshot). ``timestamp`` is one time for the whole scrape, as the emulator's."""
    rows: dict[int, dict[str, Any]] = {}
    for p in window:
        labels = p.label_map
        pid = labels.get("process_pid", "")
        label = LABEL_OF_METRIC.get(p.name, "-")
        if label == "-" or not pid.isdigit():
            continue
        hit = POINT_COLUMNS.get((p.name, labels.get(label) if label else None))
        if hit is None or hit[1] in DERIVED_COLUMNS:
            continue
        row = rows.get(int(pid))
        if row is None:
            row = rows[int(pid)] = {col: labels.get(lab, "") for lab, col in ATTRIBUTE_LABELS.items()}
        row[hit[1]] = p.value
    frame = pd.DataFrame(list(rows.values()))
    frame["pid"] = frame["pid"].astype(np.int64)
    frame["parent_pid"] = pd.to_numeric(frame["parent_pid"].replace("", "0")).astype(np.int64)
    frame["timestamp"] = ts
    frame["host_name"] = host_name
    frame["num_cpus"] = num_cpus
    return frame


def tap_snapshot(prev: pd.DataFrame, cur: pd.DataFrame) -> pd.DataFrame:
    """Two consecutive scrapes, validated like every snapshot (the emulator's per-tick input)."""
    from core.engine.snapshot import normalise_snapshot

    return normalise_snapshot(pd.concat([prev, cur], ignore_index=True))


# ---------------------------------------------------------------- the emulator's side


def emulate(pipeline: Pipeline, snapshot: pd.DataFrame, experiment_id: str, variant: str,
            host_name: str) -> str:  # fmt: skip
    """What ``CollectorEmulator.tick`` serves for this variant on this snapshot."""
    from core.engine.evaluate import evaluate
    from core.runtime.exposition import render_series

    res = evaluate(pipeline, snapshot)
    series = res.output_series(-1)
    labels = {"phoenix_experiment_id": experiment_id, "phoenix_variant": variant, "host_name": host_name}
    return render_series(series, labels) if len(series) else ""


# ---------------------------------------------------------------- comparing


@dataclass
class Agreement:
    matched: int = 0
    only_real: list[str] = field(default_factory=list)
    only_emulator: list[str] = field(default_factory=list)
    over_tolerance: list[str] = field(default_factory=list)
    max_error: dict[str, float] = field(default_factory=dict)  # kind → max relative error
    #: of ``only_emulator``: series the real /metrics still served from an earlier scrape (read
    #: while the variant was taking in this scrape's batch, or really not exported this time)
    older_in_real: int = 0

    @property
    def ok(self) -> bool:
        return not (self.only_real or self.only_emulator or self.over_tolerance)

    def row(self) -> dict[str, Any]:
        return {"matched": self.matched, "only_real": len(self.only_real),
                "only_emulator": len(self.only_emulator), "older_in_real": self.older_in_real,
                "over_tolerance": len(self.over_tolerance),
                "max_rel_error": {k: float(f"{v:.3g}") for k, v in sorted(self.max_error.items())},
                "examples": (self.only_real + self.only_emulator + self.over_tolerance)[:6]}  # fmt: skip


def _kind(p: Point) -> str:
    if p.name == UTIL_NAME:
        return "utilization"
    return "process" if "process_pid" in p.label_map else "rollup"


def _key(p: Point) -> tuple[str, tuple[tuple[str, str], ...]]:
    return p.name, tuple((k, v) for k, v in p.labels if k not in IGNORED_LABELS)


def _show(key: tuple[str, tuple[tuple[str, str], ...]]) -> str:
    short = {"otel_scope_name", "otel_scope_schema_url", "otel_scope_version", "phoenix_experiment_id"}
    return key[0] + "{" + ",".join(f"{k}={v}" for k, v in key[1] if k not in short) + "}"


def compare(real: frozenset[Point], emulator: list[Point], older: frozenset[Point] = frozenset()) -> Agreement:
    """Series identities and values of one scrape: the real variant's (``real``; ``older`` =
    what its /metrics serves from earlier scrapes) against the emulator's."""
    r = {_key(p): p for p in real}
    e = {_key(p): p for p in emulator}
    assert len(r) == len(real) and len(e) == len(emulator), "ignoring labels merged distinct series"
    out = Agreement()
    out.only_real = sorted(_show(k) for k in r.keys() - e.keys())
    out.only_emulator = sorted(_show(k) for k in e.keys() - r.keys())
    out.older_in_real = len((e.keys() - r.keys()) & {_key(p) for p in older})
    for k in r.keys() & e.keys():
        out.matched += 1
        a, b, kind = r[k].value, e[k].value, _kind(r[k])
        rel_tol, abs_tol = TOLERANCE[kind]
        err = abs(a - b)
        rel = err / max(abs(a), abs(b)) if err else 0.0
        out.max_error[kind] = max(out.max_error.get(kind, 0.0), rel)
        if err > abs_tol and rel > rel_tol:
            out.over_tolerance.append(f"{_show(k)} real {a!r} emulator {b!r}")
    return out


# ---------------------------------------------------------------- running one experiment


_PORT_LOCK = threading.Lock()
_TAKEN: set[int] = set()


def _ports() -> TapPorts:
    with _PORT_LOCK:
        chosen = {}
        for n in TAP_PORT_NAMES:
            port = free_port()
            while port in _TAKEN:
                port = free_port()
            _TAKEN.add(port)
            chosen[n] = port
    return TapPorts(**chosen)


def _short(p: Pipeline) -> Pipeline:
    """Every template scraped every ``INTERVAL_S`` (minimal's 60 s, the others' 10 s): same
    nodes, no ``interval`` processor between tap and variant, a short test."""
    p.receiver().params["collection_interval"] = f"{INTERVAL_S:g}s"
    return p


def _with_timestamps(config: dict[str, Any]) -> dict[str, Any]:
    config = copy.deepcopy(config)
    for name, exporter in config["exporters"].items():
        if name == "prometheus" or name.startswith("prometheus/"):
            exporter["send_timestamps"] = True
    return config


@dataclass
class Result:
    template: str
    agreements: dict[str, Agreement] = field(default_factory=dict)  # variant → agreement
    utilization_vs_input: dict[str, float] = field(default_factory=dict)
    tuned: dict[str, Any] = field(default_factory=dict)
    scrapes_compared: int = 0
    #: every scrape compared: mismatches and a few examples (the best scrape is the result)
    history: list[dict[str, Any]] = field(default_factory=list)
    #: variant → series its /metrics still served for processes gone before the scrape compared
    expired_later: dict[str, int] = field(default_factory=dict)
    waits: dict[str, int] = field(default_factory=dict)  # why reads could not be compared
    phases: dict[str, float] = field(default_factory=dict)  # seconds from the start to each phase
    seconds: float = 0.0
    error: str | None = None

    @property
    def mismatches(self) -> int:
        return sum(len(a.only_real) + len(a.only_emulator) + len(a.over_tolerance) for a in self.agreements.values())


class Experiment:
    """Tap + baseline + candidate real collectors for one template, and the comparison."""

    def __init__(self, binary: Path, candidate: str, workdir: Path):
        from core.engine.hostsnapshot import PsutilReader

        self.binary, self.template, self.dir = binary, candidate, workdir
        self.id = f"agree-{candidate.removeprefix('process-').removesuffix('-v1')}"
        self.ports = _ports()
        self.pipelines = {"baseline": _short(get_template(BASELINE)), "candidate": _short(get_template(candidate))}
        reader = PsutilReader()  # the emulator's host name and CPU count
        self.host_name, self.num_cpus = reader.host_name(), reader.num_cpus()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.scrapes: dict[float, pd.DataFrame] = {}  # scrape time → the tap input's rows of that scrape
        self.waits: Counter[str] = Counter()  # why a scrape could not be compared (diagnostics)
        self.again = False  # read the expositions again soon (a variant was not at the input's scrape)
        self.phases: dict[str, float] = {}

    def start(self, role: str, config: dict[str, Any]) -> None:
        path = self.dir / f"{self.id}-{role}.yaml"
        path.write_text(yaml.safe_dump(_with_timestamps(config), sort_keys=False))
        with (self.dir / f"{self.id}-{role}.log").open("wb") as log:
            self.procs[role] = subprocess.Popen([str(self.binary), f"--config=file:{path}"], stdin=subprocess.DEVNULL,
                                                stdout=log, stderr=log)  # fmt: skip

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def _check_alive(self) -> None:
        for role, proc in self.procs.items():
            if proc.poll() is not None:
                log = (self.dir / f"{self.id}-{role}.log").read_text(errors="replace")[-2000:]
                raise AssertionError(f"{self.id}: the {role} collector exited ({proc.returncode}):\n{log}")

    def _read(self, variants: bool) -> tuple[float, dict[str, str]]:
        """The input's (and the variants') expositions and when reading began. The variants are
        matched to the input's scrape by their timestamps (``points_of_scrape``); reading them
        again until nothing changes costs more than two busy cores have in one interval."""
        began = time.time()
        texts = {"input": fetch(self.ports.input_metrics)}
        if variants:
            texts.update({v: fetch(self.ports.of(v, "metrics")) for v in VARIANTS})
        return began, texts

    def _previous(self, ts: float) -> pd.DataFrame | None:
        """The input's scrape one interval before ``ts`` (utilisation needs two scrapes)."""
        for t, rows in self.scrapes.items():
            if abs(ts - t - INTERVAL_S) < INTERVAL_S / 2:
                return rows
        return None

    def _stop(self, role: str) -> None:
        proc = self.procs.pop(role)
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def _wait_healthy(self, deadline: float) -> None:
        """Both variants' health_check answers 200: their OTLP receivers listen, so no batch of
        the tap is refused and retried later (a retried batch would arrive out of order)."""
        for v in VARIANTS:
            while True:
                self._check_alive()
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{self.ports.of(v, 'health')}/", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"{self.id}: the {v} collector did not become healthy")
                time.sleep(0.2)

    def _scrapes(self, deadline: float, variants: bool) -> Iterator[tuple[float, frozenset[Point], pd.DataFrame,
                                                                          dict[str, str]]]:  # fmt: skip
        """Each read of the tap's input whose scrape has the previous one: (scrape time, its
        points, the two-scrape snapshot, the texts read). Reads happen ``READ_AFTER_S`` after a
        scrape; ``self.again`` set by the consumer reads again soon instead."""
        wake = time.time() + 1.0
        while time.monotonic() < deadline:
            time.sleep(max(0.0, wake - time.time()))
            wake = time.time() + 0.25
            self._check_alive()
            began, texts = self._read(variants)
            ts, window = latest_scrape(texts["input"])
            if ts is None:
                continue
            if began < max(p.ts for p in window) + 0.2:  # the exporter may still be taking it in
                self.waits["input read too soon after its scrape"] += 1
                continue
            wake = ts + INTERVAL_S * math.ceil((time.time() - ts + 0.1) / INTERVAL_S) + READ_AFTER_S
            if ts not in self.scrapes:
                rows = tap_rows(window, ts, self.host_name, self.num_cpus)
                if rows.reindex(columns=list(MUST_HAVE)).isna().to_numpy().any():  # read while the exporter took it in
                    self.waits["input scrape incomplete"] += 1
                    continue
                self.scrapes[ts] = rows
            prev = self._previous(ts)
            if prev is None:
                continue
            self.again = False
            yield ts, window, tap_snapshot(prev, self.scrapes[ts]), texts
            if self.again:
                wake = time.time() + 0.25

    def run(self) -> Result:
        from core.engine.tuning import tunable_nodes, tune

        started = time.monotonic()
        deadline = started + DEADLINE_S
        res = Result(self.template)
        first = render_tap(self.id, self.pipelines, self.ports)
        if tunable_nodes(self.pipelines["candidate"]):
            # Tune once on the tap's input: the same tap config runs alone for two scrapes, then
            # stops (its batches for the variants go nowhere); the experiment starts afresh.
            self.start("tuning-tap", first.tap.config)
            for _, _, snap, _ in self._scrapes(deadline, variants=False):
                self.pipelines["candidate"] = tune(self.pipelines["candidate"], snap, source="tap input")
                break
            else:
                raise AssertionError(f"{self.id}: no two consecutive scrapes of the tap's input to tune on")
            self._stop("tuning-tap")
            self.scrapes.clear()
            self.phases["tuned"] = round(time.monotonic() - started, 1)
            res.tuned = {n.id: n.params.get(n.node_type.tuned_param) or None
                         for n in tunable_nodes(self.pipelines["candidate"])}  # fmt: skip
        configs = render_tap(self.id, self.pipelines, self.ports)
        assert configs.tap.config == first.tap.config, "tuning changed the tap"
        # variants first, the tap once they listen (as the deployer does)
        for v in VARIANTS:
            self.start(v, configs.variants[v].config)
        self._wait_healthy(deadline)
        self.phases["variants healthy"] = round(time.monotonic() - started, 1)
        self.start("tap", configs.tap.config)
        compared: set[float] = set()
        for ts, window, snap, texts in self._scrapes(deadline, variants=True):
            if ts in compared:
                continue
            start = min(p.ts for p in window)
            real = {v: points_of_scrape(texts[v], start) for v in VARIANTS}
            emulated = {}
            if real["baseline"][0] == "ok" and real["candidate"][0] == "behind":
                # nothing from the candidate for this scrape: right if the emulator exports
                # nothing either (minimal on a scrape without critical processes)
                emulated["candidate"] = emulate(self.pipelines["candidate"], snap, self.id, "candidate",
                                                self.host_name)  # fmt: skip
                if not emulated["candidate"]:
                    real["candidate"] = ("ok", frozenset())
            waiting = [f"{v} {state}" for v, (state, _) in real.items() if state != "ok"]
            if waiting:  # read again soon: a variant is behind (or past) the input's scrape
                self.waits.update(waiting)
                self.again = True
                continue
            compared.add(ts)
            self.phases.setdefault("first scrape compared", round(time.monotonic() - started, 1))
            cur = Result(self.template, tuned=res.tuned, scrapes_compared=res.scrapes_compared + 1)
            for v in VARIANTS:
                if v not in emulated:
                    emulated[v] = emulate(self.pipelines[v], snap, self.id, v, self.host_name)
                older = frozenset(parse_points(texts[v])) - real[v][1]
                cur.agreements[v] = compare(real[v][1], parse_points(emulated[v]), older)
                cur.expired_later[v] = len(older) - cur.agreements[v].older_in_real
            cur.utilization_vs_input = _engine_utilization_error(snap, window)
            history = [*res.history, {"mismatches": cur.mismatches, **{
                v: {k: x for k, x in a.row().items() if k != "max_rel_error"}
                for v, a in cur.agreements.items() if not a.ok}}]  # fmt: skip
            if not res.agreements or cur.mismatches <= res.mismatches:
                res = cur
            res.scrapes_compared, res.history = cur.scrapes_compared, history
            if cur.mismatches == 0 or res.scrapes_compared >= MAX_SCRAPES:
                break
        if not res.agreements:
            raise AssertionError(f"{self.id}: no scrape that the tap and both variants had exported in "
                                 f"{DEADLINE_S:g} s ({len(self.scrapes)} input scrapes seen; waits {dict(self.waits)})")  # fmt: skip
        res.seconds, res.waits, res.phases = round(time.monotonic() - started, 1), dict(self.waits), self.phases
        return res


def _engine_utilization_error(snap: pd.DataFrame, window: frozenset[Point]) -> dict[str, Any]:
    """The engine's utilisation (from the two scrapes) against the collector's own points in
    the tap's input (there when some variant enables process.cpu.utilization): the same
    (pid, state) points — none on a pid's first scrape — and values within tolerance."""
    from core.catalog.frame import from_snapshot

    df = from_snapshot(snap).df
    last = df[df["scrape"] == df["scrape"].max()]
    engine = {}
    for state in ("user", "system", "wait"):
        for pid, v in zip(last["process.pid"].astype("int64"), last[f"cpu_utilization_{state}"], strict=True):
            if not math.isnan(v):
                engine[(str(pid), state)] = float(v)
    collector = {(p.label_map.get("process_pid", ""), p.label_map.get("state", "")): p.value
                 for p in window if p.name == UTIL_NAME}  # fmt: skip
    if not collector:
        return {"points": 0}
    rel_tol, abs_tol = TOLERANCE["utilization"]
    both = collector.keys() & engine.keys()
    err = [abs(engine[k] - collector[k]) for k in both]
    rel = [e / max(abs(engine[k]), abs(collector[k])) if e else 0.0 for k, e in zip(both, err, strict=True)]
    return {"points": len(both), "only_collector": len(collector.keys() - engine.keys()),
            "only_engine": len(engine.keys() - collector.keys()),
            "max_abs_error": float(f"{max(err, default=0):.3g}"), "max_rel_error": float(f"{max(rel, default=0):.3g}"),
            "over_tolerance": sum(1 for e, r in zip(err, rel, strict=True) if e > abs_tol and r > rel_tol)}  # fmt: skip


# ---------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def otelcol_bin() -> Path:
    from core.otelcol import distribution

    found = distribution.built_binary()
    if found is not None:
        return found
    return Path(distribution.build().path)  # make test builds it first; no binary is a failure


@dataclass
class Results:
    by_template: dict[str, Result]
    left_running: list[int]  # pids of collectors still alive after the run (must be none)


@pytest.fixture(scope="module")
def results(otelcol_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Results:
    workdir = tmp_path_factory.mktemp("agree")
    experiments = [Experiment(otelcol_bin, name, workdir) for name in CANDIDATES]
    started = time.monotonic()

    def one(exp: Experiment) -> Result:
        try:
            return exp.run()
        except Exception as exc:  # reported per template below
            return Result(exp.template, error=f"{type(exc).__name__}: {exc}")
        finally:
            exp.stop()

    try:
        with ThreadPoolExecutor(max_workers=len(experiments)) as pool:
            out = {r.template: r for r in pool.map(one, experiments)}
    finally:
        for exp in experiments:  # whatever happened above
            exp.stop()
    left = [p.pid for exp in experiments for p in exp.procs.values() if p.poll() is None]
    if REPORT:
        Path(REPORT).write_text(json.dumps({
            "seconds": round(time.monotonic() - started, 1),
            "templates": {t: {"error": r.error, "seconds": r.seconds, "scrapes_compared": r.scrapes_compared,
                              "tuned": r.tuned, "utilization_vs_input": r.utilization_vs_input,
                              "history": r.history, "expired_later": r.expired_later, "waits": r.waits, "phases": r.phases,
                              **{v: a.row() for v, a in r.agreements.items()}} for t, r in out.items()},
        }, indent=2, default=str))  # fmt: skip
    return Results(out, left)


@pytest.mark.parametrize("template", CANDIDATES)
def test_the_emulator_exports_what_the_real_collector_does(results: Results, template: str) -> None:
    r = results.by_template[template]
    assert r.error is None, r.error
    for variant, a in r.agreements.items():
        assert a.ok, f"{template} {variant} (best of {r.scrapes_compared} scrape(s)): {json.dumps(a.row(), indent=1)}"
        assert a.matched > 0 or variant == "candidate"


def test_the_engine_computes_utilisation_as_the_collector_does(results: Results) -> None:
    r = results.by_template["process-adaptive-v1"]  # the template that enables process.cpu.utilization
    assert r.error is None, r.error
    util = r.utilization_vs_input
    assert util["points"] > 0, util
    assert util["only_collector"] == util["only_engine"] == util["over_tolerance"] == 0, util


def test_thresholds_were_tuned_on_the_tap_input(results: Results) -> None:
    for template in ("process-topk-v1", "process-adaptive-v1", "process-intelligent-v1"):
        tuned = results.by_template[template].tuned
        assert tuned and all(v and v.get("source") == "tap input" for v in tuned.values()), (template, tuned)


def test_every_collector_was_stopped(results: Results) -> None:
    assert results.left_running == []
