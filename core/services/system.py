"""Operations: does the database answer, which collector processes run, and retention."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from core.domain.experiment import utcnow
from core.domain.ports import UnitOfWorkFactory
from core.domain.records import CollectorProcess
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

    def prune(self, now: datetime | None = None, actor: str = "scheduler") -> PruneResult:
        """Delete the measurement samples of experiments that ended more than the retention
        (Settings) ago. Experiments, their results, reports and the audit log stay; an audit
        entry records each prune that deleted something."""
        days = self.configuration.retention_days()
        cutoff = (now or utcnow()) - timedelta(days=days)
        with self.uow_factory() as uow:
            deleted = uow.samples.prune_finished_before(cutoff)
            if deleted:
                uow.audit.add(actor, "retention.prune", "samples",
                              {"retention_days": days, "cutoff": cutoff.isoformat(), "samples_deleted": deleted})
            uow.commit()
        return PruneResult(days, cutoff, deleted)

    def ping(self) -> None:
        """Touch the database through a unit of work; raises what the store raises when it cannot."""
        with self.uow_factory() as uow:
            uow.settings.all()

    def collector_processes(self, status: str | None = None) -> list[CollectorProcess]:
        """Collector processes the runtimes recorded (every owner), optionally by status."""
        with self.uow_factory() as uow:
            return list(uow.processes.list(status=status))
