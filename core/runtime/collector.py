"""One scrape → tune → evaluate → serve loop, and the experiment's collector emulator.

``HostScraper`` and ``ServedPipeline`` are the loop: the emulator runs it for both variants
of an experiment, ``core.runtime.production`` for the host's standing collector.

Per interval (``CollectorEmulator.tick``):

1. ONE psutil scrape of this host (``PsutilReader``), joined with the previous scrape so
   utilisation is defined (Δcpu/Δwall, as the hostmetrics receiver computes it);
2. the identical snapshot is evaluated by the baseline and the candidate pipeline through
   the engine (``core.engine.evaluate``), each under the experiment's critical policy;
3. each variant's exported series are served at its own ``/metrics`` (exposition server)
   and measured: series, data points, bytes as serialised (the Prometheus text served),
   critical coverage, processes seen, series created/removed since the last interval, and
   the emulator's own CPU time spent on that variant (process CPU clock around its
   evaluate + render) and its memory. One process runs both variants, so its RSS is
   shared; a variant's ``collector_rss_mb`` is that shared RSS *before* the interval's
   work plus the variant's own peak working memory (tracemalloc peak over its evaluate +
   render, which numpy and pandas buffers report to) — the part a separate collector
   process would need on top of the same runtime. Tracing allocations costs CPU, so it is
   measured on the first interval and every ``memory_every`` intervals, and carried over
   in between (the working set of one pipeline changes slowly). The difference between variants is
   therefore the memory the candidate's pipeline really adds or saves;
4. the samples go to a sink (the database in ``phoenix collector``).

Adaptive / top-K thresholds are re-tuned from the live snapshot every ``retune_every``
intervals (``core.engine.tuning.tune``); a change is reported to ``on_event``. A pipeline
with a series budget (adaptive) is re-tuned every interval instead, in a closed loop: the
series each host exported last interval (what its ``/metrics`` served) correct its K.
"""

from __future__ import annotations

import copy
import logging
import os
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import psutil

from core.domain.critical import CriticalPolicy
from core.domain.pipeline import Pipeline
from core.domain.samples import VARIANTS, MeasurementSample
from core.runtime.exposition import ExpositionServer, MetricsState, render_series

log = logging.getLogger(__name__)

SampleSink = Callable[[list[MeasurementSample]], None]
EventSink = Callable[[str, dict[str, Any]], None]


def _identities(series: pd.DataFrame) -> set[int]:
    """Hash of (metric, every attribute) per exported series: series identity for churn."""
    if series.empty:
        return set()
    cols = [c for c in series.columns if c not in ("scrape", "value", "timestamp")]
    return set(pd.util.hash_pandas_object(series[cols].astype(str), index=False).to_numpy().tolist())


class HostScraper:
    """One scrape of this host per call, joined with the previous one (utilisation is
    Δcpu/Δwall between two scrapes of a pid, as the hostmetrics receiver computes it)."""

    def __init__(self, reader: Any = None) -> None:
        from core.engine.hostsnapshot import PsutilReader

        self.reader = reader or PsutilReader()
        self.host_name: str = self.reader.host_name()
        self._prev: pd.DataFrame | None = None

    def scrape(self) -> pd.DataFrame:
        from core.engine.hostsnapshot import snapshot_this_host
        from core.engine.snapshot import normalise_snapshot

        cur = snapshot_this_host(scrapes=1, reader=self.reader)
        snap = cur if self._prev is None else pd.concat([self._prev, cur], ignore_index=True)
        self._prev = cur
        return normalise_snapshot(snap)


@dataclass(frozen=True)
class IntervalFigures:
    """What one pipeline exported for one interval, as its ``/metrics`` serves it."""

    series: int
    datapoints: int
    bytes: int
    processes_seen: int
    critical_coverage_pct: float
    series_created: int
    series_removed: int
    text: str

    def gauges(self, t: datetime) -> dict[str, float]:
        return {
            "phoenix_interval_datapoints": self.datapoints,
            "phoenix_interval_bytes": self.bytes,
            "phoenix_processes_seen": self.processes_seen,
            "phoenix_critical_coverage_ratio": self.critical_coverage_pct / 100.0,
            "phoenix_interval_timestamp_seconds": t.timestamp(),
        }


