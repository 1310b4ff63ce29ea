"""Operations: does the database answer, which collector processes run, and retention."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from core.domain.accounts import Actor
from core.domain.experiment import utcnow
from core.domain.ports import Cache, EventBus, UnitOfWorkFactory
from core.domain.records import CollectorProcess
from core.observability.tracing import traced_service
from core.services.authz import mutation, query, record
from core.services.settings import SettingsService


@dataclass(frozen=True)
class PruneResult:
    retention_days: int
    cutoff: datetime
    samples_deleted: int


#: A scheduler counts as alive while its newest beat is younger than this many intervals.
STALE_AFTER_INTERVALS = 3


@dataclass(frozen=True)
class Readiness:
    """``checks``: name → "ok" or why not; ``failing``: the names that make the process not ready;
    ``degraded``: the names that do not answer but only cost speed or cross-process sharing."""

    checks: dict[str, str] = field(default_factory=dict)
    failing: list[str] = field(default_factory=list)
    degraded: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return not self.failing


@traced_service
class SystemService:
    def __init__(self, uow_factory: UnitOfWorkFactory, configuration: SettingsService | None = None, *,
                 events: EventBus | None = None, cache: Cache | None = None, redis_configured: bool = False,
                 scheduler_interval_s: float = 2.0, require_scheduler: bool = False,
                 clock: Callable[[], datetime] = utcnow):
        self.uow_factory = uow_factory
        self.configuration = configuration or SettingsService(uow_factory)
        self.events = events
        self.cache = cache
        self.redis_configured = redis_configured
        self.scheduler_interval_s = scheduler_interval_s
        self.require_scheduler = require_scheduler
        self.clock = clock

    @query("system.read")
    def readiness(self, actor: Actor) -> Readiness:
        """Database (a read), scheduler (a beat younger than 3 intervals; checked only when
        required) and Redis (PING, only when configured). Only the checks readiness depends on
        are listed. Never raises: a check that fails says why in one line without secrets.

        Redis down is *degraded*, not failing: the cache, the event bus and idempotency keys
        all fall back to this process and come back by themselves, so taking every replica
        out of load balancing for it would turn a slower Phoenix into no Phoenix."""
        checks: dict[str, str] = {}
        failing: list[str] = []
        newest = None
        try:
            with self.uow_factory() as uow:
                uow.settings.all()
                newest = uow.heartbeats.newest()
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            checks["database"] = f"the database does not answer ({type(exc).__name__})"
            failing.append("database")
        if "database" not in failing and self.require_scheduler:
            limit_s = STALE_AFTER_INTERVALS * self.scheduler_interval_s
            if newest is not None and (self.clock() - newest.beat_at).total_seconds() <= limit_s:
                checks["scheduler"] = "ok"
            else:
                checks["scheduler"] = (
                    "no scheduler has ever beaten" if newest is None else
                    f"no scheduler has beaten since {newest.beat_at.isoformat()} "
                    f"(last: {newest.scheduler_id}; stale after {limit_s:g}s)")
                failing.append("scheduler")
        degraded: list[str] = []
        redis_client = self.cache if self.cache is not None else self.events
        if self.redis_configured and redis_client is not None:
            try:
                redis_client.ping()
                checks["redis"] = "ok"
            except Exception as exc:  # noqa: BLE001 - the adapter's message names no secret
                checks["redis"] = (f"degraded: {exc}; cache, events and idempotency keys stay in each "
                                   "process until it is back")
                degraded.append("redis")
        return Readiness(checks, failing, degraded)

    @mutation("system.prune")
    def prune(self, actor: Actor, now: datetime | None = None) -> PruneResult:
        """Delete the measurement samples of experiments that ended more than the retention
        (Settings) ago. Experiments, their results, reports and the audit log stay; the audit
        entry says how many samples went."""
        days = self.configuration.retention_days()
        cutoff = (now or utcnow()) - timedelta(days=days)
        with self.uow_factory() as uow:
            deleted = uow.samples.prune_finished_before(cutoff)
            record(uow, "samples", details={"retention_days": days, "cutoff": cutoff.isoformat(),
                                            "samples_deleted": deleted})
            uow.commit()
        return PruneResult(days, cutoff, deleted)

    @query("system.read")
    def ping(self, actor: Actor) -> None:
        """Touch the database through a unit of work; raises what the store raises when it cannot."""
        with self.uow_factory() as uow:
            uow.settings.all()

    @query("system.read")
    def collector_processes(self, actor: Actor, status: str | None = None) -> list[CollectorProcess]:
        """Collector processes the runtimes recorded (every owner), optionally by status."""
        with self.uow_factory() as uow:
            return list(uow.processes.list(status=status))
