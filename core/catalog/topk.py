"""Top-K processes per host, compiled to thresholds Phoenix computes from observed data.

Contrib has no top-K processor, so Phoenix picks thresholds such that about K
non-critical processes per host pass (fleet threshold = median over hosts of the K-th
largest value; ``combined`` = cpu OR memory, each for ⌈K/2⌉). The engine writes them
into ``computed`` with their source and time; without them the documented defaults
are emitted and the YAML says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.catalog._common import check_params
from core.catalog._thresholds import (
    BY_CHOICES,
    DEFAULT_CPU_UTILIZATION,
    DEFAULT_MEMORY_BYTES,
    computed_problems,
    effective,
    emit_thresholds,
)
from core.catalog.base import EmitContext, Emitted, NodeType, Param
from core.catalog.kernel_ops import apply_thresholds

if TYPE_CHECKING:
    from core.catalog.eval_context import EvalContext
    from core.catalog.frame import ResourceFrame


class TopK(NodeType):
    type_name = "topk"
    title = "Top-K per host"
    description = "Keeps the K largest non-critical processes per host individual (by cpu, memory or both)."
    reduces_processes = True
    keeps_processes = True
    ranked_by = "by"
    tuning = "k_thresholds"
    params = (
        Param("k", "int", 10, "Processes kept individual per host (besides critical ones).", minimum=0, maximum=10000),
        Param("by", "enum", "memory", "Ranking (cpu needs process.cpu.utilization enabled).", choices=BY_CHOICES),
        Param("action", "enum", "mark", "mark: a following rollup gathers the rest; drop: remove the rest.",
              choices=("mark", "drop")),
        Param("computed", "map", {}, "Thresholds Phoenix computed: cpu_utilization, memory_bytes, source, "
              "computed_at (filled by the engine).", advanced=True),
    )

    def describe(self, p: dict[str, Any]) -> str:
        text = f"{int(p['k'])} by {p['by']}" + (" · drop the rest" if p["action"] == "drop" else "")
        return text + (" · tuned" if self.is_tuned(p) else "")

    def validate(self, params: dict[str, Any]) -> list[str]:
        problems = check_params(self.params, params)
        if problems:
            return problems
        return computed_problems(self.with_defaults(params)["computed"], ("cpu_utilization", "memory_bytes"))

    def emit(self, params: dict[str, Any], ctx: EmitContext) -> Emitted:
        p = self.with_defaults(params)
        cpu, mem, computed = effective(p["computed"], p["by"], DEFAULT_CPU_UTILIZATION, DEFAULT_MEMORY_BYTES)
        out = emit_thresholds(ctx.node_id, p["by"], cpu, mem, p["action"] == "drop")
        out.notes.append(threshold_note(ctx.node_id, p, computed))
        return out

    def kernel(self, frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
        p = self.with_defaults(params)
        cpu, mem, computed = effective(p.get("computed"), p["by"], DEFAULT_CPU_UTILIZATION, DEFAULT_MEMORY_BYTES)
        if not computed:
            ctx.warn(f"{ctx.node_id}: thresholds not computed from data; the documented defaults apply")
        out = apply_thresholds(frame, ctx, p["by"], cpu, mem, p["action"] == "drop")
        ctx.report(target_k=int(p["k"]), computed=bool(computed))
        return out


def threshold_note(node_id: str, p: dict[str, Any], computed: bool) -> str:
    if computed:
        c = p["computed"]
        values = ", ".join(f"{k} {c[k]}" for k in ("k", "cpu_utilization", "memory_bytes") if k in c)
        return (f"{node_id}: thresholds computed by Phoenix from {c.get('source', 'a snapshot')} "
                f"at {c.get('computed_at', 'unknown time')} ({values})")
    return (f"{node_id}: DEFAULT thresholds (cpu >= {DEFAULT_CPU_UTILIZATION}, memory >= "
            f"{DEFAULT_MEMORY_BYTES} bytes); estimate on a snapshot to compute them for this fleet")


NODE = TopK()
