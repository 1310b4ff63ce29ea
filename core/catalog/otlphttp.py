"""otlphttp exporter, set up for New Relic by default.

Component type ``otlphttp``: the name the pinned release (see core.render) registers;
newer cores call it ``otlp_http`` and keep ``otlphttp`` as an alias, so the emitted
YAML works on both. Validated against the ``otlp_http`` schema.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from core.catalog._common import ENV_NAME_RE, check_params, component_id, env_ref
from core.catalog.base import EmitContext, Emitted, NodeType, Param

if TYPE_CHECKING:
    from core.engine.context import EvalContext
    from core.engine.frame import ResourceFrame

NEW_RELIC_US = "https://otlp.nr-data.net"
NEW_RELIC_EU = "https://otlp.eu01.nr-data.net"
URL_RE = re.compile(r"^https?://[^\s]+$")


class OtlpHttp(NodeType):
    type_name = "otlphttp"
    kind = "exporter"
    title = "OTLP/HTTP (New Relic)"
    description = "Sends OTLP over HTTP; defaults to New Relic US with the license key from the environment."
    params = (
        Param("endpoint", "str", NEW_RELIC_US, f"OTLP endpoint (New Relic EU: {NEW_RELIC_EU})."),
        Param("api_key_env", "str", "NEW_RELIC_LICENSE_KEY", "Environment variable with the api-key header value."),
        Param("compression", "enum", "gzip", "Payload compression.", choices=("gzip", "zstd", "none")),
    )

    def validate(self, params: dict[str, Any]) -> list[str]:
        problems = check_params(self.params, params)
        if problems:
            return problems
        p = self.with_defaults(params)
        if not URL_RE.match(p["endpoint"]):
            problems.append(f"endpoint must be an http(s) URL, got {p['endpoint']!r}")
        if p["api_key_env"] and not ENV_NAME_RE.match(p["api_key_env"]):
            problems.append("api_key_env must name an environment variable (the key itself is never written "
                            f"into the config), got {p['api_key_env']!r}")
        return problems

    def emit(self, params: dict[str, Any], ctx: EmitContext) -> Emitted:
        p = self.with_defaults(params)
        cfg: dict[str, Any] = {"endpoint": p["endpoint"], "compression": p["compression"]}
        if p["api_key_env"]:
            cfg["headers"] = {"api-key": env_ref(p["api_key_env"])}
        return Emitted(exporters={component_id("otlphttp", ctx.node_id): cfg})

    def kernel(self, frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
        from core.engine import ops

        return ops.otlphttp(frame, params, ctx)


NODE = OtlpHttp()
