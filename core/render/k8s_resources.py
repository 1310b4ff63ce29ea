"""The custom resources Phoenix asks the cluster for, as plain API objects (dicts).

The Kubernetes runtime (``core.runtime.kubernetes``) applies these for an experiment and
promotion commits the production one to the GitOps repository; the Phoenix operator
reconciles them into ConfigMaps, DaemonSets and Jobs. Pure functions: no client, no I/O,
so unit tests compare objects and the API server's schema check is the CRDs' own.

An experiment is three ``PhoenixProcessPipeline`` resources, the local tap construction
(``core.render.tap``) as three DaemonSets: the **tap** (the only one reading the host) and
the two **variants**, which receive the tap's batches over OTLP through their node-local
Service (``<name>-otlp``, ``internalTrafficPolicy: Local``, created by the operator for a
resource with ``spec.otlpPort``), so the tap on node N feeds exactly the variants on node N.

Naming (DNS-1123 labels, ≤ 63 characters, ``core.render.k8s.dns_name``):
``phoenix-<experiment>-<role>`` for the tap's and each variant's ``PhoenixProcessPipeline``,
``load-<experiment>`` for its ``LoadSimulationJob``, ``phoenix-<experiment>-scrape`` for the
scrape-config ConfigMap or PodMonitor, ``phoenix-production`` for the promoted pipeline.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.domain.criteria import CPU_PATTERNS, LoadProfile
from core.domain.errors import ValidationError
from core.domain.experiment import Experiment
from core.domain.pipeline import Pipeline
from core.render.collector import TELEMETRY_PORT, RenderOptions, build
from core.render.k8s import dns_name
from core.render.tap import VARIANTS, TapConfigs, TapPorts, render_tap

GROUP = "phoenix.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
PIPELINE_KIND, PIPELINE_PLURAL = "PhoenixProcessPipeline", "phoenixprocesspipelines"
LOAD_KIND, LOAD_PLURAL = "LoadSimulationJob", "loadsimulationjobs"
MONITORING_GROUP, MONITORING_VERSION, PODMONITOR_PLURAL = "monitoring.coreos.com", "v1", "podmonitors"
PRODUCTION_NAME = "phoenix-production"
HEALTH_PORT = 13133
METRICS_PORT = 8889
#: The variants' OTLP/gRPC receiver (the standard port: each variant is its own pod).
OTLP_PORT = 4317
TAP = "tap"
#: An experiment's three collectors, in apply order.
ROLES = (TAP, *VARIANTS)
HOST_ROOT = "/hostfs"
#: Where the operator's collector pods carry an experiment's identity (CR labels are copied).
LABEL_EXPERIMENT = "phoenix.io/experiment-id"
LABEL_VARIANT = "phoenix.io/variant"
LABEL_PIPELINE = "phoenix.io/pipeline"
MANAGED_BY = {"app.kubernetes.io/part-of": "phoenix", "app.kubernetes.io/managed-by": "phoenix"}
#: The experiment's own id (label values are its DNS form, which may differ).
ANNOTATION_EXPERIMENT = "phoenix.io/experiment"
SCRAPE_FILE = "prometheus-scrape.yaml"
_GO_DURATION_MAX_S = 10 * 24 * 3600
_NAME_TEMPLATE = re.compile(r"^[A-Za-z0-9._{}-]{1,64}$")


@dataclass(frozen=True)
class CollectorPlacement:
    """Where and how the collectors run: image, node selector, tolerations, resources, ports."""

    image: str
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    resources: dict[str, dict[str, str]] = field(default_factory=dict)
    health_port: int = HEALTH_PORT
    metrics_port: int = METRICS_PORT


def default_placement(node_selector: Mapping[str, str] | None = None) -> CollectorPlacement:
    """The render's pinned image and default resources, on Linux nodes (the process scraper reads /proc)."""
    from core.render.collector import COLLECTOR_IMAGE
    from core.render.k8s import DEFAULT_RESOURCES

    return CollectorPlacement(image=COLLECTOR_IMAGE, node_selector={"kubernetes.io/os": "linux", **(node_selector or {})},
                              resources={k: dict(v) for k, v in DEFAULT_RESOURCES.items()})  # fmt: skip


