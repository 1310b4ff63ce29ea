"""What the operator wants to exist: pure builders from a custom resource (a dict) to API objects.

No API calls here. The collector DaemonSet reuses the one pod shape Phoenix renders
(``core/templates/k8s/daemonset.yaml.j2``, see ``core.render.k8s``): hostPID, the host root
read-only at ``/hostfs`` with HostToContainer propagation, root with only SYS_PTRACE and
DAC_READ_SEARCH added (the documented exception to non-root), node name from the downward
API, probes on the ``health_check`` extension, secret exporter credentials from an optional
Secret. The operator adds what only it knows: owner references to the resource, its labels,
the config hash that rolls the pods, and the generation it applied.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any, Final

import yaml

from core.domain.durations import parse_duration
from core.domain.errors import ValidationError
from core.render import k8s_resources as res
from core.render.jinja import render
from core.render.k8s import _ENV, DEFAULT_RESOURCES, SECRET_NAME, dns_name

GROUP: Final = "phoenix.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
PIPELINE_KIND: Final = "PhoenixProcessPipeline"
PIPELINE_PLURAL: Final = "phoenixprocesspipelines"
LOADSIM_KIND: Final = "LoadSimulationJob"
LOADSIM_PLURAL: Final = "loadsimulationjobs"

MANAGER: Final = "phoenix-operator"  # field manager and app.kubernetes.io/managed-by
MANAGED_BY: Final = "app.kubernetes.io/managed-by"
PIPELINE_LABEL: Final = "phoenix.io/pipeline"
LOADSIM_LABEL: Final = "phoenix.io/loadsim"
EXPERIMENT_LABEL: Final = "phoenix.io/experiment-id"
VARIANT_LABEL: Final = "phoenix.io/variant"
CONFIG_HASH: Final = "phoenix.io/config-hash"
#: On the children: the resource generation they were built from (status.observedGeneration).
GENERATION: Final = "phoenix.io/generation"
NODE_ANNOTATION: Final = "phoenix.io/node"

CONFIG_DIR: Final = "/conf"
CONFIG_KEY: Final = "collector.yaml"
DEFAULT_HEALTH_PORT: Final = 13133
DEFAULT_METRICS_PORT: Final = 8889
DEFAULT_TTL_S: Final = 600
#: A collector rollout replaces at most this share of nodes' pods at once: one at a time would
#: take hours on a 1,000-node fleet, all at once would blind every node together. The nodes
#: being rolled lose process metrics for one collector restart.
MAX_UNAVAILABLE: Final = "10%"
#: The load Job's retries: one retry covers a node hiccup; more would only extend the run.
LOAD_BACKOFF_LIMIT: Final = 1
#: The load simulator's own cap on live processes (``--max-processes``).
LOAD_MAX_PROCESSES: Final = 2000
LOAD_USER: Final = 10001  # the Phoenix image's user (Dockerfile)


class InvalidSpec(ValidationError):
    """A resource the operator cannot act on until someone changes it (a permanent failure)."""

    def __init__(self, reason: str, problems: list[str] | str):
        super().__init__(problems)
        self.reason = reason  # CamelCase, for the status condition and the Event


def label_value(name: str) -> str:
    """A resource name as a label value (at most 63 characters; longer names are hashed)."""
    return name if len(name) <= 63 else dns_name(name)


def owner_reference(body: Mapping[str, Any]) -> dict[str, Any]:
    meta = body["metadata"]
    return {"apiVersion": body.get("apiVersion", API_VERSION), "kind": body["kind"], "name": meta["name"],
            "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}


def _common_labels(body: Mapping[str, Any], app: str, own_label: str) -> dict[str, str]:
    spec = body.get("spec") or {}
    labels = {"app.kubernetes.io/name": app, MANAGED_BY: MANAGER, "app.kubernetes.io/part-of": "phoenix",
              own_label: label_value(body["metadata"]["name"])}
    if spec.get("experimentId"):
        labels[EXPERIMENT_LABEL] = spec["experimentId"]
    if spec.get("variant"):
        labels[VARIANT_LABEL] = spec["variant"]
    return labels


# -- PhoenixProcessPipeline -------------------------------------------------------------------


def config_hash(config: str) -> str:
    return hashlib.sha256(config.encode()).hexdigest()


def parse_config(spec: Mapping[str, Any]) -> dict[str, Any]:
    """``spec.config`` as a mapping; ``InvalidSpec`` when it is not a collector config the probes can judge."""
    text = spec.get("config")
    if not isinstance(text, str) or not text.strip():
        raise InvalidSpec("InvalidConfig", "spec.config is empty: it must hold the collector YAML Phoenix rendered")
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise InvalidSpec("InvalidConfig", f"spec.config is not valid YAML{where}") from None
    if not isinstance(config, dict):
        raise InvalidSpec("InvalidConfig", "spec.config must be a YAML mapping (a collector configuration)")
    problems = []
    service = config.get("service")
    if not isinstance(service, dict) or not isinstance(service.get("pipelines"), dict) or not service["pipelines"]:
        problems.append("spec.config has no service.pipelines")
    health = (config.get("extensions") or {}).get("health_check") if isinstance(config.get("extensions"), dict) else None
    port = spec.get("healthPort", DEFAULT_HEALTH_PORT)
    if not isinstance(health, dict):
        problems.append("spec.config has no health_check extension: the pods' probes need it")
    else:
        endpoint = str(health.get("endpoint") or f"0.0.0.0:{DEFAULT_HEALTH_PORT}")
        if endpoint.rsplit(":", 1)[-1] != str(port):
            problems.append(f"the health_check extension listens on {endpoint!r} but spec.healthPort is {port}")
        if isinstance(service, dict) and "health_check" not in (service.get("extensions") or []):
            problems.append("service.extensions does not enable health_check")
    problems += _host_and_otlp_problems(spec, config)
    if problems:
        raise InvalidSpec("InvalidConfig", problems)
    return config


def host_access(spec: Mapping[str, Any]) -> bool:
    return spec.get("hostAccess", True) is not False


def _receivers_used(config: Mapping[str, Any]) -> set[str]:
    pipelines = (config.get("service") or {}).get("pipelines") or {}
    return {str(r) for p in pipelines.values() if isinstance(p, dict) for r in (p.get("receivers") or [])
            if isinstance(p.get("receivers"), list)}


def _host_and_otlp_problems(spec: Mapping[str, Any], config: Mapping[str, Any]) -> list[str]:
    """A pod without host access cannot read the host; an OTLP port must be the receiver's."""
    problems = []
    used = _receivers_used(config)
    if not host_access(spec) and any(r.partition("/")[0] == "hostmetrics" for r in used):
        problems.append("spec.hostAccess is false but spec.config reads the host (a hostmetrics receiver)")
    port = spec.get("otlpPort")
    if port is not None:
        receivers = config.get("receivers") if isinstance(config.get("receivers"), dict) else {}
        ports = set()
        for rid in used:
            grpc = (((receivers.get(rid) or {}).get("protocols") or {}).get("grpc") or {}) \
                if rid.partition("/")[0] == "otlp" and isinstance(receivers.get(rid), dict) else {}
            if isinstance(grpc, dict):
                ports.add(str(grpc.get("endpoint") or "").rsplit(":", 1)[-1])
        if str(port) not in ports:
            problems.append(f"spec.otlpPort is {port} but no otlp receiver in a pipeline listens for gRPC on it")
        if port in (spec.get("healthPort", DEFAULT_HEALTH_PORT), spec.get("metricsPort", DEFAULT_METRICS_PORT)):
            problems.append(f"spec.otlpPort {port} is also the health or metrics port")
    return problems


