"""Status of the custom resources, derived from their children's statuses (pure functions).

``PhoenixProcessPipeline`` ← its DaemonSet: ``totalNodes`` = desiredNumberScheduled,
``readyNodes`` = numberReady (a pod is ready when the collector's health_check answers its
readiness probe), ``updatedNodes`` = updatedNumberScheduled. Phases:

- ``Deploying``: the DaemonSet's controller has not caught up with the latest spec, or a
  rollout is under way (pods not yet on the current template), or the first pods are not
  ready yet;
- ``Pending``: no node matches the selector (desiredNumberScheduled = 0);
- ``Running``: every scheduled node runs a ready pod of the current template;
- ``Degraded``: everything is on the current template but some pods are not ready, after
  the pipeline had been Running (a pod that crashes or fails its probes later);
- ``Failed``: the spec is invalid (set by the handlers, never derived here).

Conditions: ``Ready`` (all pods ready), ``Progressing`` (rollout under way), ``Degraded``.

``LoadSimulationJob`` ← its Jobs (one per node): ``Succeeded`` when every Job succeeded,
``Failed`` when any failed, ``Running`` while any is active or some finished and others not,
else ``Pending``. Jobs deleted by their TTL after the run leave the terminal phase as it was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from core.operator.desired import GENERATION, LOAD_BACKOFF_LIMIT, LOAD_MAX_PROCESSES

TERMINAL_LOAD_PHASES: Final = frozenset({"Succeeded", "Failed", "Cancelled"})
LOAD_STATUS_FIELDS: Final = frozenset({"phase", "nodes", "activeProcesses", "startTime", "completionTime",
                                       "observedGeneration", "conditions"})


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(ctype: str, ok: bool | None, reason: str, message: str, now: datetime,
              previous: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """One status condition; ``lastTransitionTime`` moves only when the status value changes."""
    status = "Unknown" if ok is None else ("True" if ok else "False")
    before = next((c for c in previous if c.get("type") == ctype), None)
    since = before.get("lastTransitionTime") if before and before.get("status") == status else None
    return {"type": ctype, "status": status, "reason": reason, "message": message[:1024],
            "lastTransitionTime": since or rfc3339(now)}


def _int(status: Mapping[str, Any], key: str) -> int | None:
    value = status.get(key)
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def pipeline_status(ds: Mapping[str, Any] | None, previous: Mapping[str, Any] | None,
                    now: datetime) -> dict[str, Any]:
    """The resource's status from its DaemonSet (``None``: not created yet)."""
    previous = previous or {}
    before = previous.get("conditions") or []
    if ds is None:
        return {"phase": "Deploying", "readyNodes": 0, "totalNodes": 0,
                "conditions": [condition("Ready", False, "Creating", "the collector DaemonSet does not exist yet", now,
                                         before),
                               condition("Progressing", True, "Creating", "creating the collector DaemonSet", now,
                                         before),
                               condition("Degraded", False, "Creating", "", now, before)]}
    st = ds.get("status") or {}
    meta = ds.get("metadata") or {}
    desired = _int(st, "desiredNumberScheduled")
    ready = _int(st, "numberReady") or 0
    # A status writer that does not report these (older controllers) is taken as up to date.
    updated = _int(st, "updatedNumberScheduled")
    updated = desired if updated is None else updated
    ds_gen = _int(meta, "generation")
    seen = _int(st, "observedGeneration")
    # No status at all: the controller has not looked at it yet.
    caught_up = desired is not None and (seen is None or ds_gen is None or seen >= ds_gen)
    out: dict[str, Any] = {"readyNodes": ready, "totalNodes": desired or 0, "updatedNodes": updated or 0}
    applied = (meta.get("annotations") or {}).get(GENERATION, "")
    if caught_up and applied.isdigit():
        out["observedGeneration"] = int(applied)
    elif "observedGeneration" in previous:
        out["observedGeneration"] = previous["observedGeneration"]
    if desired is None or not caught_up:
        phase, reason, msg = "Deploying", "Rollout", "waiting for the DaemonSet controller to see the latest spec"
    elif desired == 0:
        phase, reason, msg = "Pending", "NoNodes", "no node matches the node selector and tolerations"
    elif (updated or 0) < desired:
        phase, reason, msg = "Deploying", "Rollout", f"{updated} of {desired} nodes run the current config"
    elif ready < desired:
        was_up = previous.get("phase") in {"Running", "Degraded"}
        phase = "Degraded" if was_up else "Deploying"
        reason = "PodsNotReady" if was_up else "Starting"
        msg = f"{ready} of {desired} collectors pass their health check"
    else:
        phase, reason, msg = "Running", "AllReady", f"all {desired} collectors pass their health check"
    out["phase"] = phase
    out["conditions"] = [
        condition("Ready", phase == "Running", reason, msg, now, before),
        condition("Progressing", phase == "Deploying", reason, msg if phase == "Deploying" else "", now, before),
        condition("Degraded", phase == "Degraded", reason, msg if phase == "Degraded" else "", now, before),
    ]
    return out


