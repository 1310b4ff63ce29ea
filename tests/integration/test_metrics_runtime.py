"""The local runtime's metrics with the real otelcol: a killed variant restarted and counted (the
emulator's case is tests/integration/test_local_runtime.py's crash test)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from core.domain.errors import TemporaryError
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