@dataclass
class ServedPipeline:
    """One pipeline over this host's snapshots: tune → evaluate → measure → serve.

    The one loop body both the experiment emulator (two of these, one per variant) and the
    host's standing production collector (one) run each interval. CPU and memory belong to
    the caller, which knows what one process shares between pipelines.
    """

    name: str
    pipeline: Pipeline
    state: MetricsState
    server: ExpositionServer | None = None
    last_ids: set[int] = field(default_factory=set)
    # Series exported per host in the last measured interval: the closed loop's feedback.
    achieved: dict[str, float] | None = None

    def start_server(self, host: str, port: int) -> int:
        if self.server is None:
            self.server = ExpositionServer(self.state, host, port).start()
        return self.server.port

    def stop_server(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def retune(self, snap: pd.DataFrame, *, tick: int, every: int, policy: CriticalPolicy | None,
               source: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Re-tune thresholds from the live snapshot every ``every`` intervals (and whenever a
        tunable node has nothing computed yet); (before, after) when the tuned state changed."""
        from core.engine.tuning import needs_tuning, tunable_nodes, tune, tuned_state

        nodes = tunable_nodes(self.pipeline)
        if not nodes:
            return None
        closed_loop = any(n.node_type.tuning == "budget_thresholds" for n in nodes)
        if tick > 0 and tick % every and not needs_tuning(self.pipeline) and not closed_loop:
            return None
        before = tuned_state(self.pipeline)
        self.pipeline = tune(self.pipeline, snap, policy=policy, source=source, achieved=self.achieved)
        after = tuned_state(self.pipeline)
        return (before, after) if after != before else None

    def measure(self, snap: pd.DataFrame, *, policy: CriticalPolicy | None, interval_s: float) -> IntervalFigures:
        """Evaluate the snapshot and count what the pipeline exports at its last scrape; the
        self-telemetry counters (accepted, per processor, per exporter) move with it."""
        from core.engine.estimate import critical_coverage
        from core.engine.evaluate import evaluate
        from core.engine.expand import series_per_row

        res = evaluate(self.pipeline, snap, policy=policy)
        series = res.output_series(-1)
        last = int(snap["timestamp"].nunique()) - 1
        received = res.received
        accepted = int(received.df["scrape"].eq(last).sum()) if len(received.df) else 0
        inp_last = res.input.df[res.input.df["scrape"].to_numpy() == last]
        cov = critical_coverage(res, res.policy)
        ids = _identities(series)
        self.achieved = ({str(h): float(n) for h, n in series["host_name"].astype(str).value_counts().items()}
                         if len(series) else {})
        created, removed = len(ids - self.last_ids), len(self.last_ids - ids)
        self.last_ids = ids
        # An interval processor exports one point per its interval: fewer points than series.
        pint = res.ctx.processor_interval_s
        factor = 1.0 if not pint else min(1.0, interval_s / pint)
        datapoints = int(round(len(series) * factor))
        accepted_points = int(series_per_row(inp_last, res.ctx.enabled_metrics).sum()) if accepted else 0
        processors = {n.node_id: (float(n.series_in), float(n.series_out)) for n in res.nodes
                      if n.type != "hostmetrics"}  # fmt: skip
        text = render_series(series, self.state.labels) if len(series) else ""
        size = len(text.encode())  # the prometheus exporter's payload for this interval
        exporters = [e.id for e in res.exporters] or ["prometheus"]
        self.state.telemetry.add_interval(
            accepted_points, processors, {e: datapoints for e in exporters}, {e: size for e in exporters}
        )
        return IntervalFigures(int(len(series)), datapoints, size, int(len(inp_last)), float(cov["coverage_pct"]),
                               created, removed, text)  # fmt: skip

    def publish(self, figures: IntervalFigures, t: datetime, *, cpu_seconds: float, rss_bytes: float) -> None:
        """Serve the interval's series with the self-telemetry and ``phoenix_*`` gauges."""
        tel = self.state.telemetry
        tel.cpu_seconds += cpu_seconds
        tel.rss_bytes = rss_bytes
        self.state.update(series_text=figures.text, gauges=figures.gauges(t))


class CollectorEmulator:
    def __init__(
        self,
        experiment_id: str,
        baseline: Pipeline,
        candidate: Pipeline,
        *,
        interval_s: float,
        policy: CriticalPolicy | None = None,
        ports: dict[str, int] | None = None,
        host: str = "127.0.0.1",
        reader: Any = None,
        sink: SampleSink | None = None,
        on_event: EventSink | None = None,
        retune_every: int = 6,
        memory_every: int = 5,
    ) -> None:
        self.experiment_id = experiment_id
        self.interval_s = float(interval_s)
        self.policy = policy
        self.scraper = HostScraper(reader)
        self.host_name = self.scraper.host_name
        self.sink = sink
        self.on_event = on_event
        self.retune_every = retune_every
        self.memory_every = max(1, memory_every)
        self._working: dict[str, float] = {}
        self._proc = psutil.Process(os.getpid())
        self.ticks = 0
        ports = ports or {}
        self.variants = {
            name: ServedPipeline(name, copy.deepcopy(p), MetricsState(experiment_id, name, self.host_name,
                                 stale_after_s=max(30.0, 6 * self.interval_s)))
            for name, p in (("baseline", baseline), ("candidate", candidate))
        }  # fmt: skip
        self._ports = {v: int(ports.get(v, 0)) for v in VARIANTS}
        self._host = host

    # ------------------------------------------------------------ servers

    def start_servers(self) -> dict[str, int]:
        ports = {n: v.start_server(self._host, self._ports[n]) for n, v in self.variants.items()}
        # the first line of the child's log: under the id of the request that created the experiment
        log.info("emulated collectors of experiment %s serving on %s", self.experiment_id,
                 ", ".join(f"{n} :{p}" for n, p in ports.items()))
        return ports

    def stop_servers(self) -> None:
        for v in self.variants.values():
            v.stop_server()

    # ------------------------------------------------------------ one interval

    def tick(self, now: datetime | None = None) -> list[MeasurementSample]:
        t = now or datetime.now(UTC)
        snap = self.scraper.scrape()  # ONE scrape: both variants see the identical input
        for v in self.variants.values():
            changed = v.retune(snap, tick=self.ticks, every=self.retune_every, policy=self.policy,
                               source=f"experiment {self.experiment_id}")  # fmt: skip
            if changed and self.on_event:
                self.on_event("retune", {"variant": v.name, "interval": self.ticks, "before": changed[0],
                                         "after": changed[1]})  # fmt: skip
        samples = []
        rss = float(self._proc.memory_info().rss)
        measure_memory = self.ticks % self.memory_every == 0 and not tracemalloc.is_tracing()
        if measure_memory:
            tracemalloc.start()
        for v in self.variants.values():
            traced_before = tracemalloc.get_traced_memory()[0] if measure_memory else 0
            if measure_memory:
                tracemalloc.reset_peak()
            c0 = time.process_time()
            fig = v.measure(snap, policy=self.policy, interval_s=self.interval_s)
            cpu = time.process_time() - c0
            if measure_memory:
                self._working[v.name] = max(0, tracemalloc.get_traced_memory()[1] - traced_before)
            variant_rss = rss + self._working.get(v.name, 0.0)
            v.publish(fig, t, cpu_seconds=cpu, rss_bytes=variant_rss)
            samples.append(MeasurementSample(
                experiment_id=self.experiment_id, variant=v.name, t=t, series=fig.series,
                datapoints=fig.datapoints, bytes=fig.bytes,
                collector_cpu_pct=round(100.0 * cpu / self.interval_s, 4),
                collector_rss_mb=round(variant_rss / 1048576, 3), critical_coverage_pct=fig.critical_coverage_pct,
                processes_seen=fig.processes_seen, series_created=fig.series_created,
                series_removed=fig.series_removed,
            ))  # fmt: skip
        if measure_memory:
            tracemalloc.stop()
        self.ticks += 1
        if self.sink:
            self.sink(samples)
        return samples


def identical_input(samples: list[MeasurementSample]) -> bool:
    """Both variants saw the same number of processes at every interval."""
    by_t: dict[datetime, dict[str, int | None]] = {}
    for s in samples:
        by_t.setdefault(s.t, {})[s.variant] = s.processes_seen
    return all(len(v) == 2 and len(set(v.values())) == 1 for v in by_t.values())

