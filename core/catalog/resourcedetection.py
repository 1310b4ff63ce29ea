"""resourcedetection: adds host identity (``host.name`` …) from env and system detectors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.catalog._common import check_params, component_id
from core.catalog.base import EmitContext, Emitted, NodeType, Param

if TYPE_CHECKING:
    from core.engine.context import EvalContext
    from core.engine.frame import ResourceFrame


class ResourceDetection(NodeType):
    type_name = "resourcedetection"
    title = "Resource detection"
    description = "Adds host.name and OS attributes so series from different hosts stay apart."
    params = (
        Param("detectors", "list[str]", ["env", "system"], "Detectors, in order.", choices=("env", "system")),
        Param("override", "bool", False, "Overwrite attributes that are already set."),
    )

    def validate(self, params: dict[str, Any]) -> list[str]:
        problems = check_params(self.params, params)
        if not problems and not self.with_defaults(params)["detectors"]:
            problems.append("detectors must list at least one detector")
        return problems

    def emit(self, params: dict[str, Any], ctx: EmitContext) -> Emitted:
        p = self.with_defaults(params)
        return Emitted(processors={component_id("resourcedetection", ctx.node_id): {
            "detectors": list(p["detectors"]), "override": p["override"],
        }})

    def kernel(self, frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
        from core.engine import ops

        return ops.resourcedetection(frame, params, ctx)


NODE = ResourceDetection()