def collector_options(placement: CollectorPlacement, experiment_id: str | None = None,
                      variant: str | None = None) -> RenderOptions:
    """How a pipeline renders for the operator's DaemonSet: the host root at /hostfs, the
    prometheus exporter on the pod's metrics port, health_check on its health port."""
    return RenderOptions(experiment_id=experiment_id, variant=variant, root_path="/hostfs",
                         health_port=placement.health_port, prometheus_host="0.0.0.0",
                         prometheus_port=placement.metrics_port)  # fmt: skip


def otlp_service_name(pipeline_resource: str) -> str:
    """The Service the operator creates for a ``PhoenixProcessPipeline`` with ``spec.otlpPort``."""
    return dns_name(pipeline_resource, "otlp")


def experiment_ports(placement: CollectorPlacement) -> TapPorts:
    """Every collector is its own pod, so all three use the same well-known ports."""
    health, metrics = placement.health_port, placement.metrics_port
    return TapPorts(tap_telemetry=TELEMETRY_PORT, tap_health=health, input_metrics=metrics,
                    baseline_otlp=OTLP_PORT, candidate_otlp=OTLP_PORT,
                    baseline_metrics=metrics, candidate_metrics=metrics,
                    baseline_telemetry=TELEMETRY_PORT, candidate_telemetry=TELEMETRY_PORT,
                    baseline_health=health, candidate_health=health)  # fmt: skip


def experiment_configs(experiment_id: str, namespace: str, pipelines: Mapping[str, Pipeline],
                       placement: CollectorPlacement) -> TapConfigs:
    """The tap's and the variants' collector configs, built exactly as the local runtime's
    (``core.render.tap.render_tap``): only the hop differs. The tap exports to each variant's
    ``<resource>-otlp`` Service by its cluster DNS name (``name.namespace.svc`` resolves through
    the pods' search path whatever the cluster domain); health, telemetry and exporters listen
    on every interface (kubelet probes and Prometheus reach the pod IP)."""
    hosts = {v: f"{otlp_service_name(pipeline_name(experiment_id, v))}.{namespace}.svc" for v in VARIANTS}
    return render_tap(experiment_id, pipelines, experiment_ports(placement), listen_host="0.0.0.0",
                      root_path=HOST_ROOT, otlp_hosts=hosts)


def experiment_label(experiment_id: str) -> str:
    """The experiment id as a label value and ``spec.experimentId`` (the CRDs allow 40 characters)."""
    return dns_name(experiment_id)[:40].rstrip("-")


def pipeline_name(experiment_id: str, variant: str) -> str:
    return dns_name("phoenix", experiment_id, variant)


def load_job_name(experiment_id: str) -> str:
    return dns_name("load", experiment_id)


def scrape_name(experiment_id: str) -> str:
    return dns_name("phoenix", experiment_id, "scrape")


def experiment_labels(experiment_id: str, variant: str | None = None) -> dict[str, str]:
    labels = {**MANAGED_BY, LABEL_EXPERIMENT: experiment_label(experiment_id)}
    if variant:
        labels[LABEL_VARIANT] = variant
    return labels


def _pipeline_spec(pipeline: str, version: int | None, config_map: str, config: str,
                   placement: CollectorPlacement) -> dict[str, Any]:
    spec: dict[str, Any] = {"pipelineName": dns_name(pipeline)[:80], "configMap": config_map,
                            "collectorImage": placement.image, "config": config,
                            "healthPort": placement.health_port, "metricsPort": placement.metrics_port}  # fmt: skip
    if version:
        spec["pipelineVersion"] = int(version)
    if placement.node_selector:
        spec["nodeSelector"] = dict(placement.node_selector)
    if placement.tolerations:
        spec["tolerations"] = [dict(t) for t in placement.tolerations]
    if placement.resources:
        spec["resources"] = {k: dict(v) for k, v in placement.resources.items()}
    return spec


