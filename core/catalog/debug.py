"""debug exporter: logs what would be sent (no network)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.catalog._common import check_params, component_id
from core.catalog.base import EmitContext, Emitted, NodeType, Param

if TYPE_CHECKING:
    from core.catalog.eval_context import EvalContext
    from core.catalog.frame import ResourceFrame


class Debug(NodeType):
    type_name = "debug"
    kind = "exporter"
    title = "Debug"
    description = "Writes telemetry to the collector log."
    params = (
        Param("verbosity", "enum", "basic", "How much to log.", choices=("basic", "normal", "detailed")),
    )

    def describe(self, p: dict[str, Any]) -> str:
        return f"log {p['verbosity']}"

    def validate(self, params: dict[str, Any]) -> list[str]:
        return check_params(self.params, params)

    def emit(self, params: dict[str, Any], ctx: EmitContext) -> Emitted:
        p = self.with_defaults(params)
        return Emitted(exporters={component_id("debug", ctx.node_id): {"verbosity": p["verbosity"]}})

    def kernel(self, frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
        return frame  # exporters change no data; the estimate accounts their bytes per encoding


NODE = Debug()
