"""Exporter encodings: names, Prometheus text that a real parser accepts, OTLP and remote write."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from prometheus_client.parser import text_string_to_metric_families

from core.domain.errors import ValidationError
from core.engine import encoding as E


def series_frame(n_procs: int = 3, host: str = "node-0001") -> pd.DataFrame:
    """Default-metric series (7 per process) built by hand, as expand() lays them out."""
    rows = []
    for i in range(n_procs):
        pid = 100 + i
        name = ["nginx", "postgres", 'we"ird\\name'][i % 3]
        base = {"scrape": 1, "host_name": host, "process.pid": pid, "process.executable.name": name,
                "process.command_line": f"{name} --id {i}\nnext"}
        for state, v in (("user", 1.5 + i), ("system", 0.25), ("wait", 0.0)):
            rows.append({**base, "metric": "process.cpu.time", "value": v, "state": state})
        rows.append({**base, "metric": "process.memory.usage", "value": 1048576.0 * (i + 1)})
        rows.append({**base, "metric": "process.memory.virtual", "value": 4.0e9})
        for direction, v in (("read", 4096.0), ("write", 8192.0 * (i + 1))):
            rows.append({**base, "metric": "process.disk.io", "value": v, "direction": direction})
    df = pd.DataFrame(rows)
    for col in ("host_name", "metric", "process.executable.name", "process.command_line", "state", "direction"):
        df[col] = df[col].astype("category")
    df["process.pid"] = df["process.pid"].astype("Int64")
    return df


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("process.cpu.time", "process_cpu_time_seconds_total"),
        ("process.memory.usage", "process_memory_usage_bytes"),
        ("process.memory.virtual", "process_memory_virtual_bytes"),
        ("process.disk.io", "process_disk_io_bytes_total"),
        ("process.cpu.utilization", "process_cpu_utilization_ratio"),
        ("process.memory.utilization", "process_memory_utilization_ratio"),
        ("process.threads", "process_threads"),
        ("process.open_file_descriptors", "process_open_file_descriptors"),
        ("process.disk.operations", "process_disk_operations_total"),
        ("process.paging.faults", "process_paging_faults_total"),
        ("process.context_switches", "process_context_switches_total"),
        ("process.signals_pending", "process_signals_pending"),
        ("process.uptime", "process_uptime_seconds"),
        ("system.processes.count", "system_processes_count"),
        ("system.processes.created", "system_processes_created_total"),
    ],
)
def test_metric_names_match_the_prometheus_exporter(name, expected):
    meta = E.METRIC_METADATA[name]
    assert E.prometheus_metric_name(name, meta.unit, meta.is_monotonic_sum, is_gauge=meta.kind == "gauge") == expected


def test_label_names():
    assert E.prometheus_label_name("process.executable.name") == "process_executable_name"
    assert E.prometheus_label_name("phoenix.priority") == "phoenix_priority"
    assert E.prometheus_label_name("1abc") == "key_1abc"
    assert E.prometheus_label_name("_x") == "key_x"


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.0, "0"), (1.0, "1"), (123456.0, "123456"), (1048576.0, "1.048576e+06"), (0.5, "0.5"),
     (1e-05, "1e-05"), (0.0001, "0.0001"), (2323.47, "2323.47"), (4e9, "4e+09"), (-3.25, "-3.25"),
     (float("nan"), "NaN")],
)
def test_values_are_formatted_like_go(value, text):
    assert E.format_go_float(value) == text


def test_prometheus_text_parses_and_carries_every_series():
    df = series_frame()
    text = E.render_prometheus_text(df, {"team": "sre"}, timestamp_ms=1795996800000)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    # the parser strips _total from counter family names
    assert set(families) == {"process_cpu_time_seconds", "process_memory_usage_bytes",
                             "process_memory_virtual_bytes", "process_disk_io_bytes"}
    assert families["process_cpu_time_seconds"].type == "counter"
    assert families["process_memory_usage_bytes"].type == "gauge"
    samples = [s for f in families.values() for s in f.samples]
    assert len(samples) == len(df) == 21
    weird = [s for s in samples if s.labels["process_executable_name"] == 'we"ird\\name']
    assert len(weird) == 7 and weird[0].labels["process_command_line"] == 'we"ird\\name --id 2\nnext'
    mem = {s.labels["process_pid"]: s.value for s in families["process_memory_usage_bytes"].samples}
    assert mem == {"100": 1048576.0, "101": 2097152.0, "102": 3145728.0}
    s0 = families["process_cpu_time_seconds"].samples[0]
    assert s0.labels["team"] == "sre" and s0.labels["otel_scope_version"] == E.COLLECTOR_VERSION
    assert s0.timestamp == pytest.approx(1795996800.0)
    assert text.count("# TYPE process_cpu_time_seconds_total counter") == 1
    assert text.count("# HELP ") == 4


def test_labels_are_sorted_and_absent_attributes_omitted():
    df = series_frame(1)
    line = next(ln for ln in E.render_prometheus_text(df, scope_labels=False).splitlines()
                if ln.startswith("process_memory_usage_bytes{"))
    labels = line[line.index("{") + 1 : line.rindex("}")]
    names = [kv.split("=", 1)[0] for kv in labels.split('",')]
    assert names == sorted(names)
    assert "state=" not in line and "direction=" not in line
    assert line.endswith("} 1.048576e+06")


def test_host_label_is_opt_in():
    df = series_frame(1)
    assert "host_name=" not in E.render_prometheus_text(df)
    assert 'host="node-0001"' in E.render_prometheus_text(df, host_label="host")


def test_otlp_decodes_back_to_the_same_points():
    df = series_frame(4)
    req = ExportMetricsServiceRequest.FromString(E.encode_otlp(df))
    assert len(req.resource_metrics) == 4  # one per process
    points = 0
    for rm in req.resource_metrics:
        attrs = {kv.key: kv.value for kv in rm.resource.attributes}
        assert attrs["process.pid"].int_value in {100, 101, 102, 103}
        (sm,) = rm.scope_metrics
        assert sm.scope.name == E.SCOPE_NAME
        by_name = {m.name: m for m in sm.metrics}
        assert set(by_name) == {"process.cpu.time", "process.memory.usage", "process.memory.virtual", "process.disk.io"}
        cpu = by_name["process.cpu.time"]
        assert cpu.sum.is_monotonic and cpu.unit == "s"
        assert {dp.attributes[0].value.string_value for dp in cpu.sum.data_points} == {"user", "system", "wait"}
        assert not by_name["process.memory.usage"].sum.is_monotonic
        assert by_name["process.memory.usage"].sum.data_points[0].as_int % 1048576 == 0
        points += sum(len(m.sum.data_points) + len(m.gauge.data_points) for m in sm.metrics)
    assert points == len(df)


def _read_varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[i]
        value |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            return value, i
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, bytes]]:
    out, i = [], 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        assert key & 7 == 2, "only length-delimited fields at this level"
        n, i = _read_varint(buf, i)
        out.append((key >> 3, buf[i : i + n]))
        i += n
    return out


def test_remote_write_is_a_snappy_write_request_with_one_timeseries_per_series():
    df = series_frame(2)
    raw = E.encode_remote_write(df)
    packed = E.snappy_compress(raw)
    assert pa.decompress(packed, decompressed_size=len(raw), codec="snappy", asbytes=True) == raw
    series = _fields(raw)
    assert len(series) == len(df) and all(f == 1 for f, _ in series)
    labels = [dict((dict(_fields(p))[1].decode(), dict(_fields(p))[2].decode()) for f, p in _fields(ts) if f == 1)
              for _, ts in series]
    assert labels[0]["__name__"] == "process_cpu_time_seconds_total"
    assert {lab["__name__"] for lab in labels} == {"process_cpu_time_seconds_total", "process_memory_usage_bytes",
                                                   "process_memory_virtual_bytes", "process_disk_io_bytes_total"}


def test_bytes_per_point_is_measured_and_reproducible():
    df = pd.concat([series_frame(30, host=f"node-{h:04d}") for h in range(3)], ignore_index=True)
    for col in ("host_name", "metric", "process.executable.name", "process.command_line", "state", "direction"):
        df[col] = df[col].astype("category")
    sizes = {enc: E.bytes_per_point(df, enc, sample_size=140, seed=1) for enc in E.ENCODINGS}
    assert sizes == {enc: E.bytes_per_point(df, enc, sample_size=140, seed=1) for enc in E.ENCODINGS}
    assert sizes["prometheus-gzip"] < sizes["prometheus"]
    assert sizes["otlp-gzip"] < sizes["otlp"] < sizes["prometheus"]
    assert sizes["prometheusremotewrite"] < sizes["prometheusremotewrite-raw"]
    sample = E.sample_resources(df, 140, seed=1)
    assert len(sample) == 140  # 20 whole processes of 7 series
    assert (sample.groupby(["host_name", "process.pid"], observed=True).size() == 7).all()
    text = E.render_prometheus_text(sample, timestamp_ms=E.DEFAULT_TIMESTAMP_MS).encode()
    assert sizes["prometheus"] == pytest.approx(len(text) / 140)
    assert sizes["otlp-gzip"] == pytest.approx(len(gzip.compress(E.encode_otlp(sample), 6)) / 140)


def test_unknown_encoding_and_bad_frame():
    with pytest.raises(ValidationError, match="unknown encoding 'json'"):
        E.bytes_per_point(series_frame(1), "json")
    with pytest.raises(ValidationError, match="missing column"):
        E.render_prometheus_text(pd.DataFrame({"metric": ["x"]}))


def test_empty_frame():
    empty = series_frame(1).iloc[:0]
    assert E.render_prometheus_text(empty) == ""
    assert E.bytes_per_point(empty, "otlp") == 0.0
    assert np.isfinite(E.bytes_per_point(series_frame(1), "prometheus"))


def test_slices_of_big_categoricals_render_the_same_as_compact_ones():
    df = series_frame(3)
    big = df.copy()
    extra = [f"unused-{i}" for i in range(500)]
    big["process.command_line"] = big["process.command_line"].cat.add_categories(extra)
    compact = E.render_prometheus_text(df, timestamp_ms=1)
    assert E.render_prometheus_text(big, timestamp_ms=1) == compact
    assert E.encode_otlp(big) == E.encode_otlp(df)


def test_processes_scraper_metrics_carry_their_own_scope():
    df = pd.DataFrame({"scrape": [1, 1, 1], "host_name": ["h"] * 3,
                       "metric": ["system.processes.count", "system.processes.created", "process.threads"],
                       "value": [120.0, 5000.0, 4.0], "status": ["running", None, None],
                       "process.pid": pd.array([None, None, 7], dtype="Int64")})
    fams = {f.name: f for f in text_string_to_metric_families(E.render_prometheus_text(df))}
    assert fams["system_processes_count"].samples[0].labels["otel_scope_name"] == E.PROCESSES_SCOPE_NAME
    assert fams["system_processes_created"].type == "counter"
    assert fams["process_threads"].samples[0].labels["otel_scope_name"] == E.SCOPE_NAME
    req = ExportMetricsServiceRequest.FromString(E.encode_otlp(df))
    scopes = sorted(sm.scope.name for rm in req.resource_metrics for sm in rm.scope_metrics)
    assert scopes == sorted([E.PROCESSES_SCOPE_NAME, E.SCOPE_NAME])
