"""memory_limiter: refuses data before the collector runs out of memory (first processor)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.catalog._common import check_params, component_id
from core.catalog.base import EmitContext, Emitted, NodeType, Param

if TYPE_CHECKING:
    from core.catalog.eval_context import EvalContext
    from core.catalog.frame import ResourceFrame


class MemoryLimiter(NodeType):
    type_name = "memory_limiter"
    title = "Memory limiter"
    description = "Protects the collector's memory; must be the first processor."
    position = "first"
    params = (
        Param("check_interval", "duration", "1s", "How often memory is checked.", "s", minimum=0.001, maximum=60),
        Param("limit_percentage", "int", 80, "Hard limit, % of the container memory.", "%", minimum=1, maximum=100),
        Param("spike_limit_percentage", "int", 20, "Headroom for spikes, %.", "%", minimum=0, maximum=100),
    )

    def describe(self, p: dict[str, Any]) -> str:
        return f"limit {p['limit_percentage']}% · spike {p['spike_limit_percentage']}%"

    def validate(self, params: dict[str, Any]) -> list[str]:
        problems = check_params(self.params, params)
        if problems:
            return problems
        p = self.with_defaults(params)
        if p["spike_limit_percentage"] >= p["limit_percentage"]:
            problems.append("spike_limit_percentage must be lower than limit_percentage")
        return problems

    def emit(self, params: dict[str, Any], ctx: EmitContext) -> Emitted:
        p = self.with_defaults(params)
        return Emitted(processors={component_id("memory_limiter", ctx.node_id): {
            "check_interval": p["check_interval"],
            "limit_percentage": p["limit_percentage"],
            "spike_limit_percentage": p["spike_limit_percentage"],
        }})

    def kernel(self, frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
        return frame  # refuses data only under memory pressure, which an estimate does not model


NODE = MemoryLimiter()
