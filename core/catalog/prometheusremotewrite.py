"""prometheusremotewrite exporter: push to a remote-write endpoint (drops delta sums)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from core.catalog._common import ENV_NAME_RE, check_params, component_id, env_ref
from core.catalog.base import EmitContext, Emitted, NodeType, Param
from core.catalog.prometheus import LABEL_RE

if TYPE_CHECKING:
    from core.engine.context import EvalContext
    from core.engine.frame import ResourceFrame

URL_RE = re.compile(r"^https?://[^\s]+$")
HEADER_RE = re.compile(r"^[A-Za-z0-9-]+$")


class PrometheusRemoteWrite(NodeType):
    type_name = "prometheusremotewrite"
    kind = "exporter"
    title = "Prometheus remote write"
    description = "Pushes series to a remote-write endpoint (Grafana Cloud, Mimir, Prometheus)."
    params = (
        Param("endpoint", "str", "http://prometheus:9090/api/v1/write", "Remote-write URL."),
        Param("headers_env", "map", {}, "HTTP header → environment variable holding its value "
              "(e.g. Authorization → PRW_AUTHORIZATION); written as ${env:NAME}."),
        Param("external_labels", "map", {}, "Labels added to every series.", advanced=True),
    )

    def validate(self, params: dict[str, Any]) -> list[str]:
        problems = check_params(self.params, params)
        if problems:
            return problems
        p = self.with_defaults(params)
        if not URL_RE.match(p["endpoint"]):
            problems.append(f"endpoint must be an http(s) URL, got {p['endpoint']!r}")
        for h, env in p["headers_env"].items():
            if not HEADER_RE.match(h):
                problems.append(f"headers_env: {h!r} is not a valid header name")
            if not isinstance(env, str) or not ENV_NAME_RE.match(env):
                problems.append(f"headers_env: {h} must name an environment variable (secrets are never "
                                f"written into the config), got {env!r}")
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
        from core.engine import ops

        return ops.prometheusremotewrite(frame, params, ctx)


NODE = PrometheusRemoteWrite()
