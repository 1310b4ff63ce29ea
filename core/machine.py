"""The machine a figure was measured on, stated beside every benchmark result.

One reader for every benchmark (``phoenix bench``, ``bench/*.py``, the differential run), so
their reports name the machine with the same keys.
"""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path
from typing import Any


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def _memory_gb() -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(float(line.split()[1]) / 1024 / 1024, 1)
    return None


def machine() -> dict[str, Any]:
    """CPUs (all, and those this process may use), CPU model, RAM, load, Python, kernel."""
    return {
        "cpus": os.cpu_count(),
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gb": _memory_gb(),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def describe(m: dict[str, Any] | None = None) -> str:
    """One line for a report: "AMD EPYC …, 2 CPUs, 23.5 GB RAM, Python 3.11.7"."""
    m = m or machine()
    return f"{m['cpu_model']}, {m['nproc']} CPUs, {m['memory_gb']} GB RAM, Python {m['python']}"
