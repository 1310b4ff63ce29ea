"""Identical input by construction: a tap collector fans each scrape out to both variants.

For an experiment on real collectors, three collectors run:

- **tap**: the only hostmetrics receiver. It scrapes the union of what both variants' receivers
  would (every metric and resource attribute either enables, the finer interval, include/
  exclude only when both variants agree) and sends every batch, unprocessed, over OTLP/gRPC
  on loopback to both variants; a third exporter serves the same input as Prometheus text
  (``prometheus/input``), which is what critical coverage is judged against.
- **baseline** and **candidate**: an ``otlp`` receiver instead of hostmetrics, then the
  variant's receiver choices expressed as processors (metric toggles → ``filter`` on metric
  name, include/exclude → ``filter`` on ``process.executable.name``, disabled resource
  attributes → ``transform`` ``delete_key``, a longer interval → ``interval``), then the
  variant's own processors and exporters, unchanged.

Both variants thus see byte-identical batches and each is its own process, so CPU, RSS and
``otelcol_*`` self-telemetry are measured per variant (docs/real-collector.md).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.catalog._common import attr, ottl_str
from core.catalog.base import EmitContext
from core.catalog.hostmetrics import MUTE_FLAGS
from core.catalog.process_metrics import DEFAULT_METRICS, METRICS_BY_NAME, RESOURCE_ATTRIBUTE_DEFAULTS
from core.catalog.registry import REGISTRY
from core.domain.durations import duration_or_none
from core.domain.pipeline import Pipeline
from core.render.collector import RenderedCollector, RenderOptions, build, comment_safe
from core.render.jinja import render

VARIANTS = ("baseline", "candidate")
TAP_METRICS_FILTER = "filter/phoenix_tap_metrics"
TAP_NAMES_FILTER = "filter/phoenix_tap_names"
TAP_ATTRIBUTES = "transform/phoenix_tap_attributes"
TAP_INTERVAL = "interval/phoenix_tap_interval"
INPUT_EXPORTER = "prometheus/input"
_MUTE_KEYS = ("mute_process_all_errors", *(f"mute_process_{f}_error" for f in MUTE_FLAGS))


@dataclass(frozen=True)
class TapPorts:
    """Loopback ports of the three collectors (``otlp`` = the variant's OTLP/gRPC receiver)."""

    tap_telemetry: int
    tap_health: int
    input_metrics: int
    baseline_otlp: int
    candidate_otlp: int
    baseline_metrics: int
    candidate_metrics: int
    baseline_telemetry: int
    candidate_telemetry: int
    baseline_health: int
    candidate_health: int

    def of(self, variant: str, what: str) -> int:
        return int(getattr(self, f"{variant}_{what}"))


@dataclass(frozen=True)
class TapConfigs:
    tap: RenderedCollector
    variants: dict[str, RenderedCollector]


# ---------------------------------------------------------------- what each receiver would scrape


def _receiver(config: Mapping[str, Any]) -> dict[str, Any]:
    return dict(config["receivers"]["hostmetrics"])


def _enabled(process: Mapping[str, Any], table: Mapping[str, bool], key: str) -> set[str]:
    toggles = {k: bool((v or {}).get("enabled")) for k, v in (process.get(key) or {}).items()}
    return {name for name, default in table.items() if toggles.get(name, default)}


def _metrics_on(process: Mapping[str, Any]) -> set[str]:
    return _enabled(process, {m: m in DEFAULT_METRICS for m in METRICS_BY_NAME}, "metrics")


def _attributes_on(process: Mapping[str, Any]) -> set[str]:
    return _enabled(process, RESOURCE_ATTRIBUTE_DEFAULTS, "resource_attributes")


def _seconds(receiver: Mapping[str, Any]) -> float:
    return float(duration_or_none(str(receiver.get("collection_interval", "1m"))) or 60.0)


def tap_receiver(variant_receivers: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The hostmetrics receiver that scrapes everything either variant's receiver would."""
    recs = list(variant_receivers.values())
    procs = [r["scrapers"]["process"] for r in recs]
    process: dict[str, Any] = {}
    for key in ("include", "exclude"):
        values = [p.get(key) for p in procs]
        if values[0] is not None and all(v == values[0] for v in values):
            process[key] = copy.deepcopy(values[0])
    for key in _MUTE_KEYS:
        process[key] = any(bool(p.get(key)) for p in procs)
    metrics = set().union(*(_metrics_on(p) for p in procs))
    toggles = {m: {"enabled": m in metrics} for m in METRICS_BY_NAME if (m in metrics) != (m in DEFAULT_METRICS)}
    if toggles:
        process["metrics"] = dict(sorted(toggles.items()))
    attrs = set().union(*(_attributes_on(p) for p in procs))
    atoggles = {a: {"enabled": a in attrs} for a, on in RESOURCE_ATTRIBUTE_DEFAULTS.items() if (a in attrs) != on}
    if atoggles:
        process["resource_attributes"] = dict(sorted(atoggles.items()))
    scrapers: dict[str, Any] = {"process": process}
    if any("processes" in r["scrapers"] for r in recs):
        scrapers["processes"] = {}
    finest = min(recs, key=_seconds)["collection_interval"]
    return {"collection_interval": finest, "scrapers": scrapers}


def receiver_processors(variant: Mapping[str, Any], tap: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """What the variant's own receiver would have left out of the tap's data, as processors."""
    vp, tp = variant["scrapers"]["process"], tap["scrapers"]["process"]
    out: dict[str, dict[str, Any]] = {}
    drop_metrics = sorted(_metrics_on(tp) - _metrics_on(vp))
    if "processes" in tap["scrapers"] and "processes" not in variant["scrapers"]:
        drop_metrics += ["system.processes.count", "system.processes.created"]
    if drop_metrics:
        out[TAP_METRICS_FILTER] = {"error_mode": "ignore", "metrics": {
            "metric": [f"name == {ottl_str(m)}" for m in drop_metrics]}}
    conditions = []
    for key in ("include", "exclude"):
        want = vp.get(key)
        if want is None or want == tp.get(key):
            continue
        name = attr("process.executable.name")
        matchers = [f"IsMatch({name}, {ottl_str(n)})" if want.get("match_type", "strict") == "regexp"
                    else f"{name} == {ottl_str(n)}" for n in want["names"]]
        if key == "include":
            conditions.append(f"{name} != nil and not ({' or '.join(matchers)})")
        else:
            conditions.extend(matchers)
    if conditions:
        out[TAP_NAMES_FILTER] = {"error_mode": "ignore", "metrics": {"metric": conditions}}
    drop_attrs = sorted(_attributes_on(tp) - _attributes_on(vp))
    if drop_attrs:
        out[TAP_ATTRIBUTES] = {"error_mode": "ignore", "metric_statements": [{
            "context": "resource",
            "statements": [f"delete_key(resource.attributes, {ottl_str(a)})" for a in drop_attrs]}]}
    if _seconds(variant) > _seconds(tap):
        out[TAP_INTERVAL] = {"interval": variant["collection_interval"]}
    return out


# ---------------------------------------------------------------- the three configs


def _telemetry(port: int, host: str) -> dict[str, Any]:
    return {"metrics": {"level": "detailed", "readers": [{"pull": {"exporter": {"prometheus": {
        "host": host, "port": port}}}}]}}


def _text(config: dict[str, Any], name: str, experiment_id: str, variant: str, notes: list[str]) -> str:
    from core.render.collector import COLLECTOR_IMAGE, COLLECTOR_VERSION

    return render("collector/collector.yaml.j2", pipeline_name=comment_safe(name),
                  collector_version=COLLECTOR_VERSION, collector_image=COLLECTOR_IMAGE,
                  experiment_id=experiment_id, variant=variant, notes=[comment_safe(n) for n in notes],
                  config=config)  # fmt: skip


def render_tap(experiment_id: str, pipelines: Mapping[str, Pipeline], ports: TapPorts, *,
               listen_host: str = "127.0.0.1", root_path: str | None = None,
               otlp_hosts: Mapping[str, str] | None = None) -> TapConfigs:
    """The tap's config and each variant's (otlp receiver + receiver choices + its pipeline).

    ``listen_host`` is where what is scraped or probed from outside listens (health_check,
    self-telemetry, prometheus exporters, the input): loopback on this host, ``0.0.0.0`` in a
    pod (kubelet probes and Prometheus reach the pod's IP). ``root_path`` is the tap's
    hostmetrics ``root_path`` (``/hostfs`` on Kubernetes).

    ``otlp_hosts`` (variant → host name) is where the tap sends each variant its batches. By
    default the OTLP hop stays on loopback (this host: three processes). On Kubernetes the
    three collectors are three pods, so the tap sends to each variant's node-local Service
    (core.render.k8s_resources) and the variants' OTLP receivers listen on ``listen_host``.
    """
    remote = bool(otlp_hosts)
    otlp_listen = listen_host if remote else "127.0.0.1"
    hosts = {v: (otlp_hosts or {}).get(v, "127.0.0.1") for v in VARIANTS}
    built = {}
    for v in VARIANTS:
        opts = RenderOptions(experiment_id=experiment_id, variant=v, telemetry_host=listen_host,
                             telemetry_port=ports.of(v, "telemetry"), health_host=listen_host,
                             health_port=ports.of(v, "health"), prometheus_host=listen_host,
                             prometheus_port=ports.of(v, "metrics"))  # fmt: skip
        built[v] = build(pipelines[v], opts)
    receivers = {v: _receiver(built[v].config) for v in VARIANTS}
    tap_recv = tap_receiver(receivers)

    variants: dict[str, RenderedCollector] = {}
    for v in VARIANTS:
        config = copy.deepcopy(built[v].config)
        config["receivers"] = {"otlp": {"protocols": {"grpc": {"endpoint": f"{otlp_listen}:{ports.of(v, 'otlp')}"}}}}
        own = config.get("processors") or {}
        first = next(iter(own), None)
        head = {first: own[first]} if first and first.startswith("memory_limiter") else {}
        procs = {**head, **receiver_processors(receivers[v], tap_recv), **own}
        pipeline = config["service"]["pipelines"]["metrics"]
        pipeline["receivers"] = ["otlp"]
        if procs:
            config["processors"] = procs
            pipeline["processors"] = list(procs)
            # keep the top-level key order readable: processors before exporters
            config = {k: config[k] for k in ("extensions", "receivers", "processors", "exporters", "service")}
        hop = "its node's tap pod, through a node-local Service" if remote else "loopback"
        notes = [*built[v].notes, f"input arrives from the experiment's tap collector over OTLP ({hop})"]
        variants[v] = RenderedCollector(config=config, notes=notes,
                                        text=_text(config, pipelines[v].name, experiment_id, v, notes))

    input_exporter = REGISTRY["prometheus"].emit(
        {"endpoint": f"{listen_host}:{ports.input_metrics}"}, EmitContext(node_id="input", experiment_id=experiment_id,
                                                                      variant="input"))  # fmt: skip
    exporters: dict[str, Any] = {
        f"otlp/{v}": {"endpoint": f"{hosts[v]}:{ports.of(v, 'otlp')}", "tls": {"insecure": True},
                      "compression": "none"} for v in VARIANTS}  # fmt: skip
    exporters[INPUT_EXPORTER] = input_exporter.exporters["prometheus/input"]
    tap_hostmetrics = {**tap_recv, "root_path": root_path} if root_path else tap_recv
    tap_config: dict[str, Any] = {
        "extensions": {"health_check": {"endpoint": f"{listen_host}:{ports.tap_health}"}},
        "receivers": {"hostmetrics": tap_hostmetrics},
        "exporters": exporters,
        "service": {
            "extensions": ["health_check"],
            "pipelines": {"metrics": {"receivers": ["hostmetrics"], "exporters": list(exporters)}},
            "telemetry": _telemetry(ports.tap_telemetry, listen_host),
        },
    }
    tap_name = f"tap-{pipelines['baseline'].name}-vs-{pipelines['candidate'].name}"[:200]
    tap_notes = ["scrapes once for both variants; every batch goes unprocessed to each of them"]
    tap = RenderedCollector(config=tap_config, notes=tap_notes,
                            text=_text(tap_config, tap_name, experiment_id, "tap", tap_notes))
    return TapConfigs(tap=tap, variants=variants)
