"""Scheduler reconcile steps on the in-memory unit of work with a controllable clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.domain.criteria import SuccessCriteria, Timing
from core.domain.errors import TemporaryError
from core.domain.experiment import Experiment, State
from core.domain.samples import MeasurementSample
from core.runtime.memory import InMemoryAnalyzer, InMemoryDeployer
from core.scheduler import Scheduler
from core.services.experiments import ExperimentService
from core.services.requests import CancelExperiment
from core.store.memory import MemoryStore, MemoryUnitOfWork
from tests.actors import ADMIN

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def deployer() -> InMemoryDeployer:
    return InMemoryDeployer()


@pytest.fixture
def analyzer() -> InMemoryAnalyzer:
    return InMemoryAnalyzer(verdict="PROMOTE")


def make_scheduler(store: MemoryStore, deployer, analyzer, clock: Clock, name: str = "s1", **kw) -> Scheduler:
    return Scheduler(lambda: MemoryUnitOfWork(store), deployer, analyzer, scheduler_id=name, clock=clock, lease_s=30, **kw)


def add_experiment(store: MemoryStore, clock: Clock, duration: float = 10, interval: float = 2) -> str:
    exp = Experiment.create(name="e", baseline="process-baseline-v1", candidate="process-topk-v1",
                            timing=Timing(duration, interval), criteria=SuccessCriteria(min_samples=2), now=clock())
    with MemoryUnitOfWork(store) as uow:
        uow.experiments.add(exp)
        uow.commit()
    return exp.id


def get(store: MemoryStore, eid: str) -> Experiment:
    with MemoryUnitOfWork(store) as uow:
        return uow.experiments.get(eid)


def states(store: MemoryStore, eid: str) -> list[tuple[str, str]]:
    return [(e.from_state, e.to_state) for e in get(store, eid).events]


def test_full_lifecycle_one_step_per_tick(store, deployer, analyzer, clock) -> None:
    eid = add_experiment(store, clock)
    with MemoryUnitOfWork(store) as uow:
        uow.samples.add(MeasurementSample(eid, "baseline", T0, 100, 100, 1000))
        uow.samples.add(MeasurementSample(eid, "candidate", T0, 30, 30, 300))
        uow.commit()
    s = make_scheduler(store, deployer, analyzer, clock)

    s.run_once()
    assert get(store, eid).state is State.INITIALIZING
    assert deployer.calls_for(eid) == []  # one step per tick: deploying is the next one
    s.run_once()
    exp = get(store, eid)
    assert exp.state is State.INITIALIZING and exp.runtime_info["runtime"] == "memory"
    assert deployer.calls_for(eid) == ["deploy"]
    s.run_once()
    assert get(store, eid).state is State.RUNNING
    clock.advance(5)
    s.run_once()
    assert get(store, eid).state is State.RUNNING  # duration not elapsed yet
    clock.advance(5)
    s.run_once()
    exp = get(store, eid)
    assert exp.state is State.ANALYZING and exp.runtime_info["torn_down"] is True
    assert deployer.calls_for(eid)[-1] == "teardown"
    s.run_once()
    exp = get(store, eid)
    assert exp.state is State.COMPLETED
    assert exp.result is not None and exp.result["verdict"] == "PROMOTE"
    assert analyzer.calls == [(eid, 2)]  # got the stored samples
    assert states(store, eid) == [("Pending", "Initializing"), ("Initializing", "Running"),
                                  ("Running", "Analyzing"), ("Analyzing", "Completed")]
    assert all(e.actor == "scheduler:s1" for e in exp.events)
    # terminal and cleaned up: claim released, further ticks do nothing
    assert store.claims == {}
    calls = list(deployer.calls)
    report = s.run_once()
    assert report.claimed == [] and deployer.calls == calls
    # each transition is audited with its actor
    with MemoryUnitOfWork(store) as uow:
        audit = uow.audit.list(subject=eid)
    assert [a.details["to"] for a in reversed(audit)] == ["Initializing", "Running", "Analyzing", "Completed"]


def test_waits_for_readiness_then_times_out(store, analyzer, clock) -> None:
    deployer = InMemoryDeployer(not_ready_polls=10**6)
    eid = add_experiment(store, clock)
    s = make_scheduler(store, deployer, analyzer, clock, ready_timeout_s=60)
    for _ in range(4):
        s.run_once()
        clock.advance(10)
    assert get(store, eid).state is State.INITIALIZING
    clock.advance(60)
    s.run_once()
    exp = get(store, eid)
    assert exp.state is State.FAILED and "not ready within 60s" in (exp.error or "")
    s.run_once()  # failed while deployed → torn down next tick
    assert deployer.calls_for(eid)[-1] == "teardown"
    assert get(store, eid).runtime_info["torn_down"] is True


def test_deploy_failure_fails_the_experiment(store, analyzer, clock) -> None:
    deployer = InMemoryDeployer()
    eid = add_experiment(store, clock)
    deployer.fail_deploy.add(eid)
    s = make_scheduler(store, deployer, analyzer, clock)
    s.run_once()
    s.run_once()
    exp = get(store, eid)
    assert exp.state is State.FAILED
    assert exp.error == f"deploy failed: dry-run deployer was told to fail deploying {eid}"
    assert not exp.needs_teardown  # nothing was deployed, nothing to tear down


def test_temporary_deploy_error_is_retried(store, analyzer, clock) -> None:
    class Flaky(InMemoryDeployer):
        def deploy(self, experiment):
            self.fails = getattr(self, "fails", 0) + 1
            if self.fails < 3:
                raise TemporaryError("port 19000 still in use")
            return super().deploy(experiment)

    deployer = Flaky()
    eid = add_experiment(store, clock)
    s = make_scheduler(store, deployer, analyzer, clock)
    actions = [a for _ in range(4) for _, a in s.run_once().actions]
    assert actions[:4] == ["started", "deploy will be retried: port 19000 still in use",
                           "deploy will be retried: port 19000 still in use", "deployed"]
    assert get(store, eid).state is State.INITIALIZING


def test_unhealthy_collector_fails_running_experiment(store, deployer, analyzer, clock) -> None:
    eid = add_experiment(store, clock)
    s = make_scheduler(store, deployer, analyzer, clock)
    for _ in range(3):
        s.run_once()
    assert get(store, eid).state is State.RUNNING
    deployer.unhealthy.add(eid)
    s.run_once()
    exp = get(store, eid)
    assert exp.state is State.FAILED and "stopped unexpectedly" in (exp.error or "")


def test_analyzer_error_fails_with_reason(store, deployer, clock) -> None:
    eid = add_experiment(store, clock)
    s = make_scheduler(store, deployer, InMemoryAnalyzer(fail=True), clock)
    for _ in range(3):
        s.run_once()
    clock.advance(11)
    s.run_once()
    s.run_once()
    exp = get(store, eid)
    assert exp.state is State.FAILED and exp.error == "analysis failed: dry-run analyzer was told to fail"


def test_user_cancel_while_running_then_scheduler_tears_down(store, deployer, analyzer, clock) -> None:
    eid = add_experiment(store, clock)
    s = make_scheduler(store, deployer, analyzer, clock)
    for _ in range(3):
        s.run_once()
    svc = ExperimentService(lambda: MemoryUnitOfWork(store), dry_run=True)
    svc.cancel(ADMIN, CancelExperiment(experiment_id=eid, reason="wrong candidate"))
    exp = get(store, eid)
    assert exp.state is State.CANCELLED and exp.needs_teardown
    assert exp.events[-1].actor == "alice" and exp.events[-1].reason == "wrong candidate"
    s.run_once()
    exp = get(store, eid)
    assert deployer.calls_for(eid)[-1] == "teardown" and not exp.needs_teardown
    assert exp.state is State.CANCELLED


def test_a_second_scheduler_does_not_touch_claimed_work(store, deployer, analyzer, clock) -> None:
    ids = [add_experiment(store, clock) for _ in range(4)]
    a = make_scheduler(store, deployer, analyzer, clock, name="a", batch_size=2)
    b = make_scheduler(store, deployer, analyzer, clock, name="b", batch_size=2)
    ra, rb = a.run_once(), b.run_once()
    assert set(ra.claimed).isdisjoint(rb.claimed)
    assert sorted(ra.claimed + rb.claimed) == sorted(ids)
    # a keeps its experiments on the next tick; b cannot take them while a's lease lasts
    assert b.run_once().claimed == rb.claimed


def test_expired_lease_is_taken_over(store, deployer, analyzer, clock) -> None:
    eid = add_experiment(store, clock)
    a = make_scheduler(store, deployer, analyzer, clock, name="a")
    b = make_scheduler(store, deployer, analyzer, clock, name="b")
    a.run_once()  # a claims and starts it, then "crashes"
    assert b.run_once().claimed == []
    clock.advance(31)
    for _ in range(3):
        b.run_once()
    exp = get(store, eid)
    assert exp.state is State.RUNNING
    assert [e.actor for e in exp.events] == ["scheduler:a", "scheduler:b"]


def test_shutdown_releases_leases(store, deployer, analyzer, clock) -> None:
    add_experiment(store, clock)
    a = make_scheduler(store, deployer, analyzer, clock, name="a")
    a.run_once()
    assert store.claims
    a.shutdown()
    assert store.claims == {}


def test_one_bad_experiment_does_not_stop_the_others(store, deployer, clock) -> None:
    class Exploding(InMemoryAnalyzer):
        def analyze(self, experiment, samples):
            if experiment.name == "bad":
                raise ZeroDivisionError("bug")
            return super().analyze(experiment, samples)

    good = add_experiment(store, clock)
    bad = add_experiment(store, clock)
    with MemoryUnitOfWork(store) as uow:
        e = uow.experiments.get(bad)
        e.name = "bad"
        uow.experiments.save(e)
        uow.commit()
    s = make_scheduler(store, deployer, Exploding(), clock)
    for _ in range(3):
        s.run_once()
    clock.advance(11)
    s.run_once()
    s.run_once()
    assert get(store, good).state is State.COMPLETED
    assert get(store, bad).state is State.FAILED
    assert get(store, bad).error == "analysis failed: bug"


def test_scheduler_rejects_bad_config(store, deployer, analyzer, clock) -> None:
    with pytest.raises(ValueError, match="positive"):
        make_scheduler(store, deployer, analyzer, clock, interval_s=0)


def test_deployer_samples_are_stored_while_running(store, analyzer, clock) -> None:
    class Sampling(InMemoryDeployer):
        def collect(self, experiment):
            t = clock()
            return [MeasurementSample(experiment.id, v, t, 100 if v == "baseline" else 40, 100, 1000) for v in ("baseline", "candidate")]

    eid = add_experiment(store, clock, duration=4, interval=2)
    s = make_scheduler(store, Sampling(), analyzer, clock)
    for _ in range(3):  # → Running
        s.run_once()
    clock.advance(2)
    s.run_once()
    assert get(store, eid).state is State.RUNNING
    clock.advance(2)
    s.run_once()  # duration elapsed: a last collection, then teardown
    assert get(store, eid).state is State.ANALYZING
    s.run_once()
    assert get(store, eid).state is State.COMPLETED
    # one tick while running plus the final one before teardown, both variants each time
    assert analyzer.calls == [(eid, 4)]


def test_database_outage_is_reported_not_raised(deployer, analyzer, clock) -> None:
    class Down:
        def __enter__(self):
            raise TemporaryError("database sqlite:///x.db is unavailable: disk I/O error")

        def __exit__(self, *exc):
            return None

    s = Scheduler(Down, deployer, analyzer, scheduler_id="s", clock=clock)
    report = s.run_once()
    assert report.claimed == [] and report.errors == [("*", "database sqlite:///x.db is unavailable: disk I/O error")]
    s.shutdown()  # releasing leases while the database is down only logs
