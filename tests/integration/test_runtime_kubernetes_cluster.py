"""The Kubernetes runtime against a real kube-apiserver (the session's ``kube_cluster``).

No kubelet or controllers run there, so something must play the rest of the cluster:

- without the operator (``RUN_OPERATOR`` False) the test reports the custom resources'
  status itself, as the operator would (phase Running, readyNodes == totalNodes);
- with it (``RUN_OPERATOR``: whenever ``core.operator`` is in the tree) one real
  ``phoenix operator`` subprocess for the module reconciles them, and the test reports the
  DaemonSets it created as ready, as the kubelets and the DaemonSet controller would;
  teardown then also proves the operator's finalizer ran (the CRs only go after it, and
  no DaemonSet, Job or ConfigMap of the experiment is left).

The deployer runs as the ServiceAccount ``k8s/base/deployer-rbac.yaml`` binds, with that
Role applied: the deployment's least privilege is what the test exercises.

Two tests: the deployer driven directly (deploy twice, specs, readiness, health, teardown,
RBAC refusal, an unreachable API), and ``phoenix experiment run --target kubernetes`` end
to end as subprocesses: it reaches Running on simulated readiness, ``phoenix experiment
cancel`` cancels it, and every object it created is gone.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.catalog.templates import get_template
from core.domain.criteria import LoadProfile, Target, Timing
from core.domain.errors import PermanentError, TemporaryError
from core.domain.experiment import Experiment
from core.render import k8s_resources as res
from core.runtime.kube_api import KubeClient, load_api_client
from core.runtime.kubernetes import KubernetesDeployer, placement_from
from core.settings import Settings
from tests.conftest import free_port
from tests.kube import wait_for

REPO = Path(__file__).resolve().parents[2]
#: Switch: a real operator reconciles (True once core.operator is merged), else the test
#: writes the custom resources' status itself.
RUN_OPERATOR = importlib.util.find_spec("core.operator") is not None
NODES = 2
#: Waits on the operator: it retries a failed API call after 2–30 s (``core.operator.cluster``),
#: and on a loaded CI machine a reconcile can need one retry or two.
OPERATOR_WAIT_S = 90.0
pytestmark = pytest.mark.kube
_operator_log: list[Path] = []  # the module's operator log, for a timed-out wait's message


def _custom(cluster: Any) -> Any:
    from kubernetes import client

    return client.CustomObjectsApi(cluster.api_client())


def _pipelines(cluster: Any, ns: str) -> list[dict[str, Any]]:
    items = _custom(cluster).list_namespaced_custom_object(res.GROUP, res.VERSION, ns, res.PIPELINE_PLURAL)["items"]
    return list(items)


def _mark_ready(cluster: Any, ns: str) -> None:
    """One pass of "the rest of the cluster": every pipeline in ``ns`` runs on NODES nodes."""
    from kubernetes import client

    for cr in _pipelines(cluster, ns):
        name = cr["metadata"]["name"]
        if RUN_OPERATOR:
            apps = client.AppsV1Api(cluster.api_client())
            for ds in apps.list_namespaced_daemon_set(ns, label_selector=f"{res.LABEL_PIPELINE}={name}").items:
                # as the DaemonSet controller: again after any spec change (a new generation)
                if (ds.status.number_ready or 0) != NODES or ds.status.observed_generation != ds.metadata.generation:
                    cluster.set_daemonset_ready(ns, ds.metadata.name, NODES, NODES)
        elif (cr.get("status") or {}).get("phase") != "Running" and not cr["metadata"].get("deletionTimestamp"):
            status = {"phase": "Running", "readyNodes": NODES, "totalNodes": NODES,
                      "observedGeneration": cr["metadata"]["generation"]}  # fmt: skip
            _custom(cluster).patch_namespaced_custom_object_status(res.GROUP, res.VERSION, ns, res.PIPELINE_PLURAL,
                                                                   name, {"status": status})  # fmt: skip


def _nodes(cluster: Any, labels: dict[str, str]) -> None:
    """NODES Node objects with ``labels`` (no kubelet behind them; shared by the session)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core = client.CoreV1Api(cluster.api_client())
    for i in range(NODES):
        name = "phoenix-test-" + "-".join(f"{k}-{v}" for k, v in sorted(labels.items())) + f"-{i}"
        try:
            core.create_node({"metadata": {"name": name, "labels": {"kubernetes.io/os": "linux", **labels}}})
        except ApiException as exc:
            if exc.status != 409:
                raise


