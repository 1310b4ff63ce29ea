"""Process snapshots: the engine's input (DESIGN §4, docs/pipeline-semantics.md).

A snapshot is one row per (scrape, host, process). ``load_snapshot`` reads the public CSV
contract (or Parquet with the same columns), validates it and returns the *snapshot
frame*:

- ``timestamp`` float64 unix seconds (the CSV may hold floats or RFC 3339 strings with a
  time zone, e.g. ``2026-11-28T03:00:00.5Z``);
- ``host_name`` and the five process strings as pandas categoricals (empty string stays
  ``""``: the collector also sends an empty ``process.executable.path`` for kernel
  threads under ``mute_process_exe_error``);
- ``pid``, ``parent_pid``, ``num_cpus``, ``scrape`` int64;
- every metric column float64 (bytes up to 2**53 are exact). Required metric cells must
  be filled, except ``disk_io_read``/``disk_io_write``: an empty cell there means the
  scraper could not read ``/proc/PID/io`` and, as with ``mute_process_io_error``, emitted
  no ``process.disk.io`` data points for that process (the process itself is still
  reported). Optional columns are present and NaN when the CSV lacks them.
- ``num_cpus`` (logical CPUs of the host) is optional in the CSV; 1 when absent.
- ``scrape`` is added: per host, the dense rank (0, 1, …) of that host's distinct
  timestamps. In a fleet each host scrapes on its own clock, so ranks are per host; the
  collector stamps every data point of one scrape with the same time, so one scrape of a
  host is one timestamp.

Row numbers in error messages count data rows from 1 (the header is not a row).
Rows are returned sorted by (host_name, scrape, pid).
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from core.domain.errors import ValidationError

DEFAULT_MAX_BYTES = 2 * 1024**3  # 2 GiB
MAX_LISTED_PROBLEMS = 20  # beyond this the message says how many more
MAX_UNIX_SECONDS = 1e11  # year 5138: larger values are milliseconds (or nanoseconds) by mistake

STRING_COLUMNS: tuple[str, ...] = (
    "host_name",
    "executable_name",
    "executable_path",
    "command",
    "command_line",
    "owner",
)
ID_COLUMNS: tuple[str, ...] = ("pid", "parent_pid")
CPU_COLUMNS: tuple[str, ...] = ("cpu_time_user", "cpu_time_system", "cpu_time_wait")
BYTE_COLUMNS: tuple[str, ...] = ("memory_usage", "memory_virtual", "disk_io_read", "disk_io_write")
REQUIRED_METRIC_COLUMNS: tuple[str, ...] = CPU_COLUMNS + BYTE_COLUMNS
# Required columns whose cells may be empty (no data point, see module doc).
NULLABLE_REQUIRED: frozenset[str] = frozenset({"disk_io_read", "disk_io_write"})
REQUIRED_COLUMNS: tuple[str, ...] = (
    ("timestamp", "host_name") + ID_COLUMNS + STRING_COLUMNS[1:] + REQUIRED_METRIC_COLUMNS
)
OPTIONAL_COLUMNS: tuple[str, ...] = (
    "threads",
    "open_file_descriptors",
    "disk_operations_read",
    "disk_operations_write",
    "paging_faults_major",
    "paging_faults_minor",
    "context_switches_voluntary",
    "context_switches_involuntary",
)
EXTRA_COLUMNS: tuple[str, ...] = ("num_cpus",)
METRIC_COLUMNS: tuple[str, ...] = REQUIRED_METRIC_COLUMNS + OPTIONAL_COLUMNS
INT_COLUMNS: tuple[str, ...] = ID_COLUMNS + EXTRA_COLUMNS
# Cumulative counters (never negative, never decreasing for one process).
CUMULATIVE_COLUMNS: frozenset[str] = frozenset(CPU_COLUMNS) | {
    "disk_operations_read",
    "disk_operations_write",
    "paging_faults_major",
    "paging_faults_minor",
    "context_switches_voluntary",
    "context_switches_involuntary",
}
# Column order of the snapshot frame and of written CSVs (``scrape`` is not written).
CSV_COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + OPTIONAL_COLUMNS + EXTRA_COLUMNS
FRAME_COLUMNS: tuple[str, ...] = ("scrape",) + CSV_COLUMNS

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$"
)

Source = str | os.PathLike[str] | bytes | IO[bytes] | IO[str]


def load_snapshot(source: Source, *, max_bytes: int = DEFAULT_MAX_BYTES) -> pd.DataFrame:
    """Read and validate a snapshot CSV (or ``.parquet`` path); return the snapshot frame.

    ``source`` is a path, the file's bytes, or an open binary/text file. Every problem is
    raised as one ``ValidationError`` listing row-numbered messages; never a traceback.
    """
    if isinstance(source, str | os.PathLike) and str(source).endswith(".parquet"):
        return _load_parquet(Path(source), max_bytes)
    data = _read_source(source, max_bytes)
    if _is_blank(data):
        raise ValidationError("snapshot is empty: expected a header line and at least one data row")
    table = _read_csv_table(data)
    return normalise_snapshot(table)


def normalise_snapshot(raw: pa.Table | pd.DataFrame) -> pd.DataFrame:
    """Validate a raw table with the contract's columns and return the snapshot frame.

    Used by ``load_snapshot`` and by producers that build frames in memory (psutil,
    the fleet simulator) so every frame in Phoenix passes the same checks.
    """
    table = raw if isinstance(raw, pa.Table) else pa.Table.from_pandas(raw, preserve_index=False)
    names = set(table.column_names)
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise ValidationError(f"missing column{plural}: {', '.join(missing)}")
    if table.num_rows == 0:
        raise ValidationError("snapshot is empty: no data rows after the header")

    problems: list[_Problem] = []
    out: dict[str, object] = {}

    ts = _parse_timestamps(table.column("timestamp"), problems)
    out["timestamp"] = ts
    for col in STRING_COLUMNS:
        out[col] = _as_category(table.column(col))
    for col in INT_COLUMNS:
        if col in names:
            out[col] = _as_numeric(table.column(col), col, integer=True, nullable=False, problems=problems)
    if "num_cpus" not in names:
        out["num_cpus"] = np.ones(table.num_rows, dtype=np.int64)
    for col in METRIC_COLUMNS:
        if col in names:
            nullable = col in NULLABLE_REQUIRED or col in OPTIONAL_COLUMNS
            out[col] = _as_numeric(table.column(col), col, integer=False, nullable=nullable, problems=problems)
        else:
            out[col] = np.full(table.num_rows, np.nan)

    _check_ranges(out, problems)
    if problems:
        raise ValidationError(_format_problems(problems))

    # Sort by (host, timestamp, pid) — skipped when the input already is (generated
    # fleets, written snapshots) — then find duplicates and scrape indices on neighbours.
    host = out["host_name"]
    assert isinstance(host, pd.Categorical)  # _as_category returns one
    if not host.categories.is_monotonic_increasing:
        host = host.reorder_categories(sorted(host.categories))
        out["host_name"] = host
    h = host.codes.astype(np.int64)
    pid = np.asarray(out["pid"]).astype(np.int64)
    order = _sort_order(h, ts, pid)
    hs, tss, ps = (h, ts, pid) if order is None else (h[order], ts[order], pid[order])
    _check_duplicates(hs, tss, ps, order, host, problems)
    if problems:
        raise ValidationError(_format_problems(problems))
    new_host = np.r_[True, hs[1:] != hs[:-1]]
    ids = np.cumsum(new_host | np.r_[True, tss[1:] != tss[:-1]]) - 1
    scrape = ids - np.maximum.accumulate(np.where(new_host, ids, 0))

    data: dict[str, object] = {"scrape": scrape.astype(np.int64)}
    for col in CSV_COLUMNS:
        values = out[col]
        if isinstance(values, pd.Categorical):
            codes = values.codes if order is None else values.codes[order]
            data[col] = pd.Categorical.from_codes(codes, dtype=values.dtype)
        else:
            arr = np.asarray(values)
            arr = arr if order is None else arr[order]
            data[col] = arr.astype(np.int64) if col in INT_COLUMNS else arr
    return pd.DataFrame(data)


def _sort_order(h: np.ndarray, t: np.ndarray, p: np.ndarray) -> np.ndarray | None:
    """Row order sorting by (host code, timestamp, pid); None when already in that order."""
    if len(h) < 2:
        return None
    dh, dt, dp = h[1:] - h[:-1], t[1:] - t[:-1], p[1:] - p[:-1]
    if np.all((dh > 0) | ((dh == 0) & ((dt > 0) | ((dt == 0) & (dp >= 0))))):
        return None
    return np.lexsort((p, t, h))


def write_snapshot(frame: pd.DataFrame, path: str | os.PathLike[str] | IO[bytes]) -> None:
    """Write a snapshot frame as CSV in the contract's column order (``scrape`` omitted).

    Timestamps are written as unix seconds with full float precision, so
    ``load_snapshot(write_snapshot(f))`` round-trips exactly.
    """
    cols = [c for c in CSV_COLUMNS if c in frame.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValidationError(f"cannot write snapshot, missing column(s): {', '.join(missing)}")
    arrays = {}
    for col in cols:
        series = frame[col]
        if col in STRING_COLUMNS:
            arrays[col] = _string_array(series)
        elif col in INT_COLUMNS:
            arrays[col] = pa.array(series.to_numpy(dtype=np.int64))
        else:
            values = series.to_numpy(dtype=np.float64)
            arrays[col] = _compact_float(values)
    table = pa.table(arrays)
    options = pacsv.WriteOptions(include_header=True, quoting_style="needed")
    if isinstance(path, str | os.PathLike):
        pacsv.write_csv(table, str(path), write_options=options)
    else:
        pacsv.write_csv(table, path, write_options=options)


# --------------------------------------------------------------------------- reading


def _read_source(source: Source, max_bytes: int) -> bytes | Path:
    """The CSV's bytes, or its path (pyarrow then reads the file itself, without a copy)."""
    too_big = f"snapshot is too large: more than {max_bytes:,} bytes (raise the limit with max_bytes)"
    if isinstance(source, bytes):
        if len(source) > max_bytes:
            raise ValidationError(too_big)
        return source
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_file():
            raise ValidationError(f"snapshot file not found: {path}")
        if path.stat().st_size > max_bytes:
            raise ValidationError(too_big)
        return path
    chunk = source.read(max_bytes + 1)
    data = chunk.encode() if isinstance(chunk, str) else bytes(chunk)
    if len(data) > max_bytes:
        raise ValidationError(too_big)
    return data


