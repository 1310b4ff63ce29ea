"""Hostile process snapshots through the reader the CLI and UI use, and the estimate on them.

``load_snapshot`` is the one entry point: ``phoenix estimate --snapshot`` and ``pipeline
render --snapshot`` pass a path (CSV, or ``.parquet``), the UI hands over bytes. Generated
snapshots start from a valid fleet (several hosts, each with its own number of scrapes,
unicode names, quoted commas and newlines, values up to the documented bounds) and then
get hostile: random cells (empty, ``nan``, ``inf``, ``1e308``, ``1e400``, negative,
fractional pids, text), empty host names, duplicated rows, mixed timestamp forms, missing,
duplicated or unknown columns, BOM/CRLF, Parquet columns of other types, mutated or
random bytes.

Each example is either accepted — and then the frame keeps every documented invariant
(finite, in range, sorted, no duplicates) and, when small, the estimate runs on it
without any exception other than ``PhoenixError`` and reports every host — or refused
with a ``PhoenixError`` whose every line names the row and column (or the file-level
problem). Never another exception.
"""

from __future__ import annotations

import atexit
import csv
import io
import json
import math
import random
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import event, given
from hypothesis import strategies as st

from core.catalog.templates import TEMPLATE_NAMES, get_template
from core.commands.estimate import _clean, summary
from core.domain.errors import PhoenixError, ValidationError
from core.engine.estimate import estimate
from core.engine.snapshot import (
    CSV_COLUMNS,
    INT_COLUMNS,
    MAX_BYTES,
    MAX_CPU_SECONDS,
    MAX_CPUS,
    MAX_PID,
    MAX_UNIX_SECONDS,
    METRIC_COLUMNS,
    NULLABLE_REQUIRED,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    UPPER_BOUNDS,
    load_snapshot,
)
from tests.fuzz.profile import FUZZ

EXAMPLE_BUDGET_S = 5.0
ESTIMATE_MAX_ROWS = 40
ROOT = Path(tempfile.mkdtemp(prefix="phoenix-fuzz-snapshot-"))
atexit.register(shutil.rmtree, ROOT, True)
TEMPLATES = {name: get_template(name) for name in TEMPLATE_NAMES}

# Lines of a refusal that are not about one row: each names the file-level problem.
FILE_LEVEL = ("missing column", "duplicate column", "column names", "snapshot is empty", "snapshot is too large",
              "not a valid CSV file", "column ", "cannot read Parquet snapshot", "… and ")
ROW_LINE = re.compile(r"^row (\d+): (.+)$", re.S)

# ------------------------------------------------------------------ cells

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
NAMES = st.one_of(
    st.sampled_from(["nginx", "postgres", "java", "kworker/0:1", "python3", "sshd", "", "a,b", 'q"uote', "é", "進程",
                     "line\nbreak", " padded ", "\u202eevil", "x" * 300]),
    TEXT,
)
HOSTS = st.one_of(st.sampled_from(["web-1", "db-ü", "主机", "h,1", 'h"q', "a b", "HOST", "host.example.com"]),
                  TEXT.map(lambda s: s if s.strip() else "h" + s))
HOSTILE_NUMBERS = st.sampled_from([
    "", " ", "nan", "NaN", "-nan", "inf", "-inf", "+inf", "Infinity", "-Infinity", "1e308", "-1e308", "1e400",
    "1e-400", "-1", "-0.0", "-0", "1.5", "0.5", "1e3", "0x10", "9" * 30, "１２３", "1,5", "true", "null", "NA",
    "\x00", "٣", "12abc", "+7", " 42 ", str(2**63), str(2**64), str(MAX_PID + 1), str(MAX_BYTES * 2),
])
HOSTILE_TIMESTAMPS = st.sampled_from([
    "", "nan", "inf", "-inf", "-5", "1e308", "1700000000000", "1700000000000000000", "2026-11-28T03:00:00",
    "2026-11-28T03:00:00Z", "2026-11-28 03:00:00+01:00", "2026-13-45T99:00:00Z", "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00Z", "yesterday", "1.7e9", "\u0661\u0667", "0",
])
HOSTILE_TEXT = st.one_of(st.sampled_from(["", "   ", "\t", '"', "\n", "\r\n", ",", "\x00", "\ufeff"]), TEXT)


