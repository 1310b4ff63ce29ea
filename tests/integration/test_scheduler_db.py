"""The scheduler against real databases: lifecycle, concurrency on PostgreSQL, crash recovery."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.domain.criteria import SuccessCriteria, Timing
from core.domain.experiment import Experiment, State
from core.runtime.memory import InMemoryAnalyzer, InMemoryDeployer
from core.scheduler import Scheduler
from core.services.requests import CancelExperiment
from core.store.uow import Database
from tests.actors import ADMIN

ROOT = Path(__file__).resolve().parents[2]
HAPPY = [("Pending", "Initializing"), ("Initializing", "Running"), ("Running", "Analyzing"), ("Analyzing", "Completed")]


def add_experiments(db: Database, n: int, duration: float = 1.0, interval: float = 0.5) -> list[str]:
    ids = []
    with db.uow() as uow:
        for i in range(n):
            e = Experiment.create(name=f"exp {i}", baseline="process-baseline-v1", candidate="process-topk-v1",
                                  timing=Timing(duration, interval), criteria=SuccessCriteria(min_samples=2), dry_run=True)
            uow.experiments.add(e)
            ids.append(e.id)
        uow.commit()
    return ids


def all_terminal(db: Database) -> bool:
    with db.uow() as uow:
        return not uow.experiments.list(states=["Pending", "Initializing", "Running", "Analyzing"])


def event_logs(db: Database, ids: list[str]) -> dict[str, list[tuple[str, str]]]:
    with db.uow() as uow:
        return {eid: [(e.from_state, e.to_state) for e in uow.experiments.get(eid).events] for eid in ids}


def wait_until(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def test_lifecycle_and_cancel_on_both_databases(database: Database) -> None:
    done, cancelled = add_experiments(database, 2, duration=1.0, interval=0.5)
    deployer, analyzer = InMemoryDeployer(), InMemoryAnalyzer(verdict="PROMOTE")
    s = Scheduler(database.uow, deployer, analyzer, scheduler_id="one", lease_s=5)
    for _ in range(3):  # Pending → Initializing → deployed → Running
        s.run_once()
    with database.uow() as uow:
        assert {e.state for e in uow.experiments.list()} == {State.RUNNING}
    from core.services.experiments import ExperimentService

    ExperimentService(database.uow, dry_run=True).cancel(
        ADMIN, CancelExperiment(experiment_id=cancelled, reason="changed my mind"))
    wait_until(lambda: (s.run_once(), all_terminal(database))[1], 10, "experiments to finish")
    s.run_once()  # the teardown tick for the cancelled one
    logs = event_logs(database, [done, cancelled])
    assert logs[done] == HAPPY
    assert logs[cancelled] == [("Pending", "Initializing"), ("Initializing", "Running"), ("Running", "Cancelled")]
    assert deployer.calls_for(cancelled)[-1] == "teardown"
    with database.uow() as uow:
        got = uow.experiments.get(done)
        assert got.result is not None and got.result["verdict"] == "PROMOTE"
        assert uow.experiments.claims() == {done: None, cancelled: None}
        assert [a.details["to"] for a in reversed(uow.audit.list(subject=done))] == [t for _, t in HAPPY]


def test_background_scheduler_drives_experiments(database: Database) -> None:
    (eid,) = add_experiments(database, 1, duration=1.0, interval=0.5)
    s = Scheduler(database.uow, InMemoryDeployer(), InMemoryAnalyzer(), interval_s=0.1, lease_s=5)
    s.start()
    s.start()  # idempotent
    try:
        assert s.running
        wait_until(lambda: all_terminal(database), 15, "the background scheduler")
    finally:
        s.shutdown()
    assert not s.running
    assert event_logs(database, [eid])[eid] == HAPPY


@pytest.mark.postgres
@pytest.mark.slow
def test_two_schedulers_hundred_experiments_each_transition_once(pg_url: str) -> None:
    setup = Database(pg_url)
    ids = add_experiments(setup, 100, duration=1.0, interval=0.5)
    errors: list[BaseException] = []
    reports: dict[str, list] = {"a": [], "b": []}

    def run(name: str) -> None:
        db = Database(pg_url)  # each scheduler its own engine and pool, as in two processes
        # Short leases and small batches make claims move between the two mid-lifecycle.
        s = Scheduler(db.uow, InMemoryDeployer(), InMemoryAnalyzer(), scheduler_id=name, lease_s=0.5, batch_size=30)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                r = s.run_once()
                reports[name].append(r)
                if not r.claimed and all_terminal(db):
                    return
        except BaseException as exc:  # noqa: BLE001 - surfaced in the main thread
            errors.append(exc)
        finally:
            db.dispose()

    threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(150)
    assert not errors
    logs = event_logs(setup, ids)
    bad = {eid: log for eid, log in logs.items() if log != HAPPY}
    assert bad == {}, f"{len(bad)} experiments have a wrong event log, e.g. {next(iter(bad.items()), None)}"
    # Both schedulers did real work (otherwise this would not test concurrency).
    actors = {}
    with setup.uow() as uow:
        for eid in ids:
            for ev in uow.experiments.get(eid).events:
                actors[ev.actor] = actors.get(ev.actor, 0) + 1
    assert set(actors) == {"scheduler:a", "scheduler:b"}
    assert sum(actors.values()) == 400
    contended = sum(1 for rs in reports.values() for r in rs for _, what in r.actions if what in {"claim lost", "lost a concurrent write; will retry"})
    print(f"actors={actors} contended_steps={contended} ticks={[len(v) for v in reports.values()]}")
    setup.dispose()


def _scheduler_process(url: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PHOENIX_DATABASE_URL": url, "PHOENIX_RUNTIME": "memory",
           "PHOENIX_SCHEDULER_INTERVAL": "0.2", "PHOENIX_SCHEDULER_LEASE": "1", "PHOENIX_LOG_LEVEL": "INFO"}
    return subprocess.Popen([sys.executable, "-m", "core.cli", "scheduler"], cwd=ROOT, env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


@pytest.mark.slow
def test_crash_recovery_after_sigkill(database: Database, tmp_path: Path) -> None:
    ids = add_experiments(database, 8, duration=3.0, interval=1.0)
    log = tmp_path / "scheduler.log"
    first = _scheduler_process(database.url, log)
    try:
        def some_running() -> bool:
            with database.uow() as uow:
                return bool(uow.experiments.list(states=["Running"]))

        wait_until(some_running, 30, "the first scheduler to start experiments")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    assert first.returncode == -signal.SIGKILL
    assert not all_terminal(database), "the first scheduler finished everything before being killed"

    second = _scheduler_process(database.url, log)
    try:
        wait_until(lambda: all_terminal(database), 60, "the second scheduler to finish every experiment")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(20)
    assert second.returncode == 0, log.read_text()
    logs = event_logs(database, ids)
    assert all(entries == HAPPY for entries in logs.values()), logs
    with database.uow() as uow:
        actors = {ev.actor for eid in ids for ev in uow.experiments.get(eid).events}
        # every lease was handed back on SIGTERM
        assert set(uow.experiments.claims().values()) == {None}
    assert len(actors) == 2  # both processes recorded transitions
