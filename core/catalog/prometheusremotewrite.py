"""prometheusremotewrite exporter: push to a remote-write endpoint (drops delta sums)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from core.catalog._common import check_params, component_id, endpoint_problem, env_ref, secret_env_problem
from core.catalog.base import EmitContext, Emitted, NodeType, Param, short_endpoint
from core.catalog.prometheus import LABEL_RE

if TYPE_CHECKING:
    from core.catalog.eval_context import EvalContext
    from core.catalog.frame import ResourceFrame

HEADER_RE = re.compile(r"^[A-Za-z0-9-]+$")


class PrometheusRemoteWrite(NodeType):
    type_name = "prometheusremotewrite"
    kind = "exporter"
    wire_encoding = "prometheusremotewrite"
    title = "Prometheus remote write"
    description = "Pushes series to a remote-write endpoint (Grafana Cloud, Mimir, Prometheus)."
    params = (
        Param("endpoint", "str", "http://127.0.0.1:9090/api/v1/write",
              "Remote-write URL: https, or http to this host only."),
        Param("headers_env", "map", {}, "HTTP header → environment variable holding its value "
              "(e.g. Authorization → PHOENIX_PRW_AUTHORIZATION; PHOENIX_* names only); written as ${env:NAME}."),
        Param("external_labels", "map", {}, "Labels added to every series.", advanced=True),
    )

    def describe(self, p: dict[str, Any]) -> str:
        return f"→ {short_endpoint(p['endpoint'])}"

    def validate(self, params: dict[str, Any]) -> list[str]:
        problems = check_params(self.params, params)
        if problems:
            return problems
        p = self.with_defaults(params)
        if (bad := endpoint_problem(p["endpoint"])) is not None:
            problems.append(bad)
        for h, env in p["headers_env"].items():
            if not HEADER_RE.match(h):
                problems.append(f"headers_env: {h!r} is not a valid header name")
            if (bad := secret_env_problem("prometheusremotewrite", f"headers_env: {h}", env)) is not None:
                problems.append(bad)
        for k, v in p["external_labels"].items():
            if not LABEL_RE.match(k):
                problems.append(f"external_labels: {k!r} is not a valid label name")
            if not isinstance(v, str):
                problems.append(f"external_labels: value of {k} must be a string")
        return problems

    def emit(self, params: dict[str, Any], ctx: EmitContext) -> Emitted:
        p = self.with_defaults(params)
        cfg: dict[str, Any] = {"endpoint": p["endpoint"]}
        if p["headers_env"]:
            cfg["headers"] = {h: env_ref(env) for h, env in sorted(p["headers_env"].items())}
        labels = dict(p["external_labels"])
        if ctx.experiment_id:
            labels["phoenix_experiment_id"] = ctx.experiment_id
        if ctx.variant:
            labels["phoenix_variant"] = ctx.variant
        if labels:
            cfg["external_labels"] = dict(sorted(labels.items()))
        cfg["resource_to_telemetry_conversion"] = {"enabled": True}
        return Emitted(exporters={component_id("prometheusremotewrite", ctx.node_id): cfg})

    def kernel(self, frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
        return frame  # exporters change no data; the estimate accounts their bytes per encoding


NODE = PrometheusRemoteWrite()