def variant_pipeline(experiment_id: str, variant: str, namespace: str, *, pipeline: str, version: int | None,
                     config: str, placement: CollectorPlacement) -> dict[str, Any]:
    """One role's ``PhoenixProcessPipeline``; ``config`` is its whole collector YAML.

    ``variant`` is ``tap``, ``baseline`` or ``candidate``. The tap keeps the default host
    access (hostPID, the host root at ``/hostfs``); a variant gets ``otlpPort`` (the operator
    adds its node-local Service) and ``hostAccess: false`` (unprivileged, no host mounts).
    """
    name = pipeline_name(experiment_id, variant)
    spec = {"experimentId": experiment_label(experiment_id), "variant": variant,
            **_pipeline_spec(pipeline, version, name, config, placement)}  # fmt: skip
    if variant != TAP:
        spec["otlpPort"] = OTLP_PORT
        spec["hostAccess"] = False
    return {
        "apiVersion": API_VERSION,
        "kind": PIPELINE_KIND,
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {**experiment_labels(experiment_id, variant), LABEL_PIPELINE: name},
                     "annotations": {ANNOTATION_EXPERIMENT: experiment_id}},
        "spec": spec,
    }


def experiment_pipelines(experiment_id: str, namespace: str, pipelines: Mapping[str, Pipeline],
                         refs: Mapping[str, tuple[str, int | None]],
                         placement: CollectorPlacement) -> list[dict[str, Any]]:
    """The experiment's three ``PhoenixProcessPipeline`` resources (tap, baseline, candidate).

    ``pipelines`` and ``refs`` (name, version) are per variant. The one construction both
    ``PHOENIX_RUNTIME=kubernetes`` (applies them) and ``phoenix experiment render`` (writes
    them) use. ``ValidationError`` when a variant's pipeline cannot be rendered.
    """
    for v in VARIANTS:  # name the variant whose pipeline is broken
        try:
            build(pipelines[v], collector_options(placement, experiment_id, v))
        except ValidationError as exc:
            raise ValidationError(f"the {v} pipeline {refs[v][0]} cannot be rendered: {exc}") from None
    configs = experiment_configs(experiment_id, namespace, pipelines, placement)
    tap_name = f"tap-{dns_name(refs['baseline'][0])[:37]}-vs-{dns_name(refs['candidate'][0])[:37]}"[:80]
    out = [variant_pipeline(experiment_id, TAP, namespace, pipeline=tap_name.rstrip("-."), version=None,
                            config=configs.tap.text, placement=placement)]  # fmt: skip
    out += [variant_pipeline(experiment_id, v, namespace, pipeline=refs[v][0], version=refs[v][1],
                             config=configs.variants[v].text, placement=placement) for v in VARIANTS]  # fmt: skip
    return out


def experiment_objects(exp: Experiment, namespace: str, pipelines: Mapping[str, Pipeline],
                       placement: CollectorPlacement, *, use_pod_monitor: bool) -> list[dict[str, Any]]:
    """Everything an experiment on Kubernetes is, in apply order: the three pipelines, the
    ``LoadSimulationJob`` (unless the load is ``none``) and the measurement wiring (a
    PodMonitor for Prometheus Operator users, else the scrape-config ConfigMap)."""
    refs = {v: (getattr(exp, v).name, getattr(exp, v).version) for v in VARIANTS}
    objs = experiment_pipelines(exp.id, namespace, pipelines, refs, placement)
    job = load_job(exp.id, namespace, exp.load, exp.timing.duration_s, exp.target.node_selector)
    if job is not None:
        objs.append(job)
    objs.append(pod_monitor(exp.id, namespace) if use_pod_monitor else scrape_config_map(exp.id, namespace))
    return objs


def production_name(node_selector: Mapping[str, str] | None = None) -> str:
    """``phoenix-production``, or per node selector (two production targets may share a namespace)."""
    parts = [f"{k.rsplit('/', 1)[-1]}-{v}" for k, v in sorted((node_selector or {}).items())]
    return dns_name(PRODUCTION_NAME, *parts)


def production_pipeline(namespace: str, *, pipeline: str, version: int | None, config: str,
                        placement: CollectorPlacement, name: str = PRODUCTION_NAME,
                        experiment_id: str | None = None) -> dict[str, Any]:
    """The promoted pipeline as a standing ``PhoenixProcessPipeline`` (no experimentId, no variant)."""
    annotations = {"phoenix.io/promoted-from": experiment_id} if experiment_id else {}
    return {
        "apiVersion": API_VERSION,
        "kind": PIPELINE_KIND,
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {**MANAGED_BY, LABEL_PIPELINE: name},
                     **({"annotations": annotations} if annotations else {})},
        "spec": _pipeline_spec(pipeline, version, name, config, placement),
    }


