"""Differential truth test: the real collector's output against the engine's prediction.

Pure functions over what both sides export (issue 11 item 3). The I/O — load, real
collectors, aligned psutil reads — is in :mod:`core.differential.run`.

Both sides are brought into one shape, :class:`Point`: an OTel metric name, the series
identity as Prometheus sees it (sorted, non-empty labels; the exporter's constant
``otel_scope_*`` labels removed) and a value. The collector side comes from the
prometheus exporter's ``/metrics`` (with ``send_timestamps`` on, so the points of its last
scrape can be told from series it still serves for exited processes until
``metric_expiration``); the engine side from ``EstimateResult.series_out_frame()``, the
``phoenix estimate --series-out`` rows (host_name, metric, attributes, value).

Three properties are checked per template (see docs/pipeline-semantics.md, "What the real
collector showed"):

1. **series identity**: per metric, the same series on both sides; the only tolerance is
   for *churn* — processes that started or stopped between the collector's scrape and the
   psutil snapshot, identified by pid (and, for rollup groups, by the names of those pids);
2. **critical coverage**: every critical process (policy of the template) that is not churn
   has all its expected series, with its pid, in the collector's output;
3. **rollup sums**: per metric, the candidate's host total (individual + rollup series) is
   within 1 % of the baseline collector's total for the same processes at the candidate's
   instant (per-pid linear interpolation between the baseline's two scrapes around it), up
   to what churn processes summed into a group and the interpolation itself may account
   for; and within 1 % (plus churn) of the psutil read aligned with the candidate's scrape.

Left out of the comparison, by pid, each shown by our own reads (pid censuses of start
time, name, command line and RSS taken just before and after each collector scrape):

- *started or stopped*: a pid in one census and not the other, reused, or exported by the
  collector but absent from the snapshot;
- *renamed or retitled*: the same process under another name or command line — between two
  censuses, in the collector's export under an identity one of our censuses saw, or a
  kernel thread the kernel renamed (``kworker/1:2-events`` → ``kworker/1:2-mm_percpu_wq``);
  postgres backends retitle themselves per query;
- *threshold crossing*: kept by one side and rolled up by the other while our RSS samples
  lie on both sides of the memory threshold;
- *observer*: the collector under test itself (it reads its own process mid-scrape).
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from core.catalog.process_metrics import FRAME_METRICS, METRICS_BY_NAME
from core.engine.encoding import metric_meta, prometheus_label_name, prometheus_metric_name
from core.engine.exposition_parse import parse_exposition

SCOPE_LABELS = frozenset({"otel_scope_name", "otel_scope_schema_url", "otel_scope_version"})
PID_LABEL = "process_pid"
NAME_LABEL = "process_executable_name"
NON_SERIES = frozenset({"target_info", "otel_scope_info"})
# Metrics whose host totals a rollup must preserve (property 3).
TOTAL_METRICS: tuple[str, ...] = ("process.memory.usage", "process.cpu.time", "process.disk.io")
ROLLUP_TOLERANCE_PCT = 1.0

Labels = tuple[tuple[str, str], ...]
SeriesKey = tuple[str, Labels]


def _prom_name(otel: str) -> str:
    meta = metric_meta(otel)
    return prometheus_metric_name(meta.name, meta.unit, meta.is_monotonic_sum, is_gauge=meta.kind == "gauge")


PROM_TO_OTEL: dict[str, str] = {_prom_name(m.name): m.name for m in FRAME_METRICS}


@dataclass(frozen=True)
class Point:
    """One exported series (its last value) on either side."""

    metric: str  # OTel name, e.g. process.cpu.time
    labels: Labels  # identity: sorted (label, value), empty values and scope labels removed
    value: float
    timestamp: float | None = None  # seconds; collector points only

    @property
    def key(self) -> SeriesKey:
        return (self.metric, self.labels)

    def label(self, name: str) -> str | None:
        for k, v in self.labels:
            if k == name:
                return v
        return None

    @property
    def pid(self) -> int | None:
        v = self.label(PID_LABEL)
        return int(v) if v is not None else None

    @property
    def name(self) -> str | None:
        return self.label(NAME_LABEL)


def identity(labels: Mapping[str, str]) -> Labels:
    """Prometheus series identity: an empty label value is the same as no label."""
    return tuple(sorted((k, str(v)) for k, v in labels.items() if k not in SCOPE_LABELS and str(v) != ""))


# ---------------------------------------------------------------- the collector side


def parse_collector(text: str) -> list[Point]:
    """``process_*`` samples of a prometheus-exporter exposition (timestamps kept)."""
    out = []
    for sample in parse_exposition(text, prefix="process_"):
        metric = PROM_TO_OTEL.get(sample.name, sample.name)
        ts = sample.timestamp_ms
        out.append(Point(metric, identity(sample.labels), sample.value, ts / 1000.0 if ts is not None else None))
    return out


def scrapes(points: Sequence[Point], gap_s: float) -> list[list[Point]]:
    """Points grouped into scrapes by their timestamps, oldest first.

    The process scraper reads processes in increasing pid order and stamps each one when
    it reads it, so one scrape is a run of increasing pids in time order; a pid that is not
    larger than the previous one, or a pause longer than ``gap_s``, starts a new scrape
    (series of exited processes linger from older scrapes until ``metric_expiration``).
    Rollup groups (no pid) are stamped after their scrape's reads and stay with it. Points
    without a timestamp form no scrape.
    """
    stamped = sorted((p for p in points if p.timestamp is not None),
                     key=lambda p: (p.timestamp or 0.0, p.pid if p.pid is not None else math.inf))
    groups: list[list[Point]] = []
    last_ts, last_pid = -math.inf, -1
    for p in stamped:
        assert p.timestamp is not None
        pid = p.pid
        same_process = pid is not None and pid == last_pid and p.timestamp == last_ts
        if not same_process and (p.timestamp - last_ts > gap_s or (pid is not None and pid <= last_pid)):
            groups.append([])
            last_pid = -1
        groups[-1].append(p)
        last_ts = p.timestamp
        if pid is not None:
            last_pid = pid
    return groups


def scrape_start(points: Sequence[Point]) -> float:
    return min(p.timestamp for p in points if p.timestamp is not None)


def scrape_time(points: Sequence[Point]) -> float:
    """Median point timestamp: when the scrape read its processes."""
    ts = sorted(p.timestamp for p in points if p.timestamp is not None)
    return ts[len(ts) // 2]


# ---------------------------------------------------------------- the engine side


def engine_points(series_out: pd.DataFrame) -> list[Point]:
    """``--series-out`` rows (host_name, metric, attributes JSON, value) as points, with
    attribute keys mapped to the label names the prometheus exporter writes."""
    out = []
    for metric, attrs, value in zip(series_out["metric"], series_out["attributes"], series_out["value"], strict=True):
        labels = {prometheus_label_name(k): v for k, v in json.loads(attrs).items() if v is not None}
        out.append(Point(str(metric), identity(labels), float(value)))
    return out


# ---------------------------------------------------------------- churn


@dataclass(frozen=True)
class Churn:
    """Processes that started or stopped between the collector's scrape and the snapshot.

    ``pids`` excludes individual series; ``groups`` (rollup group names those processes
    would land in) excludes a rollup series present on one side only.
    """

    pids: frozenset[int] = frozenset()
    groups: frozenset[str] = frozenset()


def churn_pids(before: Mapping[int, tuple[float, str, str]], after: Mapping[int, tuple[float, str, str]]) -> set[int]:
    """Pids that started or stopped at an instant bracketed by two pid censuses.

    ``before``/``after`` map pid → (start time, name, command line), read just before and
    just after the instant (and after every read that has to see it). A pid in only one
    census, or with another start time (a reused pid), started or stopped in between: a
    scrape inside the window may or may not have seen it.
    """
    out = set(before) ^ set(after)
    out |= {pid for pid in set(before) & set(after) if before[pid][0] != after[pid][0]}
    return out


def identity_changed(before: Mapping[int, tuple[float, str, str]],
                     after: Mapping[int, tuple[float, str, str]]) -> set[int]:
    """Pids of one process (same start time) whose name or command line changed in between:
    a new series identity for the same process."""
    return {pid for pid in set(before) & set(after)
            if before[pid][0] == after[pid][0] and before[pid][1:] != after[pid][1:]}


def observed_crossings(pids: Iterable[int], rss: Mapping[int, Sequence[float]],
                       thresholds: Sequence[float]) -> set[int]:
    """Pids whose RSS samples from our own reads lie on both sides of a memory threshold
    (``value_int >= T``): the collector's read, between ours, may have gone either way."""
    out = set()
    for pid in pids:
        samples = rss.get(pid) or []
        if samples and any(min(samples) < t <= max(samples) for t in thresholds):
            out.add(pid)
    return out


