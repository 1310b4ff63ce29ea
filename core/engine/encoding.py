"""What exporters put on the wire, measured by really encoding series.

Encodings (``ENCODINGS``):

- ``prometheus`` — the text exposition the collector's ``prometheus`` exporter serves
  with ``resource_to_telemetry_conversion`` on: names translated from OTel (dots → ``_``,
  unit suffix, ``_total`` on monotonic sums), every resource and data-point attribute a
  label, plus ``otel_scope_name``/``otel_scope_schema_url``/``otel_scope_version``
  labels and a millisecond timestamp as that exporter writes them; ``# HELP``/``# TYPE``
  once per metric family. Values formatted like Go's ``strconv.FormatFloat(v, 'g', -1)``
  (client_golang's text writer). ``target_info`` is not rendered.
- ``prometheus-gzip`` — the same body gzip-compressed (what a scrape with
  ``Accept-Encoding: gzip`` transfers).
- ``otlp`` — an OTLP ``ExportMetricsServiceRequest`` (opentelemetry-proto): one
  ResourceMetrics per resource (a process or rollup group of one host and scrape), one
  ScopeMetrics (the process scraper's scope), one Metric per metric name with its data
  points, ``SerializeToString()`` length. New Relic bills ingested bytes as stored in a
  standard format after processing (its "data ingest billing" docs), not the compressed
  wire size, so the New Relic price card uses this uncompressed figure.
- ``otlp-gzip`` — the same request gzip-compressed (``otlphttp`` compresses with gzip by
  default): the network bytes.
- ``prometheusremotewrite`` — a remote-write ``WriteRequest`` (one TimeSeries per series,
  labels sorted, one sample) snappy-compressed as the protocol requires; snappy block
  compression comes from pyarrow. ``prometheusremotewrite-raw`` is the uncompressed size.

``bytes_per_point`` samples whole resources (all series of a process stay together)
because resource attributes are shared by a resource's points in OTLP.
"""

from __future__ import annotations

import gzip
import itertools
import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from core.catalog.process_metrics import ALL_DATAPOINT_ATTRIBUTES, ALL_METRICS_BY_NAME, ProcessMetric
from core.domain.errors import ValidationError

BASE_COLUMNS = ("scrape", "host_name", "metric", "value")
DATAPOINT_KEYS = ALL_DATAPOINT_ATTRIBUTES
SCOPE_NAME = (
    "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/hostmetricsreceiver/internal/scraper/processscraper"
)
PROCESSES_SCOPE_NAME = (
    "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/hostmetricsreceiver/internal/scraper/processesscraper"
)
COLLECTOR_VERSION = "0.159.0"  # the renderer's pinned otelcol-contrib
DEFAULT_TIMESTAMP_MS = 1_795_996_800_000  # a representative 13-digit unix-ms timestamp
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1  # range of an OTLP as_int data point
ENCODINGS = (
    "prometheus",
    "prometheus-gzip",
    "otlp",
    "otlp-gzip",
    "prometheusremotewrite",
    "prometheusremotewrite-raw",
)


# Units, types, monotonicity and HELP text of both scrapers' metrics (the one table).
METRIC_METADATA: dict[str, ProcessMetric] = ALL_METRICS_BY_NAME

# OTel unit → Prometheus suffix (prometheus/otlptranslator's unit map, the units used here).
_UNIT_SUFFIX = {"s": "seconds", "ms": "milliseconds", "By": "bytes", "KiBy": "kibibytes", "MiBy": "mebibytes"}
_INVALID_NAME = re.compile(r"[^a-zA-Z0-9_:]")
_INVALID_LABEL = re.compile(r"[^a-zA-Z0-9_]")


# --------------------------------------------------------------------------- names


def prometheus_metric_name(otel_name: str, unit: str, is_monotonic_sum: bool, *, is_gauge: bool = False) -> str:
    """The name the collector's prometheus exporter gives an OTel metric.

    ``process.cpu.time`` (s, monotonic sum) → ``process_cpu_time_seconds_total``;
    ``process.memory.usage`` (By) → ``process_memory_usage_bytes``; a gauge with unit "1"
    gets ``_ratio``; ``{annotation}`` units add nothing.
    """
    name = _INVALID_NAME.sub("_", otel_name)
    name = re.sub(r"__+", "_", name).strip("_") or "_"
    if name[0].isdigit():
        name = "_" + name
    parts = name.split("_")
    suffix = ""
    unit = (unit or "").strip()
    if unit and not unit.startswith("{"):
        main = unit.split("/", 1)[0]
        suffix = _UNIT_SUFFIX.get(main, "")
        if unit == "1" and is_gauge:
            suffix = "ratio"
        elif "/" in unit:  # e.g. "By/s" → bytes_per_second
            per = unit.split("/", 1)[1]
            per_word = {"s": "second", "m": "minute", "h": "hour"}.get(per, "")
            if suffix and per_word:
                suffix = f"{suffix}_per_{per_word}"
    if is_monotonic_sum and "total" in parts:
        parts = [p for p in parts if p != "total"]
        name = "_".join(parts)
    if suffix and not name.endswith("_" + suffix):
        name = f"{name}_{suffix}"
    if is_monotonic_sum:
        name = f"{name}_total"
    return name