def _load_parquet(path: Path, max_bytes: int) -> pd.DataFrame:
    import pyarrow.parquet as pq

    if not path.is_file():
        raise ValidationError(f"snapshot file not found: {path}")
    if path.stat().st_size > max_bytes:
        raise ValidationError(f"snapshot is too large: more than {max_bytes:,} bytes (raise the limit with max_bytes)")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise ValidationError(f"cannot read Parquet snapshot {path}: {exc}") from exc
    # Validation below is written for text cells; numbers pass through untouched.
    return normalise_snapshot(table)


def _is_blank(data: bytes | Path) -> bool:
    if isinstance(data, Path):
        with data.open("rb") as fh:
            head = fh.read(1 << 16)
        return not head.strip() and data.stat().st_size <= len(head)
    return not data or data.isspace()  # isspace stops at the first non-space byte


def _header(data: bytes | Path) -> str:
    if isinstance(data, Path):
        with data.open("rb") as fh:
            line = fh.readline(1 << 20)
    else:
        end = data.find(b"\n")
        line = data if end < 0 else data[:end]
    return line.decode("utf-8", "replace").strip().lstrip("\ufeff")


def _read_csv_table(data: bytes | Path) -> pa.Table:
    """Parse with pyarrow, numeric columns typed; a column with a bad cell is re-read as text."""
    header = _header(data)
    columns = [c.strip().strip('"') for c in header.split(",")]
    typed = {c: pa.float64() for c in METRIC_COLUMNS if c in columns}
    typed.update({c: pa.int64() for c in INT_COLUMNS if c in columns})
    # A cell that does not convert names its column: read that column as text (so
    # normalise_snapshot can report every bad row) and parse again; the other columns
    # keep the fast typed path.
    # Quoted newlines (a command line can hold one) need the slower newline-aware parser:
    # used only when the fast one finds ragged rows.
    newlines = False
    for _ in range(len(typed) + 2):
        strings = {c: pa.string() for c in columns if c not in typed}
        try:
            return _arrow_csv(data, {**strings, **typed}, newlines_in_values=newlines)
        except pa.ArrowInvalid as exc:
            if not newlines and "CSV parse error" in str(exc):
                newlines = True
                continue
            failed = _failed_column(str(exc), columns)
            if failed is None or failed not in typed:
                raise ValidationError(f"not a valid CSV file: {_arrow_message(exc)}") from exc
            del typed[failed]
    raise ValidationError("not a valid CSV file")  # unreachable: each retry types one column less


