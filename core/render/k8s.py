"""Kubernetes manifests for one pipeline (variant): Namespace, ServiceAccount, ConfigMap,
DaemonSet, Service and the ``PhoenixProcessPipeline`` custom resource.

Templates live in ``templates/k8s/``; the ConfigMap carries exactly the rendered
collector.yaml (with ``root_path: /hostfs``), and the DaemonSet follows the collector
notes for host process metrics: hostPID, host root read-only at /hostfs with
HostToContainer propagation, node name via the downward API, root user, probes on the
``health_check`` extension.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from core.domain.pipeline import Pipeline
from core.render.collector import COLLECTOR_IMAGE, RenderedCollector, RenderOptions
from core.render.jinja import render

NAMESPACE = "phoenix-experiments"
SECRET_NAME = "phoenix-collector-secrets"
DEFAULT_RESOURCES = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"cpu": "500m", "memory": "512Mi"},
}
MANIFEST_FILES = (
    "namespace.yaml",
    "serviceaccount.yaml",
    "configmap.yaml",
    "daemonset.yaml",
    "service.yaml",
    "pipeline-cr.yaml",
)
_ENV = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class K8sOptions:
    namespace: str = NAMESPACE
    image: str = COLLECTOR_IMAGE
    # The process scraper reads /proc: Linux nodes only.
    node_selector: dict[str, str] = field(default_factory=lambda: {"kubernetes.io/os": "linux"})
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    resources: dict[str, dict[str, str]] = field(default_factory=lambda: dict(DEFAULT_RESOURCES))
    pipeline_version: int | None = None


def dns_name(*parts: str) -> str:
    """A DNS-1123 label from free-form parts (lower-case, '-', ≤ 63 characters)."""
    raw = "-".join(p for p in parts if p)
    name = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")
    name = re.sub(r"-{2,}", "-", name)
    if len(name) > 63:
        digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
        name = name[:54].rstrip("-") + "-" + digest
    return name or "phoenix"


def resource_name(pipeline: Pipeline, opts: RenderOptions) -> str:
    if opts.experiment_id:
        return dns_name("phoenix", opts.experiment_id, opts.variant or "")
    return dns_name("phoenix", pipeline.name)


def render_manifests(pipeline: Pipeline, collector: RenderedCollector, opts: RenderOptions,
                     k8s: K8sOptions | None = None) -> dict[str, str]:
    """``{file name: YAML}`` for the manifests, in apply order."""
    k8s = k8s or K8sOptions()
    name = resource_name(pipeline, opts)
    selector = {"app.kubernetes.io/name": "phoenix-collector", "app.kubernetes.io/instance": name}
    labels = {
        **selector,
        "app.kubernetes.io/part-of": "phoenix",
        "app.kubernetes.io/version": COLLECTOR_IMAGE.rsplit(":", 1)[1],
        "phoenix.io/pipeline": dns_name(pipeline.name),
    }
    if opts.experiment_id:
        labels["phoenix.io/experiment-id"] = dns_name(opts.experiment_id)
    if opts.variant:
        labels["phoenix.io/variant"] = opts.variant
    ports = _ports(collector.config, opts)
    secret_env = sorted({m for m in _ENV.findall(collector.text) if m != "K8S_NODE_NAME"})
    spec: dict[str, Any] = {}
    if opts.experiment_id:
        spec["experimentId"] = dns_name(opts.experiment_id)[:40].rstrip("-")
    if opts.variant:
        spec["variant"] = opts.variant
    spec["pipelineName"] = pipeline.name
    if k8s.pipeline_version:
        spec["pipelineVersion"] = k8s.pipeline_version
    spec["configMap"] = name
    spec["collectorImage"] = k8s.image
    # The operator builds the ConfigMap from this copy (the resource is the one source of truth).
    spec["config"] = collector.text
    spec["healthPort"] = opts.health_port
    if k8s.node_selector:
        spec["nodeSelector"] = dict(k8s.node_selector)
    if k8s.tolerations:
        spec["tolerations"] = list(k8s.tolerations)
    spec["resources"] = k8s.resources
    ctx = {
        "name": name,
        "namespace": k8s.namespace,
        "labels": labels,
        "selector": selector,
        "image": k8s.image,
        "data": {"collector.yaml": collector.text},
        "config_sha": hashlib.sha256(collector.text.encode()).hexdigest(),
        "node_selector": k8s.node_selector,
        "tolerations": k8s.tolerations,
        "resources": k8s.resources,
        "ports": ports,
        "config_dir": "/etc/otelcol",
        "containers": [{"name": "otelcol", "config": "collector.yaml", "host_access": True,
                        "secret_env": secret_env, "ports": ports, "health_port": opts.health_port}],
        "secret_name": SECRET_NAME,
        "spec": spec,
    }
    out: dict[str, str] = {}
    for fname in MANIFEST_FILES:
        text = render(f"k8s/{fname.replace('.yaml', '')}.yaml.j2", **ctx)
        # a template bug must fail here, not in kubectl (libyaml when present: renders run on every save)
        yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        out[fname] = text
    return out


def _ports(config: dict[str, Any], opts: RenderOptions) -> list[dict[str, Any]]:
    ports: list[dict[str, Any]] = []
    for i, (cid, cfg) in enumerate(sorted((config.get("exporters") or {}).items())):
        if cid.partition("/")[0] == "prometheus":
            port = int(str(cfg["endpoint"]).rsplit(":", 1)[1])
            ports.append({"name": "metrics" if i == 0 else f"metrics-{i}", "port": port})
    ports.append({"name": "telemetry", "port": opts.telemetry_port})
    ports.append({"name": "health", "port": opts.health_port})
    seen: set[int] = set()
    unique = []
    for p in ports:
        if p["port"] not in seen:
            seen.add(p["port"])
            unique.append(p)
    return unique


def render_load_job(experiment_id: str, profile: str, duration: str, process_count: int, *,
                    churn_rate: float | None = None, custom_patterns: list[dict[str, Any]] | None = None,
                    node_selector: dict[str, str] | None = None, namespace: str = NAMESPACE) -> str:
    """A ``LoadSimulationJob`` custom resource for an experiment (validated by its CRD)."""
    spec: dict[str, Any] = {
        "experimentId": dns_name(experiment_id)[:40].rstrip("-"),
        "profile": profile,
        "duration": duration,
        "processCount": process_count,
    }
    if churn_rate is not None:
        spec["churnRate"] = churn_rate
    if custom_patterns:
        spec["customPatterns"] = custom_patterns
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    name = dns_name("load", experiment_id)
    labels = {"app.kubernetes.io/part-of": "phoenix", "phoenix.io/experiment-id": spec["experimentId"]}
    return render("k8s/loadsimulationjob.yaml.j2", name=name, namespace=namespace, labels=labels, spec=spec)