def prometheus_label_name(key: str) -> str:
    """Attribute key → label name (``process.executable.name`` → ``process_executable_name``)."""
    name = _INVALID_LABEL.sub("_", key)
    if not name:
        return "_"
    if name[0].isdigit():
        return "key_" + name
    if name.startswith("_") and not name.startswith("__"):
        return "key" + name
    return name


def scope_name(otel_name: str) -> str:
    """Instrumentation scope of a metric: the scraper that produced it."""
    return PROCESSES_SCOPE_NAME if otel_name.startswith("system.processes.") else SCOPE_NAME


def metric_meta(otel_name: str) -> ProcessMetric:
    meta = METRIC_METADATA.get(otel_name)
    if meta is None:  # unknown metrics are treated as double gauges without unit
        return ProcessMetric(otel_name, "", "gauge", False, "double", False, "")
    return meta


def _prom_name(meta: ProcessMetric) -> str:
    return prometheus_metric_name(meta.name, meta.unit, meta.is_monotonic_sum, is_gauge=meta.kind == "gauge")


# --------------------------------------------------------------------------- values


def format_go_float(v: float) -> str:
    """``strconv.FormatFloat(v, 'g', -1, 64)`` as client_golang writes sample values."""
    if v == 0:
        return "0"
    if v == 1:
        return "1"
    if v == -1:
        return "-1"
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    sign = "-" if v < 0 else ""
    # repr gives the shortest round-tripping digits, as Go's shortest mode does.
    mant, _, exp_s = repr(abs(v)).partition("e")
    exp10 = int(exp_s) if exp_s else 0
    int_part, _, frac = mant.partition(".")
    digits = (int_part + frac).lstrip("0")
    lead_zeros = len(int_part + frac) - len((int_part + frac).lstrip("0"))
    dp = len(int_part) + exp10 - lead_zeros  # decimal point position relative to digits
    digits = digits.rstrip("0") or "0"
    nd = len(digits)
    x = dp - 1
    # strconv's 'g' in shortest mode switches to %e when the exponent is < -4 or >= 6.
    eprec = 6
    if x < -4 or x >= eprec:
        frac_digits = digits[1:]
        body = digits[0] + ("." + frac_digits if frac_digits else "")
        return f"{sign}{body}e{'+' if x >= 0 else '-'}{abs(x):02d}"
    if dp <= 0:
        return f"{sign}0.{'0' * (-dp)}{digits}"
    if dp >= nd:
        return f"{sign}{digits}{'0' * (dp - nd)}"
    return f"{sign}{digits[:dp]}.{digits[dp:]}"


def _escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


# --------------------------------------------------------------------------- columns


def attribute_keys(series: pd.DataFrame) -> list[str]:
    """Attribute columns of a series frame (everything but the base columns)."""
    return [c for c in series.columns if c not in BASE_COLUMNS and c != "timestamp"]


def resource_keys(series: pd.DataFrame) -> list[str]:
    return [c for c in attribute_keys(series) if c not in DATAPOINT_KEYS]


def _check_series(series: pd.DataFrame) -> None:
    missing = [c for c in ("metric", "value") if c not in series.columns]
    if missing:
        raise ValidationError(f"series frame is missing column(s): {', '.join(missing)}")