def near_cpu_thresholds(pids: Iterable[int], utilisation: Mapping[int, Sequence[float]],
                        thresholds: Sequence[float], tolerance: float) -> set[int]:
    """Pids whose CPU utilisation from our two reads (one value per state) lies within
    ``tolerance`` of a CPU threshold (``value_double >= C``). /proc counts CPU time in clock
    ticks, and the collector reads the counters a little before or after us: near a
    threshold its utilisation may fall on the other side — a timing difference."""
    out = set()
    for pid in pids:
        values = utilisation.get(pid) or []
        if any(abs(v - t) <= tolerance for v in values for t in thresholds):
            out.add(pid)
    return out


def renamed_kernel_threads(collector: Iterable[Point], names: Mapping[int, str], kernel: Iterable[int]) -> set[int]:
    """Kernel threads the collector read under another name than the snapshot.

    The kernel renames workqueue workers as they pick up work (``kworker/1:2-events`` →
    ``kworker/1:2-mm_percpu_wq``), so two reads milliseconds apart can see two series
    identities of one pid: a stop and a start, i.e. churn. Only kernel threads qualify; a
    user process whose name differs is a disagreement.
    """
    kernel_set = set(kernel)
    return {p.pid for p in collector
            if p.pid is not None and p.pid in kernel_set and p.pid in names and p.name != names[p.pid]}


