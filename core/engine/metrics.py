"""The hostmetrics ``process`` scraper's metrics on Linux, as data.

Each metric is one OTel name with zero or one data-point attribute; every attribute value
maps to one value column of the resource frame. A process emits one series per (metric,
attribute value) whose column holds a value — the scraper emits nothing for values it could
not read (e.g. ``/proc/PID/io`` without root, or utilisation on a pid's first scrape).
See reference/otelcol-notes.md; default-on metrics give 7 series per process.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricSpec:
    name: str
    # (data-point attribute key, ((value, column), ...)); key None: one series, one column.
    attribute: str | None
    points: tuple[tuple[str | None, str], ...]
    default_enabled: bool
    monotonic: bool  # cumulative sum (counter) vs gauge
    unit: str

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(col for _, col in self.points)


def _m(name: str, attribute: str | None, points: dict[str | None, str], on: bool, mono: bool, unit: str) -> MetricSpec:
    return MetricSpec(name, attribute, tuple(points.items()), on, mono, unit)


PROCESS_METRICS: tuple[MetricSpec, ...] = (
    _m("process.cpu.time", "state",
       {"user": "cpu_time_user", "system": "cpu_time_system", "wait": "cpu_time_wait"}, True, True, "s"),
    _m("process.memory.usage", None, {None: "memory_usage"}, True, False, "By"),
    _m("process.memory.virtual", None, {None: "memory_virtual"}, True, False, "By"),
    _m("process.disk.io", "direction", {"read": "disk_io_read", "write": "disk_io_write"}, True, True, "By"),
    _m("process.cpu.utilization", "state",
       {"user": "cpu_utilization_user", "system": "cpu_utilization_system", "wait": "cpu_utilization_wait"},
       False, False, "1"),
    _m("process.memory.utilization", None, {None: "memory_utilization"}, False, False, "1"),
    _m("process.disk.operations", "direction",
       {"read": "disk_operations_read", "write": "disk_operations_write"}, False, True, "{operations}"),
    _m("process.paging.faults", "type",
       {"major": "paging_faults_major", "minor": "paging_faults_minor"}, False, True, "{faults}"),
    _m("process.context_switches", "type",
       {"involuntary": "context_switches_involuntary", "voluntary": "context_switches_voluntary"},
       False, True, "{count}"),
    _m("process.threads", None, {None: "threads"}, False, False, "{threads}"),
    _m("process.open_file_descriptors", None, {None: "open_file_descriptors"}, False, False, "{count}"),
    _m("process.signals_pending", None, {None: "signals_pending"}, False, False, "{signals}"),
)

METRICS_BY_NAME: dict[str, MetricSpec] = {m.name: m for m in PROCESS_METRICS}
DEFAULT_METRICS: frozenset[str] = frozenset(m.name for m in PROCESS_METRICS if m.default_enabled)
ALL_VALUE_COLUMNS: tuple[str, ...] = tuple(c for m in PROCESS_METRICS for c in m.columns)
DATAPOINT_ATTRIBUTES: tuple[str, ...] = ("state", "direction", "type")

# Resource attributes of the process scraper (default on), in the scraper's order, and the
# snapshot column each comes from.
RESOURCE_ATTRIBUTES: dict[str, str] = {
    "process.pid": "pid",
    "process.parent_pid": "parent_pid",
    "process.executable.name": "executable_name",
    "process.executable.path": "executable_path",
    "process.command": "command",
    "process.command_line": "command_line",
    "process.owner": "owner",
}
# Attributes that pipelines add on top of the scraper's.
HOST_NAME_ATTRIBUTE = "host.name"
PRIORITY = "phoenix.priority"
KEEP = "phoenix.keep"
ROLLUP = "phoenix.rollup"
MARKERS: tuple[str, ...] = (PRIORITY, KEEP, ROLLUP)
# Markers removed by transform/phoenix_cleanup before export; phoenix.priority stays a label.
INTERNAL_MARKERS: tuple[str, ...] = (KEEP, ROLLUP)

# Host totals the estimate compares in vs out (sum-preserving rollups keep them equal).
TOTAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "cpu_time_seconds": ("cpu_time_user", "cpu_time_system", "cpu_time_wait"),
    "memory_usage_bytes": ("memory_usage",),
    "memory_virtual_bytes": ("memory_virtual",),
    "disk_io_bytes": ("disk_io_read", "disk_io_write"),
}
