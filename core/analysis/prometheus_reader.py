"""Per-interval experiment figures read back from Prometheus (prometheus-api-client).

Returns the same sample shape the database path stores (``t, variant, series,
datapoints, bytes, collector_cpu_pct, collector_rss_mb, critical_coverage_pct,
processes_seen``), one row per variant per query step, so ``analyze_samples`` takes
either source unchanged.

The PromQL (``X`` = experiment id, ``W`` = rate window, ``I`` = interval in seconds)::

    series      count by (phoenix_variant) ({phoenix_experiment_id="X", __name__=~"process_.*"})
    datapoints  max by (phoenix_variant) (phoenix_interval_datapoints{…})
    bytes       max by (phoenix_variant) (phoenix_interval_bytes{…})
    cpu %       max by (phoenix_variant) (rate(otelcol_process_cpu_seconds{…}[W]) or rate(…_total{…}[W])) * 100
    rss MB      max by (phoenix_variant) (otelcol_process_memory_rss{…}) / 1048576
    coverage %  min by (phoenix_variant) (phoenix_critical_coverage_ratio{…}) * 100
    processes   max by (phoenix_variant) (phoenix_processes_seen{…})
    interval    max by (phoenix_variant) (phoenix_interval_timestamp_seconds{…})

Alignment: the two targets are scraped at different offsets, so at one evaluation time
one variant may already show interval k+1 while the other still shows k. Every value a
target serves comes from one interval, stamped with ``phoenix_interval_timestamp_seconds``
(the scrape time both variants share), so rows are keyed by that stamp rather than by the
query step: the query runs at half the interval and the last step showing each interval
wins. The samples' ``t`` then equals the database's ``t`` for the same interval.

Per-interval data points and bytes come from the emulator's ``phoenix_interval_*`` gauges
(the figures of the last interval, exactly what the database stores): a ``rate()`` of the
``otelcol_*`` counters would smear each step over scrape offsets that differ between the
two targets. The counters are still read, as run totals (``counter_totals``), to
cross-check the gauges: ``increase(otelcol_exporter_sent_metric_points[run])`` (or ``_total``:
the real collector writes its counters without the suffix, the emulator with it).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.domain.errors import TemporaryError, ValidationError
from core.redact import mask_url, redact

_ID = re.compile(r"^[A-Za-z0-9_.:-]+$")


def _sel(experiment_id: str) -> str:
    return f'phoenix_experiment_id="{experiment_id}"'


def _counter(fn: str, name: str, selector: str, window: str) -> str:
    """``fn`` over an otelcol counter under either name: the real collector's self-telemetry
    (v0.159.0, pull reader) writes counters without ``_total``; the emulator writes ``_total``."""
    return f"{fn}({name}{{{selector}}}[{window}]) or {fn}({name}_total{{{selector}}}[{window}])"


def queries(experiment_id: str, interval_s: float, window_s: float) -> dict[str, str]:
    if not _ID.match(experiment_id):
        raise ValidationError(f"experiment id {experiment_id!r} is not safe to put in a PromQL selector")
    s, w = _sel(experiment_id), f"{int(math.ceil(window_s))}s"
    return {
        "series": f'count by (phoenix_variant) ({{{s}, __name__=~"process_.*"}})',
        "datapoints": f"max by (phoenix_variant) (phoenix_interval_datapoints{{{s}}})",
        "bytes": f"max by (phoenix_variant) (phoenix_interval_bytes{{{s}}})",
        "collector_cpu_pct": f"max by (phoenix_variant) ({_counter('rate', 'otelcol_process_cpu_seconds', s, w)}) * 100",
        "collector_rss_mb": f"max by (phoenix_variant) (otelcol_process_memory_rss{{{s}}}) / 1048576",
        "critical_coverage_pct": f"min by (phoenix_variant) (phoenix_critical_coverage_ratio{{{s}}}) * 100",
        "processes_seen": f"max by (phoenix_variant) (phoenix_processes_seen{{{s}}})",
        "interval_ts": f"max by (phoenix_variant) (phoenix_interval_timestamp_seconds{{{s}}})",
    }


@dataclass
class PrometheusReader:
    url: str
    timeout_s: float = 10.0
    retries: int = 3

    def _client(self) -> Any:
        from prometheus_api_client import PrometheusConnect
        from urllib3.util.retry import Retry

        retry = Retry(total=self.retries, backoff_factor=0.2, status_forcelist=[502, 503, 504])
        return PrometheusConnect(url=self.url, disable_ssl=True, timeout=self.timeout_s, retry=retry)

    def read_samples(
        self,
        experiment_id: str,
        start: datetime,
        end: datetime,
        interval_s: float,
        *,
        window_s: float | None = None,
    ) -> list[dict[str, Any]]:
        """Samples for both variants at every ``interval_s`` step in ``[start, end]``."""
        if end <= start:
            raise ValidationError("the experiment's time range is empty")
        window = window_s if window_s is not None else max(2 * interval_s, 4.0)
        client = self._client()
        step = f"{int(max(250, interval_s * 500))}ms"
        rows: dict[tuple[float, str], dict[str, Any]] = {}
        for key, q in queries(experiment_id, interval_s, window).items():
            try:
                result = client.custom_query_range(query=q, start_time=start, end_time=end, step=step)
            except Exception as exc:  # requests / API errors: Prometheus unreachable or refused
                raise TemporaryError(f"Prometheus at {mask_url(self.url)} did not answer {key!r}: "
                                     f"{redact(str(exc), self.url)}") from exc
            for stream in result:
                variant = stream.get("metric", {}).get("phoenix_variant")
                if variant not in {"baseline", "candidate"}:
                    continue
                for ts, val in stream.get("values", []):
                    row = rows.setdefault((float(ts), variant), {"t": float(ts), "variant": variant})
                    v = float(val)
                    row[key] = None if math.isnan(v) else v
        by_interval: dict[tuple[str, float], dict[str, Any]] = {}
        for (_step, variant), row in sorted(rows.items()):
            its = row.pop("interval_ts", None)
            if its is None:
                continue  # the target had served no interval yet at this step
            # count() yields nothing for a variant that exported no process series at all
            row.setdefault("series", 0.0)
            row["t"] = datetime.fromtimestamp(its, UTC)
            by_interval[(variant, its)] = row  # later steps overwrite: the settled values
        return [by_interval[k] for k in sorted(by_interval, key=lambda k: (k[1], k[0]))]

    def read_current(self, experiment_id: str, interval_s: float, at: datetime) -> list[dict[str, Any]]:
        """One row per variant for the interval ending at ``at``, from instant queries.

        For collectors that serve only what otelcol itself exports (the Kubernetes runtime's
        DaemonSets: no ``phoenix_interval_*`` gauges): series from the process series they
        export, data points from the exporters' sent-points counter over the interval, CPU
        and RSS from their self-telemetry. A variant Prometheus has no series of yet is left out.
        """
        s = _sel(experiment_id)
        queries(experiment_id, interval_s, interval_s)  # validates the id
        w = f"{max(1, int(math.ceil(interval_s)))}s"
        qs = {
            "series": f'count by (phoenix_variant) ({{{s}, __name__=~"process_.*"}})',
            "datapoints": f"sum by (phoenix_variant) ({_counter('increase', 'otelcol_exporter_sent_metric_points', s, w)})",
            "collector_cpu_pct": f"max by (phoenix_variant) ({_counter('rate', 'otelcol_process_cpu_seconds', s, w)}) * 100",
            "collector_rss_mb": f"max by (phoenix_variant) (otelcol_process_memory_rss{{{s}}}) / 1048576",
        }
        client = self._client()
        rows: dict[str, dict[str, Any]] = {}
        for key, q in qs.items():
            try:
                result = client.custom_query(query=q, params={"time": at.timestamp()})
            except Exception as exc:
                raise TemporaryError(f"Prometheus at {mask_url(self.url)} did not answer {key!r}: "
                                     f"{redact(str(exc), self.url)}") from exc
            for stream in result:
                variant = stream.get("metric", {}).get("phoenix_variant")
                if variant in {"baseline", "candidate"}:
                    v = float(stream["value"][1])
                    rows.setdefault(variant, {"t": at, "variant": variant})[key] = None if math.isnan(v) else v
        return [rows[v] for v in sorted(rows) if rows[v].get("series") is not None]

    def counter_totals(self, experiment_id: str, start: datetime, end: datetime) -> dict[str, dict[str, float]]:
        """Per variant: points accepted by the receiver and sent by the exporters over the run."""
        queries(experiment_id, 1.0, 1.0)  # validates the id
        rng = f"{max(1, int((end - start).total_seconds()))}s"
        s = _sel(experiment_id)
        qs = {
            "accepted_points": "sum by (phoenix_variant) "
                               f"({_counter('increase', 'otelcol_receiver_accepted_metric_points', s, rng)})",
            "sent_points": f"max by (phoenix_variant) ({_counter('increase', 'otelcol_exporter_sent_metric_points', s, rng)})",
        }
        client = self._client()
        out: dict[str, dict[str, float]] = {}
        for key, q in qs.items():
            try:
                result = client.custom_query(query=q, params={"time": end.timestamp()})
            except Exception as exc:
                raise TemporaryError(f"Prometheus at {mask_url(self.url)} did not answer {key!r}: "
                                     f"{redact(str(exc), self.url)}") from exc
            for stream in result:
                variant = stream.get("metric", {}).get("phoenix_variant")
                if variant:
                    out.setdefault(variant, {})[key] = float(stream["value"][1])
        return out