def production_files(obj: dict[str, Any]) -> dict[str, str]:
    """``k8s/`` of a kubernetes target's production directory: the resource and a kustomization
    listing it, so an Argo CD Application (or ``kubectl apply -k``) syncs exactly that."""
    import yaml

    fname = f"{obj['metadata']['name']}.yaml"
    kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                     "resources": [fname]}  # fmt: skip
    return {f"k8s/{fname}": yaml.safe_dump(obj, sort_keys=False),
            "k8s/kustomization.yaml": yaml.safe_dump(kustomization, sort_keys=False)}


def go_duration(seconds: float) -> str:
    """``90s`` style, whole seconds rounded up (the CRD's pattern is ``([0-9]+(s|m|h))+``)."""
    return f"{max(1, min(_GO_DURATION_MAX_S, math.ceil(seconds)))}s"


def _custom_patterns(load: LoadProfile) -> list[dict[str, Any]]:
    out = []
    for pat in load.patterns()[:50]:
        # The domain allows a format spec in the slot ({i:03d}); the CRD's name charset does not.
        template = re.sub(r"\{i:[^}]*\}", "{i}", str(pat["name_template"]))
        item: dict[str, Any] = {"nameTemplate": template if _NAME_TEMPLATE.match(template) else "worker-{i}",
                                "count": int(pat["count"])}  # fmt: skip
        if pat.get("lifetime_s"):
            item["lifetime"] = go_duration(float(pat["lifetime_s"]))
        for src, dst in (("cpu_pattern", "cpuPattern"), ("memory_pattern", "memoryPattern")):
            if pat.get(src) in CPU_PATTERNS:
                item[dst] = pat[src]
        out.append(item)
    return out


