"""Custom resources and a fake ``Cluster`` for the operator's unit tests (no API server)."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import yaml

from core.catalog.templates import get_template
from core.operator.cluster import ClusterError
from core.render.bundle import render_bundle
from core.render.collector import RenderOptions


@cache
def _rendered_cr() -> dict[str, Any]:
    bundle = render_bundle(get_template("process-baseline-v1"), RenderOptions(experiment_id="exp-7",
                                                                               variant="candidate"))
    return yaml.safe_load(bundle.manifests["pipeline-cr.yaml"])


def pipeline_cr(name: str = "phoenix-exp-7-candidate", namespace: str = "team-a", uid: str = "uid-1",
                generation: int = 1, **spec: Any) -> dict[str, Any]:
    """The PhoenixProcessPipeline Phoenix renders, as the API server returns it."""
    cr = copy.deepcopy(_rendered_cr())
    cr["metadata"].update(name=name, namespace=namespace, uid=uid, generation=generation)
    cr["spec"].update(spec)
    return cr


def loadsim_cr(name: str = "load-exp-7", namespace: str = "team-a", uid: str = "uid-9", **spec: Any) -> dict[str, Any]:
    base = {"experimentId": "exp-7", "profile": "realistic", "duration": "30m", "processCount": 100}
    base.update(spec)
    return {"apiVersion": "phoenix.io/v1alpha1", "kind": "LoadSimulationJob",
            "metadata": {"name": name, "namespace": namespace, "uid": uid, "generation": 1}, "spec": base}


def _matches(obj: dict[str, Any], selector: str) -> bool:
    labels = obj["metadata"].get("labels") or {}
    pairs = [p.split("=", 1) for p in selector.split(",") if p]
    return all(labels.get(k) == v for k, v in pairs)


class FakeCluster:
    """In-memory ``Cluster``: apply replaces the object but keeps its status, like the server."""

    def __init__(self, nodes: dict[str, dict[str, str]] | None = None):
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.customs: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.nodes = nodes or {}
        self.status_writes = 0
        self.generations: dict[tuple[str, str, str], int] = {}
        self.fail_next: ClusterError | None = None

    def _maybe_fail(self) -> None:
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc

    def add_custom(self, plural: str, body: dict[str, Any]) -> dict[str, Any]:
        m = body["metadata"]
        self.customs[(plural, m["namespace"], m["name"])] = body
        return body

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        self._maybe_fail()
        m = obj["metadata"]
        key = (obj["kind"], m["namespace"], m["name"])
        old = self.objects.get(key)
        new = copy.deepcopy(obj)
        spec_changed = old is None or old.get("spec") != obj.get("spec")
        self.generations[key] = self.generations.get(key, 0) + (1 if spec_changed else 0)
        new["metadata"]["generation"] = self.generations[key]
        if old is not None and "status" in old:
            new["status"] = old["status"]
        self.objects[key] = new
        return copy.deepcopy(new)

    def create_if_absent(self, obj: dict[str, Any]) -> bool:
        self._maybe_fail()
        m = obj["metadata"]
        key = (obj["kind"], m["namespace"], m["name"])
        if key in self.objects:
            return False
        self.objects[key] = copy.deepcopy(obj)
        return True

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        obj = self.objects.get((kind, namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def delete(self, kind: str, namespace: str, name: str) -> None:
        self._maybe_fail()
        self.objects.pop((kind, namespace, name), None)

    def list(self, kind: str, namespace: str, selector: str) -> list[dict[str, Any]]:
        return [copy.deepcopy(o) for (k, ns, _), o in sorted(self.objects.items())
                if k == kind and ns == namespace and _matches(o, selector)]

    def node_names(self, selector: str) -> list[str]:
        pairs = [p.split("=", 1) for p in selector.split(",") if p]
        return sorted(n for n, labels in self.nodes.items() if all(labels.get(k) == v for k, v in pairs))

    def get_custom(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        obj = self.customs.get((plural, namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def patch_status(self, plural: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        self._maybe_fail()
        obj = self.customs.get((plural, namespace, name))
        if obj is not None:
            obj.setdefault("status", {}).update(copy.deepcopy(status))
            self.status_writes += 1


@cache
def _experiment_crs() -> dict[str, dict[str, Any]]:
    from core.render import k8s_resources as res

    pipelines = {v: get_template(n) for v, n in (("baseline", "process-baseline-v1"), ("candidate", "process-topk-v1"))}
    refs = {v: (p.name, 1) for v, p in pipelines.items()}
    objs = res.experiment_pipelines("exp-7", "team-a", pipelines, refs, res.default_placement())
    return {o["spec"]["variant"]: o for o in objs}


def experiment_cr(role: str, uid: str | None = None, **spec: Any) -> dict[str, Any]:
    """The tap's or a variant's PhoenixProcessPipeline as the Kubernetes runtime applies it."""
    cr = copy.deepcopy(_experiment_crs()[role])
    cr["metadata"].update(uid=uid or f"uid-{role}", generation=1)
    cr["spec"].update(spec)
    return cr