def telemetry_port(config: Mapping[str, Any]) -> int | None:
    """The port of the collector's own Prometheus reader (service.telemetry.metrics.readers), if any."""
    telemetry = ((config.get("service") or {}).get("telemetry") or {})
    readers = ((telemetry.get("metrics") or {}) if isinstance(telemetry, dict) else {}).get("readers") or []
    for reader in readers if isinstance(readers, list) else []:
        prom = (((reader or {}).get("pull") or {}).get("exporter") or {}).get("prometheus") or {}
        port = prom.get("port") if isinstance(prom, dict) else None
        if isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535:
            return port
    return None


def configmap(body: Mapping[str, Any]) -> dict[str, Any]:
    spec = body["spec"]
    meta = body["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": spec["configMap"], "namespace": meta["namespace"],
                     "labels": _common_labels(body, "phoenix-collector", PIPELINE_LABEL),
                     "annotations": {CONFIG_HASH: config_hash(spec["config"])},
                     "ownerReferences": [owner_reference(body)]},
        "data": {CONFIG_KEY: spec["config"]},
    }


def daemonset_name(body: Mapping[str, Any]) -> str:
    return dns_name(body["metadata"]["name"])


def pod_selector(body: Mapping[str, Any]) -> dict[str, str]:
    """The DaemonSet's selector, which the OTLP Service selects by too."""
    return {"app.kubernetes.io/name": "phoenix-collector", PIPELINE_LABEL: label_value(body["metadata"]["name"])}


def otlp_service_name(body: Mapping[str, Any]) -> str:
    return res.otlp_service_name(body["metadata"]["name"])  # the name the tap's config sends to


