"""Phoenix's own metrics from the scheduler, the units of work and the promotion service.

The instruments are process-wide (``core.observability.metrics``) and other tests move
them too, so every assertion compares a value before and after (never an absolute count).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from prometheus_client import REGISTRY

from core.domain.errors import TemporaryError
from core.domain.experiment import State
from core.gitops import InMemoryGitOps
from core.runtime.memory import InMemoryAnalyzer, InMemoryDeployer
from core.services.experiments import ExperimentService
from core.services.promotion import PromotionDenied
from core.services.requests import CancelExperiment
from core.store.memory import MemoryStore, MemoryUnitOfWork
from tests.actors import ADMIN
from tests.unit.test_promotion import _finish
from tests.unit.test_scheduler import Clock, add_experiment, get, make_scheduler
from tests.usecases import promote


def value(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def moved(name: str, labels: dict[str, str] | None, action: Callable[[], object]) -> float:
    """How much ``name{labels}`` changed while ``action`` ran."""
    before = value(name, labels)
    action()
    return value(name, labels) - before


def transitions(frm: State, to: State) -> tuple[str, dict[str, str]]:
    return "phoenix_experiment_transitions_total", {"from_state": frm.value, "to_state": to.value}


class Timer:
    """A monotonic clock the test moves (tick lag and duration without sleeping)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


def test_a_tick_moves_the_scheduler_metrics(store: MemoryStore) -> None:
    clock = Clock()
    eid = add_experiment(store, clock)
    s = make_scheduler(store, InMemoryDeployer(), InMemoryAnalyzer(), clock)
    ok_ticks = value("phoenix_scheduler_ticks_total", {"outcome": "ok"})
    observed = value("phoenix_scheduler_tick_seconds_count")
    started = time.time()

    name, labels = transitions(State.PENDING, State.INITIALIZING)
    assert moved(name, labels, s.run_once) == 1
    assert get(store, eid).state is State.INITIALIZING
    assert value("phoenix_scheduler_ticks_total", {"outcome": "ok"}) == ok_ticks + 1
    assert value("phoenix_scheduler_tick_seconds_count") == observed + 1
    assert value("phoenix_scheduler_claimed_experiments") == 1
    assert value("phoenix_scheduler_last_tick_timestamp_seconds") >= int(started)


def test_tick_lag_is_how_late_a_tick_started_after_the_previous_plus_interval(store: MemoryStore) -> None:
    timer = Timer()
    s = make_scheduler(store, InMemoryDeployer(), InMemoryAnalyzer(), Clock(), interval_s=2.0, timer=timer)
    s.run_once()
    timer.t += 2.0 + 3.5  # due 2 s after the first start; started 3.5 s late
    s.run_once()
    assert value("phoenix_scheduler_lag_seconds") == pytest.approx(3.5)
    timer.t += 2.0  # exactly on time
    s.run_once()
    assert value("phoenix_scheduler_lag_seconds") == 0
    timer.t += 0.5  # early (a manual run_once between two scheduled ones) is not negative lag
    s.run_once()
    assert value("phoenix_scheduler_lag_seconds") == 0


def test_tick_duration_is_observed_with_the_schedulers_timer(store: MemoryStore) -> None:
    timer = Timer()

    class SlowDeployer(InMemoryDeployer):
        def deploy(self, experiment):  # type: ignore[no-untyped-def]
            timer.t += 7.0  # this step "takes" 7 s
            return super().deploy(experiment)

    clock = Clock()
    add_experiment(store, clock)
    s = make_scheduler(store, SlowDeployer(), InMemoryAnalyzer(), clock, timer=timer)
    s.run_once()  # Pending → Initializing
    over_5 = value("phoenix_scheduler_tick_seconds_bucket", {"le": "5.0"})
    up_to_10 = value("phoenix_scheduler_tick_seconds_bucket", {"le": "10.0"})
    total = value("phoenix_scheduler_tick_seconds_sum")
    s.run_once()  # deploys: 7 s
    assert value("phoenix_scheduler_tick_seconds_sum") - total == pytest.approx(7.0)
    assert value("phoenix_scheduler_tick_seconds_bucket", {"le": "5.0"}) == over_5
    assert value("phoenix_scheduler_tick_seconds_bucket", {"le": "10.0"}) == up_to_10 + 1


