"""Every object `make manifests` renders is accepted by a real API server (server-side apply with
dryRun=All), through the session's `kube_cluster` (kube-apiserver + etcd, tests/kube.py).

The Phoenix CRDs are installed first (`apply_crds`). The third-party custom resources
(ExternalSecret, PodMonitor, Argo CD Application and ApplicationSet) are checked against trimmed,
structural copies of their projects' CRDs (tests/integration/testdata/, each file's header says
which upstream field list it was written from and what it leaves out): the server checks their
spec's field names, types, required fields and enums, and server-side apply refuses a field the
schema does not declare. `test_the_third_party_schemas_refuse_a_wrong_field` shows they do.
Namespaced objects go to fresh namespaces standing in for phoenix, phoenix-experiments and
argocd, so the dry-run needs no fixed names and leaves nothing behind.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.kube

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

TESTDATA = Path(__file__).parent / "testdata"
#: the trimmed third-party CRDs, one per kind the manifests render
THIRD_PARTY_CRDS = [TESTDATA / f"{name}.yaml" for name in (
    "externalsecrets.external-secrets.io",
    "podmonitors.monitoring.coreos.com",
    "applications.argoproj.io",
    "applicationsets.argoproj.io",
)]


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


@pytest.fixture(scope="module")
def third_party_crds(kube_cluster: Any) -> Iterator[None]:
    """The trimmed CRDs, removed again afterwards: the cluster is shared by the session, and the
    Kubernetes runtime chooses a PodMonitor over a scrape ConfigMap when the cluster serves one."""
    from kubernetes import client

    ext = client.ApiextensionsV1Api(kube_cluster.api_client())
    bodies = [yaml.safe_load(path.read_text(encoding="utf-8")) for path in THIRD_PARTY_CRDS]
    names = [body["metadata"]["name"] for body in bodies]
    created: list[str] = []
    try:
        for body in bodies:
            ext.create_custom_resource_definition(body)
            created.append(body["metadata"]["name"])
        _wait_established(ext, names)
        yield
    finally:
        for name in created:
            ext.delete_custom_resource_definition(name)
        deadline = time.monotonic() + 30
        while any(crd.metadata.name in created for crd in ext.list_custom_resource_definition().items):
            assert time.monotonic() < deadline, "the test's CRDs were not removed"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def dry_run(kube_cluster: Any, third_party_crds: None) -> Callable[[dict[str, Any]], None]:
    """Server-side apply of one object with dryRun=All; raises the server's ApiException."""
    from kubernetes.dynamic import DynamicClient

    kube_cluster.apply_crds()
    dynamic = DynamicClient(kube_cluster.api_client())  # after the CRDs: its discovery sees them

    def apply(doc: dict[str, Any]) -> None:
        resource = dynamic.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
        dynamic.server_side_apply(resource, body=doc, name=doc["metadata"]["name"],
                                  namespace=doc["metadata"].get("namespace"),
                                  field_manager="phoenix-manifests-test", force_conflicts=True, dry_run="All")
    return apply


@pytest.fixture(scope="module")
def namespaces(kube_cluster: Any) -> dict[str, str]:
    """The manifests' fixed namespaces → fresh ones standing in for them."""
    return {name: kube_cluster.namespace(prefix)
            for name, prefix in (("phoenix", "phoenix"), ("phoenix-experiments", "phx-exp"), ("argocd", "argocd"))}


def test_the_api_server_accepts_every_rendered_object(dry_run: Callable[[dict[str, Any]], None],
                                                      namespaces: dict[str, str],
                                                      rendered_manifests: dict[str, list[dict[str, Any]]]) -> None:
    from kubernetes import client

    rejected: list[str] = []
    applied = 0
    for overlay, docs in rendered_manifests.items():
        for doc in docs:
            doc = _relocate(copy.deepcopy(doc), namespaces)
            try:
                dry_run(doc)
                applied += 1
            except client.ApiException as exc:
                rejected.append(f"{overlay}: {doc['kind']}/{doc['metadata']['name']}: {exc.status} {exc.body}")
    assert not rejected, "\n".join(rejected)
    assert applied == sum(len(d) for d in rendered_manifests.values())


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    """Set ``value`` at a dotted ``path`` of ``doc`` ("spec.items.0.name"), creating mappings."""
    *parents, last = path.split(".")
    node: Any = doc
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    node[last] = value


#: kind → (where to write, the wrong value, what the server's refusal must say): one undeclared
#: field, one wrong type and two values outside an enum, each beside fields Phoenix really writes
WRONG_FIELDS: dict[str, tuple[str, Any, str]] = {
    "ExternalSecret": ("spec.refreshPolicy", "Hourly",
                       'spec.refreshPolicy: Unsupported value: "Hourly": supported values: "CreatedOnce", '
                       '"Periodic", "OnChange"'),
    "PodMonitor": ("spec.podMetricsEndpoints.0.scrapeEvery", "30s",
                   ".spec.podMetricsEndpoints[0].scrapeEvery: field not declared in schema"),
    "Application": ("spec.syncPolicy.automated.selfHeal", "yes",
                    ".spec.syncPolicy.automated.selfHeal: expected boolean"),
    "ApplicationSet": ("spec.syncPolicy.applicationsSync", "create-or-update",
                       'spec.syncPolicy.applicationsSync: Unsupported value: "create-or-update"'),
}


@pytest.mark.parametrize("kind", sorted(WRONG_FIELDS))
def test_the_third_party_schemas_refuse_a_wrong_field(kind: str, dry_run: Callable[[dict[str, Any]], None],
                                                      namespaces: dict[str, str],
                                                      rendered_manifests: dict[str, list[dict[str, Any]]]) -> None:
    """The trimmed CRDs check the spec: the rendered object is accepted as it is (the test above),
    and refused with the field named once one field in it is wrong."""
    from kubernetes import client

    rendered = next(d for docs in rendered_manifests.values() for d in docs if d["kind"] == kind)
    doc = _relocate(copy.deepcopy(rendered), namespaces)
    path, value, message = WRONG_FIELDS[kind]
    _set(doc, path, value)
    with pytest.raises(client.ApiException) as refused:
        dry_run(doc)
    # Validation (enums, required fields) answers 422; an undeclared field or a wrong type already
    # fails server-side apply's conversion to the schema's type, which the API server answers 500.
    assert refused.value.status in (422, 500), refused.value.body
    assert message in json.loads(refused.value.body)["message"], refused.value.body
