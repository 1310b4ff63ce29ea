"""The local runtime's metrics with a real collector process: killed, restarted with backoff, counted."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from core.domain.errors import TemporaryError
from core.runtime import local
from core.runtime.local import LocalDeployer, is_collector_of
from core.store.migrate import upgrade
from core.store.uow import Database
from tests.integration.test_local_runtime import _new, _wait, otelcol_bin  # noqa: F401 - the real binary fixture

pytestmark = pytest.mark.slow


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'phoenix.db'}"
    upgrade(url)
    d = Database(url)
    yield d
    d.dispose()


def running() -> float:
    return REGISTRY.get_sample_value("phoenix_collectors_running", {"runtime": "local"}) or 0.0


def restarts(eid: str, variant: str) -> float | None:
    return REGISTRY.get_sample_value("phoenix_collector_restarts_total",
                                     {"phoenix_experiment_id": eid, "phoenix_variant": variant})


def test_a_killed_collector_is_restarted_and_counted(db: Database, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    exp = _new(db, duration=120, load="none")
    with db.uow() as u:
        e = u.experiments.get(exp.id)
        e.start("tester")
        u.experiments.save(e)
        u.commit()
    dep = LocalDeployer(db.uow, data_dir=tmp_path, database_url=db.url, backoff_s=0.2, max_restarts=2)
    before = running()
    try:
        first = dep.deploy(exp)["pids"][0]
        assert _wait(lambda: dep.is_ready(exp), 30)
        assert running() == before + 1
        assert restarts(exp.id, "baseline") is None  # nothing restarted yet: no series at all

        os.kill(first, signal.SIGKILL)  # the collector crashes
        assert _wait(lambda: not is_collector_of(first, exp.id), 5)
        assert running() == before  # a dead (or zombie) collector is not running
        with pytest.raises(TemporaryError, match="backoff"):
            dep.healthy(exp)  # not restarted before its backoff
        assert restarts(exp.id, "baseline") is None
        time.sleep(0.3)
        assert dep.healthy(exp) is True  # restarted
        (second,) = {p.pid for p in dep._stored(exp.id)}
        assert second != first and _wait(lambda: dep.is_ready(exp), 30)
        assert restarts(exp.id, "baseline") == 1 and restarts(exp.id, "candidate") == 1
        assert running() == before + 1
    finally:
        dep.teardown(exp)
    assert running() == before
    # a while after the teardown, its restart counters go (bounded label sets)
    assert restarts(exp.id, "baseline") == 1
    monkeypatch.setattr(local, "RESTART_LABELS_KEEP_S", -1.0)
    dep.teardown(exp)
    assert restarts(exp.id, "baseline") is None and restarts(exp.id, "candidate") is None


def test_a_killed_real_otelcol_variant_is_restarted_and_counted(db: Database, tmp_path: Path,
                                                                 otelcol_bin: str) -> None:  # noqa: F811
    """The real collector binary: kill the baseline otelcol; all four processes come back, counted once per variant."""
    exp = _new(db, duration=120, load="none")
    dep = LocalDeployer(db.uow, data_dir=tmp_path, database_url=db.url, otelcol_bin=otelcol_bin,
                        backoff_s=0.2, max_restarts=1)
    before = running()
    try:
        dep.deploy(exp)
        assert _wait(lambda: dep.is_ready(exp), 60)
        assert running() == before + 4  # tap, baseline, candidate and the measuring child
        roles = {p.role: p.pid for p in dep._stored(exp.id)}
        os.kill(roles["baseline"], signal.SIGKILL)
        assert _wait(lambda: not is_collector_of(roles["baseline"], exp.id), 5)
        with pytest.raises(TemporaryError, match="backoff"):
            dep.healthy(exp)  # stops the others too: the variants restart together
        time.sleep(0.3)
        assert dep.healthy(exp) is True
        again = {p.role: p.pid for p in dep._stored(exp.id)}
        assert set(again) == set(roles) and not set(again.values()) & set(roles.values())
        assert restarts(exp.id, "baseline") == 1 and restarts(exp.id, "candidate") == 1
        assert _wait(lambda: running() == before + 4, 10)
    finally:
        dep.teardown(exp)
    assert _wait(lambda: running() == before, 10)
