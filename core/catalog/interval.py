"""Interval / downsample: fewer data points per minute, same series."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.catalog._common import check_params, component_id
from core.catalog.base import EmitContext, Emitted, NodeType, Param

if TYPE_CHECKING:
    from core.engine.context import EvalContext
    from core.engine.frame import ResourceFrame


class Interval(NodeType):
    type_name = "interval"
    title = "Interval (downsample)"
    description = "Exports at most one data point per series per interval (contrib `interval` processor, alpha)."
    params = (
        Param("interval", "duration", "60s", "Export interval.", "s", minimum=1, maximum=86400),
        Param("pass_through_gauges", "bool", False, "Pass gauges through unaggregated.", advanced=True),
    )

    def validate(self, params: dict[str, Any]) -> list[str]:
        return check_params(self.params, params)

    def emit(self, params: dict[str, Any], ctx: EmitContext) -> Emitted:
        p = self.with_defaults(params)
        cfg: dict[str, Any] = {"interval": p["interval"]}
        if p["pass_through_gauges"]:
            cfg["pass_through"] = {"gauge": True}
        return Emitted(processors={component_id("interval", ctx.node_id): cfg})

    def kernel(self, frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
        from core.engine import ops

        return ops.interval(frame, params, ctx)


NODE = Interval()