def _string_codes(col: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Codes (−1 = absent) and the distinct string values of one attribute column."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy()
        cats = col.cat.categories
        if len(cats) > 64 and len(cats) > len(col) // 4:
            # A slice of a big frame keeps every category of the whole fleet: keep the used ones.
            used = np.unique(codes[codes >= 0])
            codes = np.where(codes >= 0, np.searchsorted(used, codes), -1)
            return codes, [str(c) for c in cats[used]]
        return codes, [str(c) for c in cats]
    if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
        arr = pd.array(col, dtype="Float64")
        na = np.asarray(arr.isna())
        vals = arr.to_numpy(dtype=np.float64, na_value=0.0)
        uniq, inv = np.unique(vals[~na], return_inverse=True)
        codes = np.full(len(col), -1, dtype=np.int64)
        codes[~na] = inv
        return codes, [str(int(u)) if float(u).is_integer() else repr(float(u)) for u in uniq]
    cat = col.astype("category")
    return cat.cat.codes.to_numpy(), [str(c) for c in cat.cat.categories]


# --------------------------------------------------------------------------- prometheus text


def render_prometheus_text(
    series: pd.DataFrame,
    extra_labels: Mapping[str, str] | None = None,
    *,
    timestamp_ms: int | None = None,
    scope_labels: bool = True,
    host_label: str | None = None,
) -> str:
    """Prometheus text exposition (format 0.0.4) of a series frame.

    ``extra_labels`` are added to every sample (like the exporter's ``const_labels``);
    ``host_label`` names a label that carries ``host_name`` (off by default: one
    collector serves one host). ``timestamp_ms`` is appended to every sample when given.
    Built column-wise (label fragments per distinct value, joined in Arrow), so ~20k
    series render in a few tens of milliseconds.
    """
    _check_series(series)
    n = len(series)
    if n == 0:
        return ""
    metric_codes, metric_names = _string_codes(series["metric"])
    metas = [metric_meta(m) for m in metric_names]
    prom_names = [_prom_name(m) for m in metas]

    # label columns: (label name, fragment per distinct value, codes with −1 = absent)
    columns: list[tuple[str, list[str], np.ndarray]] = []
    for key in attribute_keys(series):
        codes, values = _string_codes(series[key])
        label = prometheus_label_name(key)
        columns.append((label, [f'{label}="{_escape_label_value(v)}"' for v in values], codes))
    if host_label:
        codes, values = _string_codes(series["host_name"])
        columns.append((host_label, [f'{host_label}="{_escape_label_value(v)}"' for v in values], codes))
    constant: list[tuple[str, str]] = []
    if scope_labels:
        # the scope is the scraper that made the metric: process or processes
        scopes = [scope_name(m) for m in metric_names]
        columns.append(("otel_scope_name", [f'otel_scope_name="{_escape_label_value(x)}"' for x in scopes],
                        metric_codes))
        constant += [("otel_scope_schema_url", ""), ("otel_scope_version", COLLECTOR_VERSION)]
    for k, v in (extra_labels or {}).items():
        constant.append((prometheus_label_name(k), str(v)))
    for label, value in constant:
        columns.append((label, [f'{label}="{_escape_label_value(value)}"'], np.zeros(n, dtype=np.int64)))
    columns.sort(key=lambda c: c[0])  # client_golang sorts label pairs by name

    # Joined in Arrow (C++), absent labels skipped: no Python work per series.
    pieces = [
        pc.take(pa.array(frags, type=pa.string()), pa.array(codes, mask=codes < 0))
        for _, frags, codes in columns
    ]
    empty = pa.scalar("", pa.string())
    if pieces:
        joined = pc.binary_join_element_wise(*pieces, ",", null_handling="skip")
        labels = pc.if_else(
            pc.equal(joined, empty), empty,
            pc.binary_join_element_wise(pa.scalar("{"), joined, pa.scalar("}"), ""),
        )
    else:
        labels = pa.array([""] * n, type=pa.string())
    value_text = pa.array(_format_values(series["value"].to_numpy(dtype=np.float64)), type=pa.string())
    ts = pa.scalar(f" {int(timestamp_ms)}" if timestamp_ms is not None else "")
    names = pc.take(pa.array(prom_names, type=pa.string()), pa.array(metric_codes))
    lines = pc.binary_join_element_wise(names, labels, pa.scalar(" "), value_text, ts, "")

    # One family per metric: HELP and TYPE once, then its samples (input order kept).
    order = np.argsort(metric_codes, kind="stable")
    sorted_lines = pc.take(lines, pa.array(order)).to_pylist()
    starts = [0, *(np.flatnonzero(np.diff(metric_codes[order])) + 1).tolist(), n]
    out: list[str] = []
    for lo, hi in itertools.pairwise(starts):
        code = metric_codes[order[lo]]
        meta, name = metas[code], prom_names[code]
        ptype = "counter" if meta.is_monotonic_sum else "gauge"
        out.append(f"# HELP {name} {_escape_help(meta.description)}")
        out.append(f"# TYPE {name} {ptype}")
        out.extend(sorted_lines[lo:hi])
    return "\n".join(out) + "\n"


def _format_values(values: np.ndarray) -> np.ndarray:
    """Go float formatting for every value.

    Fast paths: integers below 1e6 print as integers; other values in [1e-4, 1e6) print
    exactly as Python's shortest ``repr`` (both are shortest round-trip, positional in
    that range). Everything else goes through ``format_go_float``.
    """
    out = np.empty(len(values), dtype=object)
    finite = np.isfinite(values)
    mag = np.abs(values)
    small_int = finite & (values == np.round(values)) & (mag < 1e6)
    out[small_int] = values[small_int].astype(np.int64).astype(str)
    plain = finite & ~small_int & (mag >= 1e-4) & (mag < 1e6)
    out[plain] = np.array([repr(v) for v in values[plain].tolist()], dtype=object)
    for i in np.flatnonzero(~small_int & ~plain):
        out[i] = format_go_float(float(values[i]))
    return out


# --------------------------------------------------------------------------- OTLP


def _resource_groups(series: pd.DataFrame) -> np.ndarray:
    """Group id per row: one group per (scrape, host, resource attribute set)."""
    keys = [c for c in ("scrape", "host_name") if c in series.columns] + resource_keys(series)
    if not keys:
        return np.zeros(len(series), dtype=np.int64)
    codes = []
    for k in keys:
        col = series[k]
        if isinstance(col.dtype, pd.CategoricalDtype):
            codes.append(col.cat.codes.to_numpy().astype(np.int64))
        else:
            codes.append(pd.factorize(col, use_na_sentinel=True)[0].astype(np.int64))
    frame = pd.DataFrame({str(i): c for i, c in enumerate(codes)})
    return frame.groupby(list(frame.columns), sort=False).ngroup().to_numpy()


def encode_otlp(series: pd.DataFrame, *, time_unix_nano: int | None = None) -> bytes:
    """An ``ExportMetricsServiceRequest`` holding every point of the series frame."""
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.metrics.v1 import metrics_pb2

    _check_series(series)
    request = ExportMetricsServiceRequest()
    if len(series) == 0:
        return request.SerializeToString()
    now = time_unix_nano or DEFAULT_TIMESTAMP_MS * 1_000_000
    start = now - 3_600 * 1_000_000_000  # process start time; any non-zero fixed64 costs the same
    groups = _resource_groups(series)
    res_keys = resource_keys(series)
    dp_keys = [k for k in attribute_keys(series) if k in DATAPOINT_KEYS]
    res_cols = {k: _string_codes(series[k]) for k in res_keys}
    int_res = {k for k in res_keys if pd.api.types.is_numeric_dtype(series[k].dtype)}
    dp_cols = {k: _string_codes(series[k]) for k in dp_keys}
    metric_codes, metric_names = _string_codes(series["metric"])
    values = series["value"].to_numpy(dtype=np.float64)
    order = np.argsort(groups, kind="stable")
    bounds = np.flatnonzero(np.diff(groups[order])) + 1
    for rows in np.split(order, bounds):
        first = rows[0]
        rm = request.resource_metrics.add()
        for k in res_keys:
            codes, vals = res_cols[k]
            c = codes[first]
            if c < 0:
                continue
            if k in int_res:
                rm.resource.attributes.append(KeyValue(key=k, value=AnyValue(int_value=int(vals[c]))))
            else:
                rm.resource.attributes.append(KeyValue(key=k, value=AnyValue(string_value=vals[c])))
        scopes: dict[str, Any] = {}
        by_metric: dict[int, metrics_pb2.Metric] = {}
        for r in rows:
            mc = int(metric_codes[r])
            metric = by_metric.get(mc)
            meta = metric_meta(metric_names[mc])
            if metric is None:
                scope = scope_name(meta.name)
                sm = scopes.get(scope)
                if sm is None:
                    sm = scopes[scope] = rm.scope_metrics.add()
                    sm.scope.name = scope
                    sm.scope.version = COLLECTOR_VERSION
                metric = sm.metrics.add()
                metric.name = meta.name
                metric.description = meta.description
                metric.unit = meta.unit
                if meta.kind == "sum":
                    metric.sum.aggregation_temporality = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
                    metric.sum.is_monotonic = meta.monotonic
                by_metric[mc] = metric
            points = metric.sum.data_points if meta.kind == "sum" else metric.gauge.data_points
            dp = points.add()
            dp.start_time_unix_nano = start
            dp.time_unix_nano = now
            v = float(values[r])
            if meta.value_type == "int" and math.isfinite(v):
                # A rollup's sum can pass int64 (the collector's own sum would wrap): saturate.
                dp.as_int = min(max(int(round(v)), _INT64_MIN), _INT64_MAX)
            else:
                dp.as_double = v
            for k in dp_keys:
                codes, vals = dp_cols[k]
                c = codes[r]
                if c >= 0:
                    dp.attributes.append(KeyValue(key=k, value=AnyValue(string_value=vals[c])))
    return request.SerializeToString()


# --------------------------------------------------------------------------- remote write


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _ld(field: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint((field << 3) | 2) + _varint(len(payload)) + payload


def encode_remote_write(series: pd.DataFrame, *, timestamp_ms: int | None = None) -> bytes:
    """Uncompressed ``prometheus.WriteRequest`` bytes (prompb): TimeSeries{labels, samples}.

    Hand-encoded protobuf (the message has four fields; no extra dependency):
    WriteRequest.timeseries=1; TimeSeries.labels=1, samples=2; Label.name=1, value=2;
    Sample.value=1 (double), timestamp=2 (int64).
    """
    import struct

    _check_series(series)
    ts = DEFAULT_TIMESTAMP_MS if timestamp_ms is None else int(timestamp_ms)
    metric_codes, metric_names = _string_codes(series["metric"])
    names = [_prom_name(metric_meta(m)) for m in metric_names]
    label_cols = []
    for key in attribute_keys(series):
        codes, vals = _string_codes(series[key])
        label_cols.append((prometheus_label_name(key), codes, vals))
    label_cols.sort(key=lambda c: c[0])
    encoded_labels = {
        (ln, i): _ld(1, _ld(1, ln.encode()) + _ld(2, v.encode())) for ln, _, vals in label_cols for i, v in enumerate(vals)
    }
    name_labels = [_ld(1, _ld(1, b"__name__") + _ld(2, n.encode())) for n in names]
    values = series["value"].to_numpy(dtype=np.float64)
    ts_bytes = b"\x10" + _varint(ts)
    chunks = []
    for r in range(len(series)):
        parts = [name_labels[metric_codes[r]]]  # "__name__" sorts before lowercase labels
        for ln, codes, _ in label_cols:
            c = codes[r]
            if c >= 0:
                parts.append(encoded_labels[(ln, int(c))])
        sample = b"\x09" + struct.pack("<d", float(values[r])) + ts_bytes
        parts.append(_ld(2, sample))
        chunks.append(_ld(1, b"".join(parts)))
    return b"".join(chunks)


def snappy_compress(data: bytes) -> bytes:
    """Snappy block format (what remote write sends), via pyarrow's codec."""
    import pyarrow as pa

    return pa.compress(data, codec="snappy", asbytes=True)


# --------------------------------------------------------------------------- measuring


def encoded_size(series: pd.DataFrame, encoding: str) -> int:
    """Bytes one export of ``series`` takes in ``encoding`` (see module doc)."""
    if encoding == "prometheus":
        return len(render_prometheus_text(series, timestamp_ms=DEFAULT_TIMESTAMP_MS).encode())
    if encoding == "prometheus-gzip":
        return len(gzip.compress(render_prometheus_text(series, timestamp_ms=DEFAULT_TIMESTAMP_MS).encode(), 6))
    if encoding == "otlp":
        return len(encode_otlp(series))
    if encoding == "otlp-gzip":
        return len(gzip.compress(encode_otlp(series), 6))
    if encoding == "prometheusremotewrite":
        return len(snappy_compress(encode_remote_write(series)))
    if encoding == "prometheusremotewrite-raw":
        return len(encode_remote_write(series))
    raise ValidationError(f"unknown encoding {encoding!r}; choose one of {', '.join(ENCODINGS)}")


def sample_resources(series: pd.DataFrame, sample_size: int = 2000, seed: int = 0) -> pd.DataFrame:
    """About ``sample_size`` series made of whole resources chosen at random (reproducible)."""
    if len(series) <= sample_size:
        return series
    groups = _resource_groups(series)
    n_groups = int(groups.max()) + 1
    per_group = max(1.0, len(series) / n_groups)
    k = min(n_groups, max(1, int(round(sample_size / per_group))))
    chosen = np.random.default_rng(seed).choice(n_groups, size=k, replace=False)
    mask = np.isin(groups, chosen)
    return series[mask].reset_index(drop=True)


def bytes_per_point(series: pd.DataFrame, encoding: str, sample_size: int = 2000, seed: int = 0) -> float:
    """Average encoded bytes per data point, measured on a sample of whole resources."""
    if encoding not in ENCODINGS:
        raise ValidationError(f"unknown encoding {encoding!r}; choose one of {', '.join(ENCODINGS)}")
    _check_series(series)
    if len(series) == 0:
        return 0.0
    sample = sample_resources(series, sample_size, seed)
    return encoded_size(sample, encoding) / len(sample)
