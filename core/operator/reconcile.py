"""The reconcile steps, over the ``Cluster`` port (no kopf here: the handlers translate errors).

Every step is idempotent: applying the desired children again changes nothing, creating a
Job that exists is a no-op, deleting what is gone is a no-op. A status is written only when
it differs from the one stored, and read-compute-write of one resource's status is
serialised in this process, so a slow writer never overwrites a newer status with an older one.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from core.operator import desired as d
from core.operator.cluster import Cluster, ClusterError
from core.operator.status import TERMINAL_LOAD_PHASES, failed_status, loadsim_status, pipeline_status

_locks: dict[tuple[str, str, str], threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock(plural: str, namespace: str, name: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault((plural, namespace, name), threading.Lock())


def _forget(plural: str, namespace: str, name: str) -> None:
    with _locks_guard:
        _locks.pop((plural, namespace, name), None)


def _owned_by(obj: Mapping[str, Any] | None, uid: str) -> bool:
    refs = ((obj or {}).get("metadata") or {}).get("ownerReferences") or []
    return any(r.get("uid") == uid for r in refs)


def _changed(current: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    current = current or {}
    return any(current.get(k) != v for k, v in new.items())


def _write_status(cluster: Cluster, plural: str, body: Mapping[str, Any], status: dict[str, Any]) -> bool:
    meta = body["metadata"]
    if not _changed(body.get("status"), status):
        return False
    cluster.patch_status(plural, meta["namespace"], meta["name"], status)
    return True


def record_failure(cluster: Cluster, plural: str, body: Mapping[str, Any], reason: str, message: str,
                   now: datetime) -> None:
    """Put a permanent failure in the resource's status (phase Failed, the reason in the conditions)."""
    meta = body["metadata"]
    with _lock(plural, meta["namespace"], meta["name"]):
        status = failed_status(reason, message, body.get("status"), now, generation=meta.get("generation"))
        _write_status(cluster, plural, body, status)


# -- PhoenixProcessPipeline -------------------------------------------------------------------


