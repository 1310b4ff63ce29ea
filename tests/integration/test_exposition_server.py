"""The per-variant /metrics endpoint over real HTTP."""

from __future__ import annotations

import urllib.error
import urllib.request

import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.runtime.exposition import ExpositionServer, MetricsState


def _series() -> pd.DataFrame:
    return pd.DataFrame({
        "scrape": [0, 0, 0],
        "host_name": ["h1"] * 3,
        "metric": ["process.cpu.time", "process.cpu.time", "process.memory.usage"],
        "value": [1.5, 0.25, 1048576.0],
        "process.pid": ["42", "42", "42"],
        "process.executable.name": ["nginx"] * 3,
        "state": ["user", "system", pd.NA],
    })  # fmt: skip


def _get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def test_metrics_served_with_variant_labels_and_self_telemetry():
    state = MetricsState("exp-1", "candidate", "host-a")
    state.telemetry.add_interval(10, {"filter/drop": (10, 4)}, {"prometheus": 4}, {"prometheus": 512})
    state.telemetry.cpu_seconds, state.telemetry.rss_bytes = 0.5, 30e6
    size = state.update(_series(), gauges={"phoenix_critical_coverage_ratio": 1.0})
    with ExpositionServer(state) as srv:
        code, ctype, body = _get(srv.url + "/metrics")
    assert code == 200 and ctype.startswith("text/plain; version=0.0.4")
    assert size == len(body[: body.index("# HELP otelcol_receiver")].encode())
    lines = body.splitlines()
    cpu = [ln for ln in lines if ln.startswith("process_cpu_time_seconds_total{")]
    assert len(cpu) == 2
    for needle in ('phoenix_experiment_id="exp-1"', 'phoenix_variant="candidate"', 'host_name="host-a"',
                   'process_executable_name="nginx"', 'process_pid="42"'):  # fmt: skip
        assert all(needle in ln for ln in cpu), needle
    assert any('state="user"' in ln and ln.endswith(" 1.5") for ln in cpu)
    assert any(ln.startswith("process_memory_usage_bytes{") for ln in lines)
    base = {"host_name": "host-a", "phoenix_experiment_id": "exp-1", "phoenix_variant": "candidate"}
    families = list(text_string_to_metric_families(body))  # the reference parser reads the whole body
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}

    def value(name, **extra):
        return samples[(name, tuple(sorted({**base, **extra}.items())))]

    assert value("otelcol_receiver_accepted_metric_points_total", receiver="hostmetrics", transport="") == 10
    assert value("otelcol_processor_incoming_items_total", otel_signal="metrics", processor="filter/drop") == 10
    assert value("otelcol_processor_outgoing_items_total", otel_signal="metrics", processor="filter/drop") == 4
    assert value("otelcol_exporter_sent_metric_points_total", exporter="prometheus") == 4
    assert value("phoenix_exporter_sent_bytes_total", exporter="prometheus") == 512
    assert value("otelcol_process_cpu_seconds_total") == 0.5
    assert value("otelcol_process_memory_rss") == 30e6
    assert value("phoenix_critical_coverage_ratio") == 1
    for name, typ in [("otelcol_receiver_accepted_metric_points_total", "counter"),
                      ("otelcol_process_cpu_seconds_total", "counter"), ("otelcol_process_memory_rss", "gauge"),
                      ("phoenix_critical_coverage_ratio", "gauge")]:  # fmt: skip
        assert f"# TYPE {name} {typ}" in lines and any(ln.startswith(f"# HELP {name} ") for ln in lines), name
    # label names sorted, as the collector's exporter writes them
    assert any(ln.startswith('otelcol_exporter_sent_metric_points_total{exporter="prometheus",host_name="host-a",'
                             'phoenix_experiment_id="exp-1",phoenix_variant="candidate"} ') for ln in lines)


def test_two_variants_on_their_own_ports_and_health():
    a, b = MetricsState("e", "baseline", "h"), MetricsState("e", "candidate", "h", stale_after_s=0.0)
    with ExpositionServer(a) as sa, ExpositionServer(b) as sb:
        assert sa.port != sb.port
        assert _get(sa.url + "/healthz")[0] == 200
        assert _get(sb.url + "/healthz")[0] == 503  # never updated within 0 s: stale
        assert _get(sa.url + "/nope")[0] == 404
        assert 'phoenix_variant="baseline"' in _get(sa.url + "/metrics")[2]
    assert a.scrapes == 1


def test_stopped_server_refuses_connections():
    srv = ExpositionServer(MetricsState("e", "baseline", "h")).start()
    url = srv.url
    srv.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/metrics", timeout=2)


def test_body_parses_in_promtool_even_when_series_carry_host_name():
    import shutil
    import subprocess

    frame = _series()
    frame["host.name"] = "host-a"  # resourcedetection adds it: must not duplicate our host_name label
    state = MetricsState("e", "baseline", "host-a")
    state.update(frame, gauges={"phoenix_processes_seen": 1})
    with ExpositionServer(state) as srv:
        body = _get(srv.url + "/metrics")[2]
    first = next(ln for ln in body.splitlines() if ln.startswith("process_cpu_time_seconds_total{"))
    assert first.count("host_name=") == 1
    r = subprocess.run([shutil.which("promtool") or "/usr/bin/promtool", "check", "metrics"], input=body,
                       capture_output=True, text=True, timeout=30)  # fmt: skip
    assert "parsing error" not in r.stdout + r.stderr, r.stdout + r.stderr
