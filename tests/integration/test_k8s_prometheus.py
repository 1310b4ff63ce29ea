"""Measurements on Kubernetes, end to end: real API server, real collectors, real Prometheus.

The Kubernetes runtime deploys an experiment into the session's kube-apiserver (``kube_cluster``)
as the scheduler's ServiceAccount (k8s/base/deployer-rbac.yaml): three PhoenixProcessPipelines,
the tap (the only one reading the host) and the two variants (OTLP input from their node's
tap). No kubelet, controller or kube-proxy runs there, so the test plays them (tests/kube_pods.py):
for each role it takes the operator's DaemonSet for the stored PhoenixProcessPipeline, creates its
Pods on two nodes, creates each variant's node-local OTLP Service as the operator does, and runs
each pod's collector:

- the real Phoenix collector, with the very ``spec.config`` the runtime stored, in a sandbox
  shaped like the pod (its own mount namespace; the config at the path of the container's
  ``--config`` argument; the container's environment and user). The tap's pod has the host's
  root read-only at ``/hostfs`` (its hostPath mount) and the host's PIDs (hostPID); a variant's
  pod has no host mount, its own PID namespace and runs as the unprivileged user of its
  securityContext. Two changes to the configs: ``0.0.0.0`` becomes the pod's IP (in a pod,
  0.0.0.0 is the pod's own network namespace; here every pod shares the host's, so each binds
  its own loopback address, 127.x.y.z: Linux routes all of 127.0.0.0/8 to lo, which the test
  reports as the pod's IP through the status subresource), and the tap's
  ``<service>.<namespace>.svc`` OTLP endpoints become what the Service resolves to from the tap's
  node (``internalTrafficPolicy: Local``: the ready pod it selects on that node).
- Prometheus, built from its Go module with kubernetes_sd (tools/go/prometheus; Debian's has
  none), with the scrape config the runtime wrote into its ConfigMap, discovering the pods
  through the API server as a ServiceAccount holding only k8s/prometheus/discovery-rbac.yaml.

Then ``KubernetesDeployer.collect()`` must return one row per variant (never the tap, which
Prometheus scrapes too) whose series count is what the collectors export (a direct scrape of each
pod's metrics port); on each node the baseline must export exactly the tap's input and both
variants must have accepted every point the tap sent them (identical input); the labels
Prometheus gave the targets must be what the PodMonitor would give them (tests/prom_relabel.py,
on the labels Prometheus discovered), the PodMonitor must be accepted by the API server with the
real CRD shape, and a restarted deployer must see how long a pipeline has been Degraded.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shlex
import shutil
import signal
import subprocess
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.catalog.templates import get_template
from core.domain.criteria import LoadProfile, Target, Timing
from core.domain.errors import PermanentError
from core.domain.experiment import Experiment
from core.domain.samples import VARIANTS
from core.render import k8s_resources as res
from core.render.collector import TELEMETRY_PORT
from core.runtime.kube_api import KubeClient, Ref, load_api_client
from core.runtime.kubernetes import KubernetesDeployer, placement_from
from core.settings import Settings
from tests.integration.prometheus_harness import RealPrometheus
from tests.integration.test_runtime_kubernetes_cluster import _as_the_scheduler
from tests.kube import REPO, free_port, gotool, wait_for
from tests.kube_pods import collector_daemonset, daemonset_pods, running_status
from tests.prom_relabel import operator_scrape_config, target_labels

pytestmark = pytest.mark.kube
NODES = ("node-a", "node-b")
ROLES = (res.TAP, *VARIANTS)
PODMONITOR_CRD = Path(__file__).parent / "testdata" / "podmonitors.monitoring.coreos.com.yaml"
DISCOVERY_RBAC = REPO / "k8s" / "prometheus" / "discovery-rbac.yaml"


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return str(answer.read().decode())


def _experiment(ns: str, load: str = "none") -> Experiment:
    return Experiment.create(name="k8s-prom", baseline="process-baseline-v1", candidate="process-topk-v1",
                             target=Target(kind="kubernetes", namespace=ns), load=LoadProfile(name=load),
                             timing=Timing(duration_s=600, interval_s=2))  # fmt: skip


def _deployer(kubeconfig: Path, ports: tuple[int, int], **kw: Any) -> KubernetesDeployer:
    """The runtime as bootstrap builds it, on free metrics and health ports (a collector of
    another test may hold the defaults on 0.0.0.0)."""
    settings = Settings()
    metrics, health = ports
    return KubernetesDeployer(
        api=KubeClient(lambda: load_api_client(str(kubeconfig)), timeout_s=5),
        load_pipelines=lambda exp: {v: get_template(getattr(exp, v).name) for v in VARIANTS},
        placement=lambda exp: replace(placement_from(settings, exp.target.node_selector), metrics_port=metrics,
                                      health_port=health),
        teardown_wait_s=10, **kw)  # fmt: skip


# ------------------------------------------------------------------ a pod's collector


def _container_env(container: dict[str, Any], node: str) -> dict[str, str]:
    """The container's environment as the kubelet sets it (fieldRef spec.nodeName, $(VAR) expansion);
    optional Secret references that do not exist are left out, as the kubelet does."""
    env: dict[str, str] = {}
    for var in container.get("env") or []:
        if "value" in var:
            env[var["name"]] = str(var["value"]).replace("$(K8S_NODE_NAME)", env.get("K8S_NODE_NAME", ""))
        elif (var.get("valueFrom") or {}).get("fieldRef", {}).get("fieldPath") == "spec.nodeName":
            env[var["name"]] = node
    return env


def _host_mounts(pod: dict[str, Any]) -> list[tuple[str, str]]:
    """(host path, mount path) of the container's read-only hostPath volumes (the tap's /hostfs)."""
    spec = pod["spec"]
    (container,) = spec["containers"]
    host = {v["name"]: v["hostPath"]["path"] for v in spec.get("volumes") or [] if "hostPath" in v}
    return [(host[m["name"]], m["mountPath"]) for m in container.get("volumeMounts") or [] if m["name"] in host]


@dataclass
class PodCollector:
    """One pod's collector container, run by the real binary in a pod-shaped sandbox."""

    pod: dict[str, Any]
    config: str
    binary: Path
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="phoenix-pod-")))
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> PodCollector:
        spec = self.pod["spec"]
        (container,) = spec["containers"]
        (arg,) = container["args"]  # --config=/conf/collector.yaml
        self.root.chmod(0o755)  # the container's user must reach /conf
        config_path = self.root / arg.split("=", 1)[1].lstrip("/")
        config_path.parent.mkdir(parents=True)
        config_path.write_text(self.config)
        (self.root / "otelcol").touch()
        # The pod's shape, from its spec. Mounts live in the new mount namespace only and
        # vanish with it: hostPath volumes read-only (the tap's host root at /hostfs), /dev,
        # the host's /proc with hostPID (the tap), else a PID namespace of its own with its own
        # /proc (a variant: it sees only itself), and the binary as the image's entry point.
        for d in ("dev", "proc"):
            (self.root / d).mkdir()
        mounts = ['mount --rbind /dev "$POD_ROOT/dev"']
        for src, dst in _host_mounts(self.pod):
            (self.root / dst.lstrip("/")).mkdir(parents=True)
            at = f'"$POD_ROOT"{shlex.quote(dst)}'
            mounts.append(f"mount --rbind {shlex.quote(src)} {at} && mount -o remount,bind,ro {at}")
        host_pid = bool(spec.get("hostPID"))
        mounts.append('mount --rbind /proc "$POD_ROOT/proc"' if host_pid else 'mount -t proc proc "$POD_ROOT/proc"')
        mounts.append('mount --bind "$POD_BIN" "$POD_ROOT/otelcol"')
        # The container's user (the variants run as 10001); switching to it drops every capability.
        sc = container.get("securityContext") or {}
        uid, gid = int(sc.get("runAsUser", 0)), int(sc.get("runAsGroup", sc.get("runAsUser", 0)))
        as_user = f"--userspec={uid}:{gid} --groups={gid} " if uid and os.geteuid() == 0 else ""
        script = " && ".join([*mounts, f'exec chroot {as_user}"$POD_ROOT" /otelcol "$@"'])
        namespaces = ["--mount", "--propagation", "private", *([] if host_pid else ["--pid", "--fork"])]
        userns = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "POD_ROOT": str(self.root), "POD_BIN": str(self.binary),
               **_container_env(container, spec["nodeName"])}  # fmt: skip
        log = (self.root.parent / f"{self.root.name}.log").open("wb")
        self.proc = subprocess.Popen(["unshare", *namespaces, *userns, "--", "sh", "-c", script, "sh", arg], env=env,
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        log.close()
        return self

    @property
    def log(self) -> str:
        path = self.root.parent / f"{self.root.name}.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # the whole session: with its own PID namespace the collector is unshare's child
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        # Only ever remove the sandbox once nothing is mounted in it from here (the namespace is private).
        if not any(os.path.ismount(self.root / d) for d in ("hostfs", "dev", "proc", "otelcol")):
            shutil.rmtree(self.root, ignore_errors=True)
            (self.root.parent / f"{self.root.name}.log").unlink(missing_ok=True)


# ------------------------------------------------------------------ the world


@dataclass
class World:
    cluster: Any
    ns: str
    experiment: Experiment
    kubeconfig: Path
    ports: tuple[int, int]
    pods: dict[str, list[dict[str, Any]]]  # role (tap, baseline, candidate) → its pods (as created, with status)
    prometheus: RealPrometheus
    scrape: dict[str, Any]  # the scrape config from the runtime's ConfigMap

    def deployer(self, **kw: Any) -> KubernetesDeployer:
        return _deployer(self.kubeconfig, self.ports, **kw)

    def pod(self, role: str, node: str) -> dict[str, Any]:
        (pod,) = [p for p in self.pods[role] if p["spec"]["nodeName"] == node]
        return pod

    def pod_url(self, pod: dict[str, Any], port: int | None = None) -> str:
        return f"http://{pod['status']['podIP']}:{port or self.ports[0]}/metrics"


def _custom(cluster: Any) -> Any:
    from kubernetes import client

    return client.CustomObjectsApi(cluster.api_client())


def _grant_prometheus(cluster: Any, ns: str) -> Path:
    """k8s/prometheus/discovery-rbac.yaml in ``ns``; a kubeconfig of the ServiceAccount it binds."""
    kubeconfig = cluster.bind_role_file(DISCOVERY_RBAC, ns)
    cluster.wait_until_allowed(kubeconfig, verb="watch", resource="pods", namespace=ns)
    return kubeconfig


def _ready_ip(pod: Any) -> str | None:
    ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
    return str(pod.status.pod_ip) if pod.status.phase == "Running" and ready else None


def _node_local(core: Any, node: str, config: str) -> str:
    """The tap's config with each ``<service>.<namespace>.svc:<port>`` OTLP endpoint replaced by
    what that Service sends to from ``node``. No kube-proxy or cluster DNS runs here, so the test
    does what they do for ``internalTrafficPolicy: Local``: the ready pod the Service selects on the
    client's own node (exactly one: a DaemonSet's), at the container port its targetPort names."""
    for name, exporter in yaml.safe_load(config)["exporters"].items():
        if not name.startswith("otlp/"):
            continue
        endpoint = exporter["endpoint"]
        host, port = endpoint.rsplit(":", 1)
        svc_name, svc_ns, suffix = host.split(".")
        assert suffix == "svc", endpoint
        svc = core.read_namespaced_service(svc_name, svc_ns)
        assert svc.spec.internal_traffic_policy == "Local"
        (svc_port,) = [sp for sp in svc.spec.ports if sp.port == int(port)]
        selector = ",".join(f"{k}={v}" for k, v in svc.spec.selector.items())
        local = core.list_namespaced_pod(svc_ns, label_selector=selector, field_selector=f"spec.nodeName={node}").items
        ((ip, target),) = [(ip, cp.container_port) for p in local if (ip := _ready_ip(p))
                           for c in p.spec.containers for cp in c.ports or [] if cp.name == svc_port.target_port]  # fmt: skip
        config = config.replace(endpoint, f"{ip}:{target}")
    return config


def _run_pods(cluster: Any, ns: str, exp: Experiment, binary: Path,
              collectors: list[PodCollector]) -> dict[str, list[dict[str, Any]]]:
    """Each role's pods made from the stored custom resource, created, their collectors started,
    and reported Running with their IPs, as the DaemonSet controller and kubelets would; each
    variant's node-local OTLP Service as the operator makes it."""
    from kubernetes import client

    from core.operator.desired import otlp_service

    core = client.CoreV1Api(cluster.api_client())
    net = f"127.{random.randint(64, 250)}.{random.randint(0, 255)}"
    ips = (f"{net}.{n}" for n in range(2, 255))
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    crs = {role: _custom(cluster).get_namespaced_custom_object(res.GROUP, res.VERSION, ns, res.PIPELINE_PLURAL,
                                                               res.pipeline_name(exp.id, role))
           for role in ROLES}  # fmt: skip
    # the construction the test relies on: only the tap reads the host, the variants listen for it
    assert "root_path: /hostfs" in crs[res.TAP]["spec"]["config"]
    for v in VARIANTS:
        assert crs[v]["spec"]["hostAccess"] is False and "/hostfs" not in crs[v]["spec"]["config"]
        assert f"0.0.0.0:{res.OTLP_PORT}" in crs[v]["spec"]["config"]
        core.create_namespaced_service(ns, otlp_service(crs[v]))
    out: dict[str, list[dict[str, Any]]] = {}
    for role in (*VARIANTS, res.TAP):  # the variants first: the tap's first batch has somewhere to go
        out[role] = []
        for pod in daemonset_pods(collector_daemonset(crs[role]), list(NODES)):
            ip, node = next(ips), pod["spec"]["nodeName"]
            core.create_namespaced_pod(ns, pod)
            config = crs[role]["spec"]["config"].replace("0.0.0.0", ip)
            if role == res.TAP:
                config = _node_local(core, node, config)
            collectors.append(PodCollector(pod, config, binary).start())
            pod["status"] = running_status(ip, now)
            core.patch_namespaced_pod_status(pod["metadata"]["name"], ns, {"status": pod["status"]})
            out[role].append(pod)
    return out


@pytest.fixture(scope="module")
def world(kube_cluster: Any) -> Iterator[World]:
    from kubernetes import client

    from core.otelcol import distribution

    prometheus_bin, otelcol_bin = gotool("prometheus"), Path(distribution.build().path)
    cluster = kube_cluster
    ns = cluster.namespace("prom")
    # No controller-manager: the namespace's default ServiceAccount, which pods run as, is ours to make.
    client.CoreV1Api(cluster.api_client()).create_namespaced_service_account(ns, {"metadata": {"name": "default"}})
    ports = (free_port(), free_port())
    kubeconfig = _as_the_scheduler(cluster, ns)
    exp = _experiment(ns)
    info = _deployer(kubeconfig, ports).deploy(exp)
    assert info["measurement"] == {"kind": "ConfigMap", "name": res.scrape_name(exp.id)}
    cm = client.CoreV1Api(cluster.api_client()).read_namespaced_config_map(res.scrape_name(exp.id), ns)
    (scrape,) = yaml.safe_load(cm.data[res.SCRAPE_FILE])["scrape_configs"]
    collectors: list[PodCollector] = []
    prometheus = None
    try:
        pods = _run_pods(cluster, ns, exp, otelcol_bin, collectors)
        # Point the scrape config's discovery at the test API server, as Prometheus' ServiceAccount.
        run_scrape = json.loads(json.dumps(scrape))
        for sd in run_scrape["kubernetes_sd_configs"]:
            sd["kubeconfig_file"] = str(_grant_prometheus(cluster, ns))
        prometheus = RealPrometheus([], scrape_configs=[run_scrape], binary=prometheus_bin).start()
        yield World(cluster, ns, exp, kubeconfig, ports, pods, prometheus, scrape)
    finally:
        if prometheus is not None:
            prometheus.stop()
        for c in collectors:
            c.stop()
        with contextlib.suppress(Exception):
            _deployer(kubeconfig, ports).teardown(exp)


def _active_targets(w: World) -> list[dict[str, Any]]:
    data = json.loads(_get(f"{w.prometheus.url}/api/v1/targets?state=active"))["data"]["activeTargets"]
    return [t for t in data if t["scrapePool"] == w.scrape["job_name"]]


def _all_up(w: World) -> list[dict[str, Any]] | None:
    targets = _active_targets(w)
    expected = len(ROLES) * len(NODES) * len(res.SCRAPED_PORTS)
    return targets if len(targets) == expected and all(t["health"] == "up" for t in targets) else None


def _exported_series(w: World) -> dict[str, int]:
    """Per variant, the process series its collectors serve right now (a direct scrape of each pod)."""
    return {role: sum(line.startswith("process_") for pod in pods for line in _get(w.pod_url(pod)).splitlines())
            for role, pods in w.pods.items()}  # fmt: skip


def _prometheus_series(w: World) -> dict[str, int]:
    """Per role, the process series Prometheus holds now (the tap's input included)."""
    q = f'count by (phoenix_variant) ({{phoenix_experiment_id="{w.experiment.id}", __name__=~"process_.*"}})'
    answer = json.loads(_get(f"{w.prometheus.url}/api/v1/query?{urllib.parse.urlencode({'query': q})}"))
    return {r["metric"]["phoenix_variant"]: int(r["value"][1]) for r in answer["data"]["result"]}


def test_prometheus_discovers_the_pods_and_collect_matches_what_the_collectors_export(world: World) -> None:
    w = world
    try:
        wait_for("Prometheus to discover and scrape all 12 collector endpoints", lambda: _all_up(w), timeout_s=60)
    except AssertionError:
        raise AssertionError(f"targets: {_active_targets(w)}\nprometheus: "
                             f"{(w.prometheus.dir / 'prometheus.log').read_text()[-2000:]}") from None
    last: dict[str, Any] = {}

    def agreeing() -> bool:
        # The collectors change what they export once per collection (10 s): compare only when
        # two direct scrapes around the queries agree, so all of them saw the same collection.
        before = _exported_series(w)
        rows = w.deployer(prometheus_url=w.prometheus.url).collect(w.experiment)  # a fresh one: no memory
        held = _prometheus_series(w)
        after = _exported_series(w)
        got = {r.variant: r for r in rows}
        last.update(before=before, after=after, prometheus=held, rows=rows)
        return (before == after and all(before[role] > 0 for role in ROLES) and held == before
                and set(got) == set(VARIANTS) and all(got[v].series == before[v] for v in VARIANTS))

    try:
        wait_for("collect() to agree with the collectors' own /metrics", agreeing, timeout_s=60)
    except AssertionError:
        raise AssertionError(f"last observation: {last}") from None
    rows = {r.variant: r for r in last["rows"]}
    # Prometheus holds the tap's input too, and collect() left it out: its rows are the variants'.
    # The baseline keeps every series of its input; topk keeps fewer.
    assert last["prometheus"]["tap"] == rows["baseline"].series > rows["candidate"].series
    for r in rows.values():  # and the self-telemetry port was scraped with the experiment's labels
        assert r.experiment_id == w.experiment.id and r.collector_rss_mb and r.collector_rss_mb > 0


Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _scrape(url: str, prefix: str = "") -> Series:
    """Every sample a /metrics page serves (named ``prefix``…): (name, labels) → value."""
    from prometheus_client.parser import text_string_to_metric_families

    return {(smp.name, frozenset(smp.labels.items())): smp.value
            for fam in text_string_to_metric_families(_get(url)) for smp in fam.samples
            if smp.name.startswith(prefix)}  # fmt: skip


def _as_input(series: Series, keys: set[str]) -> Series:
    """Series keeping only the label keys the tap's input has (the variant's own resource
    detection adds host and OS labels), without the exporter's phoenix_variant."""
    return {(name, frozenset((k, v) for k, v in labels if k in keys)): value
            for (name, labels), value in series.items()}  # fmt: skip


def _counter(series: Series, name: str, **labels: str) -> float:
    return sum(v for (n, lbl), v in series.items() if n == name and set(labels.items()) <= lbl)


def test_on_each_node_both_variants_receive_exactly_what_the_tap_read(world: World) -> None:
    """Identical input through the node-local Services: on every node the baseline (which keeps
    everything) exports its node's tap's input, series for series and value for value (the same
    batch; another node's tap scrapes at another moment), and both variants accepted every point
    the tap sent them, no more (nothing from the other node's tap)."""
    w = world
    last: dict[str, Any] = {}

    def identical(node: str) -> bool:
        tap_url = w.pod_url(w.pod(res.TAP, node))
        before = _scrape(tap_url, "process_")
        baseline = _scrape(w.pod_url(w.pod("baseline", node)), "process_")
        after = _scrape(tap_url, "process_")
        keys = {k for _, labels in before for k, _ in labels} - {"phoenix_variant"}
        got, want = _as_input(baseline, keys), _as_input(before, keys)
        extra = {k for _, labels in baseline for k, _ in labels} - keys - {"phoenix_variant"}
        last[node] = {"only in the tap's input": len(set(want) - set(got)), "only in the baseline's": len(set(got) - set(want)),
                      "values differ": sum(got.get(k) != v for k, v in want.items()), "baseline's own labels": extra}  # fmt: skip
        return before == after and len(want) > 0 and got == want

    for node in NODES:
        try:
            wait_for(f"the baseline on {node} to export its tap's input", lambda n=node: identical(n), timeout_s=40)
        except AssertionError:
            raise AssertionError(f"last observation on {node}: {last[node]}") from None
        # the only labels the baseline adds are its resource detection's: host.name is its node (the pod's env)
        pids = {v for _, labels in _scrape(w.pod_url(w.pod("baseline", node)), "process_") for k, v in labels
                if k == "process_pid"}  # fmt: skip
        assert len(pids) > 10
        assert {v for _, labels in _scrape(w.pod_url(w.pod("baseline", node)), "process_") for k, v in labels
                if k == "host_name"} == {node}  # fmt: skip

    def same_batches(node: str) -> bool:
        tele = {role: _scrape(w.pod_url(w.pod(role, node), TELEMETRY_PORT), "otelcol_") for role in ROLES}
        counts = {f"tap sent to {v}": _counter(tele[res.TAP], "otelcol_exporter_sent_metric_points_total",
                                               exporter=f"otlp/{v}") for v in VARIANTS}  # fmt: skip
        counts |= {f"{v} accepted": _counter(tele[v], "otelcol_receiver_accepted_metric_points_total", receiver="otlp")
                   for v in VARIANTS}  # fmt: skip
        counts["tap read"] = _counter(tele[res.TAP], "otelcol_receiver_accepted_metric_points_total",
                                      receiver="hostmetrics")  # fmt: skip
        last[node] = counts
        return len(set(counts.values())) == 1 and counts["tap read"] > 0

    for node in NODES:
        try:
            wait_for(f"the variants on {node} to have accepted all their tap sent", lambda n=node: same_batches(n), timeout_s=40)
        except AssertionError:
            raise AssertionError(f"last observation on {node}: {last[node]}") from None


def test_the_targets_carry_the_labels_the_pod_monitor_would_give_them(world: World) -> None:
    w = world
    targets = wait_for("all collector endpoints up", lambda: _all_up(w))
    monitor_jobs = operator_scrape_config(res.pod_monitor(w.experiment.id, w.ns))
    for t in targets:
        discovered, actual = t["discoveredLabels"], t["labels"]
        # the relabel model reproduces what this Prometheus did with the scrape config…
        assert target_labels(discovered, w.scrape) == actual
        # …and the PodMonitor's jobs keep the same target, in exactly one job, with the same labels
        kept = [lbl for job in monitor_jobs if (lbl := target_labels(discovered, job)) is not None]
        assert kept == [actual]
    assert {t["labels"]["phoenix_variant"] for t in targets} == set(ROLES)
    assert {t["labels"]["node"] for t in targets} == set(NODES)


@pytest.fixture
def podmonitor_crd(kube_cluster: Any) -> Iterator[None]:
    """The PodMonitor CRD (a trimmed copy of the Prometheus Operator's), removed afterwards: the
    cluster is shared by the session, and the runtime prefers a PodMonitor when it is served."""
    from kubernetes import client

    ext = client.ApiextensionsV1Api(kube_cluster.api_client())
    body = yaml.safe_load(PODMONITOR_CRD.read_text())
    name = body["metadata"]["name"]
    ext.create_custom_resource_definition(body)
    try:
        wait_for("the PodMonitor CRD to be Established", lambda: any(
            c.type == "Established" and c.status == "True"
            for c in (ext.read_custom_resource_definition(name).status.conditions or [])), timeout_s=30)
        yield
    finally:
        ext.delete_custom_resource_definition(name)
        wait_for("the PodMonitor CRD to go", lambda: all(
            c.metadata.name != name for c in ext.list_custom_resource_definition().items), timeout_s=30)


@pytest.mark.usefixtures("podmonitor_crd")
def test_with_the_prometheus_operator_the_runtime_creates_a_pod_monitor_the_server_accepts(world: World) -> None:
    w = world
    ns = w.cluster.namespace("pmon")
    kubeconfig = _as_the_scheduler(w.cluster, ns)
    d = _deployer(kubeconfig, w.ports)
    exp = _experiment(ns)
    ref = Ref(f"{res.MONITORING_GROUP}/{res.MONITORING_VERSION}", "PodMonitor", res.PODMONITOR_PLURAL, ns,
              res.scrape_name(exp.id))
    info = d.deploy(exp)
    assert info["measurement"] == {"kind": "PodMonitor", "name": res.scrape_name(exp.id)}
    stored = d.api.get(ref)
    assert stored is not None
    rendered = res.pod_monitor(exp.id, ns)["spec"]
    # stored as sent, nothing pruned; the server filled in the CRD's default action
    for ep in rendered["podMetricsEndpoints"]:
        ep["relabelings"] = [{**r, "action": "replace"} for r in ep["relabelings"]]
    assert stored["spec"] == rendered
    # the server checks the shape itself: a field the CRD does not declare is refused
    bad = res.pod_monitor(exp.id, ns)
    bad["spec"]["podMetricsEndpoints"][0]["scrapeEvery"] = "1s"
    with pytest.raises(PermanentError, match="scrapeEvery"):
        d.api.apply(bad)
    d.teardown(exp)
    assert d.api.get(ref) is None


def test_a_restarted_deployer_knows_since_when_a_pipeline_is_degraded(world: World) -> None:
    """The operator's status (core.operator.status) written through the status subresource: a
    deployer that never saw the pipeline healthy still counts the grace from the Ready transition."""
    from core.operator.status import pipeline_status

    w = world
    now = datetime.now(UTC)
    ds = {"metadata": {"generation": 1}, "status": {"desiredNumberScheduled": 2, "updatedNumberScheduled": 2,
                                                    "numberReady": 2, "observedGeneration": 1}}  # fmt: skip
    running = pipeline_status(ds, None, now - timedelta(minutes=10))
    ds["status"]["numberReady"] = 1
    degraded = pipeline_status(ds, running, now - timedelta(minutes=3))
    for v, status in (("baseline", running), ("candidate", degraded)):
        _custom(w.cluster).patch_namespaced_custom_object_status(
            res.GROUP, res.VERSION, w.ns, res.PIPELINE_PLURAL, res.pipeline_name(w.experiment.id, v),
            {"status": status})
    assert w.deployer(degraded_grace_s=600).healthy(w.experiment)
    with pytest.raises(PermanentError, match="candidate collectors are degraded for over 120s: Ready=False PodsNotReady"):
        w.deployer(degraded_grace_s=120).healthy(w.experiment)
