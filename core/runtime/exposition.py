"""Per-variant Prometheus endpoint: what the collector's ``prometheus`` exporter would serve.

One ``ExpositionServer`` per variant, each on its own loopback port (stdlib
``ThreadingHTTPServer`` in a daemon thread):

- ``GET /metrics`` — text format 0.0.4: the variant's current series (rendered by the
  engine's ``render_prometheus_text``) with the labels ``phoenix_experiment_id``,
  ``phoenix_variant``, ``host_name``, followed by the collector's self-telemetry
  (``otelcol_*`` names as otelcol-contrib's internal telemetry writes them) and a few
  ``phoenix_*`` gauges that the collector has no equivalent for (bytes serialised,
  critical coverage, processes seen) so Prometheus can reproduce the database figures;
- ``GET /healthz`` — ``200 ok`` while the owner keeps updating, ``503`` once the state
  is older than ``stale_after_s`` (a wedged emulator looks unhealthy).

The self-telemetry and gauges are metric families written by ``prometheus_client``
(``generate_latest`` over a collector that yields them). The body is rendered once per
update (not per scrape): scrapes are cheap and every scraper sees the same bytes between
two updates.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pandas as pd
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from core.engine.encoding import attribute_keys, prometheus_label_name, render_prometheus_text

# The series part comes from the engine's 0.0.4 writer, so the whole body is 0.0.4.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
# HELP of the phoenix_* gauges the runtimes pass to ``MetricsState.update``.
GAUGE_HELP = {
    "phoenix_interval_datapoints": "Data points the variant exported in the last interval.",
    "phoenix_interval_bytes": "Bytes the variant's exporter serialised in the last interval.",
    "phoenix_processes_seen": "Processes the receiver saw in the last interval.",
    "phoenix_critical_coverage_ratio": "Share of critical processes still present after the pipeline (0-1).",
    "phoenix_interval_timestamp_seconds": "When the last interval was measured (Unix seconds).",
}
_GAUGE_HELP_OTHER = "Phoenix emulator figure (not an otelcol metric)."


def _family(
    cls: type[CounterMetricFamily] | type[GaugeMetricFamily],
    name: str,
    help_: str,
    base: Mapping[str, str],
    rows: list[tuple[dict[str, str], float]],
) -> Metric:
    """One metric family; every sample carries ``base`` plus its own labels, names sorted."""
    keys = sorted({**base, **(rows[0][0] if rows else {})})
    family = cls(name, help_, labels=keys)
    for own, value in rows:
        labels = {**base, **own}
        family.add_metric([str(labels[k]) for k in keys], float(value))
    return family


class _Families(Collector):
    """A fixed set of metric families, for ``generate_latest``."""

    def __init__(self, families: Iterable[Metric]):
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


def render_families(families: Iterable[Metric]) -> str:
    """Prometheus text format 0.0.4 of the given families, written by prometheus_client."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return generate_latest(registry).decode()


def gauge_families(gauges: Mapping[str, float], base: Mapping[str, str]) -> list[Metric]:
    return [_family(GaugeMetricFamily, name, GAUGE_HELP.get(name, _GAUGE_HELP_OTHER), base, [({}, v)])
            for name, v in sorted(gauges.items())]


