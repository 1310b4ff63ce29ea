"""Operational reads the pages show: does the database answer, which collector processes run."""

from __future__ import annotations

from core.domain.accounts import Actor
from core.domain.ports import UnitOfWorkFactory
from core.domain.records import CollectorProcess
from core.services.authz import query


class SystemService:
    def __init__(self, uow_factory: UnitOfWorkFactory):
        self.uow_factory = uow_factory

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
