"""bench/load.py at tiny scale (correctness, not timings), and the scheduler bugs it found.

The benchmark itself starts a throwaway PostgreSQL (it restarts it in phase c, so it never
uses a shared server) and needs ``initdb``/``pg_ctl``.
"""

from __future__ import annotations

import glob
import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.domain.criteria import SuccessCriteria, Timing
from core.domain.errors import TemporaryError
from core.domain.experiment import Experiment, State
from core.domain.samples import MeasurementSample
from core.runtime.memory import InMemoryAnalyzer, InMemoryDeployer
from core.scheduler import Scheduler
from core.store.migrate import upgrade
from core.store.uow import Database

ROOT = Path(__file__).resolve().parents[2]


def _have_pg_tools() -> bool:
    return all(shutil.which(t) or glob.glob(f"/usr/lib/postgresql/*/bin/{t}") for t in ("initdb", "pg_ctl"))


@pytest.mark.postgres
@pytest.mark.slow
def test_load_bench_tiny_scale_loses_nothing(tmp_path: Path) -> None:
    # make test installs Debian's postgresql: missing tools are a broken setup, not a skip
    assert _have_pg_tools(), "bench/load.py restarts its own PostgreSQL: initdb/pg_ctl are not installed"
    out = tmp_path / "load.json"
    res = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "load.py"), "--experiments", "200", "--running", "10", "--ticks", "3",
         "--contention-s", "10", "--new", "10", "--restart-set", "10", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=400,
    )
    assert out.exists(), res.stdout + res.stderr
    rep = json.loads(out.read_text())
    assert rep["seed"]["experiments"] == 200 and rep["a"]["experiments_stored"] >= 210
    assert rep["a"]["running"] == 10 and rep["a"]["tick_errors"] == 0
    for phase in ("b", "c"):
        p, check = rep[phase], rep[phase]["check"]
        assert check["problems"] == [], (phase, check["problems"])
        assert check["double_transitions"] == 0 and check["broken_event_logs"] == 0
        assert check["samples_produced"] > 0
        assert check["samples_lost"] == 0 and check["samples_duplicated"] == 0 and check["samples_unexpected"] == 0
        assert check["samples_stored"] == check["samples_produced"]
        assert p["scheduler_exit_codes"] == [0, 0]
        assert all(s["escaped_exceptions"] == 0 for s in p["schedulers"])
        assert p["reader"]["ops"] > 0
    c = rep["c"]
    assert c["schedulers_alive_after_restart"] == [True, True]
    assert c["still_active"] == 0 and check["failed_without_reason"] == 0
    assert set(c["check"]["states"]) <= {"Completed", "Failed"}
    assert rep["correct"] is True, res.stdout


