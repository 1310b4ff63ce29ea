"""Real Prometheus scrapes two variant endpoints; the reader's figures match the database path."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from core.analysis.prometheus_reader import PrometheusReader, queries
from core.analysis.verdict import analyze_samples
from core.domain.errors import TemporaryError, ValidationError
from core.runtime.exposition import ExpositionServer, MetricsState
from tests.integration.prometheus_harness import RealPrometheus, free_port

pytestmark = pytest.mark.slow


def frame(n_procs: int, offset: int) -> pd.DataFrame:
    rows = []
    for i in range(n_procs):
        for metric, state in (("process.cpu.time", "user"), ("process.cpu.time", "system"), ("process.memory.usage", None)):
            rows.append({"scrape": 0, "host_name": "h", "metric": metric, "value": float(i + offset),
                         "process.pid": str(1000 + i), "process.executable.name": f"svc{i}", "state": state})  # fmt: skip
    return pd.DataFrame(rows)


def test_reader_agrees_with_database_path_within_one_percent():
    eid = "exp-prom-1"
    states = {v: MetricsState(eid, v, "h") for v in ("baseline", "candidate")}
    servers = {v: ExpositionServer(s).start() for v, s in states.items()}
    db_samples = []
    interval = 1.0
    try:
        targets = [f"127.0.0.1:{s.port}" for s in servers.values()]
        with RealPrometheus(targets) as prom:
            prom.wait_targets_up()
            start = datetime.now(UTC)
            for k in range(10):
                t = datetime.now(UTC)
                procs = {"baseline": 10 + k % 3, "candidate": 4}
                for v, st in states.items():
                    f = frame(procs[v], k)
                    st.telemetry.add_interval(len(frame(procs["baseline"], k)), {"filter/x": (30, len(f))},
                                              {"prometheus": len(f)}, {"prometheus": 100 * len(f)})  # fmt: skip
                    st.telemetry.cpu_seconds += 0.01
                    st.telemetry.rss_bytes = 50 * 1048576
                    size = st.update(f, gauges={"phoenix_interval_datapoints": len(f), "phoenix_interval_bytes": 100 * len(f),
                                                "phoenix_processes_seen": procs["baseline"],
                                                "phoenix_critical_coverage_ratio": 1.0,
                                                "phoenix_interval_timestamp_seconds": t.timestamp()})  # fmt: skip
                    assert size > 0
                    db_samples.append({"t": t, "variant": v, "series": len(f), "datapoints": len(f), "bytes": 100 * len(f),
                                       "critical_coverage_pct": 100.0, "processes_seen": procs["baseline"],
                                       "collector_rss_mb": 50.0})  # fmt: skip
                time.sleep(interval)
            end = datetime.now(UTC)
            time.sleep(1.5)  # last scrape lands
            reader = PrometheusReader(prom.url)
            prom_samples = reader.read_samples(eid, start, end + timedelta(seconds=1), interval)
            totals = reader.counter_totals(eid, start, end + timedelta(seconds=1))
    finally:
        for s in servers.values():
            s.stop()

    assert {s["variant"] for s in prom_samples} == {"baseline", "candidate"}
    assert len(prom_samples) >= 12
    # same intervals, same timestamps as the database rows
    db_index = {(s["t"], s["variant"]): s for s in db_samples}
    for s in prom_samples:
        assert db_index[(s["t"], s["variant"])]["series"] == s["series"]
        assert db_index[(s["t"], s["variant"])]["processes_seen"] == s["processes_seen"]
    assert all(s["collector_rss_mb"] == pytest.approx(50.0) for s in prom_samples)
    assert all(s["critical_coverage_pct"] == pytest.approx(100.0) for s in prom_samples)
    cand = [s for s in prom_samples if s["variant"] == "candidate"]
    assert all(s["series"] == 12 for s in cand)  # 4 processes × 3 series, counted by Prometheus
    # Prometheus saw (nearly) every interval; compare the analyses over the intervals both hold
    seen = {s["t"] for s in prom_samples}
    assert len(seen) >= 8, f"Prometheus saw only {len(seen)} of 10 intervals"
    db = analyze_samples([s for s in db_samples if s["t"] in seen], {"min_samples": 3}, interval_s=interval)
    pr = analyze_samples(prom_samples, {"min_samples": 3}, interval_s=interval)
    for key in ("series_reduction_pct", "datapoint_reduction_pct", "bytes_reduction_pct"):
        assert pr[key] == pytest.approx(db[key], rel=0.01), key
    assert pr["critical_coverage_pct"] == db["critical_coverage_pct"] == 100.0
    assert pr["identical_input"] is True
    # the otelcol counters tell the same story: candidate sends 12 of every ~33 points. The two
    # targets are scraped at different offsets, so each run total may hold one interval (of ~10)
    # more or less than the other's at either end: up to about ±20 % on the ratio.
    ratio = totals["candidate"]["sent_points"] / totals["baseline"]["sent_points"]
    assert ratio == pytest.approx(12 / 33, rel=0.2)


def test_reader_errors_are_clear():
    with pytest.raises(ValidationError, match="not safe"):
        queries('x"}) or vector(1', 1, 1)
    now = datetime.now(UTC)
    reader = PrometheusReader(f"http://127.0.0.1:{free_port()}", timeout_s=2, retries=0)
    with pytest.raises(TemporaryError, match="did not answer"):
        reader.read_samples("e1", now - timedelta(seconds=10), now, 1.0)
    with pytest.raises(ValidationError, match="empty"):
        reader.read_samples("e1", now, now, 1.0)