# ------------------------------------------------------------------ a valid fleet, then hostile edits


@st.composite
def fleets(draw: Any) -> tuple[list[str], list[dict[str, str]]]:
    """Columns and rows of a valid snapshot: 1–3 hosts, each with 1–3 scrapes of 1–4 processes."""
    # Few, flat draws: generation is most of a fuzz example's cost.
    hosts = list(dict.fromkeys((draw(HOSTS).strip() or "h") for _ in range(draw(st.integers(1, 3)))))
    mask = draw(st.integers(0, 2 ** len(OPTIONAL_COLUMNS) - 1)) if draw(st.booleans()) else 0
    optional = [c for i, c in enumerate(OPTIONAL_COLUMNS) if mask >> i & 1]
    with_cpus = draw(st.booleans())
    rfc = draw(st.booleans())
    columns = list(REQUIRED_COLUMNS) + optional + (["num_cpus"] if with_cpus else [])
    first_pid = draw(st.one_of(st.integers(0, 5), st.integers(0, MAX_PID - 4)))
    procs = [{
        "pid": first_pid + i, "ppid": draw(st.sampled_from([0, 1, MAX_PID])), "name": draw(NAMES),
        "cmd": draw(NAMES), "owner": draw(NAMES), "rss": draw(st.sampled_from([0, 4096, 10**9, MAX_BYTES])),
        "cpu": draw(st.sampled_from([0.0, 0.01, 12.5, MAX_CPU_SECONDS - 5])),
        "io": draw(st.sampled_from([None, 0, 10**6, MAX_BYTES])),
    } for i in range(draw(st.integers(1, 4)))]
    base = draw(st.floats(0, 4e9))
    rows = []
    for h_index, host in enumerate(hosts):
        cpus = str(draw(st.integers(1, MAX_CPUS)))
        for scrape in range(draw(st.integers(1, 3))):
            ts = base + h_index * 0.25 + scrape * 10.0
            stamp = pd.Timestamp(ts, unit="s", tz="UTC").isoformat() if rfc and ts < 2e9 else repr(ts)
            for p in procs:
                row = {
                    "timestamp": stamp, "host_name": host, "pid": str(p["pid"]), "parent_pid": str(p["ppid"]),
                    "executable_name": p["name"], "executable_path": "/usr/bin/" + p["name"], "command": p["name"],
                    "command_line": p["cmd"], "owner": p["owner"],
                    "cpu_time_user": repr(min(p["cpu"] + scrape, MAX_CPU_SECONDS)), "cpu_time_system": "0.5",
                    "cpu_time_wait": "0", "memory_usage": str(p["rss"]), "memory_virtual": str(p["rss"]),
                    "disk_io_read": "" if p["io"] is None else str(p["io"]),
                    "disk_io_write": "" if p["io"] is None else str(p["io"] // 2),
                }
                row.update({c: str(scrape * 3) for c in optional})
                if with_cpus:
                    row["num_cpus"] = cpus
                rows.append(row)
    return columns, rows


@st.composite
def hostile_snapshots(draw: Any) -> tuple[list[str], list[dict[str, str]]]:
    columns, rows = draw(fleets())
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, 3]))):  # bad cells (none: the estimate runs)
        i = draw(st.integers(0, len(rows) - 1))
        col = draw(st.sampled_from(columns))
        if col == "timestamp":
            rows[i][col] = draw(HOSTILE_TIMESTAMPS)
        elif col in METRIC_COLUMNS or col in INT_COLUMNS:
            rows[i][col] = draw(HOSTILE_NUMBERS)
        else:
            rows[i][col] = draw(HOSTILE_TEXT)
    if draw(st.integers(0, 4)) == 0:  # a duplicated row
        rows.append(dict(draw(st.sampled_from(rows))))
    if draw(st.integers(0, 4)) == 0:  # rows in any order (one draw: a seed, not a permutation)
        random.Random(draw(st.integers(0, 2**32))).shuffle(rows)
    edit = draw(st.sampled_from(["none"] * 6 + ["drop", "duplicate", "unknown", "rename", "shuffle"]))
    if edit == "drop":
        columns = [c for c in columns if c != draw(st.sampled_from(columns))]
    elif edit == "duplicate":
        columns = [*columns, draw(st.sampled_from(columns))]
    elif edit == "unknown":
        columns = [*columns, draw(st.sampled_from(["extra", "", "PID", "host_name ", "é"]))]
    elif edit == "rename":
        victim = draw(st.sampled_from(columns))
        columns = [c.upper() if c == victim else c for c in columns]
    elif edit == "shuffle":
        random.Random(draw(st.integers(0, 2**32))).shuffle(columns)
    return list(columns), rows


