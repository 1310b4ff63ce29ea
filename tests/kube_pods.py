"""The collector pods a PhoenixProcessPipeline ends up as, made the way the cluster would.

No kubelet or controllers run in the suite's API server (tests/kube.py), so the tests make the
pods themselves: the operator's own DaemonSet for the custom resource
(``core.operator.desired.daemonset``), then one Pod per node from its template, as the DaemonSet
controller would (``daemonset_pods``), with the status a kubelet would report once the
collector runs and passes its readiness probe (``running_status``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from core.operator.desired import daemonset


def collector_daemonset(cr: Mapping[str, Any]) -> dict[str, Any]:
    """The operator's DaemonSet for ``cr`` (a uid stands in when the object was never stored)."""
    body = copy.deepcopy(dict(cr))
    body["metadata"].setdefault("uid", "00000000-0000-0000-0000-000000000000")
    body["metadata"].setdefault("generation", 1)
    return daemonset(body)


def daemonset_pods(ds: Mapping[str, Any], nodes: list[str]) -> list[dict[str, Any]]:
    """One Pod per node from the DaemonSet's template, bound to that node (no status yet)."""
    template = ds["spec"]["template"]
    pods = []
    for node in nodes:
        spec = copy.deepcopy(template["spec"])
        spec["nodeName"] = node
        pods.append({"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"name": f"{ds['metadata']['name']}-{node}"[:63].rstrip("-"),
                                  "namespace": ds["metadata"]["namespace"],
                                  "labels": dict(template["metadata"]["labels"]),
                                  "annotations": dict(template["metadata"].get("annotations") or {})},
                     "spec": spec})  # fmt: skip
    return pods


def running_status(pod_ip: str, now: str, *, phase: str = "Running") -> dict[str, Any]:
    """What a kubelet reports for a pod whose containers run and pass their readiness probes."""
    ready = "True" if phase == "Running" else "False"
    return {"phase": phase, "podIP": pod_ip, "podIPs": [{"ip": pod_ip}], "hostIP": pod_ip, "startTime": now,
            "conditions": [{"type": t, "status": ready if t in ("Ready", "ContainersReady") else "True",
                            "lastTransitionTime": now}
                           for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")]}  # fmt: skip
