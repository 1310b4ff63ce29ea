"""A process snapshot of this host, read with psutil like the hostmetrics process scraper.

Field meanings follow the scraper on Linux (contrib ``processscraper``):

- ``executable_name``: the process name (``/proc/PID/status`` Name / ``comm``, extended
  from the command line when the kernel truncated it to 15 characters — psutil and
  gopsutil both do this); ``executable_path``: the target of ``/proc/PID/exe`` exactly as
  ``readlink`` gives it (a deleted binary keeps its `` (deleted)`` suffix, which psutil
  strips); ``command``: ``cmdline[0]``; ``command_line``: the arguments joined by spaces.
  Both from ``/proc/PID/cmdline`` the way gopsutil's ``CmdlineSlice`` splits it: trailing
  NULs trimmed, then split on NUL (psutil keeps the empty arguments of a process that
  rewrote its title, e.g. ``postgres: checkpointer`` padded with NULs, and splits on
  spaces when the buffer has no NUL at the end); ``owner``: the user name.
- CPU times user/system/iowait in seconds, RSS and VMS in bytes, ``/proc/PID/io``
  rchar/wchar (what the scraper's ``process.disk.io`` reports: gopsutil's ``ReadBytes`` /
  ``WriteBytes``; read_bytes/write_bytes are only what reached storage), and the optional
  threads, open fds, syscall read/write counts (``disk_operations_*``), page faults and
  context switches.

Failures are tolerated per field, as the scraper does with its ``mute_process_*`` flags:
a process whose name cannot be read is skipped (the scraper skips it too); an unreadable
executable path, command line or owner becomes ``""`` (the scraper sends the attribute
empty); a metric that cannot be read is NaN, i.e. no data point — in particular without
root ``/proc/PID/io`` of other users' processes is unreadable and, as with
``mute_process_io_error``, those processes are still reported, just without
``process.disk.io``. ``num_cpus`` is the host's logical CPU count.

The reader is an interface so tests and the runtime can substitute a fake.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from core.domain.errors import ValidationError
from core.engine.snapshot import CSV_COLUMNS, normalise_snapshot

PSUTIL_ATTRS = [
    "pid",
    "ppid",
    "name",
    "exe",
    "cmdline",
    "username",
    "cpu_times",
    "memory_info",
    "io_counters",
    "num_threads",
    "num_fds",
    "num_ctx_switches",
]


class ProcessReader(Protocol):
    """Reads one scrape: one dict per process with the snapshot's CSV columns."""

    def read(self) -> list[dict[str, Any]]: ...

    def num_cpus(self) -> int: ...

    def host_name(self) -> str: ...


class PsutilReader:
    """The real reader: ``psutil.process_iter`` with one ``oneshot`` per process."""

    def __init__(self, proc_root: str = "/proc"):
        self.proc_root = proc_root

    def read(self) -> list[dict[str, Any]]:
        import psutil

        rows = []
        for proc in psutil.process_iter(attrs=PSUTIL_ATTRS, ad_value=None):
            info = proc.info
            row = _row_from_info(info)
            if row is None:
                continue
            row.update(self._scraper_identity(info["pid"], row))
            major, minor = self._page_faults(info["pid"])
            row["paging_faults_major"], row["paging_faults_minor"] = major, minor
            rows.append(row)
        return rows

    def num_cpus(self) -> int:
        import psutil

        return int(psutil.cpu_count(logical=True) or 1)

    def host_name(self) -> str:
        return socket.gethostname()

    def _scraper_identity(self, pid: int, row: dict[str, Any]) -> dict[str, Any]:
        """executable_path, command, command_line (and the name they extend) as the
        collector's scraper reads them (gopsutil: raw readlink, CmdlineSlice)."""
        # Unreadable now (a zombie, an exiting process) is empty, as the scraper sends it;
        # psutil would return the exe it cached from an earlier scan of the same pid.
        out: dict[str, Any] = {"executable_path": ""}
        with contextlib.suppress(OSError):
            out["executable_path"] = os.readlink(f"{self.proc_root}/{pid}/exe")
        try:
            with open(f"{self.proc_root}/{pid}/cmdline", "rb") as fh:
                raw = fh.read()
        except OSError:
            raw = b""
        args = [a.decode("utf-8", "replace") for a in raw.rstrip(b"\0").split(b"\0")] if raw else []
        out["command"] = args[0] if args else ""
        out["command_line"] = " ".join(args)
        name = row["executable_name"]
        if len(name) >= 15 and args:
            # gopsutil extends a truncated name from basename(cmdline[0]) when it starts with it
            base = os.path.basename(args[0])
            out["executable_name"] = base if base.startswith(name[:15]) else name[:15]
        return out

    def _page_faults(self, pid: int) -> tuple[float, float]:
        """majflt/minflt from /proc/PID/stat (psutil has no accessor; gopsutil reads the same)."""
        try:
            with open(f"{self.proc_root}/{pid}/stat", "rb") as fh:
                data = fh.read()
        except OSError:
            return np.nan, np.nan
        fields = data[data.rfind(b")") + 2 :].split()
        try:  # after "pid (comm) ": state=0 … minflt=7, majflt=9
            return float(fields[9]), float(fields[7])
        except (IndexError, ValueError):
            return np.nan, np.nan


