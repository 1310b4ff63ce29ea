"""Measurements of real collectors, taken from outside like Prometheus would.

With the real collector (docs/real-collector.md) the local deployer runs a tap and two variant
collectors; nothing inside them writes Phoenix samples. ``ScrapeMeasurer`` (run by ``phoenix
collector --experiment ID --measure-otelcol``) produces the same per-variant
``MeasurementSample`` the emulator writes, once per interval:

- ``/metrics`` of each variant's prometheus exporter, parsed as text format 0.0.4 (a small
  regex parser, checked against ``prometheus_client``'s in the tests): series = samples of
  ``process_*`` families (``target_info`` and scope info are not process series), data
  points = series × min(1, interval / export interval) as the emulator counts them, bytes =
  the payload;
- each variant's self-telemetry endpoint: ``otelcol_process_cpu_seconds_total`` →
  CPU % over the interval (Δcpu / Δt × 100), ``otelcol_process_memory_rss`` → MB;
- critical coverage: the tap's ``prometheus/input`` exposition (the input both variants
  received; without a tap, ONE psutil scrape of the host in the same interval), classified with
  the experiment's critical policy; a critical pid is covered when every series the
  receiver would emit for it (enabled metrics × data-point attribute values that have
  data) is in the variant's output with ``process_pid`` intact. With the tap, a critical
  pid is judged once the tap has exported it for two intervals plus the variant's export
  interval (every variant has then had its data). Without one, the collectors scrape at
  their own instants, so only critical pids older than that and still alive after both
  endpoints were read are judged (``stable_pids``). A judged pid that a variant does not
  export is lost by that variant, whatever the other does;
- processes seen = pids in the input; series created/removed = label-set identities vs
  the last interval.

The functions over text and a snapshot are pure; only ``ScrapeMeasurer`` does I/O.
"""

from __future__ import annotations

import logging
import math
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from core.catalog.process_metrics import FRAME_METRICS
from core.domain.critical import CriticalPolicy, classify
from core.domain.errors import TemporaryError
from core.domain.samples import MeasurementSample
from core.engine.encoding import metric_meta, prometheus_label_name, prometheus_metric_name
from core.engine.exposition_parse import ExpositionError, parse_exposition

if TYPE_CHECKING:
    from core.runtime.closed_loop import ClosedLoop

log = logging.getLogger(__name__)
PROCESS_METRICS_NAMES = tuple(m.name for m in FRAME_METRICS)

#: families an exporter adds that are not series of the pipeline's metrics
NON_SERIES = frozenset({"target_info", "otel_scope_info"})
PID_LABEL = "process_pid"


class ScrapeError(TemporaryError):
    """An endpoint did not answer or served text that is not Prometheus exposition."""


# ---------------------------------------------------------------- parsing (pure)


SeriesKey = tuple[str, tuple[tuple[str, str], ...]]


def parse_samples(text: str, where: str = "endpoint") -> list[tuple[str, dict[str, str], float]]:
    """Every sample of a text exposition as ``(name, labels, value)``; bad text → ``ScrapeError``."""
    try:
        return [(s.name, s.labels, s.value) for s in parse_exposition(text)]
    except ExpositionError as exc:
        raise ScrapeError(f"{where} served text that is not Prometheus exposition ({exc})") from None


def process_series(text: str, where: str = "endpoint") -> list[SeriesKey]:
    """Identities (name, sorted labels) of the ``process_*`` series in an exposition."""
    out = []
    for name, labels, _ in parse_samples(text, where):
        if name.startswith("process_") and name not in NON_SERIES:
            out.append((name, tuple(sorted(labels.items()))))
    return out


def series_per_host(text: str, where: str = "endpoint") -> dict[str, float]:
    """Process series a collector exported, per ``host_name`` label (resourcedetection's
    ``host.name``): the closed loop's feedback for adaptive (``core.engine.tuning.tune``'s
    ``achieved``) when the collector is real rather than emulated."""
    return _per_host(process_series(text, where))