# ---------------------------------------------------------------- the bugs it found, on SQLite

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Sampling(InMemoryDeployer):
    """Hands over one sample per variant per call, never the same one twice (like a real runtime)."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock
        self.handed: list[MeasurementSample] = []

    def collect(self, experiment: Experiment) -> list[MeasurementSample]:
        out = [MeasurementSample(experiment.id, v, self.clock(), 100, 600, 9000) for v in ("baseline", "candidate")]
        self.handed += out
        return out


def _db(tmp_path: Path) -> Database:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    upgrade(url)
    return Database(url)


def _add(db: Database, n: int, duration: float = 10, interval: float = 2) -> list[str]:
    ids = []
    with db.uow() as uow:
        for i in range(n):
            e = Experiment.create(name=f"e{i}", baseline="process-baseline-v1", candidate="process-topk-v1",
                                  timing=Timing(duration, interval), criteria=SuccessCriteria(min_samples=2),
                                  now=T0 + timedelta(milliseconds=i))
            uow.experiments.add(e)
            ids.append(e.id)
        uow.commit()
    return ids


def _stored(db: Database, eid: str) -> list[tuple[str, datetime]]:
    with db.uow() as uow:
        return [(s.variant, s.t) for s in uow.samples.list(eid)]


def test_samples_handed_over_while_the_database_is_down_are_stored_later(tmp_path: Path, monkeypatch) -> None:
    from core.store.repositories import SqlSampleRepository
    from core.store.uow import SqlAlchemyUnitOfWork

    db = _db(tmp_path)
    (eid,) = _add(db, 1)
    clock = Clock()
    deployer, analyzer = Sampling(clock), InMemoryAnalyzer()
    s = Scheduler(db.uow, deployer, analyzer, scheduler_id="s", clock=clock, lease_s=300)
    for _ in range(3):  # → Initializing → deployed → Running
        s.run_once()
    clock.now += timedelta(seconds=2)
    s.run_once()
    assert len(_stored(db, eid)) == 2

    # 1. The insert fails (connection gone): the handed-over samples must not be dropped.
    real_add_many = SqlSampleRepository.add_many

    def failing_add_many(self, samples):  # noqa: ANN001, ANN202
        raise TemporaryError("database is unavailable: terminating connection due to administrator command")

    monkeypatch.setattr(SqlSampleRepository, "add_many", failing_add_many)
    clock.now += timedelta(seconds=2)
    assert s.run_once().errors
    monkeypatch.setattr(SqlSampleRepository, "add_many", real_add_many)
    assert len(_stored(db, eid)) == 2

    # 2. The commit reaches the database but its acknowledgement is lost: no duplicates on retry.
    real_commit = SqlAlchemyUnitOfWork.commit
    lost_ack = {"n": 0}

    def marking_add_many(self, samples):  # noqa: ANN001, ANN202
        self.session.info["wrote_samples"] = True
        real_add_many(self, samples)

    def commit_then_fail(self):  # noqa: ANN001, ANN202
        wrote_samples = self.session.info.pop("wrote_samples", False)
        real_commit(self)
        if wrote_samples and lost_ack["n"] == 0:
            lost_ack["n"] += 1
            raise TemporaryError("database is unavailable: server closed the connection unexpectedly")

    monkeypatch.setattr(SqlSampleRepository, "add_many", marking_add_many)
    monkeypatch.setattr(SqlAlchemyUnitOfWork, "commit", commit_then_fail)
    clock.now += timedelta(seconds=2)
    assert s.run_once().errors
    monkeypatch.setattr(SqlAlchemyUnitOfWork, "commit", real_commit)
    monkeypatch.setattr(SqlSampleRepository, "add_many", real_add_many)
    assert lost_ack["n"] == 1 and len(_stored(db, eid)) == 4

    for _ in range(10):
        clock.now += timedelta(seconds=2)
        s.run_once()
    with db.uow() as uow:
        exp = uow.experiments.get(eid)
    assert exp.state is State.COMPLETED
    stored = _stored(db, eid)
    assert sorted(stored) == sorted((x.variant, x.t) for x in deployer.handed)  # each once, none lost
    assert analyzer.calls == [(eid, len(deployer.handed))]
    db.dispose()


def test_a_scheduler_with_more_work_than_its_batch_gets_to_every_experiment(tmp_path: Path) -> None:
    db = _db(tmp_path)
    ids = _add(db, 6, duration=3600)
    s = Scheduler(db.uow, InMemoryDeployer(), InMemoryAnalyzer(), scheduler_id="s", lease_s=300, batch_size=2)
    for _ in range(3):
        s.run_once()
    with db.uow() as uow:
        states = {uow.experiments.get(e).state for e in ids}
    assert State.PENDING not in states  # the oldest two were claimed again and again before the fix
    for _ in range(9):
        s.run_once()
    with db.uow() as uow:
        assert {uow.experiments.get(e).state for e in ids} == {State.RUNNING}
    db.dispose()


def test_a_running_step_that_changes_nothing_writes_nothing(tmp_path: Path) -> None:
    db = _db(tmp_path)
    (eid,) = _add(db, 1, duration=3600)
    s = Scheduler(db.uow, InMemoryDeployer(), InMemoryAnalyzer(), scheduler_id="s", lease_s=300)
    for _ in range(3):
        s.run_once()
    with db.uow() as uow:
        v = uow.experiments.get(eid)
    assert v.state is State.RUNNING
    for _ in range(3):
        assert s.run_once().errors == []
    with db.uow() as uow:
        assert uow.experiments.get(eid).version == v.version
    db.dispose()
