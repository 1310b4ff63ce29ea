"""``phoenix operator`` against a real API server (``kube_cluster``: kube-apiserver + etcd).

One operator process for the module, started as a real subprocess with the credentials of
the ``phoenix-operator`` ServiceAccount after applying ``k8s/base/operator-rbac.yaml``: every
step below therefore also proves the RBAC grants enough. No kubelet or controller-manager
runs: the tests patch DaemonSet and Job status as those would, and since there is no
garbage collector, the deletions seen here are the operator's own (its finalizer).
"""

from __future__ import annotations

import copy
import hashlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from core.catalog.templates import get_template
from core.render.bundle import render_bundle
from core.render.collector import RenderOptions
from tests.conftest import free_port
from tests.live_phoenix import stop_process

pytestmark = pytest.mark.kube

ROOT = Path(__file__).resolve().parents[2]
RBAC = ROOT / "k8s" / "base" / "operator-rbac.yaml"
GROUP, VERSION = "phoenix.io", "v1alpha1"
PPP, LSJ = "phoenixprocesspipelines", "loadsimulationjobs"
SA_USER = "system:serviceaccount:phoenix:phoenix-operator"
T = TypeVar("T")


def wait_for(fn: Callable[[], T], what: str, timeout: float = 60.0, interval: float = 0.1) -> T:
    """Poll ``fn`` until it returns something truthy; fail with ``what`` and the last value.

    60 s: the operator retries a failed API call after 2–30 s, and on a loaded CI machine a
    reconcile can need a retry."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; last: {last!r}")


def gone(read: Callable[[], Any]) -> bool:
    try:
        read()
    except ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


def _ignore_conflict(create: Callable[[], Any]) -> None:
    try:
        create()
    except ApiException as exc:
        if exc.status != 409:  # the session's cluster may have it already
            raise


def _create_or_replace(create: Callable[[], Any], replace: Callable[[], Any]) -> None:
    """This file's version wins over one an earlier test of the session applied."""
    try:
        create()
    except ApiException as exc:
        if exc.status != 409:
            raise
        replace()


def apply_rbac(api: client.ApiClient) -> None:
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    _ignore_conflict(lambda: core.create_namespace({"metadata": {"name": "phoenix"}}))
    for doc in yaml.safe_load_all(RBAC.read_text()):
        kind, name = doc["kind"], doc["metadata"]["name"]
        if kind == "ServiceAccount":
            _ignore_conflict(lambda d=doc: core.create_namespaced_service_account(d["metadata"]["namespace"], d))
        elif kind == "ClusterRole":
            _create_or_replace(lambda d=doc: rbac.create_cluster_role(d),
                               lambda d=doc, n=name: rbac.replace_cluster_role(n, d))
        elif kind == "ClusterRoleBinding":
            _create_or_replace(lambda d=doc: rbac.create_cluster_role_binding(d),
                               lambda d=doc, n=name: rbac.replace_cluster_role_binding(n, d))
        else:
            raise AssertionError(f"unexpected {kind} in {RBAC}")


@dataclass
class Operator:
    namespace: str
    proc: subprocess.Popen[str]
    log: Path
    metrics_port: int

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def admin(kube_cluster: Any) -> client.ApiClient:
    """The admin's client (the session fixture installed the CRDs), after applying the operator's RBAC."""
    api = kube_cluster.api_client()
    apply_rbac(api)
    return api


@pytest.fixture(scope="module")
def operator(kube_cluster: Any, admin: client.ApiClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    ns = kube_cluster.namespace("op")
    kubeconfig = kube_cluster.kubeconfig_for(SA_USER)
    kube_cluster.wait_until_allowed(kubeconfig, verb="watch", resource="phoenixprocesspipelines", group="phoenix.io",
                                    namespace=ns)
    work = tmp_path_factory.mktemp("operator")
    log = work / "operator.log"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"KUBECONFIG", "PHOENIX_METRICS_PORT"}}
    env.update(PYTHONPATH=str(ROOT), PHOENIX_LOG_FORMAT="json", PHOENIX_DATA_DIR=str(work))
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "core.cli", "operator", "--kubeconfig", str(kubeconfig), "--namespace", ns,
             "--metrics-port", str(port), "--loadsim-image", "registry.local/phoenix:test"],
            env=env, cwd=work, stdout=sink, stderr=subprocess.STDOUT, text=True)
    op = Operator(ns, proc, log, port)
    try:
        # On a loaded machine the interpreter alone takes seconds to import kopf and the
        # client: the tests' own waits start once the operator answers on its metrics port.
        wait_for(lambda: proc.poll() is not None or _answers(port), "the operator to start", timeout=120, interval=0.2)
        assert proc.poll() is None, op.log_text()[-3000:]
        yield op
    finally:
        stop_process(proc)


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1):
            return True
    except OSError:
        return False