def failed_status(reason: str, message: str, previous: Mapping[str, Any] | None, now: datetime,
                  *, generation: int | None = None) -> dict[str, Any]:
    """Status for a spec the operator refuses: phase Failed, the reason in the Ready condition."""
    before = (previous or {}).get("conditions") or []
    out: dict[str, Any] = {"phase": "Failed", "conditions": [
        condition("Ready", False, reason, message, now, before),
        condition("Progressing", False, reason, "", now, before),
        condition("Degraded", True, reason, message, now, before),
    ]}
    if generation is not None:
        out["observedGeneration"] = generation
    return out


# -- LoadSimulationJob ------------------------------------------------------------------------


def job_outcome(job: Mapping[str, Any]) -> str:
    """``succeeded``, ``failed``, ``active`` or ``pending`` for one Job."""
    st = job.get("status") or {}
    for c in st.get("conditions") or []:
        if c.get("status") == "True" and c.get("type") in {"Complete", "SuccessCriteriaMet"}:
            return "succeeded"
        if c.get("status") == "True" and c.get("type") in {"Failed", "FailureTarget"}:
            return "failed"
    limit = (job.get("spec") or {}).get("backoffLimit", LOAD_BACKOFF_LIMIT)
    if (_int(st, "succeeded") or 0) >= 1:
        return "succeeded"
    if (_int(st, "failed") or 0) > limit:
        return "failed"
    if (_int(st, "active") or 0) > 0:
        return "active"
    return "pending"


def loadsim_status(jobs: Sequence[Mapping[str, Any]], spec: Mapping[str, Any],
                   previous: Mapping[str, Any] | None, now: datetime) -> dict[str, Any]:
    """The resource's status from its Jobs."""
    previous = previous or {}
    before = previous.get("conditions") or []
    if not jobs and previous.get("phase") in TERMINAL_LOAD_PHASES:
        # the Jobs' TTL removed them; the outcome stays (only the operator's own fields, not kopf's)
        return {k: v for k, v in previous.items() if k in LOAD_STATUS_FIELDS}
    outcomes = [job_outcome(j) for j in jobs]
    n = len(jobs)
    done = outcomes.count("succeeded")
    failed = outcomes.count("failed")
    active = outcomes.count("active")
    if n == 0:
        phase, reason, msg = "Pending", "NoJobs", "no load Job exists yet"
    elif failed:
        phase, reason, msg = "Failed", "JobFailed", f"{failed} of {n} node(s) failed to run the load"
    elif done == n:
        phase, reason, msg = "Succeeded", "Completed", f"the load ran to completion on all {n} node(s)"
    elif active or done:
        phase, reason, msg = "Running", "Running", f"{active} node(s) running, {done} of {n} finished"
    else:
        phase, reason, msg = "Pending", "Starting", f"{n} Job(s) created, none started yet"
    per_node = min(int(spec.get("processCount", 0)), LOAD_MAX_PROCESSES)
    out: dict[str, Any] = {"phase": phase, "nodes": n,
                           # the planned count on the nodes whose simulator runs now (not a live census)
                           "activeProcesses": per_node * active if phase == "Running" else 0}
    starts = sorted(str(j["status"]["startTime"]) for j in jobs if (j.get("status") or {}).get("startTime"))
    start = starts[0] if starts else previous.get("startTime")
    if start is None and phase != "Pending":
        start = rfc3339(now)
    if start:
        out["startTime"] = start
    if phase in TERMINAL_LOAD_PHASES:
        ends = sorted(str(j["status"]["completionTime"]) for j in jobs
                      if (j.get("status") or {}).get("completionTime"))
        out["completionTime"] = previous.get("completionTime") or (ends[-1] if ends else rfc3339(now))
    if "observedGeneration" in previous:
        out["observedGeneration"] = previous["observedGeneration"]
    out["conditions"] = [
        condition("Ready", phase in {"Running", "Succeeded"}, reason, msg, now, before),
        condition("Complete", phase == "Succeeded", reason, msg if phase == "Succeeded" else "", now, before),
        condition("Failed", phase == "Failed", reason, msg if phase == "Failed" else "", now, before),
    ]
    return out
