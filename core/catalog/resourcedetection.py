"""resourcedetection: adds host identity (``host.name`` …) from env and system detectors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from core.catalog._common import check_params, component_id
from core.catalog.base import EmitContext, Emitted, NodeType, Param
from core.catalog.frame import HOST_NAME_ATTRIBUTE, OS_TYPE_ATTRIBUTE

if TYPE_CHECKING:
    from core.catalog.eval_context import EvalContext
    from core.catalog.frame import ResourceFrame


class ResourceDetection(NodeType):
    type_name = "resourcedetection"
    title = "Resource detection"
    description = "Adds host.name and OS attributes so series from different hosts stay apart."
    params = (
        Param("detectors", "list[str]", ["env", "system"], "Detectors, in order.", choices=("env", "system")),
        Param("override", "bool", False, "Overwrite attributes that are already set."),
    )

    def describe(self, p: dict[str, Any]) -> str:
        return " + ".join(p["detectors"]) + (" · override" if p["override"] else "")

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
        """collector: ``resourcedetection`` with the ``system`` detector adds ``host.name`` (and
        ``os.type``, on by default); ``env`` adds nothing without OTEL_RESOURCE_ATTRIBUTES."""
        p = self.with_defaults(params)
        detectors = p.get("detectors") or ["env", "system"]
        if "system" not in detectors:
            return frame
        df = frame.df.copy(deep=False)
        df[HOST_NAME_ATTRIBUTE] = df["host_name"].copy()
        df[OS_TYPE_ATTRIBUTE] = pd.Categorical.from_codes(np.zeros(len(df), dtype=np.int8), categories=["linux"])
        return frame.replace(df)


NODE = ResourceDetection()