def pipeline_body(ns: str, name: str, **spec: Any) -> dict[str, Any]:
    bundle = render_bundle(get_template("process-baseline-v1"), RenderOptions(experiment_id="exp-7",
                                                                               variant="candidate"))
    cr = yaml.safe_load(bundle.manifests["pipeline-cr.yaml"])
    cr["metadata"] = {"name": name, "namespace": ns}
    cr["spec"].update(configMap=f"{name}-config", **spec)
    return cr


def custom(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def status_of(api: client.ApiClient, ns: str, plural: str, name: str) -> dict[str, Any]:
    return custom(api).get_namespaced_custom_object(GROUP, VERSION, ns, plural, name).get("status") or {}


def condition(status: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c["type"] == ctype), {})


def test_an_invalid_spec_is_refused_with_a_reason_and_the_operator_keeps_running(operator, admin):
    ns = operator.namespace
    body = pipeline_body(ns, "broken", config="receivers: [unclosed")
    custom(admin).create_namespaced_custom_object(GROUP, VERSION, ns, PPP, body)
    status = wait_for(lambda: (s := status_of(admin, ns, PPP, "broken")).get("phase") == "Failed" and s,
                      "the refused resource's Failed status")
    ready = condition(status, "Ready")
    assert ready["status"] == "False" and ready["reason"] == "InvalidConfig"
    assert "not valid YAML" in ready["message"]
    events = wait_for(lambda: [e for e in client.CoreV1Api(admin).list_namespaced_event(
        ns, field_selector="involvedObject.name=broken").items if e.reason == "InvalidConfig"],
        "a Warning Event with the reason")
    assert events[0].type == "Warning"
    core, apps = client.CoreV1Api(admin), client.AppsV1Api(admin)
    assert gone(lambda: core.read_namespaced_config_map("broken-config", ns))
    assert gone(lambda: apps.read_namespaced_daemon_set("broken", ns))
    # deleting it runs the finalizer (nothing to clean up) and lets it go
    custom(admin).delete_namespaced_custom_object(GROUP, VERSION, ns, PPP, "broken")
    wait_for(lambda: gone(lambda: custom(admin).get_namespaced_custom_object(GROUP, VERSION, ns, PPP, "broken")),
             "the refused resource to be deleted")
    assert operator.proc.poll() is None, operator.log_text()[-3000:]


