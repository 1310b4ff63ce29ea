"""``phoenix experiment run``'s driving loop on the in-memory runtime (no processes, no database)."""

from __future__ import annotations

import threading

from core.commands.experiment_run import drive, final_view
from core.domain.experiment import State
from tests.actors import ADMIN


def _create(services):  # noqa: ANN001, ANN202
    return services.experiments.create(ADMIN, name="r", baseline="process-baseline-v1", candidate="process-topk-v1",
                                       duration_s=2.5, interval_s=0.5)


def test_drive_runs_to_completion_and_view_has_the_checked_paths(memory_services, capsys) -> None:
    exp = _create(memory_services)
    done = drive(memory_services, ADMIN, exp.id, threading.Event())
    assert done.state is State.COMPLETED and not done.needs_teardown
    states = [ev.to_state for ev in done.events]
    assert states == ["Initializing", "Running", "Analyzing", "Completed"]
    err = capsys.readouterr().err
    moves = [line.split(": ", 1)[1] for line in err.splitlines() if " -> " in line]
    assert moves == ["Pending -> Initializing", "Initializing -> Running", "Running -> Analyzing",
                     "Analyzing -> Completed"]
    view = final_view(memory_services, ADMIN, done)
    assert view["state"] == "Completed" and view["result"]["verdict"]
    for key in ("series_reduction_pct", "critical_coverage_pct", "samples", "reasons"):
        assert key in view["result"]
    assert view["samples_recorded"] == {"baseline": 0, "candidate": 0}  # dry run: nothing measured
    assert memory_services.experiments.get(ADMIN, exp.id).state is State.COMPLETED


def test_stop_cancels_and_tears_down(memory_services) -> None:
    exp = _create(memory_services)
    stop = threading.Event()
    stop.set()
    done = drive(memory_services, ADMIN, exp.id, stop, progress=False)
    assert done.state is State.CANCELLED and not done.deployed
    (entry,) = [a for a in memory_services.experiments.audit(ADMIN, exp.id) if a.action == "experiment.cancel"]
    assert (entry.actor, entry.source) == ("alice", "cli")
    assert final_view(memory_services, ADMIN, done)["result"] is None