def otlp_service(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """The Service ``<name>-otlp`` in front of the pods' OTLP receiver, or None without ``spec.otlpPort``.

    ``internalTrafficPolicy: Local``: a client pod (the experiment's tap) reaches only the
    endpoint on its own node, so every node's tap feeds that node's variant: identical input
    per node, and no batch crosses the cluster network. With no local endpoint (the variant's
    pod not ready yet) the traffic is dropped rather than sent to another node's variant.
    """
    spec, meta = body["spec"], body["metadata"]
    port = spec.get("otlpPort")
    if port is None:
        return None
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": otlp_service_name(body), "namespace": meta["namespace"],
                     "labels": _common_labels(body, "phoenix-collector", PIPELINE_LABEL),
                     "ownerReferences": [owner_reference(body)]},
        "spec": {
            "type": "ClusterIP",
            "internalTrafficPolicy": "Local",
            "selector": pod_selector(body),
            "ports": [{"name": "otlp-grpc", "port": int(port), "targetPort": "otlp", "protocol": "TCP",
                       "appProtocol": "grpc"}],
        },
    }


def daemonset(body: Mapping[str, Any]) -> dict[str, Any]:
    """The collector DaemonSet (the shared template's pod shape plus the operator's metadata)."""
    spec = body["spec"]
    meta = body["metadata"]
    config = parse_config(spec)  # an invalid config never reaches a pod
    name = daemonset_name(body)
    labels = _common_labels(body, "phoenix-collector", PIPELINE_LABEL)
    selector = pod_selector(body)
    health = int(spec.get("healthPort", DEFAULT_HEALTH_PORT))
    ports = [{"name": "metrics", "port": int(spec.get("metricsPort", DEFAULT_METRICS_PORT))}]
    telemetry = telemetry_port(config)
    if telemetry is not None:
        ports.append({"name": "telemetry", "port": telemetry})  # otelcol_* self-telemetry, scraped too
    if spec.get("otlpPort") is not None:
        ports.append({"name": "otlp", "port": int(spec["otlpPort"])})  # the Service's targetPort
    ports.append({"name": "health", "port": health})
    ports = [p for i, p in enumerate(ports) if all(q["port"] != p["port"] for q in ports[:i])]  # first name wins
    secret_env = sorted({m for m in _ENV.findall(spec["config"]) if m != "K8S_NODE_NAME"})
    text = render(
        "k8s/daemonset.yaml.j2",
        name=name, namespace=meta["namespace"], labels=labels, selector=selector, image=spec["collectorImage"],
        config_sha=config_hash(spec["config"]),
        # The process scraper reads /proc: Linux nodes only, whatever else the spec selects.
        node_selector={"kubernetes.io/os": "linux", **(spec.get("nodeSelector") or {})},
        tolerations=list(spec.get("tolerations") or []),
        resources=copy.deepcopy(spec.get("resources") or DEFAULT_RESOURCES),
        config_dir=CONFIG_DIR,
        containers=[{"name": "otelcol", "config": CONFIG_KEY, "host_access": host_access(spec), "secret_env": secret_env,
                     "ports": ports, "health_port": health}],
        secret_name=SECRET_NAME,
    )
    ds: dict[str, Any] = yaml.safe_load(text)
    ds["metadata"]["annotations"] = {GENERATION: str(meta.get("generation", 1))}
    ds["metadata"]["ownerReferences"] = [owner_reference(body)]
    ds["spec"]["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": MAX_UNAVAILABLE}}
    pod = ds["spec"]["template"]
    # The operator's config hash replaces the template's annotation: a changed spec.config
    # changes the pod template, which is what rolls a DaemonSet.
    pod["metadata"]["annotations"] = {CONFIG_HASH: config_hash(spec["config"])}
    pod["spec"]["volumes"][0]["configMap"]["name"] = spec["configMap"]
    # The collector never talks to the API server (no token mounted): the namespace's default
    # ServiceAccount is enough, so the operator creates none.
    pod["spec"].pop("serviceAccountName", None)
    return ds


# -- LoadSimulationJob ------------------------------------------------------------------------


