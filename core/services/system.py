"""Operations: does the database answer, which collector processes run, and retention."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from core.domain.accounts import Actor
from core.domain.experiment import utcnow
from core.domain.ports import UnitOfWorkFactory
from core.domain.records import CollectorProcess
from core.services.authz import mutation, query, record
from core.services.settings import SettingsService


@dataclass(frozen=True)
class PruneResult:
    retention_days: int
    cutoff: datetime
    samples_deleted: int


class SystemService:
    def __init__(self, uow_factory: UnitOfWorkFactory, configuration: SettingsService | None = None):
        self.uow_factory = uow_factory
        self.configuration = configuration or SettingsService(uow_factory)

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