def seen_retitled(collector: Iterable[Point], last: pd.DataFrame,
                  censuses: Iterable[Mapping[int, tuple[float, str, str]]]) -> set[int]:
    """Pids the collector exported under a name or command line other than the snapshot's,
    when one of our own censuses around its scrape saw the pid under exactly that name and
    command line: the process retitled itself (postgres backends per query), a series
    identity change — churn. A difference nobody saw at any moment is a disagreement."""
    snap = {int(p): (str(n), str(c)) for p, n, c in
            zip(last["pid"], last["executable_name"], last["command_line"], strict=True)}
    seen: dict[int, set[tuple[str, str]]] = defaultdict(set)
    for c in censuses:
        for pid, (_, name, cmd) in c.items():
            seen[pid].add((name, cmd))
    out = set()
    for p in collector:
        if p.pid is None or p.pid not in snap:
            continue
        got = (p.name or "", p.label("process_command_line") or "")
        if got != snap[p.pid] and got in seen[p.pid]:
            out.add(p.pid)
    return out


# ---------------------------------------------------------------- property 1: series identity


@dataclass
class MetricAgreement:
    collector: int = 0  # series after churn exclusion
    engine: int = 0
    matched: int = 0
    only_collector: int = 0
    only_engine: int = 0
    churn_collector: int = 0  # series excluded as churn
    churn_engine: int = 0

    @property
    def agrees(self) -> bool:
        return self.only_collector == 0 and self.only_engine == 0


@dataclass
class SeriesAgreement:
    metrics: dict[str, MetricAgreement]
    only_collector: list[SeriesKey] = field(default_factory=list)
    only_engine: list[SeriesKey] = field(default_factory=list)

    @property
    def agrees(self) -> bool:
        return all(m.agrees for m in self.metrics.values())

    def to_dict(self, examples: int = 5) -> dict[str, Any]:
        return {
            "agrees": self.agrees,
            "metrics": {k: {**vars(v), "agrees": v.agrees} for k, v in sorted(self.metrics.items())},
            "only_collector": [_show(k) for k in self.only_collector[:examples]],
            "only_engine": [_show(k) for k in self.only_engine[:examples]],
        }


