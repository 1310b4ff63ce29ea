"""CPU utilisation pairs two scrapes of a pid the way the collector's process scraper does.

The scraper keeps one utilisation calculator per pid (``ucals[pid]`` in contrib's
processscraper, v0.159.0), whatever the process is called at each scrape. Kernel workers
rename themselves with the work queue they run (``kworker/0:1-events`` →
``kworker/0:1-mm_percpu_wq``): the real collector still exports their utilisation, so a
threshold on it keeps them (found by tests/integration/test_emulator_agrees_with_real.py).
"""

from __future__ import annotations

import math

import pandas as pd

from core.catalog.frame import from_snapshot
from core.engine.snapshot import normalise_snapshot


def _row(ts: float, pid: int, name: str, user: float) -> dict[str, object]:
    return {"timestamp": ts, "host_name": "h", "pid": pid, "parent_pid": 2, "executable_name": name,
            "executable_path": "", "command": "", "command_line": "", "owner": "root",
            "cpu_time_user": user, "cpu_time_system": 0.0, "cpu_time_wait": 0.0, "memory_usage": 0.0,
            "memory_virtual": 0.0, "disk_io_read": 0.0, "disk_io_write": 0.0, "num_cpus": 2}  # fmt: skip


def _last_utilisation(rows: list[dict[str, object]]) -> dict[int, float]:
    df = from_snapshot(normalise_snapshot(pd.DataFrame(rows))).df
    last = df[df["scrape"] == df["scrape"].max()]
    return dict(zip(last["process.pid"].astype(int), last["cpu_utilization_user"], strict=True))


def test_a_renamed_kernel_worker_keeps_its_utilisation() -> None:
    util = _last_utilisation([_row(100.0, 7, "kworker/0:1-events", 1.0),
                              _row(102.0, 7, "kworker/0:1-mm_percpu_wq", 1.5)])  # fmt: skip
    assert util[7] == 0.5 / 2.0 / 2  # Δcpu / Δt / logical CPUs


def test_first_scrape_and_a_counter_that_went_backwards_have_no_point() -> None:
    util = _last_utilisation([_row(100.0, 7, "a", 5.0), _row(102.0, 7, "a", 1.0), _row(102.0, 8, "b", 1.0)])
    assert math.isnan(util[7]) and math.isnan(util[8])
