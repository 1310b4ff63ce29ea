"""Threshold marking shared by resource_filter, topk and adaptive.

The collector has no top-K processor (contrib#39423), so all three compile to the same
shape: a ``transform`` in datapoint context that marks ``phoenix.keep`` on processes at
or above CPU-utilisation / memory thresholds, optionally followed by a ``filter`` that
drops unmarked non-critical processes (a negated keep-list: the filter drops matches).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.catalog._common import GUARD, attr, component_id
from core.catalog.base import Emitted

# Used when no snapshot has been evaluated yet (the engine fills `computed`).
DEFAULT_CPU_UTILIZATION = 0.05  # 5% of one core
DEFAULT_MEMORY_BYTES = 256 * 1024 * 1024  # 256 MiB RSS
BY_CHOICES = ("cpu", "memory", "combined")


def uses_cpu(by: str) -> bool:
    return by in ("cpu", "combined")


def uses_memory(by: str) -> bool:
    return by in ("memory", "combined")


def ottl_float(x: float) -> str:
    """A float literal OTTL parses: positional, never ``1e-05`` (OTTL's grammar has no exponent)."""
    return str(np.format_float_positional(float(x), trim="0"))


def keep_statements(by: str, cpu_utilization: float, memory_bytes: int) -> list[str]:
    keep = attr("phoenix.keep")
    out = []
    if uses_memory(by):
        out.append(
            f'set({keep}, "true") where metric.name == "process.memory.usage" and value_int >= {int(memory_bytes)}'
        )
    if uses_cpu(by):
        out.append(
            f'set({keep}, "true") where metric.name == "process.cpu.utilization" '
            f"and value_double >= {ottl_float(cpu_utilization)}"
        )
    return out


def emit_thresholds(node_id: str, by: str, cpu_utilization: float, memory_bytes: int, drop: bool) -> Emitted:
    out = Emitted()
    out.processors[component_id("transform", node_id)] = {
        "error_mode": "ignore",
        "metric_statements": [
            {"context": "datapoint", "statements": keep_statements(by, cpu_utilization, memory_bytes)}
        ],
    }
    if drop:
        out.processors[component_id("filter", node_id)] = {
            "error_mode": "ignore",
            "metrics": {"metric": [GUARD]},
        }
    return out


def computed_problems(computed: Any, need: tuple[str, ...]) -> list[str]:
    """Shape check of a `computed` block written by the engine."""
    if computed in (None, {}):
        return []
    if not isinstance(computed, dict):
        return ["computed must be a mapping"]
    problems = []
    for key in need:
        v = computed.get(key)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
            problems.append(f"computed.{key} must be a non-negative number, got {v!r}")
    for key in ("source", "computed_at"):
        if key in computed and not isinstance(computed[key], str):
            problems.append(f"computed.{key} must be a string")
    return problems


def effective(computed: Any, by: str, cpu_default: float, mem_default: int) -> tuple[float, int, bool]:
    """Thresholds to emit and whether they are Phoenix-computed (False: documented defaults)."""
    c = computed if isinstance(computed, dict) else {}
    cpu = c.get("cpu_utilization")
    mem = c.get("memory_bytes")
    have = (not uses_cpu(by) or cpu is not None) and (not uses_memory(by) or mem is not None)
    return (
        float(cpu) if cpu is not None else cpu_default,
        int(mem) if mem is not None else mem_default,
        have,
    )
