"""Interval / downsample: fewer data points per minute, same series."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.catalog._common import check_params, component_id
from core.catalog.base import EmitContext, Emitted, NodeType, Param
from core.catalog.kernel_ops import duration_seconds

if TYPE_CHECKING:
    from core.catalog.eval_context import EvalContext
    from core.catalog.frame import ResourceFrame


class Interval(NodeType):
    type_name = "interval"
    title = "Interval (downsample)"
    description = "Exports at most one data point per series per interval (contrib `interval` processor, alpha)."
    params = (
        Param("interval", "duration", "60s", "Export interval.", "s", minimum=1, maximum=86400),
        Param("pass_through_gauges", "bool", False, "Pass gauges through unaggregated.", advanced=True),
    )

    def describe(self, p: dict[str, Any]) -> str:
        return f"one point every {p['interval']}"

    def validate(self, params: dict[str, Any]) -> list[str]:
        return check_params(self.params, params)

    def emit(self, params: dict[str, Any], ctx: EmitContext) -> Emitted:
        p = self.with_defaults(params)
        cfg: dict[str, Any] = {"interval": p["interval"]}
        if p["pass_through_gauges"]:
            cfg["pass_through"] = {"gauge": True}
        return Emitted(processors={component_id("interval", ctx.node_id): cfg})

    def kernel(self, frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
        """collector: ``interval`` processor — same series, one point per interval at most."""
        p = self.with_defaults(params)
        ctx.processor_interval_s = duration_seconds(p.get("interval"), ctx.collection_interval_s)
        ctx.report(export_interval_s=ctx.export_interval_s)
        return frame


NODE = Interval()