@dataclass
class Telemetry:
    """Cumulative self-telemetry of one emulated collector (counters only grow)."""

    receiver: str = "hostmetrics"
    accepted_points: float = 0.0
    #: processor id → [incoming items, outgoing items]
    processors: dict[str, list[float]] = field(default_factory=dict)
    #: exporter id → sent points
    exporters: dict[str, float] = field(default_factory=dict)
    #: exporter id → bytes as serialised (Phoenix's own counter)
    exporter_bytes: dict[str, float] = field(default_factory=dict)
    cpu_seconds: float = 0.0
    rss_bytes: float = 0.0

    def add_interval(
        self,
        accepted: float,
        processors: Mapping[str, tuple[float, float]],
        exported: Mapping[str, float],
        exported_bytes: Mapping[str, float],
    ) -> None:
        self.accepted_points += accepted
        for pid, (i, o) in processors.items():
            cur = self.processors.setdefault(pid, [0.0, 0.0])
            cur[0] += i
            cur[1] += o
        for eid, n in exported.items():
            self.exporters[eid] = self.exporters.get(eid, 0.0) + n
        for eid, n in exported_bytes.items():
            self.exporter_bytes[eid] = self.exporter_bytes.get(eid, 0.0) + n

    def families(self, base: Mapping[str, str]) -> list[Metric]:
        """The collector's self-telemetry as otelcol-contrib names it, each sample with ``base``."""
        procs = sorted(self.processors.items())
        return [
            _family(CounterMetricFamily, "otelcol_receiver_accepted_metric_points_total",
                    "Number of metric points successfully pushed into the pipeline.", base,
                    [({"receiver": self.receiver, "transport": ""}, self.accepted_points)]),
            _family(CounterMetricFamily, "otelcol_processor_incoming_items_total",
                    "Number of items passed to the processor.", base,
                    [({"processor": p, "otel_signal": "metrics"}, v[0]) for p, v in procs]),
            _family(CounterMetricFamily, "otelcol_processor_outgoing_items_total",
                    "Number of items emitted from the processor.", base,
                    [({"processor": p, "otel_signal": "metrics"}, v[1]) for p, v in procs]),
            _family(CounterMetricFamily, "otelcol_exporter_sent_metric_points_total",
                    "Number of metric points successfully sent to destination.", base,
                    [({"exporter": e}, v) for e, v in sorted(self.exporters.items())]),
            _family(CounterMetricFamily, "phoenix_exporter_sent_bytes_total",
                    "Bytes the exporter serialised (Phoenix emulator; not an otelcol metric).", base,
                    [({"exporter": e}, v) for e, v in sorted(self.exporter_bytes.items())]),
            _family(CounterMetricFamily, "otelcol_process_cpu_seconds_total",
                    "Total CPU user and system time in seconds", base, [({}, self.cpu_seconds)]),
            _family(GaugeMetricFamily, "otelcol_process_memory_rss",
                    "Total physical memory (resident set size) [bytes]", base, [({}, self.rss_bytes)]),
        ]  # fmt: skip


class MetricsState:
    """The body one variant serves; replaced atomically by ``update``."""

    def __init__(self, experiment_id: str, variant: str, host_name: str, *, stale_after_s: float = 60.0):
        self.labels = {"phoenix_experiment_id": experiment_id, "phoenix_variant": variant, "host_name": host_name}
        self.telemetry = Telemetry()
        self.stale_after_s = stale_after_s
        self._body = render_families(self.telemetry.families(self.labels)).encode()
        self._updated = time.monotonic()
        self._lock = threading.Lock()
        self.scrapes = 0

    def update(
        self,
        series: pd.DataFrame | None = None,
        *,
        series_text: str | None = None,
        gauges: Mapping[str, float] | None = None,
        timestamp_ms: int | None = None,
    ) -> int:
        """Replace the served series (a frame, or pre-rendered text) and re-render telemetry.

        ``gauges``: extra ``phoenix_*`` gauges (name → value) with the variant's labels.
        Returns the byte size of the series part as served (the exporter's payload).
        """
        if series_text is None:
            series_text = render_series(series, self.labels, timestamp_ms) if series is not None else ""
        families = self.telemetry.families(self.labels) + gauge_families(gauges or {}, self.labels)
        body = (series_text + render_families(families)).encode()
        with self._lock:
            self._body = body
            self._updated = time.monotonic()
        return len(series_text.encode())

    def body(self) -> bytes:
        with self._lock:
            self.scrapes += 1
            return self._body

    def healthy(self) -> bool:
        with self._lock:
            return time.monotonic() - self._updated <= self.stale_after_s


def render_series(series: pd.DataFrame, labels: Mapping[str, str], timestamp_ms: int | None = None) -> str:
    frame = series.drop(columns=["host_name"], errors="ignore")  # host_name comes from the labels
    # An attribute that already becomes one of our labels wins (resourcedetection's
    # host.name → host_name): a label twice makes the whole scrape unparsable.
    taken = {prometheus_label_name(k) for k in attribute_keys(frame)}
    extra = {k: v for k, v in labels.items() if k not in taken}
    return render_prometheus_text(frame, extra, timestamp_ms=timestamp_ms)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, self.server.state.body(), CONTENT_TYPE)
        elif path in {"/healthz", "/"}:
            ok = self.server.state.healthy()
            self._send(200 if ok else 503, b"ok\n" if ok else b"stale\n", "text/plain")
        else:
            self._send(404, b"not found\n", "text/plain")

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # scrapes every second: keep quiet
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], state: MetricsState):
        self.state = state
        super().__init__(addr, _Handler)


class ExpositionServer:
    """Serves one ``MetricsState`` on ``host:port`` (port 0 = any free port)."""

    def __init__(self, state: MetricsState, host: str = "127.0.0.1", port: int = 0):
        self.state = state
        self._server = _Server((host, port), state)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._server.server_address[0]}:{self.port}"

    def start(self) -> ExpositionServer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, name=f"expo-{self.port}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> ExpositionServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
