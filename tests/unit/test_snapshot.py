"""Snapshot CSV contract: parsing, typing, validation messages, round trip."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from core.domain.errors import ValidationError
from core.engine.snapshot import (
    CSV_COLUMNS,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    load_snapshot,
    normalise_snapshot,
    write_snapshot,
)

HEADER = ",".join(REQUIRED_COLUMNS)


def row(ts="1700000000", host="h1", pid=10, ppid=1, name="nginx", user="1.5", system="0.5", wait="0",
        rss="1000", vms="2000", rd="10", wr="20", cmdline="nginx: worker process") -> str:
    return f"{ts},{host},{pid},{ppid},{name},/usr/sbin/{name},{name},{cmdline},www-data,{user},{system},{wait},{rss},{vms},{rd},{wr}"


def csv(*rows: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def problems(data: bytes, **kw) -> list[str]:
    with pytest.raises(ValidationError) as exc:
        load_snapshot(data, **kw)
    return exc.value.problems


def test_minimal_csv_gives_typed_frame_with_optional_columns_as_nan():
    df = load_snapshot(csv(row(), row(ts="1700000010", user="2.5")))
    assert list(df.columns) == ["scrape", *CSV_COLUMNS]
    assert df["host_name"].dtype == "category"
    assert df["executable_name"].dtype == "category"
    assert df["pid"].dtype == np.int64 and df["scrape"].dtype == np.int64
    assert df["cpu_time_user"].dtype == np.float64
    for col in OPTIONAL_COLUMNS:
        assert df[col].isna().all()
    assert (df["num_cpus"] == 1).all()  # default when the CSV has no num_cpus
    assert df["scrape"].tolist() == [0, 1]
    assert df["cpu_time_user"].tolist() == [1.5, 2.5]
    assert df["command_line"].iloc[0] == "nginx: worker process"


def test_scrape_index_is_per_host_rank_of_timestamps():
    df = load_snapshot(
        csv(
            row(ts="100", host="a", pid=1), row(ts="205", host="a", pid=1),
            row(ts="103", host="b", pid=1), row(ts="207", host="b", pid=1), row(ts="207", host="b", pid=2),
        )
    )
    got = {(h, t): s for h, t, s in zip(df["host_name"].astype(str), df["timestamp"], df["scrape"], strict=True)}
    assert got == {("a", 100.0): 0, ("a", 205.0): 1, ("b", 103.0): 0, ("b", 207.0): 1}


def test_rfc3339_timestamps_with_zone_are_parsed():
    df = load_snapshot(csv(row(ts="2026-11-28T03:00:00Z"), row(ts="2026-11-28T04:00:00.5+01:00", pid=11)))
    # 04:00:00.5+01:00 is 03:00:00.5Z
    assert sorted(df["timestamp"].tolist()) == [1795834800.0, 1795834800.5]


def test_rfc3339_without_zone_is_refused():
    assert problems(csv(row(ts="2026-11-28T03:00:00"))) == [
        "row 1: timestamp is neither unix seconds nor RFC 3339 with a time zone: '2026-11-28T03:00:00'"
    ]


def test_non_numeric_value_names_row_column_and_value():
    assert problems(csv(row(), row(pid=11), row(pid=12, user="abc"))) == [
        "row 3: cpu_time_user is not a number: 'abc'"
    ]


def test_pid_must_be_an_integer():
    assert problems(csv(row(pid="1.5"))) == ["row 1: pid is not an integer: '1.5'"]


def test_missing_columns_are_listed():
    header = HEADER.replace(",memory_virtual", "").replace(",owner", "")
    data = csv("1,h,1,0,x,/x,x,x,1,1,0,1,1,1", header=header)
    assert problems(data) == ["missing columns: owner, memory_virtual"]


def test_negative_counter_and_bytes_are_refused():
    got = problems(csv(row(system="-0.5"), row(pid=11, rss="-4096")))
    assert got == [
        "row 1: cpu_time_system is a negative counter: -0.5",
        "row 2: memory_usage is a negative byte count: -4096",
    ]


def test_duplicate_host_pid_timestamp_rows_point_at_the_first():
    assert problems(csv(row(), row(pid=11), row())) == [
        "row 3: duplicate (host_name, pid, timestamp) ('h1', 10, 1700000000.0) already at row 1"
    ]


def test_empty_file_and_header_only():
    assert problems(b"") == ["snapshot is empty: expected a header line and at least one data row"]
    assert problems(csv()) == ["snapshot is empty: no data rows after the header"]


def test_file_too_large_is_refused_before_parsing():
    data = csv(row(), row(pid=11))
    assert problems(data, max_bytes=len(data) - 1) == [
        f"snapshot is too large: more than {len(data) - 1:,} bytes (raise the limit with max_bytes)"
    ]


def test_ragged_csv_is_a_clear_error():
    got = problems(csv(row(), "1,2,3"))
    assert len(got) == 1 and got[0].startswith("not a valid CSV file: CSV parse error")


def test_empty_required_cell_is_refused_but_empty_disk_io_means_no_data_point():
    assert problems(csv(row(rss=""))) == ["row 1: memory_usage is empty"]
    df = load_snapshot(csv(row(rd="", wr="")))
    assert np.isnan(df["disk_io_read"].iloc[0]) and np.isnan(df["disk_io_write"].iloc[0])


def test_many_problems_are_capped_with_a_count():
    rows = [row(pid=i, user="x") for i in range(30)]
    got = problems(csv(*rows))
    assert len(got) == 21
    assert got[0] == "row 1: cpu_time_user is not a number: 'x'"
    assert got[-1] == "… and 10 more problem(s)"


def test_problems_are_ordered_by_row_across_checks():
    got = problems(csv(row(pid=1, user="bad"), row(pid=2, ts="never"), row(pid=3, wr="-1")))
    assert [p.split(":")[0] for p in got] == ["row 1", "row 2", "row 3"]


def test_round_trip_write_then_load_is_identical():
    df = load_snapshot(
        csv(
            row(ts="1700000000.123456", user="0.30000000000000004"),
            row(ts="1700000010.5", pid=11, cmdline='sh -c "echo, hi"'.replace(",", ";")),
        )
    )
    df["threads"] = [3.0, np.nan]
    buf = io.BytesIO()
    write_snapshot(df, buf)
    again = load_snapshot(buf.getvalue())
    pd.testing.assert_frame_equal(df, again)


def test_string_cells_with_commas_and_quotes_round_trip():
    df = load_snapshot(csv(row()))
    df["command_line"] = pd.Categorical(['python3 -c "print(1, 2)"'])
    buf = io.BytesIO()
    write_snapshot(df, buf)
    assert load_snapshot(buf.getvalue())["command_line"].iloc[0] == 'python3 -c "print(1, 2)"'


def test_normalise_accepts_an_in_memory_frame():
    df = load_snapshot(csv(row(), row(pid=11)))
    again = normalise_snapshot(df.drop(columns=["scrape"]))
    pd.testing.assert_frame_equal(df, again)


def test_text_file_object_is_accepted():
    df = load_snapshot(io.StringIO(csv(row()).decode()))
    assert len(df) == 1


def test_missing_path_is_a_clear_error():
    assert problems("/nonexistent/snapshot.csv") == ["snapshot file not found: /nonexistent/snapshot.csv"]


def test_num_cpus_column_is_read_and_checked():
    header = HEADER + ",num_cpus"
    df = load_snapshot(csv(row() + ",16", header=header))
    assert df["num_cpus"].tolist() == [16]
    assert problems(csv(row() + ",0", row(pid=11) + ",-2", header=header)) == [
        "row 1: num_cpus must be at least 1",
        "row 2: num_cpus is a negative value: -2",
    ]


def test_negative_optional_counter_is_refused():
    header = HEADER + ",context_switches_voluntary"
    assert problems(csv(row() + ",-7", header=header)) == [
        "row 1: context_switches_voluntary is a negative counter: -7"
    ]


def test_millisecond_timestamps_are_called_out():
    assert problems(csv(row(ts="1700000000000"))) == [
        "row 1: timestamp 1700000000000 looks like milliseconds; the contract is unix seconds"
    ]


def test_rows_in_any_order_come_back_sorted_by_host_scrape_pid():
    df = load_snapshot(
        csv(row(ts="205", host="b", pid=7), row(ts="100", host="b", pid=9), row(ts="100", host="a", pid=3),
            row(ts="205", host="b", pid=1), row(ts="100", host="b", pid=7))
    )
    got = list(zip(df["host_name"].astype(str), df["scrape"], df["pid"], strict=True))
    assert got == [("a", 0, 3), ("b", 0, 7), ("b", 0, 9), ("b", 1, 1), ("b", 1, 7)]


def test_command_lines_with_newlines_quotes_commas_and_unicode_round_trip():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    base = load_snapshot(csv(row(), row(pid=11)))

    @settings(max_examples=40, deadline=None)
    @given(st.lists(st.text(alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
                            max_size=40), min_size=2, max_size=2))
    def check(lines):
        df = base.copy()
        df["command_line"] = pd.Categorical(lines)
        buf = io.BytesIO()
        write_snapshot(df, buf)
        assert load_snapshot(buf.getvalue())["command_line"].astype(str).tolist() == lines

    check()
