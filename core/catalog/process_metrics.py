"""The hostmetrics ``process`` and ``processes`` scrapers' metrics, as one table of facts.

Every fact here is upstream's, from the scrapers' ``metadata.yaml`` of the pinned collector
release (``core/render/schemas/metadata/``); ``tests/unit/test_process_metrics.py`` fails when
they drift apart. Phoenix adds one thing of its own per metric: the resource-frame columns
that hold its values (one per data-point attribute value), empty when a snapshot never
carries the metric (``process.handles`` is Windows-only; ``process.uptime`` is not sampled).

The catalog (validation, emitters), the engine (frame, expansion, kernels), the encoders
(Prometheus names, OTLP types, HELP text) and ``docs/process-metrics.md`` all read this
table; nothing else lists metric names, units or defaults.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ProcessMetric:
    name: str
    unit: str
    kind: Literal["sum", "gauge"]
    monotonic: bool  # a cumulative sum that only grows (a Prometheus counter)
    value_type: Literal["int", "double"]
    default_enabled: bool
    description: str
    # The data-point attribute key on the wire (after upstream's name_override), its values
    # in upstream's enum order, and the frame column of each value (one column if no key).
    attribute: str | None = None
    attribute_values: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    scraper: Literal["process", "processes"] = "process"

    @property
    def is_monotonic_sum(self) -> bool:
        return self.kind == "sum" and self.monotonic

    @property
    def points(self) -> tuple[tuple[str | None, str], ...]:
        """(attribute value or None, frame column) for each series a process emits."""
        if self.attribute is None:
            return tuple((None, c) for c in self.columns)
        return tuple(zip(self.attribute_values, self.columns, strict=True))

    @property
    def attribute_keys(self) -> tuple[str, ...]:
        return (self.attribute,) if self.attribute else ()


@dataclass(frozen=True)
class ResourceAttribute:
    name: str
    value_type: Literal["int", "string"]
    default_enabled: bool
    column: str | None  # the snapshot column it comes from; None: snapshots do not carry it
    description: str


# Values in the order the engine has always expanded them (upstream's enum order differs;
# the set is the same, which is what the test checks).
_STATES = ("user", "system", "wait")
_DIRECTIONS = ("read", "write")

# Upstream's order in the process scraper's docs (the order Phoenix has always emitted
# toggles and rollup statements in: rendered configs and golden files depend on it).
PROCESS_METRICS: tuple[ProcessMetric, ...] = (
    ProcessMetric("process.cpu.time", "s", "sum", True, "double", True,
                  "Total CPU seconds broken down by different states.",
                  "state", _STATES, ("cpu_time_user", "cpu_time_system", "cpu_time_wait")),
    ProcessMetric("process.memory.usage", "By", "sum", False, "int", True,
                  "The amount of physical memory in use.", columns=("memory_usage",)),
    ProcessMetric("process.memory.virtual", "By", "sum", False, "int", True,
                  "Virtual memory size.", columns=("memory_virtual",)),
    ProcessMetric("process.disk.io", "By", "sum", True, "int", True, "Disk bytes transferred.",
                  "direction", _DIRECTIONS, ("disk_io_read", "disk_io_write")),
    ProcessMetric("process.cpu.utilization", "1", "gauge", False, "double", False,
                  "Percentage of total CPU time used by the process since last scrape, expressed as a value "
                  "between 0 and 1. On the first scrape, no data point is emitted for this metric.",
                  "state", _STATES, ("cpu_utilization_user", "cpu_utilization_system", "cpu_utilization_wait")),
    ProcessMetric("process.memory.utilization", "1", "gauge", False, "double", False,
                  "Percentage of total physical memory that is used by the process.",
                  columns=("memory_utilization",)),
    ProcessMetric("process.paging.faults", "{faults}", "sum", True, "int", False,
                  "Number of page faults the process has made.",
                  "type", ("major", "minor"), ("paging_faults_major", "paging_faults_minor")),
    ProcessMetric("process.signals_pending", "{signals}", "sum", False, "int", False,
                  "Number of pending signals for the process.", columns=("signals_pending",)),
    ProcessMetric("process.threads", "{threads}", "sum", False, "int", False,
                  "Process threads count.", columns=("threads",)),
    ProcessMetric("process.open_file_descriptors", "{count}", "sum", False, "int", False,
                  "Number of file descriptors in use by the process.", columns=("open_file_descriptors",)),
    ProcessMetric("process.handles", "{count}", "sum", False, "int", False,
                  "Number of open handles held by the process."),
    ProcessMetric("process.context_switches", "{count}", "sum", True, "int", False,
                  "Number of times the process has been context switched.",
                  "type", ("involuntary", "voluntary"),
                  ("context_switches_involuntary", "context_switches_voluntary")),
    ProcessMetric("process.disk.operations", "{operations}", "sum", True, "int", False,
                  "Number of disk operations performed by the process.",
                  "direction", _DIRECTIONS, ("disk_operations_read", "disk_operations_write")),
    ProcessMetric("process.uptime", "s", "gauge", False, "double", False,
                  "The time the process has been running."),
)

# The ``processes`` scraper (process counts per status): only encoders and docs need it.
PROCESSES_METRICS: tuple[ProcessMetric, ...] = (
    ProcessMetric("system.processes.count", "{processes}", "sum", False, "int", True,
                  "Total number of processes in each state.", "status",
                  ("blocked", "daemon", "detached", "idle", "locked", "orphan", "paging", "running",
                   "sleeping", "stopped", "system", "unknown", "zombies"), scraper="processes"),
    ProcessMetric("system.processes.created", "{processes}", "sum", True, "int", True,
                  "Total number of created processes. Supported on Linux and OpenBSD.", scraper="processes"),
)

RESOURCE_ATTRIBUTES: tuple[ResourceAttribute, ...] = (
    ResourceAttribute("process.pid", "int", True, "pid", "Process identifier (PID)."),
    ResourceAttribute("process.parent_pid", "int", True, "parent_pid", "Parent Process identifier (PPID)."),
    ResourceAttribute("process.executable.name", "string", True, "executable_name",
                      "The name of the process executable. On Linux based systems, can be set to the Name in "
                      "proc/[pid]/status. On Windows, can be set to the base name of GetProcessImageFileNameW."),
    ResourceAttribute("process.executable.path", "string", True, "executable_path",
                      "The full path to the process executable. On Linux based systems, can be set to the target "
                      "of proc/[pid]/exe. On Windows, can be set to the result of GetProcessImageFileNameW."),
    ResourceAttribute("process.command", "string", True, "command",
                      "The command used to launch the process (i.e. the command name). On Linux based systems, "
                      "can be set to the zeroth string in proc/[pid]/cmdline. On Windows, can be set to the first "
                      "parameter extracted from GetCommandLineW."),
    ResourceAttribute("process.command_line", "string", True, "command_line",
                      "The full command used to launch the process as a single string representing the full "
                      "command. On Windows, can be set to the result of GetCommandLineW. Do not set this if you "
                      "have to assemble it just for monitoring; use process.command_args instead."),
    ResourceAttribute("process.owner", "string", True, "owner", "The username of the user that owns the process."),
    ResourceAttribute("process.cgroup", "string", False, None, "cgroup associated with the process (Linux only)."),
)

# ------------------------------------------------------------------ views of the table

METRICS_BY_NAME: dict[str, ProcessMetric] = {m.name: m for m in PROCESS_METRICS}
ALL_METRICS_BY_NAME: dict[str, ProcessMetric] = {m.name: m for m in (*PROCESS_METRICS, *PROCESSES_METRICS)}
DEFAULT_METRICS: frozenset[str] = frozenset(m.name for m in PROCESS_METRICS if m.default_enabled)
# Metrics a snapshot carries values for: the ones the engine can count.
FRAME_METRICS: tuple[ProcessMetric, ...] = tuple(m for m in PROCESS_METRICS if m.columns)
ALL_VALUE_COLUMNS: tuple[str, ...] = tuple(c for m in FRAME_METRICS for c in m.columns)
DATAPOINT_ATTRIBUTES: tuple[str, ...] = tuple(dict.fromkeys(k for m in PROCESS_METRICS for k in m.attribute_keys))
ALL_DATAPOINT_ATTRIBUTES: tuple[str, ...] = tuple(
    dict.fromkeys(k for m in ALL_METRICS_BY_NAME.values() for k in m.attribute_keys)
)
# Resource attribute → on by default (what the receiver's toggles start from).
RESOURCE_ATTRIBUTE_DEFAULTS: dict[str, bool] = {a.name: a.default_enabled for a in RESOURCE_ATTRIBUTES}
# Resource attribute → snapshot column, for the attributes snapshots carry.
RESOURCE_ATTRIBUTE_COLUMNS: dict[str, str] = {a.name: a.column for a in RESOURCE_ATTRIBUTES if a.column}


def enabled_metrics(toggles: Mapping[str, object] | None, patches: Iterable[Mapping[str, bool]] = ()) -> frozenset[str]:
    """Metrics the receiver exports: upstream defaults, then its toggles, then later patches
    (receiver-mode metric selection), each ``{name: enabled}``."""
    merged = dict(toggles or {})
    for patch in patches:
        merged.update(patch)
    on = set(DEFAULT_METRICS)
    for name, enabled in merged.items():
        if enabled:
            on.add(name)
        else:
            on.discard(name)
    return frozenset(on)