def load_job(experiment_id: str, namespace: str, load: LoadProfile, duration_s: float,
             node_selector: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """The experiment's ``LoadSimulationJob``, or None for load profile ``none``.

    Runs a little longer than the measurement (readiness and the last interval are inside
    it); the operator's Job TTL removes what is left should a teardown be missed.
    """
    if load.name == "none":
        return None
    spec: dict[str, Any] = {
        "experimentId": experiment_label(experiment_id),
        "profile": load.name,
        "duration": go_duration(duration_s + 60),
        "processCount": max(10, min(10_000, int(load.max_processes))),
    }
    if load.name == "process-churn":
        spec["churnRate"] = 0.5  # half the processes replaced per minute: the churn profile's point
    if load.name == "custom":
        spec["customPatterns"] = _custom_patterns(load)
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    return {
        "apiVersion": API_VERSION,
        "kind": LOAD_KIND,
        "metadata": {"name": load_job_name(experiment_id), "namespace": namespace,
                     "labels": experiment_labels(experiment_id), "annotations": {ANNOTATION_EXPERIMENT: experiment_id}},
        "spec": spec,
    }


def _meta_label(key: str) -> str:
    """A pod label as Prometheus' kubernetes_sd exposes it."""
    return "__meta_kubernetes_pod_label_" + re.sub(r"[^A-Za-z0-9_]", "_", key)


#: The collector pod's container ports Prometheus scrapes (named by the operator's DaemonSet):
#: the prometheus exporter (what the pipeline keeps) and otelcol's self-telemetry (CPU, RSS,
#: points sent), which the measurements need both of.
SCRAPED_PORTS = ("metrics", "telemetry")
#: Labels the Prometheus Operator puts on every PodMonitor target itself (from the namespace,
#: the pod, its container and the endpoint's port); the scrape config adds the same ones.
OPERATOR_TARGET_LABELS = {
    "namespace": "__meta_kubernetes_namespace",
    "pod": "__meta_kubernetes_pod_name",
    "container": "__meta_kubernetes_pod_container_name",
    "endpoint": "__meta_kubernetes_pod_container_port_name",
}
#: Prometheus relabel keys and their PodMonitor (Prometheus Operator) spelling.
_CAMEL = {"source_labels": "sourceLabels", "target_label": "targetLabel", "separator": "separator",
          "regex": "regex", "replacement": "replacement", "action": "action"}


def scrape_job(experiment_id: str) -> str:
    return f"phoenix-experiment-{experiment_label(experiment_id)}"


def _phoenix_labels(experiment_id: str) -> list[dict[str, Any]]:
    """What Phoenix adds to every target, in both the scrape config and the PodMonitor: the two
    labels ``core.analysis.prometheus_reader`` queries by, the node, and one job name (the
    Operator would otherwise name the job ``<namespace>/<PodMonitor>``)."""
    return [
        {"source_labels": [_meta_label(LABEL_VARIANT)], "target_label": "phoenix_variant"},
        {"target_label": "phoenix_experiment_id", "replacement": experiment_id},
        {"source_labels": ["__meta_kubernetes_pod_node_name"], "target_label": "node"},
        {"target_label": "job", "replacement": scrape_job(experiment_id)},
    ]


def scrape_config(experiment_id: str, namespace: str) -> dict[str, Any]:
    """A Prometheus ``scrape_configs`` entry for the experiment's collector pods.

    Pods are found by the experiment label, on their ``metrics`` and ``telemetry`` ports, and
    finished pods are dropped (as a PodMonitor's ``filterRunning`` does); every series gets
    ``phoenix_experiment_id`` (the experiment's own id) and ``phoenix_variant`` from the pod,
    the two labels ``core.analysis.prometheus_reader`` queries by, plus the labels the
    Prometheus Operator would add, so both paths label the same series the same way
    (``pod_monitor``; tests/unit/test_k8s_scrape_equivalence.py proves it).
    """
    return {
        "job_name": scrape_job(experiment_id),
        "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": [namespace]}}],
        "relabel_configs": [
            {"source_labels": [_meta_label(LABEL_EXPERIMENT)], "regex": re.escape(experiment_label(experiment_id)),
             "action": "keep"},
            {"source_labels": ["__meta_kubernetes_pod_container_port_name"], "regex": "|".join(SCRAPED_PORTS),
             "action": "keep"},
            {"source_labels": ["__meta_kubernetes_pod_phase"], "regex": "Failed|Succeeded", "action": "drop"},
            *({"source_labels": [meta], "target_label": label} for label, meta in OPERATOR_TARGET_LABELS.items()),
            *_phoenix_labels(experiment_id),
        ],
    }


def scrape_config_map(experiment_id: str, namespace: str) -> dict[str, Any]:
    """The scrape config as a ConfigMap a Prometheus can mount (or a user can copy)."""
    import yaml

    text = yaml.safe_dump({"scrape_configs": [scrape_config(experiment_id, namespace)]},
                          sort_keys=False)  # fmt: skip
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": scrape_name(experiment_id), "namespace": namespace,
                     "labels": {**experiment_labels(experiment_id), "phoenix.io/scrape-config": "true"},
                     "annotations": {ANNOTATION_EXPERIMENT: experiment_id}},
        "data": {SCRAPE_FILE: text},
    }


def pod_monitor(experiment_id: str, namespace: str) -> dict[str, Any]:
    """The same selection and labels as ``scrape_config``, for Prometheus Operator users.

    The Operator turns ``selector`` and each endpoint's ``port`` into the keep rules the scrape
    config writes out, drops finished pods (``filterRunning``, on by default) and adds
    ``OPERATOR_TARGET_LABELS`` itself; Phoenix's own labels are the scrape config's rules,
    spelled the Operator's way.
    """
    relabelings = [{_CAMEL[k]: v for k, v in rule.items()} for rule in _phoenix_labels(experiment_id)]
    return {
        "apiVersion": f"{MONITORING_GROUP}/{MONITORING_VERSION}",
        "kind": "PodMonitor",
        "metadata": {"name": scrape_name(experiment_id), "namespace": namespace,
                     "labels": experiment_labels(experiment_id),
                     "annotations": {ANNOTATION_EXPERIMENT: experiment_id}},
        "spec": {
            "selector": {"matchLabels": {LABEL_EXPERIMENT: experiment_label(experiment_id)}},
            "podMetricsEndpoints": [{"port": port, "relabelings": relabelings} for port in SCRAPED_PORTS],
        },
    }