@dataclass(frozen=True)
class Telemetry:
    cpu_seconds: float | None
    rss_bytes: float | None
    uptime_s: float | None = None


def parse_telemetry(text: str, where: str = "telemetry endpoint") -> Telemetry:
    """The collector's own CPU seconds and RSS from its self-telemetry exposition."""
    cpu = rss = uptime = None
    for name, _, value in parse_samples(text, where):
        if name in ("otelcol_process_cpu_seconds_total", "otelcol_process_cpu_seconds"):
            cpu = value if cpu is None else cpu + value
        elif name == "otelcol_process_memory_rss":
            rss = value if rss is None else max(rss, value)
        elif name in ("otelcol_process_uptime_seconds_total", "otelcol_process_uptime_total", "otelcol_process_uptime"):
            uptime = value
    return Telemetry(cpu, rss, uptime)


def cpu_pct(prev: tuple[float, float] | None, cur: tuple[float, float] | None) -> float | None:
    """CPU % between two ``(wall seconds, cpu seconds)`` readings; None without two readings."""
    if prev is None or cur is None:
        return None
    dt, dc = cur[0] - prev[0], cur[1] - prev[1]
    if dt <= 0 or dc < 0:  # clock did not move, or the collector restarted (counter reset)
        return None
    return round(100.0 * dc / dt, 4)


# ---------------------------------------------------------------- coverage (pure)


def _expected_points(enabled: Iterable[str]) -> list[tuple[str, str | None, str | None, str]]:
    """(prometheus name, attribute label, attribute value, snapshot column) of every point."""
    on = set(enabled)
    out = []
    for m in FRAME_METRICS:
        if m.name not in on:
            continue
        meta = metric_meta(m.name)
        name = prometheus_metric_name(meta.name, meta.unit, meta.is_monotonic_sum, is_gauge=meta.kind == "gauge")
        label = prometheus_label_name(m.attribute) if m.attribute else None
        out.extend((name, label, value, col) for value, col in m.points)
    return out


def critical_pids(snapshot: pd.DataFrame, policy: CriticalPolicy) -> np.ndarray:
    """Pids of the snapshot's last scrape that the policy classifies critical."""
    last = _last_scrape(snapshot)
    prio = classify(policy, last["executable_name"], last["command_line"], last["owner"])
    return last["pid"].to_numpy(dtype=np.int64)[(prio == "critical").to_numpy()]


def _last_scrape(snapshot: pd.DataFrame) -> pd.DataFrame:
    if "scrape" in snapshot.columns and len(snapshot):
        return snapshot[snapshot["scrape"].to_numpy() == snapshot["scrape"].max()]
    return snapshot


def stable_pids(pids: Iterable[int], *, born_before: float) -> set[int]:
    """Pids alive now that started before ``born_before`` (epoch seconds): fair to judge."""
    import psutil

    out = set()
    for pid in pids:
        try:
            if psutil.Process(int(pid)).create_time() <= born_before:
                out.add(int(pid))
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return out


def coverage(
    series: Iterable[SeriesKey],
    snapshot: pd.DataFrame,
    policy: CriticalPolicy,
    enabled: Iterable[str],
    *,
    judged_pids: set[int] | None = None,
) -> dict[str, Any]:
    """Critical pids whose every expected series is in ``series`` / critical pids judged.

    Expected for a pid = each enabled metric's point whose snapshot column has a value
    (no value, no data point — as the receiver does). ``judged_pids`` limits the
    denominator to pids some collector reported (see the module doc); None judges all.
    """
    points = _expected_points(enabled)
    have: dict[int, set[tuple[str, str | None]]] = {}
    labels_of = {name: label for name, label, _, _ in points}
    for name, labels in series:
        if name not in labels_of:
            continue
        lab = dict(labels)
        pid = lab.get(PID_LABEL, "")
        if not pid.isdigit():
            continue  # a rollup (no pid) covers nobody
        attr = labels_of[name]
        have.setdefault(int(pid), set()).add((name, lab.get(attr) if attr else None))
    last = _last_scrape(snapshot)
    crit = set(critical_pids(last, policy).tolist())
    if judged_pids is not None:
        crit &= judged_pids
    rows = last[last["pid"].isin(crit)]
    covered, missing = 0, []
    pids = rows["pid"].to_numpy(dtype=np.int64)
    for i, pid in enumerate(pids.tolist()):
        got = have.get(pid, set())
        ok = True
        for name, _, value, col in points:
            if col in rows.columns and not math.isnan(float(rows[col].iloc[i])) and (name, value) not in got:
                ok = False
                break
        covered += ok
        if not ok and len(missing) < 5:
            missing.append({"pid": pid, "executable_name": str(rows["executable_name"].iloc[i])})
    total = len(pids)
    return {
        "critical_processes": total,
        "covered": covered,
        "coverage_pct": 100.0 if total == 0 else round(100.0 * covered / total, 4),
        "missing_examples": missing,
    }


