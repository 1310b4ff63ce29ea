"""cumulativetodelta: monotonic sums as deltas (what New Relic prefers)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.catalog._common import check_params, component_id
from core.catalog.base import EmitContext, Emitted, NodeType, Param

if TYPE_CHECKING:
    from core.catalog.eval_context import EvalContext
    from core.catalog.frame import ResourceFrame


class CumulativeToDelta(NodeType):
    type_name = "cumulativetodelta"
    title = "Cumulative → delta"
    description = "Converts cumulative sums to deltas; Prometheus-remote-write drops delta sums, so pair with OTLP."
    params = (
        Param("max_staleness", "duration", "10m", "Forget a series' state after this long unseen.", "s",
              minimum=0, maximum=86400),
    )

    def describe(self, p: dict[str, Any]) -> str:
        return f"forget after {p['max_staleness']}"

    def validate(self, params: dict[str, Any]) -> list[str]:
        return check_params(self.params, params)

    def emit(self, params: dict[str, Any], ctx: EmitContext) -> Emitted:
        p = self.with_defaults(params)
        return Emitted(processors={component_id("cumulativetodelta", ctx.node_id): {
            "max_staleness": p["max_staleness"],
        }})

    def kernel(self, frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
        return frame  # same series and points; only the temporality changes


NODE = CumulativeToDelta()