def _failed_column(message: str, columns: list[str]) -> str | None:
    """The column a pyarrow conversion error names ("In CSV column #9: … conversion error")."""
    if "conversion error" not in message:
        return None
    match = re.search(r"CSV column #(\d+)", message)
    if match is None or int(match.group(1)) >= len(columns):
        return None
    return columns[int(match.group(1))]


def _arrow_csv(
    data: bytes | Path, column_types: dict[str, pa.DataType], *, newlines_in_values: bool = False
) -> pa.Table:
    convert = pacsv.ConvertOptions(
        column_types=column_types,
        strings_can_be_null=False,
        # Only truly empty cells are "no value"; "NA"/"null" in a number column is an error.
        null_values=[""],
    )
    read = pacsv.ReadOptions(block_size=8 << 20)  # several blocks even for small files: both cores parse
    source = str(data) if isinstance(data, Path) else io.BytesIO(data)
    parse = pacsv.ParseOptions(newlines_in_values=newlines_in_values)
    return pacsv.read_csv(source, read_options=read, parse_options=parse, convert_options=convert)


def _arrow_message(exc: Exception) -> str:
    return str(exc).splitlines()[0]


# --------------------------------------------------------------------------- converting


class _Problem:
    """One failing check: message template and the 0-based rows it failed on."""

    def __init__(self, rows: np.ndarray | None, message: str, values: Iterable[object] | None = None):
        self.rows = rows
        self.message = message
        self.values = list(values) if values is not None else None


