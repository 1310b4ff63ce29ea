"""Retention (a Settings value) reaches behaviour: what the prune deletes, and when the
long-running scheduler runs it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.domain.samples import MeasurementSample
from core.runtime.memory import InMemoryAnalyzer, InMemoryDeployer
from core.scheduler import Scheduler
from tests.actors import ADMIN, operator

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _ended_experiment_with_samples(services, ended_at: datetime) -> str:
    exp = services.experiments.create(operator(), name="r", baseline="process-baseline-v1",
                                      candidate="process-topk-v1")
    with services.uow() as uow:  # the test arranges state; services only expose use cases
        e = uow.experiments.get(exp.id)
        e.cancel("alice", now=ended_at)
        uow.experiments.save(e)
        uow.samples.add_many(MeasurementSample(exp.id, "baseline", ended_at, 1, 1, 1) for _ in range(4))
        uow.commit()
    return exp.id


def test_an_edit_of_the_retention_changes_what_the_next_prune_deletes(memory_services) -> None:
    svc = memory_services
    ten_days_ago = _ended_experiment_with_samples(svc, T0 - timedelta(days=10))
    assert svc.system.prune(ADMIN, T0).samples_deleted == 0  # default retention: 30 days
    svc.configuration.set_retention_days(7, ADMIN)
    result = svc.system.prune(ADMIN, T0)
    assert (result.retention_days, result.samples_deleted) == (7, 4)
    with svc.uow() as uow:
        assert uow.samples.count(ten_days_ago) == 0
        entries = [a for a in uow.audit.list(subject="samples") if a.action == "system.prune"]
    # every prune is audited (the first deleted nothing), newest first
    assert [e.details["samples_deleted"] for e in entries] == [4, 0]
    assert entries[0].actor == ADMIN.name


def test_an_environment_override_of_the_retention_wins(memory_services, monkeypatch) -> None:
    svc = memory_services
    _ended_experiment_with_samples(svc, T0 - timedelta(days=3))
    svc.configuration.set_retention_days(30, ADMIN)
    monkeypatch.setenv("PHOENIX_RETENTION_DAYS", "2")
    assert svc.system.prune(ADMIN, T0).samples_deleted == 4


def test_the_long_running_scheduler_prunes_at_most_once_per_interval(memory_services) -> None:
    calls: list[datetime] = []
    now = [T0]
    sched = Scheduler(memory_services.uow, InMemoryDeployer(), InMemoryAnalyzer(), clock=lambda: now[0],
                      housekeeping=calls.append, housekeeping_interval_s=3600)
    sched.run_once()
    now[0] = T0 + timedelta(minutes=59)
    sched.run_once()
    now[0] = T0 + timedelta(minutes=61)
    sched.run_once()
    assert calls == [T0, T0 + timedelta(minutes=61)]