def _custom_patterns(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The CRD's camelCase patterns as the load simulator's patterns."""
    out = []
    for i, p in enumerate(spec.get("customPatterns") or []):
        pat: dict[str, Any] = {"name_template": p["nameTemplate"], "count": p["count"]}
        if p.get("lifetime"):
            pat["lifetime_s"] = parse_duration(p["lifetime"], f"customPatterns[{i}].lifetime", strict=True)
        if p.get("cpuPattern"):
            pat["cpu_pattern"] = p["cpuPattern"]
        if p.get("memoryPattern"):
            pat["memory_pattern"] = p["memoryPattern"]
        out.append(pat)
    return out


def loadsim_args(spec: Mapping[str, Any]) -> list[str]:
    """``phoenix loadsim run`` arguments for the spec; ``InvalidSpec`` when the simulator would refuse it."""
    from core.domain.criteria import LoadProfile
    from core.runtime.loadsim import BUILTIN_PROFILES

    try:
        duration = parse_duration(spec["duration"], "spec.duration", strict=True)
        patterns = _custom_patterns(spec)
    except ValidationError as exc:
        raise InvalidSpec("InvalidLoadSpec", exc.problems) from None
    profile = spec["profile"]
    # The simulator bounds live processes at 2,000 per node; a larger processCount is capped.
    count = min(int(spec["processCount"]), LOAD_MAX_PROCESSES)
    args = ["loadsim", "run", "--profile", profile, "--duration", f"{duration:g}s", "--max-processes", str(count),
            "--json"]
    params: dict[str, Any] = {}
    if profile == "custom":
        if not patterns:
            raise InvalidSpec("InvalidLoadSpec", "profile custom needs spec.customPatterns")
        params["patterns"] = patterns
        args += ["--patterns-json", json.dumps(patterns, separators=(",", ":"))]
    else:
        if patterns:
            raise InvalidSpec("InvalidLoadSpec", "spec.customPatterns only applies to profile custom")
        # processCount scales the built-in profile (its own mix of names) to that many processes.
        base = sum(p.count for p in BUILTIN_PROFILES[profile])
        scale = min(10.0, math.floor(count / base * 1000) / 1000) or 0.001
        params["scale"] = scale
        args += ["--scale", f"{scale:g}"]
    problems = LoadProfile(name=profile, params=params, max_processes=count).validate()
    if problems:
        raise InvalidSpec("InvalidLoadSpec", problems)
    if spec.get("churnRate"):
        args += ["--churn-rate", f"{float(spec['churnRate']):g}"]
    return args


def job_name(body: Mapping[str, Any], node: str) -> str:
    return dns_name(body["metadata"]["name"], node)


def deadline_s(spec: Mapping[str, Any]) -> int:
    """The Job's activeDeadlineSeconds: the run plus time to start and clean up (10%, at least 2 min)."""
    duration = parse_duration(spec["duration"], "spec.duration", strict=True)
    return math.ceil(duration + max(120.0, duration * 0.1))


def load_resources(process_count: int) -> dict[str, dict[str, str]]:
    """Each worker is a small interpreter (~2.5 MB private); the simulator caps CPU at half a core."""
    n = min(process_count, LOAD_MAX_PROCESSES)
    return {"requests": {"cpu": "100m", "memory": f"{64 + 3 * n}Mi"},
            "limits": {"cpu": "1", "memory": f"{512 + 4 * n}Mi"}}


def load_job(body: Mapping[str, Any], node: str, default_image: str) -> dict[str, Any]:
    """One Job running the load simulator on ``node`` (pinned with ``nodeName``)."""
    spec = body["spec"]
    meta = body["metadata"]
    args = loadsim_args(spec)
    labels = _common_labels(body, "phoenix-loadsim", LOADSIM_LABEL)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job_name(body, node), "namespace": meta["namespace"], "labels": labels,
                     "annotations": {NODE_ANNOTATION: node, GENERATION: str(meta.get("generation", 1))},
                     "ownerReferences": [owner_reference(body)]},
        "spec": {
            "ttlSecondsAfterFinished": int(spec.get("ttlSecondsAfterFinished", DEFAULT_TTL_S)),
            "activeDeadlineSeconds": deadline_s(spec),
            "backoffLimit": LOAD_BACKOFF_LIMIT,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeName": node,  # pinned: one Job per selected node, no scheduler involved
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": LOAD_USER, "runAsGroup": LOAD_USER,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "terminationGracePeriodSeconds": 30,  # the simulator kills its workers on SIGTERM
                    "containers": [{
                        "name": "loadsim",
                        "image": spec.get("image") or default_image,
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["phoenix"],
                        "args": args,
                        "env": [{"name": "TMPDIR", "value": "/tmp"}, {"name": "PHOENIX_LOG_FORMAT", "value": "json"}],
                        "resources": load_resources(int(spec["processCount"])),
                        "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                                            "capabilities": {"drop": ["ALL"]}},
                        # The simulator's private directory of named symlinks lives here.
                        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                    }],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
                },
            },
        },
    }


def node_selector_string(selector: Mapping[str, str] | None) -> str:
    """``spec.nodeSelector`` as a label selector for listing Nodes (empty: every node)."""
    return ",".join(f"{k}={v}" for k, v in sorted((selector or {}).items()))