def _as_category(col: pa.ChunkedArray) -> pd.Categorical:
    if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
        col = pc.cast(col, pa.string())
    col = pc.fill_null(col, "")
    encoded = pc.dictionary_encode(col.combine_chunks())
    return encoded.to_pandas().array


def _as_numeric(
    col: pa.ChunkedArray, name: str, *, integer: bool, nullable: bool, problems: list[_Problem]
) -> np.ndarray:
    kind = "an integer" if integer else "a number"
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        text = col.to_pandas()
        stripped = text.str.strip()
        empty = (stripped.isna() | (stripped == "")).to_numpy(dtype=bool)
        values = pd.to_numeric(stripped.where(~empty, None), errors="coerce").to_numpy(dtype=np.float64)
        bad = ~empty & np.isnan(values)
        if integer:
            bad |= ~empty & ~np.isnan(values) & (values != np.round(values))
            bad |= ~empty & ~np.isnan(values) & text.str.contains(r"[.eE]", regex=True).to_numpy()
        if bad.any():
            rows = np.flatnonzero(bad)
            problems.append(_Problem(rows, f"{name} is not {kind}: {{value!r}}", text.to_numpy()[rows]))
        null = empty
    else:
        values = col.to_numpy(zero_copy_only=False).astype(np.float64)
        null = np.isnan(values) if not col.null_count else col.is_null().to_numpy(zero_copy_only=False)
        values = np.where(null, np.nan, values)
    if not nullable and null.any():
        problems.append(_Problem(np.flatnonzero(null), f"{name} is empty"))
    return values


def _parse_timestamps(col: pa.ChunkedArray, problems: list[_Problem]) -> np.ndarray:
    if pa.types.is_floating(col.type) or pa.types.is_integer(col.type):
        return col.to_numpy(zero_copy_only=False).astype(np.float64)
    if pa.types.is_timestamp(col.type):
        return pc.cast(col, pa.timestamp("ns", tz="UTC")).to_numpy().astype("int64") / 1e9
    text = pc.utf8_trim_whitespace(pc.fill_null(pc.cast(col, pa.string()), ""))
    try:  # fast path: every cell is unix seconds
        return pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    strings = text.to_pandas()
    values = pd.to_numeric(strings, errors="coerce").to_numpy(dtype=np.float64, copy=True)
    todo = np.isnan(values)
    candidates = strings[todo]
    rfc = candidates.str.match(_RFC3339).to_numpy(dtype=bool)
    parsed = pd.to_datetime(candidates[rfc].str.replace(" ", "T"), format="ISO8601", utc=True, errors="coerce")
    idx = np.flatnonzero(todo)
    ok_idx = idx[rfc]
    stamps = parsed.to_numpy(dtype="datetime64[ns]")
    good = ~np.isnat(stamps)
    values[ok_idx[good]] = stamps[good].astype(np.int64) / 1e9
    bad = np.isnan(values)
    if bad.any():
        rows = np.flatnonzero(bad)
        problems.append(
            _Problem(
                rows,
                "timestamp is neither unix seconds nor RFC 3339 with a time zone: {value!r}",
                strings.to_numpy()[rows],
            )
        )
    return values