def to_csv(columns: list[str], rows: list[dict[str, str]], *, bom: bool, crlf: bool) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n" if crlf else "\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(c, row.get(c.lower(), "")) for c in columns])
    return ("\ufeff" if bom else "").encode() + buf.getvalue().encode("utf-8")


def to_parquet(columns: list[str], rows: list[dict[str, str]], twist: str, path: Path) -> None:
    """Numeric columns typed when every cell converts (strings otherwise), plus one twist."""
    arrays: dict[str, pa.Array] = {}
    for c in dict.fromkeys(columns):  # Parquet column names are unique in practice
        cells = [r.get(c, "") for r in rows]
        if c in METRIC_COLUMNS or c in INT_COLUMNS or c == "timestamp":
            try:
                values = [float(v) if v.strip() else None for v in cells]
            except ValueError:
                arrays[c] = pa.array(cells)
                continue
            arrays[c] = pa.array(values, type=pa.float64(), from_pandas=False)
        else:
            arrays[c] = pa.array(cells)
    n = len(rows)
    target = columns[0] if columns else "timestamp"
    if twist == "naive-timestamps" and "timestamp" in arrays:
        arrays["timestamp"] = pa.array(np.arange(n, dtype="int64"), type=pa.timestamp("s"))
    elif twist == "tz-timestamps" and "timestamp" in arrays:
        arrays["timestamp"] = pa.array(np.arange(n, dtype="int64") * 10**9, type=pa.timestamp("ns", tz="UTC"))
    elif twist == "list-column":
        arrays[target] = pa.array([[1]] * n)
    elif twist == "binary-text":
        arrays["owner"] = pa.array([b"\xff\xfe"] * n, type=pa.binary())
    elif twist == "nulls":
        arrays[target] = pa.nulls(n)
    elif twist == "nan-floats" and "memory_usage" in arrays:
        arrays["memory_usage"] = pa.array([float("nan")] * n, type=pa.float64(), from_pandas=False)
    elif twist == "int64-extremes" and "pid" in arrays:
        arrays["pid"] = pa.array([2**63 - 1] * n, type=pa.int64())
    elif twist == "bools" and "cpu_time_user" in arrays:
        arrays["cpu_time_user"] = pa.array([True] * n)
    elif twist == "dictionary-hosts" and "host_name" in arrays:
        arrays["host_name"] = arrays["host_name"].dictionary_encode()
    pq.write_table(pa.table(arrays), path)


def mutate(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    """Random byte edits: (kind, position, bytes) — insert, overwrite, or truncate."""
    out = bytearray(data)
    for kind, pos, chunk in edits:
        pos = pos % (len(out) + 1)
        if kind == 0:
            out[pos:pos] = chunk
        elif kind == 1:
            out[pos:pos + len(chunk)] = chunk
        else:
            del out[pos:]
    return bytes(out)


SOURCES = st.sampled_from(["csv-path", "csv-bytes", "csv-file-object", "parquet", "mutated-bytes", "random-bytes"])
TWISTS = st.sampled_from(["none", "none", "naive-timestamps", "tz-timestamps", "list-column", "binary-text", "nulls",
                          "nan-floats", "int64-extremes", "bools", "dictionary-hosts"])
BYTE_EDITS = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 10**6), st.binary(min_size=1, max_size=8)),
                      min_size=1, max_size=3)


# ------------------------------------------------------------------ checks


def assert_clear_refusal(exc: PhoenixError) -> None:
    problems = exc.problems if isinstance(exc, ValidationError) else [str(exc)]
    assert problems and str(exc).strip()
    for line in problems:
        assert isinstance(line, str) and line.strip() and "Traceback" not in line
        assert len(line) < 2_000, line[:200]
        match = ROW_LINE.match(line)
        if match:
            assert int(match.group(1)) >= 1
            assert any(c in match.group(2) for c in CSV_COLUMNS), f"no column named in {line!r}"
        else:
            assert line.startswith(FILE_LEVEL), f"unclear refusal: {line!r}"


