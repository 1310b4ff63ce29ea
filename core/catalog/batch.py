"""batch: groups data before export (last processor)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.catalog._common import check_params, component_id
from core.catalog.base import EmitContext, Emitted, NodeType, Param

if TYPE_CHECKING:
    from core.catalog.eval_context import EvalContext
    from core.catalog.frame import ResourceFrame


class Batch(NodeType):
    type_name = "batch"
    title = "Batch"
    description = "Batches data points before export; must be the last processor."
    position = "last"
    params = (
        Param("timeout", "duration", "1s", "Send a batch at least this often.", "s", minimum=0, maximum=600),
        Param("send_batch_size", "int", 8192, "Send when this many items are queued.", minimum=1, maximum=1_000_000),
    )

    def describe(self, p: dict[str, Any]) -> str:
        return f"{int(p['send_batch_size']):,} items or {p['timeout']}"

    def validate(self, params: dict[str, Any]) -> list[str]:
        return check_params(self.params, params)

    def emit(self, params: dict[str, Any], ctx: EmitContext) -> Emitted:
        p = self.with_defaults(params)
        return Emitted(processors={component_id("batch", ctx.node_id): {
            "timeout": p["timeout"], "send_batch_size": p["send_batch_size"],
        }})

    def kernel(self, frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
        return frame  # batching changes when points leave, not which


NODE = Batch()