def _int(text: str | None) -> int:
    return int(text) if text and text.isdigit() else 0


def input_snapshot(text: str, where: str = "tap input") -> pd.DataFrame:
    """The tap's input exposition as a one-scrape snapshot frame ``coverage`` reads: one row
    per pid with its identity and a value in each snapshot column the input has a point for."""
    points = {(name, value): (label, col) for name, label, value, col in _expected_points(PROCESS_METRICS_NAMES)}
    by_label = {name: label for (name, _), (label, _) in points.items()}
    rows: dict[int, dict[str, Any]] = {}
    for name, labels, value in parse_samples(text, where):
        pid = labels.get(PID_LABEL, "")
        if name not in by_label or not pid.isdigit():
            continue
        label = by_label[name]
        hit = points.get((name, labels.get(label) if label else None))
        if hit is None:
            continue
        row = rows.setdefault(int(pid), {
            "pid": int(pid), "executable_name": labels.get("process_executable_name", ""),
            "command_line": labels.get("process_command_line", ""), "owner": labels.get("process_owner", ""),
            "host_name": labels.get("host_name", ""),
            # what the engine's frame also needs (the closed loop tunes on this input)
            "parent_pid": _int(labels.get("process_parent_pid")),
            "executable_path": labels.get("process_executable_path", ""),
            "command": labels.get("process_command", "")})
        row[hit[1]] = value
    columns = ["pid", "executable_name", "command_line", "owner", "host_name", "parent_pid", "executable_path",
               "command", *sorted({col for _, col in points.values()})]
    frame = pd.DataFrame(list(rows.values()), columns=columns)
    frame["timestamp"] = time.time()
    return frame


# ---------------------------------------------------------------- one variant, one interval (pure)


@dataclass
class VariantFacts:
    """What the pipeline's config says, needed to read its output."""

    enabled_metrics: frozenset[str]
    export_interval_s: float | None
    policy: CriticalPolicy


@dataclass
class VariantState:
    last_ids: set[SeriesKey] = field(default_factory=set)
    last_cpu: tuple[float, float] | None = None


def measure_variant(
    experiment_id: str,
    variant: str,
    t: datetime,
    *,
    metrics_text: str,
    telemetry_text: str,
    wall_s: float,
    snapshot: pd.DataFrame,
    facts: VariantFacts,
    interval_s: float,
    state: VariantState,
    judged_pids: set[int] | None = None,
    series: list[SeriesKey] | None = None,
) -> MeasurementSample:
    """One sample from the two scraped texts and the host scrape; updates ``state``."""
    series = series if series is not None else process_series(metrics_text, f"{variant} /metrics")
    tel = parse_telemetry(telemetry_text, f"{variant} telemetry")
    ids = set(series)
    created, removed = len(ids - state.last_ids), len(state.last_ids - ids)
    state.last_ids = ids
    pint = facts.export_interval_s
    factor = 1.0 if not pint else min(1.0, interval_s / pint)
    cur = (wall_s, tel.cpu_seconds) if tel.cpu_seconds is not None else None
    pct = cpu_pct(state.last_cpu, cur)
    state.last_cpu = cur
    cov = coverage(series, snapshot, facts.policy, facts.enabled_metrics, judged_pids=judged_pids)
    return MeasurementSample(
        experiment_id=experiment_id, variant=variant, t=t, series=len(series),
        datapoints=int(round(len(series) * factor)), bytes=len(metrics_text.encode()),
        collector_cpu_pct=pct,
        collector_rss_mb=None if tel.rss_bytes is None else round(tel.rss_bytes / 1048576, 3),
        critical_coverage_pct=float(cov["coverage_pct"]), processes_seen=int(len(_last_scrape(snapshot))),
        series_created=created, series_removed=removed,
    )  # fmt: skip


