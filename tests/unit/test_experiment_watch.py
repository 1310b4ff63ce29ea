"""``phoenix experiment watch`` on this host: it follows the store while another scheduler moves
the experiment, and ends as ``run --wait`` does (memory runtime, in-memory store)."""

from __future__ import annotations

import threading

import pytest

from core.commands.experiment_run import drive, watch
from tests.actors import ADMIN


def _create(services):  # noqa: ANN001, ANN202
    return services.experiments.create(ADMIN, name="w", baseline="process-baseline-v1", candidate="process-topk-v1",
                                       duration_s=2.5, interval_s=0.5)


def test_watch_prints_every_change_then_the_summary(memory_services, capsys: pytest.CaptureFixture[str]) -> None:
    exp = _create(memory_services)
    # another "scheduler": the watcher only reads
    runner = threading.Thread(target=drive, args=(memory_services, ADMIN, exp.id, threading.Event()),
                              kwargs={"progress": False})
    runner.start()
    try:
        code = watch(memory_services, ADMIN, exp.id, as_json=False, poll_s=0.05)
    finally:
        runner.join(timeout=60)
    out, err = capsys.readouterr()
    assert code == 0
    moves = [line.split(": ", 1)[1] for line in err.splitlines() if " -> " in line]
    assert moves == ["Pending -> Initializing", "Initializing -> Running", "Running -> Analyzing",
                     "Analyzing -> Completed"]
    assert out.splitlines()[0] == f"{exp.id}  Completed"
    assert out.splitlines()[1] == "  verdict:            INCONCLUSIVE"


def test_watch_of_a_cancelled_experiment_exits_1(memory_services, capsys: pytest.CaptureFixture[str]) -> None:
    from core.services.requests import CancelExperiment

    exp = _create(memory_services)
    memory_services.experiments.cancel(ADMIN, CancelExperiment(experiment_id=exp.id, reason="not today"))
    assert watch(memory_services, ADMIN, exp.id, as_json=True, poll_s=0.05) == 1
    out, err = capsys.readouterr()
    assert '"state": "Cancelled"' in out
    assert "Pending -> Cancelled (not today)" in err
    assert err.splitlines()[-1] == f"error: experiment {exp.id} Cancelled: cancelled"