def assert_valid_frame(df: pd.DataFrame) -> None:
    assert list(df.columns) == ["scrape", *CSV_COLUMNS]
    assert len(df) > 0
    ts = df["timestamp"].to_numpy()
    assert np.isfinite(ts).all() and (ts >= 0).all() and (ts <= MAX_UNIX_SECONDS).all()
    assert (df["host_name"].astype(str).str.strip() != "").all()
    for col in INT_COLUMNS:
        assert df[col].dtype == np.int64
        assert ((df[col] >= (1 if col == "num_cpus" else 0)) & (df[col] <= UPPER_BOUNDS[col][0])).all()
    for col in METRIC_COLUMNS:
        v = df[col].to_numpy(dtype=np.float64)
        present = ~np.isnan(v)
        if col not in NULLABLE_REQUIRED and col not in OPTIONAL_COLUMNS:
            assert present.all(), col
        assert np.isfinite(v[present]).all() and (v[present] >= 0).all() and (v[present] <= UPPER_BOUNDS[col][0]).all()
    keys = pd.DataFrame({"h": df["host_name"].cat.codes, "t": ts, "p": df["pid"]})
    assert not keys.duplicated().any()
    assert keys.equals(keys.sort_values(["h", "t", "p"], kind="stable"))


def assert_estimate(df: pd.DataFrame, template: str) -> None:
    try:
        result = estimate(TEMPLATES[template], df, source="fuzz")
    except PhoenixError as exc:
        assert_clear_refusal(exc)
        return
    report = result.report
    hosts = df["host_name"].nunique()
    snap = report["snapshot"]
    assert snap["hosts"] == hosts  # no host dropped, whatever its number of scrapes
    assert sum(snap["scrapes_per_host"]["hosts_by_scrapes"].values()) == hosts
    assert set(snap["hosts_with_fewer_scrapes"]) <= set(df["host_name"].astype(str))
    assert report["series_out"] >= 0 and report["series_in"] >= 0
    for exporter in report["exporters"].values():
        bpp = exporter.get("bytes_per_point")
        assert bpp is None or (math.isfinite(bpp) and bpp >= 0)
    json.dumps(_clean(report), allow_nan=False)
    assert summary(report).strip()
    series = result.series_out_frame()
    assert set(series["host_name"]) <= set(df["host_name"].astype(str))


# ------------------------------------------------------------------ the property


@st.composite
def cases(draw: Any) -> tuple[str, Any, int]:
    """(source kind, what ``load_snapshot`` gets, row count); only what the kind needs is drawn."""
    source = draw(SOURCES)
    if source == "random-bytes":
        return source, draw(st.binary(max_size=300)), 0
    columns, rows = draw(hostile_snapshots())
    if source == "parquet":
        path = ROOT / "snapshot.parquet"
        to_parquet(columns, rows, draw(TWISTS), path)
        return source, str(path), len(rows)
    data = to_csv(columns, rows, bom=draw(st.booleans()), crlf=draw(st.booleans()))
    if source == "csv-path":
        path = ROOT / "snapshot.csv"
        path.write_bytes(data)
        return source, str(path), len(rows)
    if source == "csv-file-object":
        return source, io.BytesIO(data), len(rows)
    if source == "mutated-bytes":
        return source, mutate(data, draw(BYTE_EDITS)), len(rows)
    return source, data, len(rows)


@FUZZ
@given(case=cases(), template=st.sampled_from(TEMPLATE_NAMES), run_estimate=st.booleans())
def test_hostile_snapshots_are_accepted_or_refused_clearly(case, template, run_estimate) -> None:
    started = time.perf_counter()
    source, arg, n_rows = case
    try:
        df = load_snapshot(arg)
    except PhoenixError as exc:
        assert_clear_refusal(exc)
        event(f"{source}: refused")
    else:
        assert_valid_frame(df)
        event(f"{source}: accepted")
        # The estimate on small accepted snapshots (about a third: the estimate is most of an example's cost).
        if len(df) <= ESTIMATE_MAX_ROWS and run_estimate:
            assert_estimate(df, template)
            event("estimated")
    elapsed = time.perf_counter() - started
    assert elapsed < EXAMPLE_BUDGET_S, f"{elapsed:.1f}s for {n_rows} rows"