def _show(key: SeriesKey) -> str:
    metric, labels = key
    return metric + "{" + ",".join(f"{k}={v!r}" for k, v in labels if k not in ("host_name", "os_type")) + "}"


def is_churn(point: Point, churn: Churn) -> bool:
    pid = point.pid
    if pid is not None:
        return pid in churn.pids
    return point.name is not None and point.name in churn.groups


def compare_series(collector: Iterable[Point], engine: Iterable[Point], churn: Churn) -> SeriesAgreement:
    """Property 1: per metric, identical series identities on both sides.

    Individual series of churn pids are left out on both sides. A rollup series (no pid)
    is left out only when it is present on one side alone and its group is one a churn
    process maps to: a group both sides export must match whatever its members.
    """
    c_keys = {p.key: p for p in collector}
    e_keys = {p.key: p for p in engine}
    metrics: dict[str, MetricAgreement] = defaultdict(MetricAgreement)
    only_c: list[SeriesKey] = []
    only_e: list[SeriesKey] = []
    for key, p in c_keys.items():
        m = metrics[p.metric]
        both = key in e_keys
        if p.pid is not None and p.pid in churn.pids or not both and is_churn(p, churn):
            m.churn_collector += 1
            continue
        m.collector += 1
        if both:
            m.matched += 1
        else:
            m.only_collector += 1
            only_c.append(key)
    for key, p in e_keys.items():
        m = metrics[p.metric]
        both = key in c_keys
        if p.pid is not None and p.pid in churn.pids or not both and is_churn(p, churn):
            m.churn_engine += 1
            continue
        m.engine += 1
        if not both:
            m.only_engine += 1
            only_e.append(key)
    return SeriesAgreement(dict(metrics), sorted(only_c), sorted(only_e))


