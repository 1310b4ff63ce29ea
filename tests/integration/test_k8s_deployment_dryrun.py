"""Every object `make manifests` renders is accepted by a real API server (server-side apply with
dryRun=All), through the session's `kube_cluster` (kube-apiserver + etcd, tests/kube.py).

The Phoenix CRDs are installed first (`apply_crds`). The third-party custom resources
(ExternalSecret, PodMonitor, Argo CD Application and ApplicationSet) get minimal CRDs of their own
here, with schemas that preserve unknown fields: the server checks their group, version, kind,
scope and metadata, not their spec (scripts/manifests.py says the same of its validation).
Namespaced objects go to fresh namespaces standing in for phoenix, phoenix-experiments and
argocd, so the dry-run needs no fixed names and leaves nothing behind.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.kube

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

THIRD_PARTY_CRDS = [
    # (group, version, kind, plural, scope)
    ("external-secrets.io", "v1", "ExternalSecret", "externalsecrets", "Namespaced"),
    ("monitoring.coreos.com", "v1", "PodMonitor", "podmonitors", "Namespaced"),
    ("argoproj.io", "v1alpha1", "Application", "applications", "Namespaced"),
    ("argoproj.io", "v1alpha1", "ApplicationSet", "applicationsets", "Namespaced"),
]


def _minimal_crd(group: str, version: str, kind: str, plural: str, scope: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {"group": group, "scope": scope,
                 "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
                 "versions": [{"name": version, "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {"type": "object",
                                                              "x-kubernetes-preserve-unknown-fields": True}}}]},
    }


def _wait_established(api: Any, names: list[str], deadline_s: float = 30.0) -> None:
    deadline = time.monotonic() + deadline_s
    pending = set(names)
    while pending:
        for name in sorted(pending):
            crd = api.read_custom_resource_definition(name)
            if any(c.type == "Established" and c.status == "True" for c in (crd.status.conditions or [])):
                pending.discard(name)
        if pending:
            assert time.monotonic() < deadline, f"CRDs not Established: {sorted(pending)}"
            time.sleep(0.1)


def _relocate(doc: dict[str, Any], namespaces: dict[str, str]) -> dict[str, Any]:
    """The object with every fixed namespace (its own, a Namespace's name, RBAC subjects) mapped."""
    meta = doc["metadata"]
    if doc["kind"] == "Namespace":
        meta["name"] = namespaces[meta["name"]]
    if meta.get("namespace"):
        meta["namespace"] = namespaces[meta["namespace"]]
    for subject in doc.get("subjects", []):
        if subject.get("namespace"):
            subject["namespace"] = namespaces[subject["namespace"]]
    return doc


@pytest.fixture
def third_party_crds(kube_cluster: Any) -> Iterator[None]:
    """The minimal CRDs, removed again afterwards: the cluster is shared by the session, and the
    Kubernetes runtime chooses a PodMonitor over a scrape ConfigMap when the cluster serves one."""
    from kubernetes import client

    ext = client.ApiextensionsV1Api(kube_cluster.api_client())
    names = [f"{plural}.{group}" for group, _, _, plural, _ in THIRD_PARTY_CRDS]
    for crd in (_minimal_crd(*spec) for spec in THIRD_PARTY_CRDS):
        ext.create_custom_resource_definition(crd)
    try:
        _wait_established(ext, names)
        yield
    finally:
        for name in names:
            ext.delete_custom_resource_definition(name)
        deadline = time.monotonic() + 30
        while any(crd.metadata.name in names for crd in ext.list_custom_resource_definition().items):
            assert time.monotonic() < deadline, "the test's CRDs were not removed"
            time.sleep(0.1)


@pytest.mark.usefixtures("third_party_crds")
def test_the_api_server_accepts_every_rendered_object(kube_cluster: Any,
                                                      rendered_manifests: dict[str, list[dict[str, Any]]]) -> None:
    from kubernetes import client
    from kubernetes.dynamic import DynamicClient

    kube_cluster.apply_crds()
    api_client = kube_cluster.api_client()

    namespaces = {name: kube_cluster.namespace(prefix)
                  for name, prefix in (("phoenix", "phoenix"), ("phoenix-experiments", "phx-exp"),
                                       ("argocd", "argocd"))}
    dynamic = DynamicClient(api_client)  # after the CRDs: its discovery sees them
    rejected: list[str] = []
    applied = 0
    for overlay, docs in rendered_manifests.items():
        for doc in docs:
            doc = _relocate(doc, namespaces)
            resource = dynamic.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
            try:
                dynamic.server_side_apply(resource, body=doc, name=doc["metadata"]["name"],
                                          namespace=doc["metadata"].get("namespace"),
                                          field_manager="phoenix-manifests-test", force_conflicts=True,
                                          dry_run="All")
                applied += 1
            except client.ApiException as exc:
                rejected.append(f"{overlay}: {doc['kind']}/{doc['metadata']['name']}: {exc.status} {exc.body}")
    assert not rejected, "\n".join(rejected)
    assert applied == sum(len(d) for d in rendered_manifests.values())