def test_a_tick_that_cannot_claim_counts_as_an_error(store: MemoryStore) -> None:
    class Away:
        def __enter__(self):  # type: ignore[no-untyped-def]
            raise TemporaryError("database is unavailable")

        def __exit__(self, *exc: object) -> None:
            return None

    from core.scheduler import Scheduler

    s = Scheduler(Away, InMemoryDeployer(), InMemoryAnalyzer(), scheduler_id="away")
    errors = value("phoenix_scheduler_ticks_total", {"outcome": "error"})
    ok = value("phoenix_scheduler_ticks_total", {"outcome": "ok"})
    report = s.run_once()
    assert report.errors
    assert value("phoenix_scheduler_ticks_total", {"outcome": "error"}) == errors + 1
    assert value("phoenix_scheduler_ticks_total", {"outcome": "ok"}) == ok
    assert value("phoenix_scheduler_claimed_experiments") == 0


def test_lease_takeovers_count_only_another_schedulers_expired_lease(store: MemoryStore) -> None:
    clock = Clock()
    e1, e2 = add_experiment(store, clock, duration=600), add_experiment(store, clock, duration=600)
    a = make_scheduler(store, InMemoryDeployer(), InMemoryAnalyzer(), clock, name="a")
    b = make_scheduler(store, InMemoryDeployer(), InMemoryAnalyzer(), clock, name="b")
    name = "phoenix_scheduler_lease_takeovers_total"
    assert moved(name, None, a.run_once) == 0  # never claimed before
    assert moved(name, None, b.run_once) == 0  # a's leases still hold: b gets nothing
    clock.advance(31)  # a's leases (30 s) expire
    assert moved(name, None, a.run_once) == 0  # its own expired leases: no takeover
    clock.advance(31)
    assert moved(name, None, b.run_once) == 2  # a stopped ticking: b takes both over
    assert sorted(store.claims) == sorted([e1, e2]) and {who for who, _ in store.claims.values()} == {"b"}


def test_transitions_are_counted_once_per_committed_unit(store: MemoryStore) -> None:
    clock = Clock()
    eid = add_experiment(store, clock)
    name, labels = transitions(State.PENDING, State.INITIALIZING)

    def uncommitted() -> None:
        with MemoryUnitOfWork(store) as uow:
            exp = uow.experiments.get(eid)
            exp.start("test")
            uow.experiments.save(exp)  # written but never committed: rolled back

    assert moved(name, labels, uncommitted) == 0
    assert get(store, eid).state is State.PENDING

    def committed_twice() -> None:
        with MemoryUnitOfWork(store) as uow:
            exp = uow.experiments.get(eid)
            exp.start("test")
            uow.experiments.save(exp)
            uow.commit()
            uow.commit()  # nothing new: nothing more counted

    assert moved(name, labels, committed_twice) == 1


def test_a_cancel_through_the_service_is_counted_once(store: MemoryStore) -> None:
    clock = Clock()
    eid = add_experiment(store, clock)
    s = make_scheduler(store, InMemoryDeployer(), InMemoryAnalyzer(), clock)
    s.run_once()  # Initializing
    svc = ExperimentService(lambda: MemoryUnitOfWork(store), dry_run=True)
    name, labels = transitions(State.INITIALIZING, State.CANCELLED)
    assert moved(name, labels, lambda: svc.cancel(ADMIN, CancelExperiment(experiment_id=eid))) == 1
    # the scheduler's teardown of the cancelled experiment is no transition
    assert moved(name, labels, s.run_once) == 0
    assert get(store, eid).state is State.CANCELLED


def test_promotions_are_counted_by_outcome(memory_services) -> None:
    git = InMemoryGitOps()
    good = _finish(memory_services, "PROMOTE")
    name = "phoenix_promotions_total"
    assert moved(name, {"outcome": "promoted"}, lambda: promote(memory_services.uow, git, good, actor="alice")) == 1
    assert moved(name, {"outcome": "unchanged"}, lambda: promote(memory_services.uow, git, good, actor="alice")) == 1
    rejected = _finish(memory_services, "REJECT")

    def denied() -> None:
        with pytest.raises(PromotionDenied):
            promote(memory_services.uow, git, rejected, actor="alice")  # a REJECT needs a forced promotion

    assert moved(name, {"outcome": "denied"}, denied) == 1

    class BrokenGit(InMemoryGitOps):
        def commit_dir(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            raise OSError("disk full")

    other = _finish(memory_services, "PROMOTE")

    def failed() -> None:
        with pytest.raises(OSError):
            promote(memory_services.uow, BrokenGit(), other, actor="alice")

    assert moved(name, {"outcome": "failed"}, failed) == 1