@pytest.fixture(scope="module")
def namespaces(kube_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A fresh namespace per test of this module; with RUN_OPERATOR one ``phoenix operator``
    watches them all (started once: it takes seconds to start and to stop)."""
    spaces = {key: kube_cluster.namespace(key) for key in ("rt", "rbac", "e2e")}
    if not RUN_OPERATOR:
        yield spaces
        return
    _nodes(kube_cluster, {"pool": "obs"})  # the operator runs a load Job per matching Node
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    _operator_log[:] = [log]
    watch = [arg for ns in spaces.values() for arg in ("--namespace", ns)]
    port = free_port()
    with log.open("wb") as out:  # a file, not a pipe: its log lines must never block it
        operator = subprocess.Popen([sys.executable, "-m", "core.cli", "operator", *watch, "--metrics-port", str(port),
                                     "--kubeconfig", str(kube_cluster.kubeconfig)], cwd=REPO, env=_child_env(),
                                    stdout=subprocess.DEVNULL, stderr=out)  # fmt: skip
    try:
        # On a loaded machine importing kopf and the client alone takes seconds: the tests'
        # own waits start once the operator answers on its metrics port.
        wait_for("the operator to start", lambda: operator.poll() is not None or _answers(port), timeout_s=120)
        assert operator.poll() is None, log.read_text(errors="replace")[-3000:]
        yield spaces
    finally:
        operator.terminate()
        try:
            operator.wait(timeout=5)
        except subprocess.TimeoutExpired:
            operator.kill()
            operator.wait()


def _answers(port: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1):
            return True
    except OSError:
        return False


def _explain(cluster: Any, ns: str) -> Callable[[], str]:
    """For a timed-out wait: each pipeline's status, each DaemonSet's, and the operator's log tail."""
    def explain() -> str:
        from kubernetes import client

        lines = []
        for cr in _pipelines(cluster, ns):
            st = cr.get("status") or {}
            conds = [(c.get("type"), c.get("status"), c.get("reason")) for c in st.get("conditions") or []]
            lines.append(f"{cr['metadata']['name']}: phase={st.get('phase')} ready={st.get('readyNodes')}/"
                         f"{st.get('totalNodes')} observed={st.get('observedGeneration')} "
                         f"generation={cr['metadata'].get('generation')} {conds}")
        for ds in client.AppsV1Api(cluster.api_client()).list_namespaced_daemon_set(ns).items:
            lines.append(f"daemonset {ds.metadata.name}: generation={ds.metadata.generation} "
                         f"status={ds.status.to_dict() if ds.status else None}")
        if _operator_log and _operator_log[0].exists():
            lines.append("operator log (tail):\n" + _operator_log[0].read_text(errors="replace")[-4000:])
        return "\n".join(lines)

    return explain


@contextlib.contextmanager
def cluster_plays_along(cluster: Any, ns: str) -> Iterator[None]:
    """A thread reporting readiness as the kubelets (and, without the operator, the operator) would."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            with contextlib.suppress(Exception):  # a race with a delete; a lasting problem times a wait out
                _mark_ready(cluster, ns)
            stop.wait(0.2)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join(timeout=5)


def _child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PHOENIX_", "KUBERNETES_"))}
    env.update(PYTHONPATH=str(REPO), **extra)
    return env


def _left(cluster: Any, ns: str, experiment_id: str) -> list[str]:
    """Every object in ``ns`` carrying the experiment's label (CRs, ConfigMaps, DaemonSets, Jobs)."""
    from kubernetes import client

    sel = f"{res.LABEL_EXPERIMENT}={res.experiment_label(experiment_id)}"
    api = cluster.api_client()
    out = [f"{p}/{o['metadata']['name']}" for p in (res.PIPELINE_PLURAL, res.LOAD_PLURAL)
           for o in _custom(cluster).list_namespaced_custom_object(res.GROUP, res.VERSION, ns, p, label_selector=sel)["items"]]
    out += [f"configmap/{o.metadata.name}" for o in client.CoreV1Api(api).list_namespaced_config_map(ns, label_selector=sel).items]
    out += [f"daemonset/{o.metadata.name}" for o in client.AppsV1Api(api).list_namespaced_daemon_set(ns, label_selector=sel).items]
    out += [f"job/{o.metadata.name}" for o in client.BatchV1Api(api).list_namespaced_job(ns, label_selector=sel).items]
    out += [f"service/{o.metadata.name}" for o in client.CoreV1Api(api).list_namespaced_service(ns, label_selector=sel).items]
    return out


def _deployer(kubeconfig: Path, **kw: Any) -> KubernetesDeployer:
    settings = Settings()
    return KubernetesDeployer(
        api=KubeClient(lambda: load_api_client(str(kubeconfig)), timeout_s=5),
        load_pipelines=lambda exp: {v: get_template(getattr(exp, v).name) for v in ("baseline", "candidate")},
        placement=lambda exp: placement_from(settings, exp.target.node_selector), teardown_wait_s=15, **kw)  # fmt: skip


def _experiment(ns: str) -> Experiment:
    return Experiment.create(name="k8s", baseline="process-baseline-v1", candidate="process-topk-v1",
                             target=Target(kind="kubernetes", namespace=ns, node_selector={"pool": "obs"}),
                             load=LoadProfile(name="process-churn"), timing=Timing(duration_s=60, interval_s=5))  # fmt: skip


def _as_the_scheduler(cluster: Any, ns: str) -> Path:
    """k8s/base/deployer-rbac.yaml applied in ``ns``; a kubeconfig of the ServiceAccount it binds."""
    kubeconfig = cluster.bind_role_file(REPO / "k8s" / "base" / "deployer-rbac.yaml", ns)
    cluster.wait_until_allowed(kubeconfig, verb="create", resource="phoenixprocesspipelines", group="phoenix.io",
                               namespace=ns)
    return kubeconfig


def test_deployer_against_the_api_server(kube_cluster: Any, namespaces: dict[str, str]) -> None:
    cluster = kube_cluster
    ns = namespaces["rt"]
    d = _deployer(_as_the_scheduler(cluster, ns))  # least privilege: the deployment's own Role
    exp = _experiment(ns)

    info = d.deploy(exp)
    crs = {cr["spec"]["variant"]: cr for cr in _pipelines(cluster, ns)}
    assert set(crs) == {"tap", "baseline", "candidate"}
    for v, cr in crs.items():
        assert cr["metadata"]["name"] == res.pipeline_name(exp.id, v)
        assert cr["metadata"]["labels"][res.LABEL_EXPERIMENT] == exp.id
        assert cr["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux", "pool": "obs"}
    # identical input: only the tap reads the host; it sends to each variant's node-local Service
    tap = yaml.safe_load(crs["tap"]["spec"]["config"])
    assert tap["receivers"]["hostmetrics"]["root_path"] == "/hostfs"
    for v in ("baseline", "candidate"):
        assert list(yaml.safe_load(crs[v]["spec"]["config"])["receivers"]) == ["otlp"]
        assert (crs[v]["spec"]["otlpPort"], crs[v]["spec"]["hostAccess"]) == (4317, False)
        assert tap["exporters"][f"otlp/{v}"]["endpoint"] == f"{res.otlp_service_name(crs[v]['metadata']['name'])}.{ns}.svc:4317"
    job = _custom(cluster).get_namespaced_custom_object(res.GROUP, res.VERSION, ns, res.LOAD_PLURAL,
                                                        res.load_job_name(exp.id))  # fmt: skip
    assert (job["spec"]["profile"], job["spec"]["churnRate"]) == ("process-churn", 0.5)
    assert info["measurement"] == {"kind": "ConfigMap", "name": res.scrape_name(exp.id)}  # no Prometheus Operator here

    # idempotent: the second deploy writes nothing (server-side apply of the same fields)
    versions = {cr["metadata"]["name"]: cr["metadata"]["resourceVersion"] for cr in _pipelines(cluster, ns)}
    assert d.deploy(exp) == info
    assert {cr["metadata"]["name"]: cr["metadata"]["resourceVersion"] for cr in _pipelines(cluster, ns)} == versions

    assert not d.is_ready(exp)
    with cluster_plays_along(cluster, ns):
        wait_for("the tap and both variants ready", lambda: d.is_ready(exp), timeout_s=OPERATOR_WAIT_S,
                 explain=_explain(cluster, ns))
        assert d.healthy(exp)
        if RUN_OPERATOR:
            _check_the_operators_children(cluster, ns, {v: cr["metadata"]["uid"] for v, cr in crs.items()})
        d.teardown(exp)  # returns once the CRs are gone (with the operator: after its finalizer)
    assert _left(cluster, ns, exp.id) == []
    d.teardown(exp)  # idempotent


def _check_the_operators_children(cluster: Any, ns: str, uids: dict[str, str]) -> None:
    """Each variant's OTLP Service is node-local and owned by its resource; the tap is the
    only DaemonSet with host access."""
    from kubernetes import client

    core, apps = client.CoreV1Api(cluster.api_client()), client.AppsV1Api(cluster.api_client())
    privileged = {}
    for role, uid in uids.items():
        (ds,) = [ds for ds in apps.list_namespaced_daemon_set(ns).items
                 if ds.metadata.owner_references and ds.metadata.owner_references[0].uid == uid]
        pod = ds.spec.template.spec
        privileged[role] = bool(pod.host_pid) or any(v.host_path for v in pod.volumes)
        services = [s for s in core.list_namespaced_service(ns).items
                    if s.metadata.owner_references and s.metadata.owner_references[0].uid == uid]
        if role == "tap":
            assert services == []
            continue
        (svc,) = services
        assert svc.metadata.name == res.otlp_service_name(ds.metadata.name)
        assert svc.spec.internal_traffic_policy == "Local"
        assert svc.spec.selector == ds.spec.selector.match_labels
    assert privileged == {"tap": True, "baseline": False, "candidate": False}


def test_refusals_and_an_unreachable_api(kube_cluster: Any, namespaces: dict[str, str], tmp_path: Path) -> None:
    cluster = kube_cluster
    ns = namespaces["rbac"]
    # a service account nobody granted anything: a permanent, readable refusal
    nobody = cluster.kubeconfig_for(f"system:serviceaccount:{ns}:nobody")
    with pytest.raises(PermanentError, match="forbidden by RBAC") as refused:
        _deployer(nobody).deploy(_experiment(ns))
    assert "BEGIN" not in str(refused.value) and str(nobody) not in str(refused.value)

    # the API server away: retried next tick
    away = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    away["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:9"  # discard port: refused
    path = tmp_path / "away.kubeconfig"
    path.write_text(yaml.safe_dump(away))
    with pytest.raises(TemporaryError, match="cannot reach the Kubernetes API"):
        _deployer(path).deploy(_experiment(ns))

    # the namespace does not exist: permanent, and it says which
    with pytest.raises(PermanentError, match="nope-"):
        _deployer(cluster.kubeconfig).deploy(_experiment(f"nope-{ns}"))


def _db_state(url: str, experiment_id: str) -> str:
    from core.store.uow import Database

    db = Database(url)
    try:
        with db.uow() as uow:
            return uow.experiments.get(experiment_id).state.value
    finally:
        db.dispose()


def test_experiment_run_on_kubernetes_reaches_running_and_cancel_cleans_up(kube_cluster: Any, namespaces: dict[str, str],
                                                                           tmp_path: Path) -> None:
    from tests.actors import store_account

    cluster = kube_cluster
    ns = namespaces["e2e"]
    url = f"sqlite:///{tmp_path / 'phoenix.db'}"
    actor = store_account(url)
    env = _child_env(PHOENIX_RUNTIME="kubernetes", PHOENIX_KUBECONFIG=str(cluster.kubeconfig),
                     PHOENIX_DATABASE_URL=url, PHOENIX_DATA_DIR=str(tmp_path), PHOENIX_USER=actor.name,
                     PHOENIX_SCHEDULER_INTERVAL="0.3", PHOENIX_K8S_TEARDOWN_WAIT="15",
                     PHOENIX_GITOPS_REPO=str(tmp_path / "gitops"))  # fmt: skip
    cli = [sys.executable, "-m", "core.cli"]
    log = tmp_path / "run.stderr"
    with cluster_plays_along(cluster, ns), log.open("w") as errf:
        # stderr to a file, not a pipe: nothing can block the child's writes
        run = subprocess.Popen([*cli, "experiment", "run", "--baseline", "process-baseline-v1", "--candidate",
                                "process-topk-v1", "--target", "kubernetes", "--namespace", ns, "--node-selector",
                                "pool=obs", "--duration", "10m", "--interval", "5s", "--wait", "--json"],
                               cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=errf, text=True)  # fmt: skip
        try:
            # "<id>: baseline vs candidate, …, runtime kubernetes" once the experiment exists
            # (a cold interpreter importing Phoenix and migrating the database: generous on a loaded machine)
            first = wait_for("the run to create its experiment", lambda: next(
                (line for line in log.read_text().splitlines() if re.match(r"^exp-[0-9a-f]+: ", line)), None),
                timeout_s=90)
            experiment_id = first.split(":", 1)[0]
            assert "runtime kubernetes" in first, first
            wait_for("the experiment to run", lambda: _db_state(url, experiment_id) == "Running",
                     timeout_s=OPERATOR_WAIT_S, explain=_explain(cluster, ns))
            expected = {f"phoenixprocesspipelines/{res.pipeline_name(experiment_id, v)}" for v in res.ROLES}
            expected |= {f"loadsimulationjobs/{res.load_job_name(experiment_id)}",
                         f"configmap/{res.scrape_name(experiment_id)}"}
            if RUN_OPERATOR:  # the variants' node-local OTLP Services, from the operator
                expected |= {f"service/{res.otlp_service_name(res.pipeline_name(experiment_id, v))}"
                             for v in ("baseline", "candidate")}
            assert expected <= set(_left(cluster, ns, experiment_id))
            cancel = subprocess.run([*cli, "experiment", "cancel", experiment_id, "--json"], cwd=REPO, env=env,
                                    capture_output=True, text=True, timeout=60)  # fmt: skip
            assert cancel.returncode == 0, cancel.stderr
            assert json.loads(cancel.stdout)["state"] == "Cancelled"
            out, _ = run.communicate(timeout=60)
        finally:
            if run.poll() is None:
                run.kill()
                run.communicate()
    assert run.returncode == 1, log.read_text()[-3000:]  # Cancelled
    final = json.loads(out)
    assert final["state"] == "Cancelled" and final["dry_run"] is False
    assert final["runtime_info"]["namespace"] == ns and final["runtime_info"]["torn_down"] is True
    assert _left(cluster, ns, experiment_id) == []
