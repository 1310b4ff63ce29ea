"""Render a pipeline graph into an ``otelcol-contrib`` configuration.

Pinned release: **v0.159.0**, the one release of the Phoenix collector distribution
(``collector/builder-config.yaml``, built by ``phoenix otelcol build``) and of the image
``otel/opentelemetry-collector-contrib:0.159.0`` the Kubernetes manifests run. It is the
newest release at which every component Phoenix emits resolves through the Go module proxy
here (docs/real-collector.md). The vendored schemas (``core/render/schemas/``) are that
release's; the real binary validates every rendered config (core.otelcol.validate). We write
``otlphttp`` and ``hostmetrics`` etc., the type names the release still accepts as aliases of
its newer snake_case names.

Every node contributes its components through its catalogue module (``emit()``); this
module only assembles them in chain order, appends ``transform/phoenix_cleanup`` when
Phoenix markers are in use, and adds the ``health_check`` extension and the collector's
self-telemetry reader.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from core.catalog.base import EmitContext
from core.catalog.compiled import CompiledPipeline
from core.catalog.compiler import check
from core.domain.errors import ValidationError
from core.domain.pipeline import Pipeline
from core.render.jinja import render

COLLECTOR_VERSION = "0.159.0"
COLLECTOR_IMAGE = f"otel/opentelemetry-collector-contrib:{COLLECTOR_VERSION}"
TELEMETRY_PORT = 8888
HEALTH_PORT = 13133
CLEANUP_ID = "transform/phoenix_cleanup"
_EXPERIMENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


@dataclass(frozen=True)
class RenderOptions:
    experiment_id: str | None = None
    variant: str | None = None  # baseline | candidate
    root_path: str | None = None  # "/hostfs" inside the DaemonSet
    telemetry_port: int = TELEMETRY_PORT
    health_port: int = HEALTH_PORT
    telemetry_host: str = "0.0.0.0"
    health_host: str = "0.0.0.0"
    # When set, prometheus exporters listen here (the i-th one on port + i).
    prometheus_host: str | None = None
    prometheus_port: int | None = None
    # Per-exporter-node param overrides (the local runtime moves ports per variant).
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class RenderedCollector:
    config: dict[str, Any]
    notes: list[str]
    text: str


def build(pipeline: Pipeline | CompiledPipeline, opts: RenderOptions | None = None) -> RenderedCollector:
    """The collector config for a valid pipeline; ValidationError lists graph problems."""
    opts = opts or RenderOptions()
    problems, compiled = ([], pipeline) if isinstance(pipeline, CompiledPipeline) else check(pipeline)
    if opts.experiment_id is not None and not _EXPERIMENT_ID.match(opts.experiment_id):
        problems.append(f"experiment id must be 1-63 letters, digits, '.', '_' or '-', got {opts.experiment_id!r}")
    if opts.variant is not None and opts.variant not in ("baseline", "candidate"):
        problems.append(f"variant must be baseline or candidate, got {opts.variant!r}")
    if problems or compiled is None:
        raise ValidationError(problems)

    def ctx(node_id: str) -> EmitContext:
        return EmitContext(node_id=node_id, experiment_id=opts.experiment_id, variant=opts.variant,
                           enabled_metrics=compiled.enabled_metrics, critical_policy=compiled.policy)

    notes: list[str] = []
    receiver_node = compiled.receiver
    recv = receiver_node.node_type.emit(dict(receiver_node.params), ctx(receiver_node.id))
    receivers = recv.receivers
    hm = receivers["hostmetrics"]
    process = hm["scrapers"]["process"]
    metrics = dict(process.get("metrics") or {})
    # Receiver patches (compiled in chain order) are merged into the receiver.
    for patch in compiled.receiver_patches:
        metrics.update({m: {"enabled": on} for m, on in patch.get("metrics", {}).items()})
    if metrics:
        process["metrics"] = dict(sorted(metrics.items()))
    if opts.root_path:
        hm["root_path"] = opts.root_path

    processors: dict[str, Any] = {}
    uses_markers = False
    for n in compiled.chain:
        em = n.node_type.emit(dict(n.params), ctx(n.id))
        notes.extend(em.notes)
        if n.node_type.uses_markers(n.params):
            uses_markers = True
        # The cleanup goes right before the processor that must be last (batch).
        if n.node_type.position == "last" and uses_markers:
            processors[CLEANUP_ID] = _cleanup()
            uses_markers = False
        processors.update(em.processors)
    if uses_markers:
        processors[CLEANUP_ID] = _cleanup()

    exp_cfg: dict[str, Any] = {}
    prom_index = 0
    for n in compiled.exporters:
        params = {**n.params, **opts.overrides.get(n.id, {})}
        if n.node_type.listen_port(n.params) is not None and opts.prometheus_port is not None:
            params["endpoint"] = f"{opts.prometheus_host or '0.0.0.0'}:{opts.prometheus_port + prom_index}"
            prom_index += 1
        exp_cfg.update(n.node_type.emit(params, ctx(n.id)).exporters)

    config: dict[str, Any] = {
        "extensions": {"health_check": {"endpoint": f"{opts.health_host}:{opts.health_port}"}},
        "receivers": receivers,
        "processors": processors,
        "exporters": exp_cfg,
        "service": {
            "extensions": ["health_check"],
            "pipelines": {
                "metrics": {
                    "receivers": list(receivers),
                    "processors": list(processors),
                    "exporters": list(exp_cfg),
                }
            },
            "telemetry": {
                "metrics": {
                    "level": "detailed",
                    "readers": [{"pull": {"exporter": {"prometheus": {
                        "host": opts.telemetry_host, "port": opts.telemetry_port}}}}],
                }
            },
        },
    }
    if not processors:
        del config["processors"]
        del config["service"]["pipelines"]["metrics"]["processors"]
    _refuse_unexpected_references(config)
    notes = [comment_safe(n) for n in notes]
    text = render(
        "collector/collector.yaml.j2",
        pipeline_name=comment_safe(compiled.name),
        collector_version=COLLECTOR_VERSION,
        collector_image=COLLECTOR_IMAGE,
        experiment_id=opts.experiment_id and comment_safe(opts.experiment_id),
        variant=opts.variant,
        notes=notes,
        config=config,
    )
    return RenderedCollector(config=config, notes=notes, text=text)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
# The only ${...} a rendered config may hold: a whole value naming an allow-listed secret.
_ALLOWED_REFERENCE = re.compile(r"^\$\{env:(NEW_RELIC_LICENSE_KEY|PHOENIX_[A-Z0-9_]+)\}$")


def comment_safe(text: str) -> str:
    """One line of text for a YAML comment: control characters (newlines) become spaces."""
    return _CONTROL.sub(" ", text).strip()


def _refuse_unexpected_references(value: Any, where: str = "config") -> None:
    """Defence in depth behind the catalogue's checks: a ``${`` or ``$$`` anywhere but an
    allowed secret reference is an emitter bug or an injection, and nothing is rendered."""
    if isinstance(value, dict):
        for k, v in value.items():
            _refuse_unexpected_references(k, where)
            _refuse_unexpected_references(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _refuse_unexpected_references(v, f"{where}[{i}]")
    elif isinstance(value, str) and ("${" in value or "$$" in value) and not _ALLOWED_REFERENCE.match(value):
        raise ValidationError(f"{where}: {value[:80]!r} would expand in the collector; refusing to render it")


def render_collector(pipeline: Pipeline | CompiledPipeline, opts: RenderOptions | None = None) -> str:
    return build(pipeline, opts).text


def local_options(experiment_id: str | None, variant: str | None, *, metrics_port: int, telemetry_port: int,
                  health_port: int, host: str = "127.0.0.1") -> RenderOptions:
    """Options for running otelcol-contrib on this host (local runtime): loopback ports per
    variant so baseline and candidate can run side by side; no /hostfs."""
    return RenderOptions(experiment_id=experiment_id, variant=variant, root_path=None,
                         telemetry_port=telemetry_port, telemetry_host=host, health_port=health_port,
                         health_host=host, prometheus_host=host, prometheus_port=metrics_port)


def _cleanup() -> dict[str, Any]:
    # phoenix.priority stays as a label; the internal markers never leave the collector.
    return {
        "error_mode": "ignore",
        "metric_statements": [{
            "context": "resource",
            "statements": [
                'delete_key(resource.attributes, "phoenix.keep")',
                'delete_key(resource.attributes, "phoenix.rollup")',
            ],
        }],
    }