# ---------------------------------------------------------------- endpoints from the rendered configs


@dataclass(frozen=True)
class Endpoints:
    metrics_url: str
    telemetry_url: str


def endpoints_from_config(config: Mapping[str, Any], where: str = "config") -> Endpoints:
    """The first prometheus exporter's ``/metrics`` and the self-telemetry pull reader."""
    exporters = config.get("exporters") or {}
    proms = sorted(k for k in exporters if k == "prometheus" or k.startswith("prometheus/"))
    if not proms or not (exporters[proms[0]] or {}).get("endpoint"):
        raise ScrapeError(f"{where} has no prometheus exporter endpoint to measure")
    endpoint = str(exporters[proms[0]]["endpoint"])
    try:
        reader = config["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]
        tel = f"{reader['host']}:{int(reader['port'])}"
    except (KeyError, IndexError, TypeError, ValueError):
        raise ScrapeError(f"{where} has no service.telemetry.metrics prometheus pull reader") from None
    return Endpoints(f"http://{endpoint}/metrics", f"http://{tel}/metrics")


def input_endpoint_from_config(config: Mapping[str, Any], where: str = "tap config") -> Endpoints:
    """The tap's ``prometheus/input`` exporter (the experiment's input) and its self-telemetry."""
    exporter = (config.get("exporters") or {}).get("prometheus/input") or {}
    if not exporter.get("endpoint"):
        raise ScrapeError(f"{where} has no prometheus/input exporter")
    tel = endpoints_from_config({"exporters": {"prometheus": exporter}, "service": config.get("service", {})}, where)
    return tel


def config_path(data_dir: Path, experiment_id: str, variant: str) -> Path:
    """Where ``otelcol_plan`` writes a variant's rendered config."""
    return Path(data_dir) / f"otelcol-{experiment_id}-{variant}.yaml"


def http_get(url: str, timeout: float = 5.0) -> str:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.read().decode("utf-8", errors="replace")
    except OSError as exc:
        raise ScrapeError(f"cannot scrape {url}: {exc}") from None


# ---------------------------------------------------------------- the measuring loop's step (I/O)


class ScrapeMeasurer:
    """Once per ``tick``: scrape both real collectors and the host, write one sample per variant.

    Same shape as ``CollectorEmulator`` for ``run_collector``: ``start_servers`` (nothing
    to serve — the collectors do; it reads the CPU counters once so the first interval
    has a Δ), ``tick``, ``stop_servers``. A failed scrape skips the whole interval (no
    half pair: the analysis pairs the variants by interval) and is logged.
    """

    def __init__(
        self,
        experiment_id: str,
        pipelines: Mapping[str, Any],
        endpoints: Mapping[str, Endpoints],
        *,
        interval_s: float,
        policy: CriticalPolicy | None = None,
        reader: Any = None,
        fetch: Callable[[str], str] = http_get,
        sink: Callable[[list[MeasurementSample]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        judge: Callable[..., set[int]] = stable_pids,
        tap: Endpoints | None = None,
        loop: ClosedLoop | None = None,
        data_dir: Path | None = None,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        from core.engine.hostsnapshot import PsutilReader

        self.experiment_id = experiment_id
        self.pipelines = dict(pipelines)
        self.endpoints = dict(endpoints)
        self.interval_s = float(interval_s)
        self.policy = policy
        self.reader = reader or PsutilReader()
        self.fetch = fetch
        self.sink = sink
        self.clock = clock
        self.judge = judge
        self.facts: dict[str, VariantFacts] = {}
        self.states = {v: VariantState() for v in self.pipelines}
        # With a tap, the input both variants received is read from the tap itself: no
        # separate host scrape, so no timing artefacts between "input" and "output".
        self.tap = tap
        self.first_seen: dict[int, float] = {}
        self.has_data: set[str] = set()
        self.started: float | None = None
        self.tap_cpu: tuple[float, float] | None = None
        self.tap_overhead: list[dict[str, float | None]] = []
        self.ticks = 0
        self.skipped = 0
        # Adaptive's closed loop (core.runtime.closed_loop): needs the tap's input to tune on.
        self.loop = loop if tap is not None else None
        self.data_dir = data_dir
        self.on_event = on_event
        self.restart_requested_at: float | None = None
        self._last: tuple[pd.DataFrame, dict[str, list[SeriesKey]]] = (pd.DataFrame(), {})

    @classmethod
    def from_configs(cls, experiment_id: str, pipelines: Mapping[str, Any], data_dir: Path,
                     **kwargs: Any) -> ScrapeMeasurer:  # fmt: skip
        import yaml

        endpoints = {}
        for v in pipelines:
            path = config_path(data_dir, experiment_id, v)
            try:
                conf = yaml.safe_load(path.read_text())
            except (OSError, yaml.YAMLError) as exc:
                raise ScrapeError(f"cannot read the rendered config {path}: {exc}") from None
            endpoints[v] = endpoints_from_config(conf or {}, str(path))
        tap_path = config_path(data_dir, experiment_id, "tap")
        if tap_path.is_file() and "tap" not in kwargs:
            try:
                kwargs["tap"] = input_endpoint_from_config(yaml.safe_load(tap_path.read_text()) or {}, str(tap_path))
            except (OSError, yaml.YAMLError) as exc:
                raise ScrapeError(f"cannot read the rendered config {tap_path}: {exc}") from None
        if "tap" in kwargs and "candidate" in pipelines and "loop" not in kwargs:
            kwargs["loop"] = _closed_loop(experiment_id, pipelines, Path(data_dir), kwargs.get("policy"))
        return cls(experiment_id, pipelines, endpoints, data_dir=Path(data_dir), **kwargs)

    def _facts(self, snapshot: pd.DataFrame) -> dict[str, VariantFacts]:
        """Enabled metrics, export interval and policy of each pipeline (engine, once)."""
        if not self.facts:
            from core.engine.evaluate import evaluate

            for v, p in self.pipelines.items():
                res = evaluate(p, snapshot, policy=self.policy)
                self.facts[v] = VariantFacts(frozenset(res.ctx.enabled_metrics), res.ctx.processor_interval_s,
                                             res.policy)  # fmt: skip
        return self.facts

    def start_servers(self) -> dict[str, int]:
        if self.tap is not None:  # what the configs say, read once before the first interval
            self._facts(self.scrape_host())
        for v, ep in self.endpoints.items():
            try:
                tel = parse_telemetry(self.fetch(ep.telemetry_url), f"{v} telemetry")
            except ScrapeError as exc:  # not up yet: the first interval then has no CPU figure
                log.info("priming %s: %s", v, exc)
                continue
            if tel.cpu_seconds is not None:
                self.states[v].last_cpu = (self.clock(), tel.cpu_seconds)
        return {}

    def stop_servers(self) -> None:
        return None

    def scrape_host(self) -> pd.DataFrame:
        from core.engine.hostsnapshot import snapshot_this_host

        return snapshot_this_host(scrapes=1, reader=self.reader)

    def tick(self, now: datetime | None = None) -> list[MeasurementSample]:
        samples = self._measure(now)
        if samples and self.loop is not None:
            self._close_loop()
        return samples

    def _measure(self, now: datetime | None = None) -> list[MeasurementSample]:
        t = now or datetime.now(UTC)
        try:
            if not self.facts or self.tap is None:
                host = self.scrape_host()
                self._facts(host)
            snap = host if self.tap is None else input_snapshot(self.fetch(self.tap.metrics_url))
            texts = {}
            for v, ep in self.endpoints.items():
                metrics = self.fetch(ep.metrics_url)
                telemetry = self.fetch(ep.telemetry_url)
                texts[v] = (metrics, telemetry, self.clock(), process_series(metrics, f"{v} /metrics"))
            if self.tap is not None:
                self._tap_overhead(self.fetch(self.tap.telemetry_url))
        except ScrapeError as exc:
            self.skipped += 1
            log.warning("interval skipped for %s: %s", self.experiment_id, exc)
            return []
        facts = self.facts
        if self._warming_up(texts) or self._restarting(texts):
            return []
        judged: set[int] = set()
        for f in facts.values():
            age = 2 * self.interval_s + (f.export_interval_s or 0.0)
            judged |= self._judged(critical_pids(snap, f.policy), age, snap)
        samples = [
            measure_variant(self.experiment_id, v, t, metrics_text=m, telemetry_text=tel, wall_s=wall,
                            snapshot=snap, facts=facts[v], interval_s=self.interval_s, state=self.states[v],
                            judged_pids=judged, series=series)
            for v, (m, tel, wall, series) in texts.items()
        ]  # fmt: skip
        self.ticks += 1
        self._last = (snap, {v: series for v, (_, _, _, series) in texts.items()})
        if self.sink:
            self.sink(samples)
        return samples

    # ------------------------------------------------------------ adaptive's closed loop

    def _restarting(self, texts: Mapping[str, tuple[str, str, float, list[SeriesKey]]]) -> bool:
        """After a restart request: skip intervals until the candidate runs the new config (its
        uptime is shorter than the time since the request) and has exported a batch with it."""
        if self.restart_requested_at is None or "candidate" not in texts:
            return False
        metrics, telemetry, _, series = texts["candidate"]
        waited = self.clock() - self.restart_requested_at
        uptime = parse_telemetry(telemetry, "candidate telemetry").uptime_s
        if uptime is not None and uptime < waited and series:
            self.restart_requested_at = None
            self.states["candidate"].last_cpu = None  # a new process: its CPU counter started again
            return False
        if waited > 5 * self.interval_s + 30.0:  # the deployer never restarted it: measure what runs
            log.warning("the candidate of %s was not restarted %.0fs after the closed loop asked; measuring it "
                        "as it is", self.experiment_id, waited)
            self.restart_requested_at = None
            return False
        log.info("interval skipped for %s: the candidate restarts with re-tuned thresholds", self.experiment_id)
        return True

    def _close_loop(self) -> None:
        """Re-tune the candidate from this interval's input and output; ask for a restart on change."""
        import psutil

        from core.domain.errors import PhoenixError
        from core.otelcol.validate import check_collector_yaml
        from core.runtime.closed_loop import request_restart

        assert self.loop is not None
        snap, series = self._last
        achieved, baseline = _per_host(series.get("candidate", [])), _per_host(series.get("baseline", []))
        if len(snap):
            # The tap's prometheus/input keeps a process's series for its metric_expiration
            # (5 min) after it exits; the loop sizes K on the processes that still run (this host).
            alive = {int(p) for p in snap["pid"].tolist() if psutil.pid_exists(int(p))}
            snap = snap[snap["pid"].isin(alive)]
        seen = set(achieved) | set(baseline)
        if len(seen) == 1 and "host_name" in snap.columns:
            # The tap runs no resourcedetection (the variants do, on this same host): its input
            # has no host name, so it gets the one both variants' outputs carry.
            snap = snap.assign(host_name=snap["host_name"].replace("", next(iter(seen))))
        running = self.loop.running
        try:
            step = self.loop.step(snap, achieved, baseline)
        except PhoenixError as exc:  # bad input this interval: keep what runs, try again next one
            log.warning("closed loop of %s skipped an interval: %s", self.experiment_id, exc)
            return
        details = step.details("candidate")
        if step.restart and step.config is not None:
            problems = check_collector_yaml(step.config).problems
            if problems:  # never restart onto a config the collector refuses
                self.loop.running = running
                details.update(restart=False, error="; ".join(problems)[:500])
            elif self.data_dir is not None:
                request_restart(self.data_dir, self.experiment_id, "candidate", step.config,
                                {"reason": "retune", "interval": step.interval})
                self.restart_requested_at = self.clock()
        if self.on_event:
            self.on_event("retune", details)

    def _warming_up(self, texts: Mapping[str, tuple[str, str, float, list[SeriesKey]]]) -> bool:
        """With a tap: no sample until every variant has exported its first batch.

        The tap's first scrape reaches the variants a moment later (and a batching or
        downsampling variant holds it for its export interval); an interval read before then
        would count an empty variant as a 100 % reduction. A variant still empty after two
        intervals plus its export interval (and 5 s of start-up) is measured as it is.
        """
        if self.tap is None:
            return False
        now = self.clock()
        self.started = self.started or now
        for v, (_, _, _, series) in texts.items():
            if series:
                self.has_data.add(v)
            elif v not in self.has_data:
                patience = 2 * self.interval_s + (self.facts[v].export_interval_s or 0.0) + 5.0
                if now - self.started < patience:
                    log.info("interval skipped for %s: %s has not exported its first batch yet",
                             self.experiment_id, v)
                    return True
        return False

    def _judged(self, pids: np.ndarray, age: float, snap: pd.DataFrame) -> set[int]:
        """Critical pids old enough that every variant has had their data for ``age`` seconds."""
        if self.tap is None:
            scraped_at = float(snap["timestamp"].max()) if len(snap) else time.time()
            return self.judge(pids, born_before=scraped_at - age)
        now = self.clock()
        for pid in snap["pid"].tolist():
            self.first_seen.setdefault(int(pid), now)
        return {int(p) for p in pids.tolist() if self.first_seen.get(int(p), now) <= now - age}

    def _tap_overhead(self, telemetry_text: str) -> None:
        """The tap's own CPU and RSS: shared by both variants, reported beside them."""
        tel = parse_telemetry(telemetry_text, "tap telemetry")
        cur = (self.clock(), tel.cpu_seconds) if tel.cpu_seconds is not None else None
        self.tap_overhead.append({"cpu_pct": cpu_pct(self.tap_cpu, cur),
                                  "rss_mb": None if tel.rss_bytes is None else round(tel.rss_bytes / 1048576, 3)})
        self.tap_cpu = cur


def _per_host(series: Iterable[SeriesKey]) -> dict[str, float]:
    """Series per ``host_name`` label (resourcedetection's ``host.name``)."""
    out: dict[str, float] = {}
    for _, labels in series:
        host = dict(labels).get("host_name")
        if host:
            out[host] = out.get(host, 0.0) + 1.0
    return out


def _closed_loop(experiment_id: str, pipelines: Mapping[str, Any], data_dir: Path,
                 policy: CriticalPolicy | None) -> ClosedLoop | None:
    """The candidate's closed loop when it has a series budget (adaptive) and its ports are known."""
    import copy
    import json

    from core.runtime.closed_loop import ClosedLoop, budget_nodes
    from core.runtime.configs import ports_file, render_otelcol_configs

    candidate = pipelines["candidate"]
    path = ports_file(data_dir, experiment_id)
    if not budget_nodes(candidate) or not path.is_file():
        return None
    try:
        ports = {k: int(v) for k, v in json.loads(path.read_text()).items()}
        running = config_path(data_dir, experiment_id, "candidate").read_text()
    except (OSError, ValueError, AttributeError) as exc:
        log.warning("no closed loop for %s: %s", experiment_id, exc)
        return None

    def render(p: Any) -> str:
        both = {"baseline": pipelines["baseline"], "candidate": p}
        return render_otelcol_configs(experiment_id, both, ports, ("candidate",), check=False)["candidate"]

    return ClosedLoop(copy.deepcopy(candidate), render, policy=policy, source=f"experiment {experiment_id}",
                      running=running)
