"""A recorded, in-memory ``KubeApi`` (core.runtime.kube_api) for unit tests.

It keeps objects by (apiVersion, kind, namespace, name), applies like server-side apply
for the parts Phoenix sends (labels, annotations, spec, data replaced; status kept;
``metadata.generation`` bumped when the spec changes), and deletes like the API server:
an object with finalizers only gets a ``deletionTimestamp`` until ``finalize`` runs.
``errors[op]`` is a list of exceptions the next calls of ``op`` raise (the API's or the
network's, as the real client would), so error handling is tested through the adapter's
own classification.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from core.runtime.kube_api import Ref, classify

Key = tuple[str, str, str, str]


def key(ref: Ref) -> Key:
    return (ref.api_version, ref.kind, ref.namespace, ref.name)


@dataclass
class FakeKube:
    served: set[str] = field(default_factory=lambda: {"phoenixprocesspipelines", "loadsimulationjobs"})
    #: finalizer the "operator" puts on the custom resources it reconciles (None: none)
    finalizer: str | None = None
    objects: dict[Key, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    #: op → what its next calls do: an exception to raise, or None to succeed
    errors: dict[str, list[BaseException | None]] = field(default_factory=dict)

    def _maybe_fail(self, op: str, what: str) -> None:
        queue = self.errors.get(op) or []
        if queue and (exc := queue.pop(0)) is not None:
            raise classify(exc, what)

    def get(self, ref: Ref) -> dict[str, Any] | None:
        self.calls.append(("get", str(ref)))
        self._maybe_fail("get", f"reading {ref}")
        obj = self.objects.get(key(ref))
        return copy.deepcopy(obj) if obj is not None else None

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        ref = Ref.of(obj)
        self.calls.append(("apply", str(ref)))
        self._maybe_fail("apply", f"applying {ref}")
        if ref.plural not in self.served and ref.kind != "ConfigMap":
            raise AssertionError(f"applied {ref.kind}, which this fake cluster does not serve")
        sent = copy.deepcopy(obj)
        old = self.objects.get(key(ref))
        if old is None:
            sent["metadata"]["generation"] = 1
            if self.finalizer and ref.kind in ("PhoenixProcessPipeline", "LoadSimulationJob"):
                sent["metadata"]["finalizers"] = [self.finalizer]
            self.objects[key(ref)] = sent
            return copy.deepcopy(sent)
        if old["metadata"].get("deletionTimestamp"):
            return copy.deepcopy(old)  # being deleted: the API server ignores spec changes
        for part in ("spec", "data"):
            if part in sent:
                if part == "spec" and sent["spec"] != old.get("spec"):
                    old["metadata"]["generation"] += 1
                old[part] = sent[part]
        for part in ("labels", "annotations"):
            old["metadata"][part] = {**old["metadata"].get(part, {}), **sent["metadata"].get(part, {})}
        return copy.deepcopy(old)

    def delete(self, ref: Ref) -> bool:
        self.calls.append(("delete", str(ref)))
        self._maybe_fail("delete", f"deleting {ref}")
        obj = self.objects.get(key(ref))
        if obj is None:
            return False
        if obj["metadata"].get("finalizers"):
            obj["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        else:
            del self.objects[key(ref)]
        return True

    def serves(self, api_version: str, plural: str, namespace: str) -> bool:
        self.calls.append(("serves", plural))
        self._maybe_fail("serves", f"looking for {plural}")
        return plural in self.served

    # ------------------------------------------------------------ what the operator would do

    def finalize(self) -> int:
        """Run the operator's finalizer on every object being deleted; returns how many went."""
        gone = [k for k, o in self.objects.items() if o["metadata"].get("deletionTimestamp")]
        for k in gone:
            del self.objects[k]
        return len(gone)

    def set_status(self, kind: str, name: str, **status: Any) -> None:
        for (_, k, _, n), obj in self.objects.items():
            if k == kind and n == name:
                obj["status"] = {**obj.get("status", {}), **status}
                return
        raise KeyError(f"{kind} {name} does not exist")

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [copy.deepcopy(o) for (_, k, _, _), o in sorted(self.objects.items()) if k == kind]
