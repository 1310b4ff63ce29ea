"""Kubernetes manifests for an experiment: tap + baseline + candidate in one pod per node.

The local design (core.render.tap, docs/real-collector.md) runs three collectors on one
host: the tap is the only hostmetrics receiver and sends every batch over OTLP/gRPC on
loopback to both variants. On Kubernetes the same three run as the three containers of
one DaemonSet pod, so every node has its own tap feeding its own two variants over the
pod's loopback (containers of a pod share its network namespace): identical input per
node by the same construction, and each variant is still its own process, so its CPU, RSS
and ``otelcol_*`` telemetry are its own.

Files (apply order): Namespace, ServiceAccount, one ConfigMap (``tap.yaml``,
``baseline.yaml``, ``candidate.yaml``), one DaemonSet, and one Service per role (the
single-pipeline ``service.yaml`` template: Prometheus scrape annotations on the first
port). Only the tap has host access (root with SYS_PTRACE/DAC_READ_SEARCH, the host root
read-only at ``/hostfs``); ``hostPID`` is a pod-level field, so the variants share the host
PID namespace but run as the image's unprivileged user with every capability dropped, a
read-only root filesystem and no host mounts. No ``PhoenixProcessPipeline`` resource: that
describes one pipeline's own DaemonSet, which this pod is not.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from core.domain.errors import ValidationError
from core.domain.pipeline import Pipeline
from core.outputs import write_tree
from core.render.collector import COLLECTOR_IMAGE
from core.render.jinja import render
from core.render.k8s import _ENV, SECRET_NAME, K8sOptions, dns_name
from core.render.tap import VARIANTS, TapConfigs, TapPorts, render_tap

#: Fixed ports inside the pod (one network namespace for the three containers). Each role
#: has its own health_check port, so each container's probes judge that container; the
#: variants' OTLP receivers listen on loopback only.
POD_PORTS = TapPorts(
    tap_telemetry=8888, tap_health=13133, input_metrics=8889,
    baseline_otlp=14317, baseline_telemetry=18888, baseline_metrics=18889, baseline_health=13134,
    candidate_otlp=24317, candidate_telemetry=28888, candidate_metrics=28889, candidate_health=13135,
)  # fmt: skip
ROLES = ("tap", *VARIANTS)
CONFIG_DIR = "/conf"
HOST_ROOT = "/hostfs"
# Container port names are unique in the pod (Service targetPorts resolve by name) and at
# most 15 characters (IANA service names).
_PREFIX = {"tap": "tap", "baseline": "base", "candidate": "cand"}
MANIFEST_FILES = (
    "namespace.yaml",
    "serviceaccount.yaml",
    "configmap.yaml",
    "daemonset.yaml",
    "service-tap.yaml",
    "service-baseline.yaml",
    "service-candidate.yaml",
)


@dataclass
class ExperimentBundle:
    configs: dict[str, str]  # role → collector YAML (as in the ConfigMap)
    manifests: dict[str, str]  # file name → YAML, in apply order
    notes: list[str]

    def files(self) -> dict[str, str]:
        """Relative path → content: ``<role>.yaml`` and ``k8s/*.yaml``."""
        out = {f"{role}.yaml": text for role, text in self.configs.items()}
        out.update({f"k8s/{name}": text for name, text in self.manifests.items()})
        return out


def render_experiment_configs(experiment_id: str, pipelines: Mapping[str, Pipeline]) -> TapConfigs:
    """The three configs as the pod runs them: fixed in-pod ports, the OTLP hop on loopback,
    health/telemetry/exporters on every interface (probes and Prometheus reach the pod IP)."""
    return render_tap(experiment_id, pipelines, POD_PORTS, listen_host="0.0.0.0", root_path=HOST_ROOT)


def role_ports(configs: TapConfigs) -> dict[str, list[dict[str, Any]]]:
    """role → its named container ports: what it serves for Prometheus first (the input for
    the tap, the prometheus exporters for a variant), then self-telemetry, then health."""
    out: dict[str, list[dict[str, Any]]] = {}
    for role in ROLES:
        pre = _PREFIX[role]
        if role == "tap":
            ports = [{"name": "input", "port": POD_PORTS.input_metrics}]
        else:
            exporters = configs.variants[role].config.get("exporters") or {}
            served = sorted(int(str(cfg["endpoint"]).rsplit(":", 1)[1]) for cid, cfg in exporters.items()
                            if cid.partition("/")[0] == "prometheus")  # fmt: skip
            ports = [{"name": f"{pre}-metrics" if i == 0 else f"{pre}-metrics-{i}", "port": p}
                     for i, p in enumerate(served)]  # fmt: skip
        ports += [{"name": f"{pre}-telemetry", "port": POD_PORTS.of(role, "telemetry")},
                  {"name": f"{pre}-health", "port": POD_PORTS.of(role, "health")}]  # fmt: skip
        out[role] = ports
    return out


def port_problems(ports: Mapping[str, list[dict[str, Any]]]) -> list[str]:
    """Every port the pod listens on, exposed or loopback-only, is used once."""
    used: dict[int, str] = {POD_PORTS.of(v, "otlp"): f"{v} otlp (loopback)" for v in VARIANTS}
    problems = []
    for role, items in ports.items():
        for p in items:
            if p["port"] in used:
                problems.append(f"{role} port {p['name']} ({p['port']}) collides with {used[p['port']]}")
            used[p["port"]] = f"{role} {p['name']}"
    return problems


def render_experiment_manifests(experiment_id: str, pipelines: Mapping[str, Pipeline],
                                k8s: K8sOptions | None = None) -> ExperimentBundle:
    """The experiment pod's manifests: ``pipelines`` is ``{"baseline": ..., "candidate": ...}``."""
    if set(pipelines) != set(VARIANTS):
        raise ValidationError(f"an experiment needs exactly a baseline and a candidate pipeline, got {sorted(pipelines)}")
    k8s = k8s or K8sOptions()
    configs = render_experiment_configs(experiment_id, pipelines)
    texts = {"tap": configs.tap.text, **{v: configs.variants[v].text for v in VARIANTS}}
    ports = role_ports(configs)
    if problems := port_problems(ports):  # a variant with many prometheus exporters
        raise ValidationError(problems)

    # Not the single-variant bundle's phoenix-<id>-<variant>: both may be applied side by side.
    name = dns_name("phoenix", experiment_id, "experiment")
    exp_label = dns_name(experiment_id)
    selector = {"app.kubernetes.io/name": "phoenix-collector", "app.kubernetes.io/instance": name}
    labels = {
        **selector,
        "app.kubernetes.io/part-of": "phoenix",
        "app.kubernetes.io/version": COLLECTOR_IMAGE.rsplit(":", 1)[1],
        "phoenix.io/experiment-id": exp_label,
        "phoenix.io/baseline-pipeline": dns_name(pipelines["baseline"].name),
        "phoenix.io/candidate-pipeline": dns_name(pipelines["candidate"].name),
    }
    containers = [{
        "name": role,
        "config": f"{role}.yaml",
        "host_access": role == "tap",
        "secret_env": sorted({m for m in _ENV.findall(texts[role]) if m != "K8S_NODE_NAME"}),
        "ports": ports[role],
        "health_port": POD_PORTS.of(role, "health"),
    } for role in ROLES]  # fmt: skip
    data = {f"{role}.yaml": texts[role] for role in ROLES}
    ctx = {
        "name": name,
        "namespace": k8s.namespace,
        "labels": labels,
        "selector": selector,
        "image": k8s.image,
        "data": data,
        "config_sha": hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest(),
        "node_selector": k8s.node_selector,
        "tolerations": k8s.tolerations,
        "resources": k8s.resources,
        "config_dir": CONFIG_DIR,
        "containers": containers,
        "secret_name": SECRET_NAME,
    }
    out: dict[str, str] = {}
    for fname in MANIFEST_FILES[:4]:
        out[fname] = render(f"k8s/{fname.replace('.yaml', '')}.yaml.j2", **ctx)
    for role in ROLES:
        svc_labels = {**labels, "phoenix.io/role": role}
        if role in VARIANTS:
            svc_labels["phoenix.io/variant"] = role
            svc_labels["phoenix.io/pipeline"] = dns_name(pipelines[role].name)
        out[f"service-{role}.yaml"] = render("k8s/service.yaml.j2", **{
            **ctx, "name": dns_name(name, role), "labels": svc_labels, "ports": ports[role]})
    for text in out.values():
        # a template bug must fail here, not in kubectl
        yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    notes = [f"{role}: {n}" for role, rc in (("tap", configs.tap), *configs.variants.items()) for n in rc.notes]
    return ExperimentBundle(configs=texts, manifests=out, notes=notes)


def write_experiment_bundle(bundle: ExperimentBundle, out_dir: Any, *, flag: str = "--out") -> list[Any]:
    """``out_dir/<role>.yaml`` and ``out_dir/k8s/*.yaml``, all or nothing (core.outputs.write_tree)."""
    return write_tree(out_dir, bundle.files(), flag=flag, owned=("k8s",))