def _row_from_info(info: dict[str, Any]) -> dict[str, Any] | None:
    name = info.get("name")
    if not name:  # the scraper skips processes whose name cannot be read
        return None
    cmdline = info.get("cmdline") or []
    cpu = info.get("cpu_times")
    mem = info.get("memory_info")
    io = info.get("io_counters")
    ctx = info.get("num_ctx_switches")
    nan = np.nan
    return {
        "pid": int(info["pid"]),
        "parent_pid": int(info.get("ppid") or 0),
        "executable_name": name,
        "executable_path": info.get("exe") or "",
        "command": cmdline[0] if cmdline else "",
        "command_line": " ".join(cmdline),
        "owner": info.get("username") or "",
        "cpu_time_user": cpu.user if cpu is not None else nan,
        "cpu_time_system": cpu.system if cpu is not None else nan,
        "cpu_time_wait": getattr(cpu, "iowait", 0.0) if cpu is not None else nan,
        "memory_usage": float(mem.rss) if mem is not None else nan,
        "memory_virtual": float(mem.vms) if mem is not None else nan,
        # The scraper's process.disk.io is gopsutil's ReadBytes/WriteBytes: /proc/PID/io
        # rchar/wchar (every byte through read/write syscalls), not read_bytes/write_bytes.
        "disk_io_read": float(getattr(io, "read_chars", io.read_bytes)) if io is not None else nan,
        "disk_io_write": float(getattr(io, "write_chars", io.write_bytes)) if io is not None else nan,
        "disk_operations_read": float(io.read_count) if io is not None else nan,
        "disk_operations_write": float(io.write_count) if io is not None else nan,
        "threads": float(info["num_threads"]) if info.get("num_threads") is not None else nan,
        "open_file_descriptors": float(info["num_fds"]) if info.get("num_fds") is not None else nan,
        "context_switches_voluntary": float(ctx.voluntary) if ctx is not None else nan,
        "context_switches_involuntary": float(ctx.involuntary) if ctx is not None else nan,
    }


@dataclass
class StaticReader:
    """In-memory fake: returns the given scrapes in order (the last one repeats)."""

    scrapes: list[list[dict[str, Any]]]
    cpus: int = 2
    name: str = "test-host"
    calls: int = field(default=0, init=False)

    def read(self) -> list[dict[str, Any]]:
        rows = self.scrapes[min(self.calls, len(self.scrapes) - 1)]
        self.calls += 1
        return [dict(r) for r in rows]

    def num_cpus(self) -> int:
        return self.cpus

    def host_name(self) -> str:
        return self.name


def snapshot_this_host(
    scrapes: int = 2,
    interval_s: float = 1.0,
    *,
    reader: ProcessReader | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> pd.DataFrame:
    """``scrapes`` scrapes of this host's processes, ``interval_s`` apart: a snapshot frame.

    Cumulative counters of one pid never go backwards between scrapes (the kernel's
    don't), so utilisation from two scrapes is well defined.
    """
    if scrapes < 1:
        raise ValidationError(f"scrapes must be at least 1, got {scrapes}")
    if interval_s < 0:
        raise ValidationError(f"interval must not be negative, got {interval_s}")
    reader = reader or PsutilReader()
    host, cpus = reader.host_name(), reader.num_cpus()
    frames = []
    for i in range(scrapes):
        if i:
            sleep(interval_s)
        ts = clock()  # one timestamp per scrape, as the scraper stamps all its points
        frames.append(_frame(reader.read(), ts, host, cpus))
    return normalise_snapshot(pd.concat(frames, ignore_index=True))


def _frame(rows: Iterable[dict[str, Any]], ts: float, host: str, cpus: int) -> pd.DataFrame:
    df = pd.DataFrame(list(rows))
    if df.empty:
        df = pd.DataFrame({c: pd.Series(dtype=object) for c in CSV_COLUMNS})
    df = df.drop_duplicates(subset=["pid"], keep="first")  # a pid listed twice in one scan
    df["timestamp"] = ts
    df["host_name"] = host
    df["num_cpus"] = cpus
    for col in CSV_COLUMNS:
        if col not in df.columns:
            df[col] = np.nan
    return df[list(CSV_COLUMNS)]

