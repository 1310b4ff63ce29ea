"""Adaptive: top-K whose K follows a per-host series budget, re-tuned during runs.

K = max(0, ⌊(budget − critical series − rollup series) / series per process⌋) with the
fleet's median counts; then thresholds exactly like ``topk``.
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
from core.catalog.topk import threshold_note

if TYPE_CHECKING:
    from core.catalog.eval_context import EvalContext
    from core.catalog.frame import ResourceFrame


class Adaptive(NodeType):
    type_name = "adaptive"
    title = "Adaptive (series budget)"
    description = "Keeps as many of the largest processes per host as a series budget allows; re-tuned during runs."
    reduces_processes = True
    keeps_processes = True
    ranked_by = "by"
    tuning = "budget_thresholds"
    params = (
        Param("series_budget_per_host", "int", 800, "Target exported series per host.", "series",
              minimum=1, maximum=1_000_000),
        Param("by", "enum", "cpu", "Ranking (cpu needs process.cpu.utilization enabled).", choices=BY_CHOICES),
        Param("retune_interval", "duration", "60s", "How often Phoenix re-tunes thresholds during a run.",
              "s", minimum=5, maximum=86400),
        Param("action", "enum", "mark", "mark: a following rollup gathers the rest; drop: remove the rest.",
              choices=("mark", "drop")),
        Param("computed", "map", {}, "k, cpu_utilization, memory_bytes, source, computed_at (filled by the engine).",
              advanced=True),
    )

    def validate(self, params: dict[str, Any]) -> list[str]:
        problems = check_params(self.params, params)
        if problems:
            return problems
        return computed_problems(self.with_defaults(params)["computed"], ("k", "cpu_utilization", "memory_bytes"))

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
        k = (p.get("computed") or {}).get("k")
        ctx.report(target_k=None if k is None else int(k), computed=bool(computed),
                   series_budget_per_host=int(p["series_budget_per_host"]))
        return out


NODE = Adaptive()
