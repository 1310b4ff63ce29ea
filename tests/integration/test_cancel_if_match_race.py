"""If-Match on cancel without a check-then-act race, on SQLite and PostgreSQL.

A change is made to the experiment in another transaction *after* the cancel has read it
and before it saves (the interleaving an HTTP race can only hit by luck). With an expected
version the cancel must refuse (``StaleVersion`` → 412), not cancel over a change its
caller never saw; without one it retries and cancels, as it always has.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from core.domain.experiment import State
from core.services.experiments import StaleVersion
from core.services.requests import CancelExperiment, CreateExperiment
from tests.actors import ADMIN, add_account


class RaceAfterRead:
    """A unit-of-work factory whose first ``experiments.get`` lets another transaction commit a change."""

    def __init__(self, real: Callable[[], Any], change: Callable[[str], None]):
        self.real, self.change, self.fired = real, change, False

    def __call__(self) -> Any:
        return _Unit(self, self.real())


class _Unit:
    def __init__(self, race: RaceAfterRead, inner: Any):
        self.race, self.inner = race, inner

    def __enter__(self) -> Any:
        uow = self.inner.__enter__()
        read = uow.experiments.get

        def read_then_race(experiment_id: str) -> Any:
            exp = read(experiment_id)
            if not self.race.fired:
                self.race.fired = True
                self.race.change(experiment_id)
            return exp

        uow.experiments.get = read_then_race
        return uow

    def __exit__(self, *exc: object) -> None:
        self.inner.__exit__(*exc)


def _start_elsewhere(services: Any) -> Callable[[str], None]:
    def change(experiment_id: str) -> None:  # the scheduler deploys it in its own transaction
        with services.uow() as uow:
            exp = uow.experiments.get(experiment_id)
            exp.start("scheduler")
            uow.experiments.save(exp)
            uow.commit()
    return change


@pytest.fixture
def svc(services: Any) -> Any:
    add_account(services, ADMIN)
    return services


def _pending(svc: Any) -> Any:
    return svc.experiments.create(ADMIN, CreateExperiment(name="race", baseline="process-baseline-v1",
                                                          candidate="process-topk-v1"))


def test_a_change_between_read_and_save_fails_the_if_match(svc: Any) -> None:
    exp = _pending(svc)
    race = RaceAfterRead(svc.experiments.uow_factory, _start_elsewhere(svc))
    svc.experiments.uow_factory = race
    with pytest.raises(StaleVersion, match=f"not {exp.version}"):
        svc.experiments.cancel(ADMIN, CancelExperiment(experiment_id=exp.id, expected_version=exp.version))
    assert race.fired
    now = svc.experiments.get(ADMIN, exp.id)
    assert now.state is State.INITIALIZING and now.version == exp.version + 1  # the other change stands, alone


def test_without_if_match_the_cancel_retries_over_the_change(svc: Any) -> None:
    exp = _pending(svc)
    race = RaceAfterRead(svc.experiments.uow_factory, _start_elsewhere(svc))
    svc.experiments.uow_factory = race
    done = svc.experiments.cancel(ADMIN, CancelExperiment(experiment_id=exp.id))
    assert race.fired and done.state is State.CANCELLED
    assert svc.experiments.get(ADMIN, exp.id).state is State.CANCELLED
