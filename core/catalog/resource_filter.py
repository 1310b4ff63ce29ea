"""Resource filter: keep processes above CPU-utilisation / memory thresholds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.catalog._common import check_params
from core.catalog._thresholds import (
    BY_CHOICES,
    DEFAULT_CPU_UTILIZATION,
    DEFAULT_MEMORY_BYTES,
    emit_thresholds,
)
from core.catalog.base import EmitContext, Emitted, NodeType, Param, short_bytes
from core.catalog.kernel_ops import apply_thresholds

if TYPE_CHECKING:
    from core.catalog.eval_context import EvalContext
    from core.catalog.frame import ResourceFrame


class ResourceFilter(NodeType):
    type_name = "resource_filter"
    title = "Resource filter (thresholds)"
    description = (
        "Marks processes at or above a CPU-utilisation or memory threshold to stay individual; "
        "with action drop, other non-critical processes are dropped."
    )
    reduces_processes = True
    keeps_processes = True
    ranked_by = "by"
    params = (
        Param("by", "enum", "combined", "Which thresholds apply (cpu needs process.cpu.utilization enabled).",
              choices=BY_CHOICES),
        Param("cpu_utilization", "float", DEFAULT_CPU_UTILIZATION, "Keep at or above this CPU ratio (1.0 = one core).",
              "ratio", minimum=0, maximum=1024),
        Param("memory_bytes", "bytes", DEFAULT_MEMORY_BYTES, "Keep at or above this RSS.", "bytes", minimum=0),
        Param("action", "enum", "drop", "drop: remove the rest; mark: only mark (a rollup decides).",
              choices=("drop", "mark")),
    )

    def describe(self, p: dict[str, Any]) -> str:
        cpu, mem = f"cpu ≥ {float(p['cpu_utilization']):g}", f"mem ≥ {short_bytes(p['memory_bytes'])}"
        rule = {"cpu": cpu, "memory": mem}.get(p["by"], f"{cpu} or {mem}")
        return f"{rule} · {p['action']} the rest"

    def validate(self, params: dict[str, Any]) -> list[str]:
        return check_params(self.params, params)

    def emit(self, params: dict[str, Any], ctx: EmitContext) -> Emitted:
        p = self.with_defaults(params)
        return emit_thresholds(ctx.node_id, p["by"], p["cpu_utilization"], p["memory_bytes"], p["action"] == "drop")

    def kernel(self, frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
        p = self.with_defaults(params)
        return apply_thresholds(frame, ctx, p["by"], float(p["cpu_utilization"]), int(p["memory_bytes"]),
                                p["action"] == "drop")


NODE = ResourceFilter()