def test_a_pipeline_becomes_a_configmap_and_daemonset_with_status_rollout_and_cleanup(operator, admin, kube_cluster):
    ns, name = operator.namespace, "pipe-a"
    core, apps = client.CoreV1Api(admin), client.AppsV1Api(admin)
    body = pipeline_body(ns, name)
    created = custom(admin).create_namespaced_custom_object(GROUP, VERSION, ns, PPP, body)
    uid = created["metadata"]["uid"]
    ds = wait_for(lambda: not gone(lambda: apps.read_namespaced_daemon_set(name, ns))
                  and apps.read_namespaced_daemon_set(name, ns), "the collector DaemonSet")
    cm = core.read_namespaced_config_map(f"{name}-config", ns)
    for child in (ds, cm):
        (ref,) = child.metadata.owner_references
        assert (ref.kind, ref.name, ref.uid, ref.controller, ref.block_owner_deletion) == (
            "PhoenixProcessPipeline", name, uid, True, True)
    assert cm.data["collector.yaml"] == body["spec"]["config"]
    sha = hashlib.sha256(body["spec"]["config"].encode()).hexdigest()
    assert ds.spec.template.metadata.annotations["phoenix.io/config-hash"] == sha
    assert ds.spec.template.spec.host_pid is True
    cr = custom(admin).get_namespaced_custom_object(GROUP, VERSION, ns, PPP, name)
    assert "phoenix.io/operator" in cr["metadata"]["finalizers"]

    # the kubelet reports 2 of 2 collectors ready (their health_check answers)
    kube_cluster.set_daemonset_ready(ns, name, ready=2, desired=2)
    status = wait_for(lambda: (s := status_of(admin, ns, PPP, name)).get("phase") == "Running" and s,
                      "phase Running from the DaemonSet status")
    assert (status["readyNodes"], status["totalNodes"]) == (2, 2)
    assert condition(status, "Ready")["status"] == "True"
    kube_cluster.set_daemonset_ready(ns, name, ready=1, desired=2)
    status = wait_for(lambda: (s := status_of(admin, ns, PPP, name)).get("readyNodes") == 1 and s,
                      "readyNodes to follow the DaemonSet")
    assert status["phase"] != "Running" and condition(status, "Ready")["status"] == "False"

    # a new config rolls the DaemonSet: new hash on the pod template, new ConfigMap data
    new_config = body["spec"]["config"].replace("collection_interval: 10s", "collection_interval: 20s")
    assert new_config != body["spec"]["config"]
    custom(admin).patch_namespaced_custom_object(GROUP, VERSION, ns, PPP, name, {"spec": {"config": new_config}})
    new_sha = hashlib.sha256(new_config.encode()).hexdigest()
    wait_for(lambda: apps.read_namespaced_daemon_set(name, ns).spec.template.metadata.annotations.get(
        "phoenix.io/config-hash") == new_sha, "the config hash to change")
    assert core.read_namespaced_config_map(f"{name}-config", ns).data["collector.yaml"] == new_config
    assert apps.read_namespaced_daemon_set(name, ns).spec.update_strategy.type == "RollingUpdate"

    # deletion: the finalizer deletes the children (no garbage collector here), then the resource goes
    custom(admin).delete_namespaced_custom_object(GROUP, VERSION, ns, PPP, name)
    wait_for(lambda: gone(lambda: custom(admin).get_namespaced_custom_object(GROUP, VERSION, ns, PPP, name)),
             "the resource to be deleted")
    assert gone(lambda: apps.read_namespaced_daemon_set(name, ns))
    assert gone(lambda: core.read_namespaced_config_map(f"{name}-config", ns))


@pytest.fixture
def nodes(admin: client.ApiClient, operator: Operator) -> Iterator[tuple[dict[str, str], list[str]]]:
    """Two Nodes matching a selector unique to this run, and one that does not."""
    core = client.CoreV1Api(admin)
    pool = {"phoenix.io/test-pool": operator.namespace}
    names = [f"{operator.namespace}-n{i}" for i in range(3)]
    for i, n in enumerate(names):
        labels = dict(pool) if i < 2 else {"phoenix.io/test-pool": "elsewhere"}
        core.create_node({"metadata": {"name": n, "labels": labels}})
    yield pool, names[:2]
    for n in names:
        core.delete_node(n)


def test_a_load_simulation_runs_one_job_per_selected_node(operator, admin, kube_cluster, nodes):
    ns, name = operator.namespace, "load-a"
    selector, selected = nodes
    batch = client.BatchV1Api(admin)
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "LoadSimulationJob",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"experimentId": "exp-7", "profile": "process-churn", "duration": "5m", "processCount": 40,
                     "churnRate": 0.25, "nodeSelector": selector, "ttlSecondsAfterFinished": 60}}
    custom(admin).create_namespaced_custom_object(GROUP, VERSION, ns, LSJ, copy.deepcopy(body))
    jobs = wait_for(lambda: (items := batch.list_namespaced_job(ns, label_selector=f"phoenix.io/loadsim={name}")
                             .items) and len(items) == 2 and items, "one Job per selected node")
    assert sorted(j.spec.template.spec.node_name for j in jobs) == sorted(selected)
    for j in jobs:
        (c,) = j.spec.template.spec.containers
        assert c.image == "registry.local/phoenix:test"
        assert c.args[:6] == ["loadsim", "run", "--profile", "process-churn", "--duration", "300s"]
        assert "--churn-rate" in c.args and j.spec.ttl_seconds_after_finished == 60
        assert j.metadata.owner_references[0].kind == "LoadSimulationJob"
    assert status_of(admin, ns, LSJ, name).get("phase") in (None, "Pending")

    for j in jobs:
        kube_cluster.set_job_status(ns, j.metadata.name, active=1)
    status = wait_for(lambda: (s := status_of(admin, ns, LSJ, name)).get("activeProcesses") == 80 and s,
                      "both nodes' processes counted")
    assert status["phase"] == "Running" and status["nodes"] == 2 and status["startTime"]
    for j in jobs:
        kube_cluster.set_job_status(ns, j.metadata.name, succeeded=1, active=0)
    status = wait_for(lambda: (s := status_of(admin, ns, LSJ, name)).get("phase") == "Succeeded" and s, "Succeeded")
    assert status["completionTime"] and status["activeProcesses"] == 0

    custom(admin).delete_namespaced_custom_object(GROUP, VERSION, ns, LSJ, name)
    wait_for(lambda: gone(lambda: custom(admin).get_namespaced_custom_object(GROUP, VERSION, ns, LSJ, name)),
             "the load resource to be deleted")
    assert batch.list_namespaced_job(ns, label_selector=f"phoenix.io/loadsim={name}").items == []


