"""prometheus exporter: a pull endpoint; process identity becomes labels."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from core.catalog._common import check_params, component_id
from core.catalog.base import EmitContext, Emitted, NodeType, Param, short_endpoint
from core.domain.durations import duration_or_none

if TYPE_CHECKING:
    from core.catalog.eval_context import EvalContext
    from core.catalog.frame import ResourceFrame

HOSTPORT_RE = re.compile(r"^[A-Za-z0-9_.\-\[\]:]*:\d{1,5}$")
LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


class Prometheus(NodeType):
    type_name = "prometheus"
    kind = "exporter"
    wire_encoding = "prometheus"
    title = "Prometheus (pull)"
    description = "Serves /metrics for Prometheus to scrape; resource attributes become labels."
    params = (
        Param("endpoint", "str", "0.0.0.0:8889", "host:port the /metrics endpoint listens on."),
        Param("namespace", "str", "", "Prefix for metric names (empty: none).", advanced=True),
        Param("metric_expiration", "duration", "5m", "Forget series not updated for this long.", "s",
              minimum=1, maximum=86400),
        Param("const_labels", "map", {}, "Extra labels on every series.", advanced=True),
    )

    def listen_port(self, params: Mapping[str, Any]) -> str | None:
        return str(self.with_defaults(params)["endpoint"]).rsplit(":", 1)[-1]

    def describe(self, p: dict[str, Any]) -> str:
        return f"/metrics on {short_endpoint(p['endpoint'])}"

    def validate(self, params: dict[str, Any]) -> list[str]:
        problems = check_params(self.params, params)
        if problems:
            return problems
        p = self.with_defaults(params)
        if not HOSTPORT_RE.match(p["endpoint"]):
            problems.append(f"endpoint must be host:port, got {p['endpoint']!r}")
        if p["namespace"] and not LABEL_RE.match(p["namespace"]):
            problems.append("namespace must be a valid Prometheus name ([a-zA-Z_][a-zA-Z0-9_]*)")
        for k, v in p["const_labels"].items():
            if not LABEL_RE.match(k) or k.startswith("__"):
                problems.append(f"const_labels: {k!r} is not a valid label name")
            if not isinstance(v, str):
                problems.append(f"const_labels: value of {k} must be a string")
        if duration_or_none(p["metric_expiration"]) is None:
            problems.append("metric_expiration must be a Go duration")
        return problems

    def emit(self, params: dict[str, Any], ctx: EmitContext) -> Emitted:
        p = self.with_defaults(params)
        labels = dict(p["const_labels"])
        if ctx.experiment_id:
            labels["phoenix_experiment_id"] = ctx.experiment_id
        if ctx.variant:
            labels["phoenix_variant"] = ctx.variant
        cfg: dict[str, Any] = {"endpoint": p["endpoint"]}
        if p["namespace"]:
            cfg["namespace"] = p["namespace"]
        if labels:
            cfg["const_labels"] = dict(sorted(labels.items()))
        cfg["metric_expiration"] = p["metric_expiration"]
        # Without this, process identity lives only in target_info and series collide.
        cfg["resource_to_telemetry_conversion"] = {"enabled": True}
        return Emitted(exporters={component_id("prometheus", ctx.node_id): cfg})

    def kernel(self, frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
        return frame  # exporters change no data; the estimate accounts their bytes per encoding


NODE = Prometheus()
