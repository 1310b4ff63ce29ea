"""Hostile snapshots (issue 9): every class of bad value is refused with its row and column.

One test per class of bad input; each checks the exact message a user sees (CLI ``error:``
line, ``st.error``). The generated variants are in tests/fuzz/test_fuzz_snapshot.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.domain.errors import ValidationError
from core.engine.snapshot import (
    MAX_BYTES,
    MAX_COUNT,
    MAX_CPU_SECONDS,
    MAX_CPUS,
    MAX_PID,
    load_snapshot,
    normalise_snapshot,
)
from tests.unit.test_snapshot import HEADER, csv, row


def problems(source, **kw) -> list[str]:
    with pytest.raises(ValidationError) as exc:
        load_snapshot(source, **kw)
    return exc.value.problems


@pytest.mark.parametrize("cell", ["inf", "+inf", "-inf", "Infinity", "nan", "NaN", "1e400"])
def test_non_finite_metric_values_are_refused(cell):
    shown = {"+inf": "inf", "Infinity": "inf", "NaN": "nan", "1e400": "inf"}.get(cell, cell)
    assert problems(csv(row(), row(pid=11, rss=cell))) == [f"row 2: memory_usage is not a finite number: {shown}"]


def test_non_finite_in_a_text_read_column_quotes_the_cell():
    # "x" makes the column fall back to text, so the other cells are quoted as written.
    got = problems(csv(row(user="x"), row(pid=11, user="Infinity"), row(pid=12, user="nan")))
    assert got == [
        "row 1: cpu_time_user is not a number: 'x'",
        "row 2: cpu_time_user is not a finite number: 'Infinity'",
        "row 3: cpu_time_user is not a finite number: 'nan'",
    ]


def test_nan_is_not_an_empty_cell_even_where_empty_means_no_data_point():
    assert problems(csv(row(rd="nan"), row(pid=11, rd=""))) == ["row 1: disk_io_read is not a finite number: nan"]
    assert np.isnan(load_snapshot(csv(row(rd=""), row(pid=11)))["disk_io_read"].iloc[0])


@pytest.mark.parametrize("cell", ["nan", "inf", "-inf"])
def test_non_finite_timestamps_are_refused(cell):
    assert problems(csv(row(), row(pid=11, ts=cell))) == [f"row 2: timestamp is not a finite number: {cell!r}"]


def test_empty_timestamp_is_refused():
    assert problems(csv(row(), row(pid=11, ts=""))) == ["row 2: timestamp is empty"]


@pytest.mark.parametrize(
    ("kw", "column", "shown", "bound"),
    [
        ({"rss": "1e308"}, "memory_usage", "1e+308", "2^60 bytes = 1 EiB"),
        ({"vms": str(2**60 + 2**40)}, "memory_virtual", "1.1529226041184748e+18", "2^60 bytes = 1 EiB"),
        ({"wr": "1e19"}, "disk_io_write", "1e+19", "2^60 bytes = 1 EiB"),
        ({"user": "1e308"}, "cpu_time_user", "1e+308", "1e15 CPU seconds"),
        ({"pid": str(2**32)}, "pid", str(2**32), "2^32 - 1"),
        ({"ppid": "99999999999999999999"}, "parent_pid", "1e+20", "2^32 - 1"),
    ],
)
def test_magnitudes_no_host_can_reach_are_refused(kw, column, shown, bound):
    assert problems(csv(row(**kw))) == [f"row 1: {column} is beyond any real host: {shown} (at most {bound})"]


def test_bounds_are_inclusive_and_documented_values_load():
    df = load_snapshot(csv(row(pid=MAX_PID, ppid=MAX_PID, rss=str(MAX_BYTES), vms=str(MAX_BYTES), rd=str(MAX_BYTES),
                               wr=str(MAX_BYTES), user=repr(MAX_CPU_SECONDS))))
    assert df["pid"].iloc[0] == MAX_PID and df["memory_usage"].iloc[0] == MAX_BYTES
    header = HEADER + ",num_cpus,context_switches_voluntary"
    assert len(load_snapshot(csv(row() + f",{MAX_CPUS},{MAX_COUNT}", header=header))) == 1
    assert problems(csv(row() + f",{MAX_CPUS + 1},{MAX_COUNT * 2}", header=header)) == [
        f"row 1: num_cpus is beyond any real host: {MAX_CPUS + 1} (at most 65,536 logical CPUs)",
        "row 1: context_switches_voluntary is beyond any real host: 2.305843009213694e+18 (at most 2^60)",
    ]


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("1.5", "pid is not an integer: '1.5'"),
        ("1e3", "pid is not an integer: '1e3'"),
        ("ten", "pid is not an integer: 'ten'"),
        ("", "pid is empty"),
        ("nan", "pid is not a finite number: 'nan'"),
        ("-3", "pid is a negative value: -3"),
    ],
)
def test_pids_must_be_non_negative_integers(cell, message):
    assert problems(csv(row(), row(pid=cell))) == [f"row 2: {message}"]


@pytest.mark.parametrize("host", ["", "   ", '""'])
def test_empty_or_blank_host_names_are_refused(host):
    assert problems(csv(row(), row(pid=11, host=host), row(pid=12, host=host))) == [
        "row 2: host_name is empty", "row 3: host_name is empty",
    ]


def test_invalid_utf8_text_names_row_and_column():
    data = csv(row(), row(pid=11)).replace(b"www-data", b"www-\xff\xfe", 1)
    assert problems(data) == ["row 1: owner is not UTF-8 text"]


def test_duplicate_column_is_refused():
    data = csv(row() + ",12", header=HEADER + ",pid")
    assert problems(data) == ["duplicate column: pid"]


def test_a_long_cell_is_cut_in_the_message():
    got = problems(csv(row(user="x" * 10_000)))
    assert got == [f"row 1: cpu_time_user is not a number: '{'x' * 59}…'"]


def test_mixed_timestamp_forms_each_row_judged_alone():
    got = problems(csv(row(ts="1700000000"), row(ts="2023-11-14T22:13:20Z", pid=11), row(ts="yesterday", pid=12),
                       row(ts="-1", pid=13), row(ts="1700000000000", pid=14)))
    assert got == [
        "row 3: timestamp is neither unix seconds nor RFC 3339 with a time zone: 'yesterday'",
        "row 4: timestamp is not a valid unix time: '-1'",
        "row 5: timestamp '1700000000000' looks like milliseconds; the contract is unix seconds",
    ]


def test_in_memory_frames_get_the_same_checks():
    frame = load_snapshot(csv(row(), row(pid=11))).drop(columns=["scrape"])
    frame["memory_usage"] = [np.inf, 5.0]
    frame["host_name"] = pd.Categorical(["h1", ""])
    with pytest.raises(ValidationError) as exc:
        normalise_snapshot(frame)
    assert exc.value.problems == ["row 1: memory_usage is not a finite number: inf", "row 2: host_name is empty"]


# --------------------------------------------------------------------------- Parquet


def _parquet(tmp_path, replace: dict[str, pa.Array]) -> str:
    base = load_snapshot(csv(row(), row(pid=11))).drop(columns=["scrape"])
    table = pa.Table.from_pandas(base, preserve_index=False)
    for name, arr in replace.items():
        table = table.set_column(table.column_names.index(name), name, arr)
    path = tmp_path / "snap.parquet"
    pq.write_table(table, path)
    return str(path)


@pytest.mark.parametrize(
    ("replace", "expected"),
    [
        ({"memory_usage": pa.array([1.0, float("nan")], from_pandas=False)},
         ["row 2: memory_usage is not a finite number: nan"]),
        ({"memory_usage": pa.array([1.0, None])}, ["row 2: memory_usage is empty"]),
        ({"memory_usage": pa.array([1.0, 1e308])}, ["row 2: memory_usage is beyond any real host: 1e+308 "
                                                    "(at most 2^60 bytes = 1 EiB)"]),
        ({"memory_usage": pa.array([True, False])},
         ["row 1: memory_usage is not a number: 'true'", "row 2: memory_usage is not a number: 'false'"]),
        ({"pid": pa.array([10.0, 11.5])}, ["row 2: pid is not an integer: 11.5"]),
        ({"pid": pa.array([10, 2**64 - 1], type=pa.uint64())},
         ["row 2: pid is beyond any real host: 1.8446744073709552e+19 (at most 2^32 - 1)"]),
        ({"host_name": pa.array([b"h1", b"h\xff"])}, ["row 2: host_name is not UTF-8 text"]),
        ({"host_name": pa.array(["h1", None])}, ["row 2: host_name is empty"]),
        ({"host_name": pa.array([["h"], ["h"]])},
         ["column host_name holds list<element: string> values; expected text or numbers"]),
        ({"timestamp": pa.array([1, 2], type=pa.timestamp("s"))},
         ["column timestamp holds timestamps without a time zone; store them in UTC or as unix seconds"]),
        ({"timestamp": pa.array([float("inf"), 1.0], from_pandas=False)}, ["row 1: timestamp is not a finite number: inf"]),
    ],
    ids=["nan", "null", "huge", "bool", "fractional-pid", "uint64-pid", "binary-host", "null-host", "list-host",
         "naive-timestamp", "inf-timestamp"],
)
def test_parquet_columns_of_any_type_get_the_same_checks(tmp_path, replace, expected):
    assert problems(_parquet(tmp_path, replace)) == expected


def test_parquet_with_timezone_timestamps_loads(tmp_path):
    ts = pa.array([1_700_000_000_000, 1_700_000_010_000], type=pa.timestamp("ms", tz="UTC"))
    df = load_snapshot(_parquet(tmp_path, {"timestamp": ts}))
    assert df["timestamp"].tolist() == [1_700_000_000.0, 1_700_000_010.0]


def test_unreadable_parquet_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"PAR1 not really PAR1")
    got = problems(str(path))
    assert len(got) == 1 and got[0].startswith(f"cannot read Parquet snapshot {path}")