def test_the_operator_counts_its_reconciles(operator):
    def scrape() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=2) as r:
            return r.read().decode()

    text = scrape()
    assert 'phoenix_operator_reconciles_total{kind="PhoenixProcessPipeline",outcome="ok"}' in text
    assert 'phoenix_operator_reconciles_total{kind="PhoenixProcessPipeline",outcome="invalid"} 1.0' in text
    assert 'phoenix_build_info{process="operator"' in text
    assert operator.proc.poll() is None


def test_an_experiment_variant_gets_a_node_local_otlp_service_and_runs_unprivileged(operator, admin):
    """The tap reaches each variant through ``<name>-otlp`` (internalTrafficPolicy Local):
    created, owned and deleted by the operator, which runs as its ServiceAccount here, so the
    RBAC rule for Services is exercised too."""
    from core.render import k8s_resources as res

    ns = operator.namespace
    core, apps = client.CoreV1Api(admin), client.AppsV1Api(admin)
    pipelines = {"baseline": get_template("process-baseline-v1"), "candidate": get_template("process-topk-v1")}
    crs = res.experiment_pipelines("exp-9", ns, pipelines, {v: (p.name, 1) for v, p in pipelines.items()},
                                   res.default_placement())
    uids = {cr["spec"]["variant"]: custom(admin).create_namespaced_custom_object(GROUP, VERSION, ns, PPP, cr)[
        "metadata"]["uid"] for cr in crs}
    names = {cr["spec"]["variant"]: cr["metadata"]["name"] for cr in crs}
    for role in ("baseline", "candidate"):
        svc = wait_for(lambda r=role: not gone(lambda: core.read_namespaced_service(f"{names[r]}-otlp", ns))
                       and core.read_namespaced_service(f"{names[r]}-otlp", ns), f"the {role}'s OTLP Service")
        assert svc.spec.internal_traffic_policy == "Local"
        assert [(p.port, p.target_port) for p in svc.spec.ports] == [(4317, "otlp")]
        (ref,) = svc.metadata.owner_references
        assert (ref.name, ref.uid, ref.controller) == (names[role], uids[role], True)
        # the tap's config sends to exactly this Service's cluster DNS name
        assert f"{svc.metadata.name}.{ns}.svc:4317" in crs[0]["spec"]["config"]
        ds = apps.read_namespaced_daemon_set(names[role], ns)
        assert svc.spec.selector == ds.spec.selector.match_labels
    assert gone(lambda: core.read_namespaced_service(f"{names['tap']}-otlp", ns))
    privileged = {}
    for role, name in names.items():
        pod = wait_for(lambda n=name: not gone(lambda: apps.read_namespaced_daemon_set(n, ns))
                       and apps.read_namespaced_daemon_set(n, ns), f"the {role} DaemonSet").spec.template.spec
        (c,) = pod.containers
        privileged[role] = bool(pod.host_pid) or any(v.host_path for v in pod.volumes) or bool(
            c.security_context.capabilities.add)
        assert c.security_context.read_only_root_filesystem is True
    assert privileged == {"tap": True, "baseline": False, "candidate": False}

    for name in names.values():
        custom(admin).delete_namespaced_custom_object(GROUP, VERSION, ns, PPP, name)
    for role, name in names.items():
        wait_for(lambda n=name: gone(lambda: custom(admin).get_namespaced_custom_object(GROUP, VERSION, ns, PPP, n)),
                 f"the {role} resource to be deleted")
        assert gone(lambda n=name: core.read_namespaced_service(f"{n}-otlp", ns))
        assert gone(lambda n=name: apps.read_namespaced_daemon_set(n, ns))
