"""Process snapshots: the engine's input (columns and semantics: docs/pipeline-semantics.md, "Data shapes").

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

Every value is checked against the physical range of a real host (``MAX_*`` below):
non-finite numbers (``nan``, ``inf``, ``1e400``), negative counters and byte counts,
magnitudes no host can reach (``1e308``), pids that are not integers in 0..2^32−1, and
empty or blank host names are refused. The bounds also keep every later sum finite and
every integer data point encodable (OTLP ``as_int`` is an int64).

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
MAX_SHOWN_CHARS = 60  # a cell quoted in a message is cut to this many characters
# Physical bounds (docs/pipeline-semantics.md, "Snapshot bounds"): no real host reaches them.
MAX_PID = 2**32 - 1  # pid_t / DWORD are 32 bits wherever the scraper runs (Linux: at most 2^22)
MAX_CPUS = 65_536  # logical CPUs of one host (Linux NR_CPUS is at most 8,192)
MAX_CPU_SECONDS = 1e15  # cumulative CPU seconds of one process: 31.7 million CPU-years
MAX_BYTES = 2**60  # 1 EiB: above any 64-bit address space (2^57 with 5-level paging) and any I/O total
MAX_COUNT = 2**60  # threads, descriptors, I/O operations, page faults, context switches

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
# Largest accepted value per numeric column, with how messages name it.
UPPER_BOUNDS: dict[str, tuple[float, str]] = {
    **{c: (MAX_PID, "2^32 - 1") for c in ID_COLUMNS},
    "num_cpus": (MAX_CPUS, f"{MAX_CPUS:,} logical CPUs"),
    **{c: (MAX_CPU_SECONDS, "1e15 CPU seconds") for c in CPU_COLUMNS},
    **{c: (MAX_BYTES, "2^60 bytes = 1 EiB") for c in BYTE_COLUMNS},
    **{c: (MAX_COUNT, "2^60") for c in OPTIONAL_COLUMNS},
}

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$"
)
# Spellings of non-finite numbers that parsers accept ("nan", "-inf", "Infinity", …).
_NON_FINITE = r"[+-]?(?:nan|inf|infinity)"

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
    try:
        column_names = table.column_names
    except UnicodeDecodeError:
        raise ValidationError("column names are not UTF-8 text") from None
    names = set(column_names)
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise ValidationError(f"missing column{plural}: {', '.join(missing)}")
    repeated = sorted({c for c in column_names if c in CSV_COLUMNS and column_names.count(c) > 1})
    if repeated:
        plural = "s" if len(repeated) > 1 else ""
        raise ValidationError(f"duplicate column{plural}: {', '.join(repeated)}")
    if table.num_rows == 0:
        raise ValidationError("snapshot is empty: no data rows after the header")

    problems: list[_Problem] = []
    out: dict[str, object] = {}

    ts = _parse_timestamps(table.column("timestamp"), problems)
    out["timestamp"] = ts
    for col in STRING_COLUMNS:
        out[col] = _as_category(table.column(col), col, problems)
    _check_host_names(out["host_name"], problems)
    if any(p.rows is None for p in problems):  # a whole column is unusable: say only that
        raise ValidationError(_format_problems([p for p in problems if p.rows is None]))
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
    # keep the fast typed path. A text column with invalid UTF-8 is re-read as bytes
    # (normalise_snapshot reports the rows that do not decode).
    # Quoted newlines (a command line can hold one) need the slower newline-aware parser:
    # used only when the fast one finds ragged rows.
    newlines = False
    binary: set[str] = set()
    for _ in range(2 * len(columns) + 2):
        strings = {c: (pa.binary() if c in binary else pa.string()) for c in columns if c not in typed}
        try:
            return _arrow_csv(data, {**strings, **typed}, newlines_in_values=newlines)
        except pa.ArrowInvalid as exc:
            if not newlines and "CSV parse error" in str(exc):
                newlines = True
                continue
            failed = _failed_column(str(exc), columns)
            if failed in typed:
                del typed[failed]
            elif failed is not None and failed not in binary and "UTF8" in str(exc):
                binary.add(failed)
            else:
                raise ValidationError(f"not a valid CSV file: {_arrow_message(exc)}") from exc
        except (pa.ArrowException, OSError) as exc:
            raise ValidationError(f"not a valid CSV file: {_arrow_message(exc)}") from exc
    raise ValidationError("not a valid CSV file")  # unreachable: each retry relaxes one column


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


def _is_text(dtype: pa.DataType) -> bool:
    return pa.types.is_string(dtype) or pa.types.is_large_string(dtype)


def _is_number(dtype: pa.DataType) -> bool:
    """Arrow types read as numbers directly; any other (bool, dates, text) goes through its text."""
    return (pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype)
            or pa.types.is_null(dtype))


def _as_text(col: pa.ChunkedArray, name: str, problems: list[_Problem]) -> pa.ChunkedArray | None:
    """The column as UTF-8 strings (nulls kept); None after reporting a column that has none.

    Binary cells (a CSV column with invalid UTF-8, Parquet ``binary``) that do not decode
    are reported by row and replaced with U+FFFD so later checks still run.
    """
    if _is_text(col.type):
        return col
    if pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type) or pa.types.is_fixed_size_binary(col.type):
        raw = pd.Series(col.to_pandas(), dtype=object)
        decoded = raw.str.decode("utf-8", errors="replace")
        bad = (raw.notna() & (decoded.str.encode("utf-8") != raw)).to_numpy(dtype=bool)
        if bad.any():
            problems.append(_Problem(np.flatnonzero(bad), f"{name} is not UTF-8 text"))
        return pa.chunked_array([pa.array(decoded, type=pa.string(), from_pandas=True)])
    try:
        return pc.cast(col, pa.string())
    except (pa.ArrowException, UnicodeDecodeError):
        problems.append(_Problem(None, f"column {name} holds {col.type} values; expected text or numbers"))
        return None


def _as_category(col: pa.ChunkedArray, name: str, problems: list[_Problem]) -> pd.Categorical:
    text = _as_text(col, name, problems)
    if text is None:
        return pd.Categorical.from_codes(np.zeros(len(col), dtype=np.int8), categories=[""])
    text = pc.fill_null(text, "")
    encoded = pc.dictionary_encode(text.combine_chunks())
    return encoded.to_pandas().array


def _as_numeric(
    col: pa.ChunkedArray, name: str, *, integer: bool, nullable: bool, problems: list[_Problem]
) -> np.ndarray:
    """float64 values, NaN where the cell is empty or was reported.

    Only an empty cell is "no value": ``nan``, ``inf`` and overflowing literals such as
    ``1e400`` are refused as non-finite, in text and typed (Parquet) columns alike.
    """
    kind = "an integer" if integer else "a number"
    if _is_number(col.type):
        values = pc.cast(col, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
        if not col.null_count and (pa.types.is_integer(col.type) or not integer) and np.isfinite(values).all():
            return values  # the common case (typed CSV/Parquet column, every cell a finite number)
        null = col.is_null().to_numpy(zero_copy_only=False) if col.null_count else np.zeros(len(values), bool)
        text = None
        bad = np.zeros(len(values), dtype=bool)
        if integer and not pa.types.is_integer(col.type):
            with np.errstate(invalid="ignore"):
                fractional = ~null & np.isfinite(values) & (values != np.floor(values))
            if fractional.any():
                rows = np.flatnonzero(fractional)
                problems.append(_Problem(rows, f"{name} is not {kind}: {{value!r}}", values[rows]))
                bad |= fractional
    else:
        as_text = _as_text(col, name, problems)
        if as_text is None:
            return np.full(len(col), np.nan)
        text = as_text.to_pandas()
        stripped = text.str.strip()
        null = (stripped.isna() | (stripped == "")).to_numpy(dtype=bool)
        values = pd.to_numeric(stripped.where(~null, None), errors="coerce").to_numpy(dtype=np.float64)
        bad = ~null & np.isnan(values)
        # "nan" parses to NaN: it is a non-finite number, reported below, not "not a number".
        bad &= ~stripped.str.fullmatch(_NON_FINITE, case=False).fillna(False).to_numpy(dtype=bool)
        if integer:
            bad |= ~null & np.isfinite(values) & (values != np.round(values))
            bad |= ~null & np.isfinite(values) & text.str.contains(r"[.eE]", regex=True).fillna(False).to_numpy()
        if bad.any():
            rows = np.flatnonzero(bad)
            problems.append(_Problem(rows, f"{name} is not {kind}: {{value!r}}", text.to_numpy()[rows]))
    non_finite = ~null & ~bad & ~np.isfinite(values)
    if non_finite.any():
        rows = np.flatnonzero(non_finite)
        shown = text.to_numpy()[rows] if text is not None else values[rows]
        problems.append(_Problem(rows, f"{name} is not a finite number: {{value!r}}", shown))
    if not nullable and null.any():
        problems.append(_Problem(np.flatnonzero(null), f"{name} is empty"))
    if bad.any() or non_finite.any():
        values = np.where(bad | non_finite, np.nan, values)
    return values


_TIME_UNITS = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}


def _parse_timestamps(col: pa.ChunkedArray, problems: list[_Problem]) -> np.ndarray:
    """Unix seconds (float64), reporting every bad cell; NaN on the rows reported."""
    n = len(col)
    text: pd.Series | None = None  # the cells as written, to quote them
    reported = np.zeros(n, dtype=bool)
    if pa.types.is_timestamp(col.type):
        if col.type.tz is None:
            problems.append(_Problem(None, "column timestamp holds timestamps without a time zone; "
                                           "store them in UTC or as unix seconds"))
            return np.full(n, np.nan)
        values = pc.cast(col, pa.int64()).to_numpy(zero_copy_only=False).astype(np.float64)
        values /= _TIME_UNITS[col.type.unit]
        null = np.isnan(values)
    elif _is_number(col.type):
        values = pc.cast(col, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
        null = col.is_null().to_numpy(zero_copy_only=False) if col.null_count else np.zeros(n, bool)
    else:
        as_text = _as_text(col, "timestamp", problems)
        if as_text is None:
            return np.full(n, np.nan)
        trimmed = pc.utf8_trim_whitespace(pc.fill_null(as_text, ""))
        null = pc.equal(trimmed, "").to_numpy(zero_copy_only=False)
        try:  # fast path: every cell is unix seconds
            values = pc.cast(trimmed, pa.float64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            text = trimmed.to_pandas()
            values, reported = _parse_text_timestamps(text, null, problems)
        else:
            if not np.isfinite(values).all():  # quote the cells as written ("nan", "1e400")
                text = trimmed.to_pandas()
    check = ~null & ~reported
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(values)
        non_finite = check & ~finite
        negative = check & finite & (values < 0)
        millis = check & finite & (values > MAX_UNIX_SECONDS)
    if null.any():
        problems.append(_Problem(np.flatnonzero(null), "timestamp is empty"))
    for mask, message in (
        (non_finite, "timestamp is not a finite number: {value!r}"),
        (negative, "timestamp is not a valid unix time: {value!r}"),
        (millis, "timestamp {value!r} looks like milliseconds; the contract is unix seconds"),
    ):
        if mask.any():
            rows = np.flatnonzero(mask)
            problems.append(_Problem(rows, message, (text.to_numpy() if text is not None else values)[rows]))
    bad = null | reported | non_finite | negative | millis
    return np.where(bad, np.nan, values) if bad.any() else values


def _parse_text_timestamps(
    strings: pd.Series, empty: np.ndarray, problems: list[_Problem]
) -> tuple[np.ndarray, np.ndarray]:
    """Unix seconds or RFC 3339 with a zone, cell by cell (vectorised); (values, rows reported)."""
    values = pd.to_numeric(strings, errors="coerce").to_numpy(dtype=np.float64, copy=True)
    words = strings.str.fullmatch(_NON_FINITE, case=False).fillna(False).to_numpy(dtype=bool)
    todo = np.isnan(values) & ~words & ~empty
    candidates = strings[todo]
    rfc = candidates.str.match(_RFC3339).fillna(False).to_numpy(dtype=bool)
    parsed = pd.to_datetime(candidates[rfc].str.replace(" ", "T"), format="ISO8601", utc=True, errors="coerce")
    idx = np.flatnonzero(todo)
    ok_idx = idx[rfc]
    stamps = parsed.to_numpy(dtype="datetime64[ns]")
    good = ~np.isnat(stamps)
    values[ok_idx[good]] = stamps[good].astype(np.int64) / 1e9
    bad = todo & np.isnan(values)
    if bad.any():
        rows = np.flatnonzero(bad)
        problems.append(
            _Problem(
                rows,
                "timestamp is neither unix seconds nor RFC 3339 with a time zone: {value!r}",
                strings.to_numpy()[rows],
            )
        )
    return values, bad


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
    """Negative values and magnitudes beyond ``UPPER_BOUNDS`` (NaN cells were reported or are empty)."""
    for col in INT_COLUMNS + METRIC_COLUMNS:
        values = out.get(col)
        if not isinstance(values, np.ndarray):
            continue
        with np.errstate(invalid="ignore"):
            negative = values < 0  # NaN compares False
            bound, text = UPPER_BOUNDS[col]
            too_big = values > bound
        if negative.any():
            rows = np.flatnonzero(negative)
            problems.append(_Problem(rows, f"{col} is a negative {_kind(col)}: {{value!r}}", values[rows]))
        if too_big.any():
            rows = np.flatnonzero(too_big)
            problems.append(_Problem(rows, f"{col} is beyond any real host: {{value!r}} (at most {text})",
                                     values[rows]))
    cpus = out.get("num_cpus")
    if isinstance(cpus, np.ndarray):
        zero = cpus == 0
        if zero.any():
            problems.append(_Problem(np.flatnonzero(zero), "num_cpus must be at least 1"))


def _check_host_names(host: object, problems: list[_Problem]) -> None:
    """An empty or blank host name cannot be attributed to a host (``host.name`` is the key)."""
    if not isinstance(host, pd.Categorical):
        return
    blank = np.flatnonzero(host.categories.astype(str).str.strip() == "")
    if len(blank):
        rows = np.flatnonzero(np.isin(host.codes, blank))
        problems.append(_Problem(rows, "host_name is empty"))


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
    """A cell as a message quotes it: integral floats as ints (below 2^53), long text cut."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, str) and len(value) > MAX_SHOWN_CHARS:
        return value[: MAX_SHOWN_CHARS - 1] + "…"
    return value
