"""Operational reads the pages show: does the database answer, which collector processes run."""

from __future__ import annotations

from core.domain.ports import UnitOfWorkFactory
from core.domain.records import CollectorProcess


class SystemService:
    def __init__(self, uow_factory: UnitOfWorkFactory):
        self.uow_factory = uow_factory

    def ping(self) -> None:
        """Touch the database through a unit of work; raises what the store raises when it cannot."""
        with self.uow_factory() as uow:
            uow.settings.all()

    def collector_processes(self, status: str | None = None) -> list[CollectorProcess]:
        """Collector processes the runtimes recorded (every owner), optionally by status."""
        with self.uow_factory() as uow:
            return list(uow.processes.list(status=status))
