"""Which experiments a scheduler may claim: its own (``experiment run --wait``), its runtime's kind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.domain.criteria import SuccessCriteria, Timing
from core.domain.experiment import Experiment, State
from core.runtime.memory import InMemoryAnalyzer, InMemoryDeployer
from core.scheduler import EXCLUSIVE_PREFIX, Scheduler, exclusive_driver
from core.store.memory import MemoryStore, MemoryUnitOfWork

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def _add(store: MemoryStore, *, dry_run: bool = False, at: datetime = T0) -> str:
    exp = Experiment.create(name="e", baseline="process-baseline-v1", candidate="process-topk-v1",
                            timing=Timing(3600, 1), criteria=SuccessCriteria(min_samples=2), now=at,
                            dry_run=dry_run)  # fmt: skip
    with MemoryUnitOfWork(store) as uow:
        uow.experiments.add(exp)
        uow.commit()
    return exp.id


def _get(store: MemoryStore, eid: str) -> Experiment:
    with MemoryUnitOfWork(store) as uow:
        return uow.experiments.get(eid)


def _sched(store: MemoryStore, deployer, clock: Clock, **kw) -> Scheduler:  # noqa: ANN001
    return Scheduler(lambda: MemoryUnitOfWork(store), deployer, InMemoryAnalyzer(), clock=clock, lease_s=30, **kw)


def test_a_scheduler_for_given_experiments_claims_only_those() -> None:
    store, clock = MemoryStore(), Clock()
    others = [_add(store), _add(store, dry_run=True)]
    mine = _add(store, at=T0 + timedelta(seconds=1))
    s = _sched(store, InMemoryDeployer(), clock, experiment_ids=[mine])
    assert s.id.startswith(EXCLUSIVE_PREFIX)
    report = s.run_once()
    assert report.claimed == [mine]
    assert all(_get(store, e).state is State.PENDING and _get(store, e).version == 1 for e in others)
    assert _sched(store, InMemoryDeployer(), clock, experiment_ids=[]).run_once().claimed == []


def test_a_real_runtime_never_claims_a_dry_run_and_a_filter_narrows_either_way() -> None:
    store, clock = MemoryStore(), Clock()
    real, dry = _add(store), _add(store, dry_run=True)
    # the in-memory deployer stands in for any runtime: it takes both unless told
    assert set(_sched(store, InMemoryDeployer(), clock, scheduler_id="any").run_once().claimed) == {real, dry}
    clock.now += timedelta(minutes=5)
    assert _sched(store, InMemoryDeployer(dry_run=False), clock, scheduler_id="real").run_once().claimed == [real]
    clock.now += timedelta(minutes=5)
    assert _sched(store, InMemoryDeployer(), clock, scheduler_id="dry", dry_run=True).run_once().claimed == [dry]


def test_an_abandoned_exclusive_run_is_failed_and_torn_down_not_resumed() -> None:
    store, clock = MemoryStore(), Clock()
    eid = _add(store)
    dep = InMemoryDeployer()
    run = _sched(store, dep, clock, experiment_ids=[eid])
    while _get(store, eid).state is not State.RUNNING:
        run.run_once()
    assert exclusive_driver(_get(store, eid)) == run.actor
    # the run's process dies (no shutdown, no release); while its lease holds nobody else gets it
    app = _sched(store, dep, clock, scheduler_id="app")
    assert app.run_once().claimed == []
    clock.now += timedelta(seconds=31)
    app.run_once()
    exp = _get(store, eid)
    assert exp.state is State.FAILED and "abandoned" in (exp.error or "") and run.id in exp.error
    app.run_once()
    assert not _get(store, eid).deployed
    calls = dep.calls_for(eid)
    assert calls[-1] == "teardown" and calls.count("deploy") == 1  # torn down, never deployed again


def test_the_exclusive_driver_itself_resumes_after_its_own_lease_lapsed() -> None:
    store, clock = MemoryStore(), Clock()
    eid = _add(store)
    run = _sched(store, InMemoryDeployer(), clock, experiment_ids=[eid])
    while _get(store, eid).state is not State.RUNNING:
        run.run_once()
    clock.now += timedelta(seconds=60)  # a long pause of the command itself
    run.run_once()
    assert _get(store, eid).state is State.RUNNING


def test_analysis_of_an_abandoned_run_is_finished_by_anyone() -> None:
    store, clock = MemoryStore(), Clock()
    eid = _add(store)
    run = _sched(store, InMemoryDeployer(), clock, experiment_ids=[eid])
    while _get(store, eid).state is not State.RUNNING:
        run.run_once()
    with MemoryUnitOfWork(store) as uow:  # it got as far as tearing down and starting the analysis
        exp = uow.experiments.get(eid)
        exp.runtime_info = {**exp.runtime_info, "torn_down": True}
        exp.begin_analysis("scheduler:x", clock.now)
        uow.experiments.save(exp)
        uow.commit()
    clock.now += timedelta(seconds=31)
    _sched(store, InMemoryDeployer(), clock, scheduler_id="app").run_once()
    assert _get(store, eid).state is State.COMPLETED
