"""kopf handlers: the reconcile steps wired to the two custom resources and their children.

- create / resume / spec update of a ``PhoenixProcessPipeline`` apply its ConfigMap and
  DaemonSet (server-side apply: idempotent; a new ``spec.config`` changes the pod template's
  config hash, which rolls the DaemonSet);
- create / resume / spec update of a ``LoadSimulationJob`` create its missing Jobs;
- events of the DaemonSets and Jobs the operator manages rewrite their owner's status, and a
  slow timer re-derives it as a safety net against a missed watch event;
- deletion: kopf's finalizer (``phoenix.io/operator``) holds the resource until the handler
  has deleted its children explicitly and seen them gone (no reliance on the garbage
  collector).

Errors: an invalid spec is a ``kopf.PermanentError`` (no retry) with its reason in the status
conditions and a Warning Event; API trouble (5xx, 429, 409, timeouts, a missing permission)
is a ``kopf.TemporaryError`` retried after a delay. Handlers return nothing, so kopf stores
no handler results in the status.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import kopf

from core.observability.metrics import OPERATOR_RECONCILES, OPERATOR_STATUS_UPDATES
from core.operator import desired as d
from core.operator import reconcile as r
from core.operator.cluster import Cluster, ClusterError

log = logging.getLogger(__name__)
T = TypeVar("T")

#: The safety-net re-derivation of each resource's status (events do the real work).
RESYNC_S = 60.0


@dataclass(frozen=True)
class Context:
    cluster: Cluster
    loadsim_image: str
    now: Callable[[], datetime] = lambda: datetime.now(UTC)


@contextmanager
def outcome(ctx: Context, kind: str, plural: str, body: Any) -> Iterator[None]:
    """Translate reconcile errors into kopf's, counting each outcome."""
    meta = body["metadata"]
    try:
        yield
    except d.InvalidSpec as exc:
        OPERATOR_RECONCILES.labels(kind, "invalid").inc()
        _refuse(ctx, plural, body, exc.reason, str(exc))
        raise kopf.PermanentError(f"{exc.reason}: {exc}") from None
    except ClusterError as exc:
        if exc.retryable:
            OPERATOR_RECONCILES.labels(kind, "retry").inc()
            raise kopf.TemporaryError(str(exc), delay=exc.delay) from None
        OPERATOR_RECONCILES.labels(kind, "error").inc()
        # The server refused an object the operator built from this spec: a later try with the
        # same spec gets the same answer.
        _refuse(ctx, plural, body, "Rejected", str(exc))
        raise kopf.PermanentError(f"Rejected: {exc}") from None
    else:
        OPERATOR_RECONCILES.labels(kind, "ok").inc()
    log.debug("reconciled %s %s/%s", kind, meta.get("namespace"), meta.get("name"))


def _refuse(ctx: Context, plural: str, body: Any, reason: str, message: str) -> None:
    kopf.warn(dict(body), reason=reason, message=message[:1024])
    try:
        r.record_failure(ctx.cluster, plural, body, reason, message, ctx.now())
    except ClusterError as exc:  # the Event and the log still carry the reason
        log.warning("could not record %s on %s: %s", reason, body["metadata"].get("name"), exc)


def _child_event(ctx: Context, kind: str, refresh: Callable[..., Any], body: Any, event_type: str) -> None:
    owner = r.owner_of(body)
    if owner is None or owner["kind"] != kind:
        return
    try:
        if refresh(ctx.cluster, owner, ctx.now()) is not None:
            OPERATOR_STATUS_UPDATES.labels(kind).inc()
    except ClusterError as exc:
        # Event handlers are not retried; the next event or the resync timer catches up.
        log.warning("status of %s %s/%s not updated after a %s event: %s", kind,
                    owner["metadata"]["namespace"], owner["metadata"]["name"], event_type, exc)


def build_registry(ctx: Context) -> kopf.OperatorRegistry:
    """A registry with every handler bound to ``ctx`` (no module-level state, no import side effects)."""
    registry = kopf.OperatorRegistry()
    on = kopf.on
    managed = {d.MANAGED_BY: d.MANAGER}
    ppp = (d.GROUP, d.VERSION, d.PIPELINE_PLURAL)
    lsj = (d.GROUP, d.VERSION, d.LOADSIM_PLURAL)

    # -- PhoenixProcessPipeline ---------------------------------------------------------------
    @on.resume(*ppp, registry=registry)
    @on.create(*ppp, registry=registry)
    @on.update(*ppp, field="spec", registry=registry)
    def pipeline_apply(body: kopf.Body, **_: Any) -> None:
        with outcome(ctx, d.PIPELINE_KIND, d.PIPELINE_PLURAL, body):
            r.apply_pipeline(ctx.cluster, body, ctx.now())

    @on.delete(*ppp, registry=registry)
    def pipeline_delete(body: kopf.Body, **_: Any) -> None:
        with outcome(ctx, d.PIPELINE_KIND, d.PIPELINE_PLURAL, body):
            r.delete_pipeline(ctx.cluster, body)

    @on.event("apps", "v1", "daemonsets", labels=managed, registry=registry)
    def daemonset_event(body: kopf.Body, type: str | None, **_: Any) -> None:  # noqa: A002 (kopf's name)
        _child_event(ctx, d.PIPELINE_KIND, r.refresh_pipeline, body, type or "listed")

    @kopf.timer(*ppp, interval=RESYNC_S, idle=RESYNC_S, registry=registry)
    def pipeline_resync(body: kopf.Body, **_: Any) -> None:
        try:
            r.refresh_pipeline(ctx.cluster, body, ctx.now())
        except ClusterError as exc:
            raise kopf.TemporaryError(str(exc), delay=exc.delay) from None

    # -- LoadSimulationJob --------------------------------------------------------------------
    @on.resume(*lsj, registry=registry)
    @on.create(*lsj, registry=registry)
    @on.update(*lsj, field="spec", registry=registry)
    def loadsim_apply(body: kopf.Body, **_: Any) -> None:
        # A spec change does not touch running Jobs (a Job's pod template is immutable); it adds
        # Jobs on newly selected nodes.
        with outcome(ctx, d.LOADSIM_KIND, d.LOADSIM_PLURAL, body):
            r.apply_loadsim(ctx.cluster, body, ctx.loadsim_image, ctx.now())

    @on.delete(*lsj, registry=registry)
    def loadsim_delete(body: kopf.Body, **_: Any) -> None:
        with outcome(ctx, d.LOADSIM_KIND, d.LOADSIM_PLURAL, body):
            r.delete_loadsim(ctx.cluster, body)

    @on.event("batch", "v1", "jobs", labels=managed, registry=registry)
    def job_event(body: kopf.Body, type: str | None, **_: Any) -> None:  # noqa: A002 (kopf's name)
        _child_event(ctx, d.LOADSIM_KIND, r.refresh_loadsim, body, type or "listed")

    @kopf.timer(*lsj, interval=RESYNC_S, idle=RESYNC_S, registry=registry)
    def loadsim_resync(body: kopf.Body, **_: Any) -> None:
        try:
            r.refresh_loadsim(ctx.cluster, body, ctx.now())
        except ClusterError as exc:
            raise kopf.TemporaryError(str(exc), delay=exc.delay) from None

    return registry
