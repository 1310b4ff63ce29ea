"""Phoenix's own deployment (k8s/base, k8s/overlays, k8s/components, k8s/argocd), checked on what
`make manifests` renders: the session fixture runs scripts/manifests.py (the pinned kustomize,
built once when missing) into a temporary dist/k8s, so a broken overlay or an invalid object
fails here exactly as it fails `make manifests`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import manifests  # noqa: E402 - scripts/ is not a package

OVERLAYS = ("dev", "production", "production-full")
PHOENIX_IMAGE = "ghcr.io/phoenix/phoenix"


def _objects(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def _pod_specs(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{d['kind']}/{d['metadata']['name']}": d["spec"]["template"]["spec"]
            for d in docs if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")}


def test_every_overlay_is_rendered(rendered_manifests: dict[str, list[dict[str, Any]]]) -> None:
    assert set(rendered_manifests) == set(manifests.OVERLAYS)
    for name in OVERLAYS:
        assert {"phoenix-ui", "phoenix-api", "phoenix-operator"} <= set(_objects(rendered_manifests[name], "Deployment"))


CLUSTER_SCOPED = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_namespaced_object_names_its_namespace(rendered_manifests: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    """`kubectl apply -f dist/k8s/<overlay>.yaml` must not drop anything into the current context's
    namespace (the overlays set namespaces per object, not with kustomize's `namespace:`)."""
    loose = [f"{d['kind']}/{d['metadata']['name']}" for d in rendered_manifests[overlay]
             if d["kind"] not in CLUSTER_SCOPED and not d["metadata"].get("namespace")]
    assert loose == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_is_bounded_probed_and_locked_down(rendered_manifests: dict[str, list[dict[str, Any]]],
                                                           overlay: str) -> None:
    for where, pod in _pod_specs(rendered_manifests[overlay]).items():
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert "hostPID" not in pod and "hostNetwork" not in pod, where
        for c in pod.get("initContainers", []) + pod["containers"]:
            at = f"{overlay}: {where} container {c['name']}"
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][bound]), at
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True and sc["readOnlyRootFilesystem"] is True, at
            assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}, at
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, at
            if c in pod["containers"]:  # init containers run to completion: no probes
                assert "readinessProbe" in c and "livenessProbe" in c, at


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_writable_paths_are_volumes(rendered_manifests: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    """A read-only root needs /tmp, Streamlit's home and the data directory (GitOps repo) mounted."""
    for where, pod in _pod_specs(rendered_manifests[overlay]).items():
        if "phoenix-redis" in where:
            continue
        for c in pod["containers"]:
            mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
            assert "/tmp" in mounts, where
            if c["name"] in ("ui", "api", "scheduler"):
                assert {"/home/phoenix", "/data"} <= mounts, where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_are_pinned(rendered_manifests: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    images = {c["image"] for pod in _pod_specs(rendered_manifests[overlay]).values()
              for c in pod.get("initContainers", []) + pod["containers"]}
    assert any(i.startswith(f"{PHOENIX_IMAGE}:") for i in images)
    for image in images:
        name, _, tag = image.rpartition(":")
        assert name and "/" in name and tag and tag != "latest" and "/" not in tag, image


@pytest.mark.parametrize("overlay", [*OVERLAYS, "argocd"])
def test_no_secret_values(rendered_manifests: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    docs = rendered_manifests[overlay]
    assert not [d for d in docs if d["kind"] == "Secret"]
    for name, cm in _objects(docs, "ConfigMap").items():
        for key in cm.get("data", {}):
            assert not any(w in key.upper() for w in ("PASSWORD", "SECRET", "TOKEN")), (name, key)
        assert "postgresql" not in json.dumps(cm.get("data", {})), name


def test_production_reads_the_database_from_the_secret(rendered_manifests: dict[str, list[dict[str, Any]]]) -> None:
    pods = _pod_specs(rendered_manifests["production"])
    for where in ("Deployment/phoenix-ui", "Deployment/phoenix-api", "Deployment/phoenix-scheduler"):
        spec = pods[where]
        for c in [c for c in spec.get("initContainers", []) + spec["containers"]]:
            env = {e["name"]: e for e in c.get("env", [])}
            assert env["PHOENIX_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
                "name": "phoenix-secrets", "key": "database-url"}, (where, c["name"])
    assert "PHOENIX_DATABASE_URL" not in _objects(rendered_manifests["production"], "ConfigMap")["phoenix-config"]["data"]


def test_production_is_highly_available(rendered_manifests: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered_manifests["production"]
    deployments = _objects(docs, "Deployment")
    pdbs = {p["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"]: p
            for p in _objects(docs, "PodDisruptionBudget").values()}
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in _objects(docs, "HorizontalPodAutoscaler").values()}
    for comp in ("ui", "api"):
        d = deployments[f"phoenix-{comp}"]
        assert d["spec"]["replicas"] >= 2
        pod = d["spec"]["template"]["spec"]
        (term,) = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
        assert term["podAffinityTerm"]["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == comp
        assert {t["topologyKey"] for t in pod["topologySpreadConstraints"]} >= {"topology.kubernetes.io/zone"}
        assert pdbs[comp]["spec"]["minAvailable"] == 1
        hpa = hpas[f"phoenix-{comp}"]
        assert hpa["apiVersion"] == "autoscaling/v2" and hpa["spec"]["minReplicas"] >= 2
    assert deployments["phoenix-scheduler"]["spec"]["replicas"] == 1
    assert deployments["phoenix-operator"]["spec"]["replicas"] == 1


def test_production_network_policies_deny_by_default_then_allow(rendered_manifests: dict[str, list[dict[str, Any]]]) -> None:
    policies = _objects(rendered_manifests["production"], "NetworkPolicy")
    deny = [p for p in policies.values()
            if p["spec"]["podSelector"] == {} and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
            and not p["spec"].get("ingress") and not p["spec"].get("egress")]
    assert deny, "no default-deny policy for the whole namespace"

    def egress_ports(component: str) -> set[int]:
        out: set[int] = set()
        for p in policies.values():
            sel = p["spec"]["podSelector"]
            exprs = sel.get("matchExpressions", [])
            applies = sel == {} or any(component in e["values"] for e in exprs) or \
                sel.get("matchLabels", {}).get("app.kubernetes.io/component") == component
            if applies:
                out |= {port["port"] for rule in p["spec"].get("egress", []) for port in rule.get("ports", [])}
        return out

    for comp in ("ui", "api", "scheduler"):
        assert {53, 5432} <= egress_ports(comp), comp
    assert {53, 443, 6443} <= egress_ports("operator")
    ingress = {port["port"] for p in policies.values() for rule in p["spec"].get("ingress", [])
               for port in rule.get("ports", [])}
    assert {8501, 8080, 9465, 9101, 9103} <= ingress


def test_production_ingress_has_tls(rendered_manifests: dict[str, list[dict[str, Any]]]) -> None:
    (ingress,) = _objects(rendered_manifests["production"], "Ingress").values()
    (tls,) = ingress["spec"]["tls"]
    hosts = {r["host"] for r in ingress["spec"]["rules"]}
    assert tls["secretName"] and hosts <= set(tls["hosts"])
    backends = {p["backend"]["service"]["name"] for r in ingress["spec"]["rules"] for p in r["http"]["paths"]}
    assert backends == {"phoenix-ui", "phoenix-api"}


def test_dev_is_one_replica_on_a_volume(rendered_manifests: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered_manifests["dev"]
    (pvc,) = _objects(docs, "PersistentVolumeClaim").values()
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    deployments = _objects(docs, "Deployment")
    assert "phoenix-scheduler" not in deployments  # the API's embedded scheduler is the one
    for comp in ("ui", "api"):
        d = deployments[f"phoenix-{comp}"]
        assert d["spec"]["replicas"] == 1 and d["spec"]["strategy"]["type"] == "Recreate"
        claims = {v["persistentVolumeClaim"]["claimName"] for v in d["spec"]["template"]["spec"]["volumes"]
                  if "persistentVolumeClaim" in v}
        assert claims == {pvc["metadata"]["name"]}
    assert "--embedded-scheduler" in deployments["phoenix-api"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert _objects(docs, "ConfigMap")["phoenix-config"]["data"]["PHOENIX_DATABASE_URL"].startswith("sqlite:////data/")
    assert not _objects(docs, "NetworkPolicy") and not _objects(docs, "HorizontalPodAutoscaler")


def test_only_the_processes_that_call_the_api_server_get_a_token(rendered_manifests: dict[str, list[dict[str, Any]]]) -> None:
    pods = _pod_specs(rendered_manifests["production"])
    assert pods["Deployment/phoenix-ui"]["automountServiceAccountToken"] is False
    assert pods["Deployment/phoenix-api"]["automountServiceAccountToken"] is False
    assert pods["Deployment/phoenix-scheduler"]["automountServiceAccountToken"] is True
    assert pods["Deployment/phoenix-operator"]["serviceAccountName"] == "phoenix-operator"


def test_the_dashboards_configmap_holds_every_dashboard(rendered_manifests: dict[str, list[dict[str, Any]]]) -> None:
    cm = _objects(rendered_manifests["production"], "ConfigMap")["phoenix-grafana-dashboards"]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    committed = {p.name: p.read_text() for p in (ROOT / "dashboards").glob("*.json")}
    assert committed and cm["data"] == committed


def test_optional_components(rendered_manifests: dict[str, list[dict[str, Any]]]) -> None:
    full = rendered_manifests["production-full"]
    kinds = {(d["apiVersion"], d["kind"]) for d in full}
    assert ("external-secrets.io/v1", "ExternalSecret") in kinds and ("monitoring.coreos.com/v1", "PodMonitor") in kinds
    assert _objects(full, "ConfigMap")["phoenix-config"]["data"]["PHOENIX_REDIS_URL"].startswith("redis://phoenix-redis")
    assert "phoenix-redis" in _objects(full, "NetworkPolicy")
    assert (_objects(full, "ExternalSecret")["phoenix-secrets"]["spec"]["target"]["name"] == "phoenix-secrets")
    prod = {d["kind"] for d in rendered_manifests["production"]}
    assert "ExternalSecret" not in prod and "PodMonitor" not in prod


def test_applicationset_follows_the_gitops_layout(rendered_manifests: dict[str, list[dict[str, Any]]]) -> None:
    (appset,) = _objects(rendered_manifests["argocd"], "ApplicationSet").values()
    (gen,) = appset["spec"]["generators"]
    paths = {d["path"]: d.get("exclude", False) for d in gen["git"]["directories"]}
    assert paths == {"production/*/k8s": False, "production/local/k8s": True}
    (app,) = _objects(rendered_manifests["argocd"], "Application").values()
    assert app["spec"]["source"]["path"] == "k8s/overlays/production"


# --- the validation itself --------------------------------------------------------------------


def _deployment() -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
            "spec": {"selector": {"matchLabels": {"a": "b"}},
                     "template": {"metadata": {"labels": {"a": "b"}},
                                  "spec": {"containers": [{"name": "c", "image": "i:1"}]}}}}


def test_validation_is_strict_about_unknown_fields() -> None:
    good = _deployment()
    assert manifests.validate(good, {}) == ([], True)
    bad = _deployment()
    bad["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    problems, _ = manifests.validate(bad, {})
    assert problems and "securityContxt" in problems[0]


def test_phoenix_custom_resources_are_checked_against_their_crd(rendered_manifests: dict[str, list[dict[str, Any]]]) -> None:
    schemas = manifests.crd_schemas(rendered_manifests["production"])
    assert ("phoenix.io/v1alpha1", "PhoenixProcessPipeline") in schemas
    problems, checked = manifests.validate({"apiVersion": "phoenix.io/v1alpha1", "kind": "PhoenixProcessPipeline",
                                            "metadata": {"name": "p"}, "spec": {"unknown": 1}}, schemas)
    assert checked and problems


def test_unknown_kinds_fail_and_third_party_ones_are_named() -> None:
    problems, checked = manifests.validate({"apiVersion": "example.com/v1", "kind": "Widget",
                                            "metadata": {"name": "w"}, "spec": {}}, {})
    assert problems and not checked
    problems, checked = manifests.validate({"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
                                            "metadata": {"name": "m"}}, {})
    assert problems == ["PodMonitor/m: spec must be a mapping"] and not checked


def test_the_ui_metrics_listen_where_the_manifests_say(monkeypatch: pytest.MonkeyPatch) -> None:
    """The manifests set PHOENIX_METRICS_HOST=0.0.0.0 so that Prometheus reaches the UI's port."""
    from app import telemetry
    from core.observability import metrics

    served: list[tuple[int, str]] = []
    monkeypatch.setattr(metrics, "serve", lambda port, addr="127.0.0.1": served.append((port, addr)) or True)
    monkeypatch.setenv("PHOENIX_METRICS_PORT", "9465")
    monkeypatch.setenv("PHOENIX_METRICS_HOST", "0.0.0.0")
    telemetry.setup_process()
    monkeypatch.delenv("PHOENIX_METRICS_HOST")
    telemetry.setup_process()
    assert served == [(9465, "0.0.0.0"), (9465, "127.0.0.1")]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_load_jobs_run_the_image_the_operator_runs(rendered_manifests: dict[str, list[dict[str, Any]]],
                                                   overlay: str) -> None:
    """kustomize's `images:` rewrites container images, not env values: the load Jobs' image is
    written out in operator.yaml and must follow the pinned tag."""
    operator = _objects(rendered_manifests[overlay], "Deployment")["phoenix-operator"]["spec"]["template"]["spec"]
    container = operator["containers"][0]
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    assert env["PHOENIX_LOADSIM_IMAGE"] == container["image"]
