"""Host snapshot logic with the in-memory reader: failure tolerance and scrape stamping."""

from __future__ import annotations

import numpy as np

from core.engine.hostsnapshot import StaticReader, _row_from_info, snapshot_this_host


class Times:
    def __init__(self, user: float, system: float, iowait: float = 0.0):
        self.user, self.system, self.iowait = user, system, iowait


class Mem:
    rss, vms = 4096, 8192


def info(pid: int, **over) -> dict:
    base = {"pid": pid, "ppid": 1, "name": "app", "exe": "/usr/bin/app", "cmdline": ["/usr/bin/app", "--x", "1"],
            "username": "svc", "cpu_times": Times(1.0, 0.5), "memory_info": Mem(), "io_counters": None,
            "num_threads": 3, "num_fds": None, "num_ctx_switches": None}
    base.update(over)
    return base


def test_fields_follow_the_scraper():
    row = _row_from_info(info(7))
    assert row["command"] == "/usr/bin/app" and row["command_line"] == "/usr/bin/app --x 1"
    assert row["cpu_time_user"] == 1.0 and row["memory_usage"] == 4096.0


def test_unreadable_fields_are_tolerated_like_mute_process_flags():
    assert _row_from_info(info(7, name=None)) is None  # no name: skipped, like the scraper
    row = _row_from_info(info(8, exe=None, cmdline=None, username=None, cpu_times=None))
    assert row["executable_path"] == "" and row["command"] == "" and row["command_line"] == "" and row["owner"] == ""
    assert np.isnan(row["cpu_time_user"]) and np.isnan(row["disk_io_read"])  # no data points


def test_snapshot_stamps_one_time_per_scrape_and_sleeps_between():
    first = [_row_from_info(info(10)), _row_from_info(info(11))]
    second = [_row_from_info(info(10, cpu_times=Times(2.0, 0.5)))]
    reader = StaticReader([first, second], cpus=8, name="box")
    ticks = iter([100.0, 101.0])
    slept: list[float] = []
    df = snapshot_this_host(2, 1.0, reader=reader, clock=lambda: next(ticks), sleep=slept.append)
    assert slept == [1.0]
    assert df["timestamp"].tolist() == [100.0, 100.0, 101.0]
    assert df["scrape"].tolist() == [0, 0, 1]
    assert (df["host_name"] == "box").all() and (df["num_cpus"] == 8).all()
    assert df.loc[df["scrape"] == 1, "cpu_time_user"].tolist() == [2.0]
    assert np.isnan(df["disk_io_read"]).all()
