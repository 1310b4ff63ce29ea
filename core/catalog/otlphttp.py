"""otlphttp exporter, set up for New Relic by default.

Component type ``otlphttp``: the name the pinned release (see core.render) registers;
newer cores call it ``otlp_http`` and keep ``otlphttp`` as an alias, so the emitted
YAML works on both. Validated against the ``otlp_http`` schema.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.catalog._common import check_params, component_id, endpoint_problem, env_ref, secret_env_problem
from core.catalog.base import EmitContext, Emitted, NodeType, Param, short_endpoint

if TYPE_CHECKING:
    from core.catalog.eval_context import EvalContext
    from core.catalog.frame import ResourceFrame

NEW_RELIC_US = "https://otlp.nr-data.net"
NEW_RELIC_EU = "https://otlp.eu01.nr-data.net"


class OtlpHttp(NodeType):
    type_name = "otlphttp"
    kind = "exporter"
    wire_encoding = "otlp"
    title = "OTLP/HTTP (New Relic)"
    description = "Sends OTLP over HTTP; defaults to New Relic US with the license key from the environment."
    params = (
        Param("endpoint", "str", NEW_RELIC_US, f"OTLP endpoint (New Relic EU: {NEW_RELIC_EU})."),
        Param("api_key_env", "str", "NEW_RELIC_LICENSE_KEY", "Environment variable with the api-key header value (NEW_RELIC_LICENSE_KEY or PHOENIX_*)."),
        Param("compression", "enum", "gzip", "Payload compression.", choices=("gzip", "zstd", "none")),
    )

    def describe(self, p: dict[str, Any]) -> str:
        return f"→ {short_endpoint(p['endpoint'])} · {p['compression']}"

    def validate(self, params: dict[str, Any]) -> list[str]:
        problems = check_params(self.params, params)
        if problems:
            return problems
        p = self.with_defaults(params)
        if (bad := endpoint_problem(p["endpoint"])) is not None:
            problems.append(bad)
        if p["api_key_env"] and (bad := secret_env_problem("otlphttp", "api_key_env", p["api_key_env"])):
            problems.append(bad)
        return problems

    def emit(self, params: dict[str, Any], ctx: EmitContext) -> Emitted:
        p = self.with_defaults(params)
        cfg: dict[str, Any] = {"endpoint": p["endpoint"], "compression": p["compression"]}
        if p["api_key_env"]:
            cfg["headers"] = {"api-key": env_ref(p["api_key_env"])}
        return Emitted(exporters={component_id("otlphttp", ctx.node_id): cfg})

    def kernel(self, frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
        return frame  # exporters change no data; the estimate accounts their bytes per encoding


NODE = OtlpHttp()
