"""The engine's working state: one row per resource (process or rollup group) per scrape.

Rows are processes, not series: a 1,000-host × 500-process fleet is 500 k rows per scrape
(3.5 M series). Strings are pandas categoricals, so filters and group-bys work on integer
codes. Columns follow docs/pipeline-semantics.md ("Resource frame").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.catalog.process_metrics import ALL_VALUE_COLUMNS, RESOURCE_ATTRIBUTE_COLUMNS
from core.domain.errors import ValidationError

# Attributes that pipelines add on top of the scraper's.
HOST_NAME_ATTRIBUTE = "host.name"
OS_TYPE_ATTRIBUTE = "os.type"
PRIORITY = "phoenix.priority"
KEEP = "phoenix.keep"
ROLLUP = "phoenix.rollup"
MARKERS: tuple[str, ...] = (PRIORITY, KEEP, ROLLUP)
# Markers removed by transform/phoenix_cleanup before export; phoenix.priority stays a label.
INTERNAL_MARKERS: tuple[str, ...] = (KEEP, ROLLUP)

PRIORITIES: tuple[str, ...] = ("critical", "high", "medium", "low")
PRIORITY_DTYPE = pd.CategoricalDtype(list(PRIORITIES))
TRUE_DTYPE = pd.CategoricalDtype(["true"])
CRITICAL_CODE = 0

REQUIRED_SNAPSHOT_COLUMNS: tuple[str, ...] = (
    "timestamp", "host_name", "pid", "parent_pid", "executable_name", "executable_path", "command",
    "command_line", "owner", "cpu_time_user", "cpu_time_system", "cpu_time_wait", "memory_usage",
    "memory_virtual", "disk_io_read", "disk_io_write",
)
UTILIZATION_STATES: tuple[str, ...] = ("user", "system", "wait")
STRING_ATTRIBUTES: tuple[str, ...] = (
    "process.executable.name", "process.executable.path", "process.command",
    "process.command_line", "process.owner",
)
INT_ATTRIBUTES: tuple[str, ...] = ("process.pid", "process.parent_pid")
# Columns that are neither attributes nor values.
BOOKKEEPING: tuple[str, ...] = ("scrape", "timestamp", "host_name", "members")


def value_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in ALL_VALUE_COLUMNS if c in df.columns]


def attribute_columns(df: pd.DataFrame) -> list[str]:
    """Resource attribute columns currently on the frame (scraper's, host.name, markers)."""
    keys = [*RESOURCE_ATTRIBUTE_COLUMNS, HOST_NAME_ATTRIBUTE, OS_TYPE_ATTRIBUTE, PRIORITY, KEEP, ROLLUP]
    return [k for k in keys if k in df.columns]


@dataclass(frozen=True)
class ResourceFrame:
    """An immutable wrapper: kernels return a new frame instead of mutating this one."""

    df: pd.DataFrame

    def __len__(self) -> int:
        return len(self.df)

    def replace(self, df: pd.DataFrame) -> ResourceFrame:
        return ResourceFrame(df)

    @property
    def n_scrapes(self) -> int:
        return int(self.df["scrape"].max()) + 1 if len(self.df) else 0

    def critical_mask(self) -> np.ndarray:
        return self.df[PRIORITY].cat.codes.to_numpy() == CRITICAL_CODE

    def keep_mask(self) -> np.ndarray:
        return self.df[KEEP].cat.codes.to_numpy() == 0

    def rollup_mask(self) -> np.ndarray:
        return self.df[ROLLUP].cat.codes.to_numpy() == 0

    def reducible_mask(self) -> np.ndarray:
        """Rows a dropping or aggregating node may act on: not critical and not kept."""
        return ~self.critical_mask() & ~self.keep_mask()

    def scrape(self, index: int) -> ResourceFrame:
        """Rows of one scrape (negative index counts from the end)."""
        if index < 0:
            index += self.n_scrapes
        return ResourceFrame(self.df[self.df["scrape"].to_numpy() == index])


def _scrape_index(host_codes: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
    """Dense rank of each row's timestamp among its host's timestamps (0 = oldest).

    Ranked per host because each collector scrapes on its own clock.
    """
    pairs = pd.DataFrame({"h": host_codes, "t": timestamps})
    uniq = pairs.drop_duplicates().sort_values(["h", "t"], kind="stable")
    h = uniq["h"].to_numpy()
    first = np.r_[True, h[1:] != h[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(len(h)), 0))
    uniq = uniq.assign(rank=np.arange(len(h)) - start)
    merged = pairs.merge(uniq, on=["h", "t"], how="left", sort=False)
    return merged["rank"].to_numpy(dtype=np.int64)


def align_scrapes(host_codes: np.ndarray, scrape: np.ndarray) -> np.ndarray:
    """Shift each host's scrape indices so that its last scrape is the fleet's last (S − 1).

    A host with k < S scrapes keeps S − k … S − 1: every "last scrape" view (series out,
    coverage, host totals, tuning, ``--series-out``) then evaluates each host on its own
    last scrape instead of dropping the hosts that were scraped fewer times.
    """
    if len(scrape) == 0:
        return scrape
    last = np.full(int(host_codes.max()) + 1, -1, dtype=np.int64)
    np.maximum.at(last, host_codes, scrape)
    shift = int(scrape.max()) - last
    if not shift[last >= 0].any():
        return scrape
    return scrape + shift[host_codes]


def _utilization(df: pd.DataFrame, host_codes: np.ndarray, num_cpus: np.ndarray) -> dict[str, np.ndarray]:
    """Δcpu_time_state / (Δwall × num_cpus) against the same process's previous scrape.

    "Same process" = same host and pid with non-decreasing CPU time. The scraper keeps one
    calculator per pid (``ucals[pid]``), whatever the name: a kernel worker renamed between
    scrapes (``kworker/0:1-events`` → ``kworker/0:1-mm_percpu_wq``) still gets its point
    (docs/pipeline-semantics.md, "What the real collector showed"). A counter that went
    backwards is taken for a reused pid (no point).
    NaN on a process's first scrape: the collector emits no utilisation point then.
    """
    n = len(df)
    pid = df["process.pid"].to_numpy(dtype=np.int64, na_value=-1)
    ts = df["timestamp"].to_numpy(dtype=np.float64)
    order = np.lexsort((ts, pid, host_codes))
    same = np.zeros(n, dtype=bool)
    if n > 1:
        a, b = order[:-1], order[1:]
        same[1:] = (host_codes[a] == host_codes[b]) & (pid[a] == pid[b])
    prev = np.r_[order[0:1], order[:-1]] if n else order
    dwall = ts[order] - ts[prev]
    same &= dwall > 0
    out: dict[str, np.ndarray] = {}
    cpu_cols = [f"cpu_time_{s}" for s in UTILIZATION_STATES]
    deltas = {c: df[c].to_numpy(dtype=np.float64)[order] - df[c].to_numpy(dtype=np.float64)[prev] for c in cpu_cols}
    # A counter that went backwards means a different process with a reused pid.
    for d in deltas.values():
        same &= ~(d < 0)
    denom = dwall * num_cpus[order]
    for state, col in zip(UTILIZATION_STATES, cpu_cols, strict=True):
        util_sorted = np.where(same, deltas[col] / np.where(same, denom, 1.0), np.nan)
        util = np.empty(n, dtype=np.float64)
        util[order] = util_sorted
        out[f"cpu_utilization_{state}"] = util
    return out


def _as_category(series: pd.Series) -> pd.Series:
    if isinstance(series.dtype, pd.CategoricalDtype):
        return series
    return series.astype("category")


def from_snapshot(snapshot: pd.DataFrame) -> ResourceFrame:
    """Build the resource frame from a snapshot frame (columns: docs/pipeline-semantics.md).

    Adds ``scrape`` (aligned at the end: each host's last scrape is S − 1, see
    ``align_scrapes``), OTel attribute names, the Phoenix markers (all NA), utilisation
    per state and ``members`` = 1.
    """
    missing = [c for c in REQUIRED_SNAPSHOT_COLUMNS if c not in snapshot.columns]
    if missing:
        raise ValidationError(f"snapshot is missing column(s): {', '.join(missing)}")
    n = len(snapshot)
    host = _as_category(snapshot["host_name"]).cat.remove_unused_categories()
    host_codes = host.cat.codes.to_numpy().astype(np.int64)
    ts = pd.to_numeric(snapshot["timestamp"], errors="raise").to_numpy(dtype=np.float64)
    scrape = (
        snapshot["scrape"].to_numpy(dtype=np.int64)
        if "scrape" in snapshot.columns
        else _scrape_index(host_codes, ts) if n else np.zeros(0, dtype=np.int64)
    )
    data: dict[str, object] = {
        "scrape": align_scrapes(host_codes, scrape),
        "timestamp": ts,
        "host_name": host.reset_index(drop=True),
    }
    for key, col in RESOURCE_ATTRIBUTE_COLUMNS.items():
        if key in INT_ATTRIBUTES:
            data[key] = pd.array(pd.to_numeric(snapshot[col]).to_numpy(), dtype="Int64")
        else:
            data[key] = _as_category(snapshot[col]).reset_index(drop=True)
    for marker, dtype in ((PRIORITY, PRIORITY_DTYPE), (KEEP, TRUE_DTYPE), (ROLLUP, TRUE_DTYPE)):
        data[marker] = pd.Categorical.from_codes(np.full(n, -1, dtype=np.int8), dtype=dtype)
    for col in ALL_VALUE_COLUMNS:
        if col in snapshot.columns:
            data[col] = pd.to_numeric(snapshot[col]).to_numpy(dtype=np.float64)
    df = pd.DataFrame(data)
    num_cpus = (
        pd.to_numeric(snapshot["num_cpus"]).fillna(1).to_numpy(dtype=np.float64)
        if "num_cpus" in snapshot.columns
        else np.ones(n)
    )
    num_cpus = np.where(num_cpus > 0, num_cpus, 1.0)
    for col, values in _utilization(df, host_codes, num_cpus).items():
        df[col] = values
    df["members"] = np.ones(n, dtype=np.int64)
    return ResourceFrame(df)