def apply_pipeline(cluster: Cluster, body: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """Apply the ConfigMap and DaemonSet for the resource's spec; returns the status written."""
    meta, spec = body["metadata"], body["spec"]
    ds = d.daemonset(body)  # validates spec.config first (InvalidSpec)
    cm = d.configmap(body)
    cluster.apply(cm)
    # A renamed spec.configMap leaves the old one behind: remove ConfigMaps this resource owns
    # under other names (after the new one exists, so the pods always have one to mount).
    selector = f"{d.PIPELINE_LABEL}={d.label_value(meta['name'])},{d.MANAGED_BY}={d.MANAGER}"
    for old in cluster.list("ConfigMap", meta["namespace"], selector):
        if old["metadata"]["name"] != spec["configMap"] and _owned_by(old, meta["uid"]):
            cluster.delete("ConfigMap", meta["namespace"], old["metadata"]["name"])
    applied = cluster.apply(ds)
    # The OTLP Service (spec.otlpPort) after the DaemonSet; one this resource owns is removed
    # when the port is dropped from the spec, or renamed with the resource's name rule.
    svc = d.otlp_service(body)
    if svc is not None:
        cluster.apply(svc)
    for old in cluster.list("Service", meta["namespace"], selector):
        if (svc is None or old["metadata"]["name"] != svc["metadata"]["name"]) and _owned_by(old, meta["uid"]):
            cluster.delete("Service", meta["namespace"], old["metadata"]["name"])
    return refresh_pipeline(cluster, body, now, daemonset=applied, force=True) or {}


def refresh_pipeline(cluster: Cluster, body: Mapping[str, Any], now: datetime, *,
                     daemonset: Mapping[str, Any] | None = None, force: bool = False) -> dict[str, Any] | None:
    """Rewrite the resource's status from its DaemonSet (read fresh); the status, or None when left alone."""
    meta = body["metadata"]
    key = (d.PIPELINE_PLURAL, meta["namespace"], meta["name"])
    with _lock(*key):
        fresh = cluster.get_custom(*key)
        if fresh is None or fresh["metadata"].get("deletionTimestamp"):
            return None
        current = fresh.get("status") or {}
        # A refused spec keeps its Failed status until the spec changes (a new generation).
        if not force and current.get("phase") == "Failed" and \
                current.get("observedGeneration") == fresh["metadata"].get("generation"):
            return None
        ds = daemonset if daemonset is not None else cluster.get("DaemonSet", meta["namespace"],
                                                                  d.daemonset_name(fresh))
        if ds is not None and not _owned_by(ds, fresh["metadata"]["uid"]):
            ds = None
        status = pipeline_status(ds, current, now)
        status["configHash"] = d.config_hash(str((fresh.get("spec") or {}).get("config", "")))
        _write_status(cluster, d.PIPELINE_PLURAL, fresh, status)
        return status


def owner_of(child: Mapping[str, Any]) -> dict[str, Any] | None:
    """The owning resource's identity (a minimal body) from a child's controller reference."""
    meta = child.get("metadata") or {}
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller") and ref.get("apiVersion") == d.API_VERSION:
            return {"metadata": {"namespace": meta.get("namespace"), "name": ref["name"], "uid": ref["uid"]},
                    "kind": ref["kind"]}
    return None


def delete_pipeline(cluster: Cluster, body: Mapping[str, Any]) -> None:
    """Delete the DaemonSet, Service and ConfigMap this resource owns; ClusterError(retryable) until they are gone."""
    meta = body["metadata"]
    ns, uid = meta["namespace"], meta["uid"]
    selector = f"{d.PIPELINE_LABEL}={d.label_value(meta['name'])},{d.MANAGED_BY}={d.MANAGER}"
    targets = [("DaemonSet", o["metadata"]["name"]) for o in cluster.list("DaemonSet", ns, selector)
               if _owned_by(o, uid)]
    targets += [(kind, o["metadata"]["name"]) for kind in ("Service", "ConfigMap")
                for o in cluster.list(kind, ns, selector) if _owned_by(o, uid)]
    for kind, name in targets:  # the DaemonSet first: its pods mount the ConfigMap
        cluster.delete(kind, ns, name)
    left = [f"{kind} {name}" for kind, name in targets if _owned_by(cluster.get(kind, ns, name), uid)]
    if left:
        raise ClusterError(f"waiting for {', '.join(left)} to be deleted", retryable=True, delay=2.0)
    _forget(d.PIPELINE_PLURAL, ns, meta["name"])


# -- LoadSimulationJob ------------------------------------------------------------------------


def apply_loadsim(cluster: Cluster, body: Mapping[str, Any], image: str, now: datetime) -> dict[str, Any]:
    """Create the missing Jobs (one per selected node); returns the status written."""
    spec = body["spec"]
    if load_finished(body.get("status")):
        # Finished: its Jobs may be gone by their TTL; a restarted operator must not run the load again.
        return dict(body["status"])
    d.loadsim_args(spec)  # InvalidSpec before any Job exists
    nodes = cluster.node_names(d.node_selector_string(spec.get("nodeSelector")))
    if not nodes:
        raise d.InvalidSpec("NoMatchingNodes", f"no node matches nodeSelector {spec.get('nodeSelector') or {}}")
    for node in nodes:
        cluster.create_if_absent(d.load_job(body, node, image))
    return refresh_loadsim(cluster, body, now, force=True) or {}


def load_finished(status: Mapping[str, Any] | None) -> bool:
    """The load ran and ended (not a spec refused before any Job existed, which may still be fixed)."""
    status = status or {}
    if status.get("phase") not in TERMINAL_LOAD_PHASES:
        return False
    return status["phase"] != "Failed" or any(c.get("type") == "Failed" and c.get("status") == "True"
                                              for c in status.get("conditions") or [])


def refresh_loadsim(cluster: Cluster, body: Mapping[str, Any], now: datetime, *,
                    force: bool = False) -> dict[str, Any] | None:
    """Rewrite the resource's status from its Jobs; the status, or None when left alone."""
    meta = body["metadata"]
    key = (d.LOADSIM_PLURAL, meta["namespace"], meta["name"])
    with _lock(*key):
        fresh = cluster.get_custom(*key)
        if fresh is None or fresh["metadata"].get("deletionTimestamp"):
            return None
        current = fresh.get("status") or {}
        if not force and current.get("phase") == "Failed" and not load_finished(current):
            return None  # a refused spec (no Job ever ran) keeps its reason until the spec changes
        jobs = [j for j in cluster.list("Job", meta["namespace"], _loadsim_selector(fresh))
                if _owned_by(j, fresh["metadata"]["uid"])]
        status = loadsim_status(jobs, fresh.get("spec") or {}, current, now)
        status["observedGeneration"] = fresh["metadata"].get("generation")
        _write_status(cluster, d.LOADSIM_PLURAL, fresh, status)
        return status


def _loadsim_selector(body: Mapping[str, Any]) -> str:
    return f"{d.LOADSIM_LABEL}={d.label_value(body['metadata']['name'])},{d.MANAGED_BY}={d.MANAGER}"


def delete_loadsim(cluster: Cluster, body: Mapping[str, Any]) -> None:
    """Delete this resource's Jobs (their pods stop the simulator, which kills its workers)."""
    meta = body["metadata"]
    ns, uid = meta["namespace"], meta["uid"]
    names = [j["metadata"]["name"] for j in cluster.list("Job", ns, _loadsim_selector(body)) if _owned_by(j, uid)]
    for name in names:
        cluster.delete("Job", ns, name)
    left = [n for n in names if _owned_by(cluster.get("Job", ns, n), uid)]
    if left:
        raise ClusterError(f"waiting for Job(s) {', '.join(left)} to be deleted", retryable=True, delay=2.0)
    _forget(d.LOADSIM_PLURAL, ns, meta["name"])