def _string_array(series: pd.Series) -> pa.Array:
    """Strings for the CSV writer; categoricals stay dictionary-encoded (no per-row Python)."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy()
        cats = pa.array([str(c) for c in series.cat.categories], type=pa.string())
        if (codes < 0).any():  # NA → "", as the reader reads an empty cell
            cats = pa.concat_arrays([cats, pa.array([""], type=pa.string())])
            codes = np.where(codes < 0, len(cats) - 1, codes)
        return pc.cast(pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), cats), pa.string())
    return pa.array(series.fillna("").astype(str).to_numpy(dtype=object), type=pa.string())


def _compact_float(values: np.ndarray) -> pa.Array:
    """Integer-valued float columns are written as integers (no ``.0`` noise)."""
    finite = values[~np.isnan(values)]
    if finite.size and np.all(finite == np.round(finite)) and np.all(np.abs(finite) < 2**53):
        mask = np.isnan(values)
        return pa.array(np.where(mask, 0, values).astype(np.int64), mask=mask)
    return pa.array(values, from_pandas=True)


# --------------------------------------------------------------------------- checks


def _check_ranges(out: dict[str, object], problems: list[_Problem]) -> None:
    for col in INT_COLUMNS + METRIC_COLUMNS:
        values = out.get(col)
        if not isinstance(values, np.ndarray):
            continue
        negative = values < 0  # NaN compares False
        if negative.any():
            rows = np.flatnonzero(negative)
            problems.append(_Problem(rows, f"{col} is a negative {_kind(col)}: {{value!r}}", values[rows]))
    cpus = out.get("num_cpus")
    if isinstance(cpus, np.ndarray):
        zero = cpus == 0
        if zero.any():
            problems.append(_Problem(np.flatnonzero(zero), "num_cpus must be at least 1"))
    ts = out["timestamp"]
    if isinstance(ts, np.ndarray):
        bad = ~np.isnan(ts) & (~np.isfinite(ts) | (ts < 0))
        if bad.any():
            rows = np.flatnonzero(bad)
            problems.append(_Problem(rows, "timestamp is not a valid unix time: {value!r}", ts[rows]))
        millis = ts > MAX_UNIX_SECONDS
        if millis.any():
            rows = np.flatnonzero(millis)
            problems.append(
                _Problem(rows, "timestamp {value!r} looks like milliseconds; the contract is unix seconds", ts[rows])
            )


def _kind(col: str) -> str:
    if col in BYTE_COLUMNS:
        return "byte count"
    if col in CUMULATIVE_COLUMNS:
        return "counter"
    return "value"


def _check_duplicates(
    h: np.ndarray,
    t: np.ndarray,
    p: np.ndarray,
    order: np.ndarray | None,
    host: pd.Categorical,
    problems: list[_Problem],
) -> None:
    """Duplicate (host, pid, timestamp) rows, on arrays sorted by (host, timestamp, pid)."""
    dup = np.r_[False, (h[1:] == h[:-1]) & (t[1:] == t[:-1]) & (p[1:] == p[:-1])]
    if not dup.any():
        return
    positions = np.arange(len(h))
    run_start = np.maximum.accumulate(np.where(dup, 0, positions))  # first row of each run
    original = positions if order is None else order  # the sort is stable: run start = first seen
    at = np.flatnonzero(dup)
    rows, first = original[at], original[run_start[at]]
    by_row = np.argsort(rows, kind="stable")
    rows, first, at = rows[by_row], first[by_row], at[by_row]
    cats = host.categories
    values = [
        f"({str(cats[h[a]])!r}, {int(p[a])}, {float(t[a])!r}) already at row {int(f) + 1}"
        for a, f in zip(at[:MAX_LISTED_PROBLEMS], first[:MAX_LISTED_PROBLEMS], strict=True)
    ]
    problems.append(_Problem(rows, "duplicate (host_name, pid, timestamp) {value}", values))


def _format_problems(problems: list[_Problem]) -> list[str]:
    """One line per failing cell, ordered by row, capped; counts what is left out."""
    lines: list[tuple[int, str]] = []
    for p in problems:
        if p.rows is None:
            lines.append((-1, p.message))
            continue
        for i, row in enumerate(p.rows[:MAX_LISTED_PROBLEMS]):
            value = p.values[i] if p.values is not None and i < len(p.values) else None
            text = p.message.format(value=_plain(value))
            lines.append((int(row), f"row {int(row) + 1}: {text}"))
    total = sum(len(p.rows) if p.rows is not None else 1 for p in problems)
    lines.sort(key=lambda x: x[0])
    shown = [text for _, text in lines[:MAX_LISTED_PROBLEMS]]
    if total > len(shown):
        shown.append(f"… and {total - len(shown)} more problem(s)")
    return shown


def _plain(value: object) -> object:
    if isinstance(value, np.floating):
        f = float(value)
        return int(f) if f.is_integer() else f
    if isinstance(value, np.generic):
        return value.item()
    return value