def value_agreement(collector: Iterable[Point], engine: Iterable[Point], churn: Churn,
                    floor: float = 1.0) -> dict[str, dict[str, float]]:
    """Diagnostic: per metric, how far matched values are apart (relative to the collector's).

    Both sides read the same counters milliseconds apart, so a systematic difference (a
    column read from the wrong ``/proc`` field) shows as a large median; ``floor`` keeps
    zeros from turning tiny absolute differences into huge ratios.
    """
    e = {p.key: p.value for p in engine}
    diffs: dict[str, list[float]] = defaultdict(list)
    for p in collector:
        if p.key in e and not is_churn(p, churn):
            diffs[p.metric].append(abs(e[p.key] - p.value) / max(abs(p.value), floor))
    out = {}
    for metric, values in sorted(diffs.items()):
        values.sort()
        out[metric] = {"series": len(values), "median_rel_diff": values[len(values) // 2],
                       "p95_rel_diff": values[min(len(values) - 1, int(0.95 * len(values)))]}
    return out


# ---------------------------------------------------------------- property 2: critical coverage


@dataclass
class CriticalCoverage:
    critical: int  # critical processes judged (churn excluded)
    covered: int
    churn_excluded: int
    expected_series: dict[int, int]  # pid → series it must have
    missing: list[dict[str, Any]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.covered == self.critical

    def to_dict(self, examples: int = 5) -> dict[str, Any]:
        per_process = Counter(self.expected_series.values())
        return {"critical": self.critical, "covered": self.covered, "complete": self.complete,
                "churn_excluded": self.churn_excluded,
                "expected_series_per_process": {str(k): v for k, v in sorted(per_process.items())},
                "missing": self.missing[:examples]}


def expected_series(last: pd.DataFrame, enabled: Iterable[str]) -> pd.Series:
    """Series each process must have, by pid: the enabled metrics' points that hold a value
    (the scraper sends nothing it could not read; utilisation only from a pid's second
    scrape). ``last``: the engine's resource frame rows of the last scrape (input side)."""
    cols = [c for m in FRAME_METRICS if m.name in set(enabled) for c in m.columns if c in last.columns]
    counts = last[cols].notna().sum(axis=1) if cols else pd.Series(0, index=last.index)
    return pd.Series(counts.to_numpy(), index=last["process.pid"].to_numpy(dtype="int64"))


def critical_coverage(collector: Iterable[Point], critical: Mapping[int, str], expected: Mapping[int, int],
                      churn: Churn) -> CriticalCoverage:
    """Property 2: each critical pid (not churn) has ``expected[pid]`` series with its pid."""
    have: Counter[int] = Counter(p.pid for p in collector if p.pid is not None)
    judged = {pid: name for pid, name in critical.items() if pid not in churn.pids}
    covered = 0
    missing = []
    for pid, name in sorted(judged.items()):
        want = int(expected.get(pid, 0))
        if have[pid] >= want:
            covered += 1
        else:
            missing.append({"pid": pid, "executable_name": name, "expected": want, "exported": have[pid]})
    return CriticalCoverage(
        critical=len(judged), covered=covered, churn_excluded=len(critical) - len(judged),
        expected_series={pid: int(expected.get(pid, 0)) for pid in judged}, missing=missing,
    )


# ---------------------------------------------------------------- property 3: rollup sums


def totals(points: Iterable[Point], metrics: Sequence[str] = TOTAL_METRICS) -> dict[str, float]:
    """Σ value per metric over every exported series (individual and rollup)."""
    out = dict.fromkeys(metrics, 0.0)
    for p in points:
        if p.metric in out:
            out[p.metric] += p.value
    return out


def _per_pid(points: Iterable[Point], metrics: Sequence[str]) -> dict[int, dict[str, tuple[float, float]]]:
    """pid → metric → (Σ value over its points, timestamp)."""
    out: dict[int, dict[str, tuple[float, float]]] = defaultdict(dict)
    for p in points:
        if p.metric not in metrics or p.pid is None:
            continue
        value, _ = out[p.pid].get(p.metric, (0.0, 0.0))
        out[p.pid][p.metric] = (value + p.value, p.timestamp or 0.0)
    return out


@dataclass
class RollupCheck:
    candidate: float  # candidate total, churn processes it exports individually left out
    baseline: float  # reference from the baseline collector at the candidate's instant
    from_psutil: float  # part of the reference the baseline could not give (new processes)
    churn_bound: float  # churn processes the candidate may have summed into a group (|value|)
    interpolation_bound: float  # how far the truth may lie from the interpolated reference
    psutil: float  # the same population read by psutil at the candidate's instant (tight)

    @property
    def error_pct(self) -> float:
        return 0.0 if self.baseline == 0 else 100.0 * (self.candidate - self.baseline) / self.baseline

    @property
    def psutil_error_pct(self) -> float:
        return 0.0 if self.psutil == 0 else 100.0 * (self.candidate - self.psutil) / self.psutil

    @property
    def within(self) -> bool:
        """|candidate − baseline| ≤ 1 % of the baseline, plus what churn processes hidden in a
        rollup group and the baseline's interpolation may account for; and within 1 % (plus
        churn) of the aligned psutil read."""
        pct = ROLLUP_TOLERANCE_PCT / 100.0
        slack = pct * abs(self.baseline) + self.churn_bound + self.interpolation_bound
        tight = pct * abs(self.psutil) + self.churn_bound
        return abs(self.candidate - self.baseline) <= slack and abs(self.candidate - self.psutil) <= tight

    def to_dict(self) -> dict[str, Any]:
        return {"candidate": self.candidate, "baseline": self.baseline, "from_psutil": self.from_psutil,
                "churn_bound": self.churn_bound, "interpolation_bound": self.interpolation_bound,
                "psutil": self.psutil, "error_pct": round(self.error_pct, 4),
                "psutil_error_pct": round(self.psutil_error_pct, 4), "within": self.within}


@dataclass
class Reference:
    values: dict[str, float]
    from_psutil: dict[str, float]
    interpolation_bound: dict[str, float]


def baseline_reference(before: Sequence[Point], after: Sequence[Point], at: float, population: Iterable[int],
                       psutil_values: Mapping[int, Mapping[str, float]],
                       metrics: Sequence[str] = TOTAL_METRICS) -> Reference:
    """The baseline collector's totals over ``population`` pids at instant ``at``.

    Per pid and metric: linear interpolation between the baseline scrapes ``before`` and
    ``after`` (cumulative counters grow between scrapes); the nearest one when only one has
    the pid; the psutil value otherwise (reported as the psutil share). A value that moved
    between the two scrapes may have moved at any moment in between: up to
    ``|Δ| × max(f, 1 − f)`` from the interpolation, summed as the interpolation bound.
    """
    b1, b2 = _per_pid(before, metrics), _per_pid(after, metrics)
    ref = dict.fromkeys(metrics, 0.0)
    filled = dict.fromkeys(metrics, 0.0)
    bound = dict.fromkeys(metrics, 0.0)
    for pid in population:
        for m in metrics:
            v1, v2 = b1.get(pid, {}).get(m), b2.get(pid, {}).get(m)
            if v1 is not None and v2 is not None and v2[1] > v1[1]:
                f = min(1.0, max(0.0, (at - v1[1]) / (v2[1] - v1[1])))
                ref[m] += v1[0] + f * (v2[0] - v1[0])
                bound[m] += abs(v2[0] - v1[0]) * max(f, 1.0 - f)
            elif v1 is not None or v2 is not None:
                ref[m] += (v2 or v1)[0]  # type: ignore[index]
            else:
                v = float(psutil_values.get(pid, {}).get(m, 0.0))
                ref[m] += v
                filled[m] += v
    return Reference(ref, filled, bound)


def rollup_checks(candidate: Sequence[Point], before: Sequence[Point], after: Sequence[Point], at: float,
                  population: Iterable[int], churn: Iterable[int],
                  psutil_values: Mapping[int, Mapping[str, float]],
                  metrics: Sequence[str] = TOTAL_METRICS) -> dict[str, RollupCheck]:
    """Property 3 per metric: candidate total vs the baseline's total at the same instant.

    ``population`` is every pid of the psutil read at the candidate's scrape. Churn pids are
    left out of the reference and, where the candidate exports them individually, out of
    its total; a churn pid it does not export individually may sit inside a rollup group or
    not, so its value (baseline's, else psutil's) bounds the error on top of the 1 %.
    """
    churn_set = set(churn)
    pop = set(population) - churn_set
    ref = baseline_reference(before, after, at, pop, psutil_values, metrics)
    seen_b = {**_per_pid(before, metrics), **_per_pid(after, metrics)}
    visible = _per_pid(candidate, metrics)
    cand = totals(candidate, metrics)
    out = {}
    for m in metrics:
        bound = 0.0
        for pid in churn_set:
            if pid in visible:
                cand[m] -= visible[pid].get(m, (0.0, 0.0))[0]
                continue
            v = seen_b.get(pid, {}).get(m)
            bound += abs(v[0]) if v is not None else abs(float(psutil_values.get(pid, {}).get(m, 0.0)))
        aligned = sum(float(psutil_values.get(pid, {}).get(m, 0.0)) for pid in pop)
        out[m] = RollupCheck(candidate=cand[m], baseline=ref.values[m], from_psutil=ref.from_psutil[m],
                             churn_bound=bound, interpolation_bound=ref.interpolation_bound[m], psutil=aligned)
    return out


def psutil_totals(last: pd.DataFrame, metrics: Sequence[str] = TOTAL_METRICS) -> dict[int, dict[str, float]]:
    """pid → metric → value summed over the metric's points, from a snapshot's last scrape."""
    out: dict[int, dict[str, float]] = {}
    pids = last["pid"].to_numpy(dtype="int64")
    for m in metrics:
        cols = [c for c in METRICS_BY_NAME[m].columns if c in last.columns]
        values = last[cols].fillna(0.0).sum(axis=1).to_numpy() if cols else [0.0] * len(last)
        for pid, v in zip(pids, values, strict=True):
            out.setdefault(int(pid), {})[m] = float(v)
    return out
