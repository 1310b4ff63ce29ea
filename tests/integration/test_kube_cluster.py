"""The suite's Kubernetes API server (tests/kube.py) is a real one: RBAC is enforced for the
identities it mints, the Phoenix CRDs are served with their schemas, and the status helpers
write what a kubelet and the controllers would."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

pytestmark = pytest.mark.kube
T = TypeVar("T")


def _eventually_allowed(call: Callable[[], T], within_s: float = 10.0) -> T:
    """The RBAC authorizer reads bindings from an informer cache: a new binding takes effect
    within moments, not at once (a loaded machine showed a 403 right after the create)."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            return call()
        except ApiException as exc:
            if exc.status != 403 or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_rbac_applies_to_a_service_account_identity(kube_cluster) -> None:  # noqa: ANN001
    ns = kube_cluster.namespace("rbac")
    user = f"system:serviceaccount:{ns}:reader"
    core_as_sa = client.CoreV1Api(kube_cluster.api_client(kube_cluster.kubeconfig_for(user)))
    with pytest.raises(ApiException) as denied:
        core_as_sa.list_namespaced_config_map(ns)
    assert denied.value.status == 403

    admin = kube_cluster.api_client()
    client.CoreV1Api(admin).create_namespaced_service_account(ns, {"metadata": {"name": "reader"}})
    rbac = client.RbacAuthorizationV1Api(admin)
    rbac.create_namespaced_role(ns, {"metadata": {"name": "reader"}, "rules": [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]})
    rbac.create_namespaced_role_binding(ns, {
        "metadata": {"name": "reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns}]})
    assert _eventually_allowed(lambda: core_as_sa.list_namespaced_config_map(ns)).items is not None
    with pytest.raises(ApiException) as still_denied:  # only what the Role grants
        core_as_sa.create_namespaced_config_map(ns, {"metadata": {"name": "x"}})
    assert still_denied.value.status == 403


def test_crd_schema_is_enforced(kube_cluster) -> None:  # noqa: ANN001
    ns = kube_cluster.namespace("crd")
    custom = client.CustomObjectsApi(kube_cluster.api_client())
    bad = {"apiVersion": "phoenix.io/v1alpha1", "kind": "LoadSimulationJob", "metadata": {"name": "bad"},
           "spec": {"experimentId": "e1", "profile": "no-such-profile", "duration": "1m", "processCount": 20}}
    with pytest.raises(ApiException) as refused:
        custom.create_namespaced_custom_object("phoenix.io", "v1alpha1", ns, "loadsimulationjobs", bad)
    assert refused.value.status == 422
    assert "profile" in refused.value.body


def test_status_helpers_write_what_a_kubelet_would(kube_cluster) -> None:  # noqa: ANN001
    ns = kube_cluster.namespace("status")
    api = kube_cluster.api_client()
    pod = {"containers": [{"name": "c", "image": "registry.example/c:1"}]}
    labels = {"app": "x"}
    client.AppsV1Api(api).create_namespaced_daemon_set(ns, {
        "metadata": {"name": "ds"},
        "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": pod}}})
    kube_cluster.set_daemonset_ready(ns, "ds", ready=2, desired=3)
    status = client.AppsV1Api(api).read_namespaced_daemon_set_status("ds", ns).status
    assert (status.number_ready, status.desired_number_scheduled) == (2, 3)

    batch = client.BatchV1Api(api)
    batch.create_namespaced_job(ns, {"metadata": {"name": "job"}, "spec": {
        "template": {"spec": {**pod, "restartPolicy": "Never"}}, "backoffLimit": 0}})
    kube_cluster.set_job_status(ns, "job", active=1)
    assert batch.read_namespaced_job_status("job", ns).status.active == 1
    kube_cluster.set_job_status(ns, "job", succeeded=1)
    done = batch.read_namespaced_job_status("job", ns).status
    assert done.succeeded == 1 and {c.type for c in done.conditions} >= {"Complete"}
