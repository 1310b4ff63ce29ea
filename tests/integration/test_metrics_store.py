"""What the metrics need from every store, on SQLite, PostgreSQL and the fake alike.

- ``claim`` says which claims took over another scheduler's expired lease (``Claimed.taken_over``);
- a unit of work counts the transitions it wrote once its commit succeeds, never before,
  never twice, and never when the commit fails.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from core.domain.errors import ConcurrencyError
from core.domain.experiment import State
from core.domain.ports import Database
from tests.integration.test_store import T0, new_experiment
from tests.integration.test_store_contract import store  # noqa: F401 - the three-store fixture


def counted(frm: State, to: State) -> float:
    return REGISTRY.get_sample_value("phoenix_experiment_transitions_total",
                                     {"from_state": frm.value, "to_state": to.value}) or 0.0


def test_claim_reports_takeovers_of_expired_foreign_leases(store: Database) -> None:  # noqa: F811
    e1, e2, e3 = (new_experiment(now=T0 + timedelta(seconds=i)) for i in range(3))
    with store.uow() as uow:
        for e in (e1, e2, e3):
            uow.experiments.add(e)
        uow.commit()
    with store.uow() as uow:
        first = uow.experiments.claim("a", T0, 30, limit=2)
        uow.commit()
    assert first == [e1.id, e2.id] and first.taken_over == frozenset()  # type: ignore[attr-defined]
    with store.uow() as uow:
        fresh = uow.experiments.claim("b", T0 + timedelta(seconds=5), 30)
        uow.commit()
    assert fresh == [e3.id] and fresh.taken_over == frozenset()  # type: ignore[attr-defined]
    with store.uow() as uow:  # a's leases expire; a renews its own: no takeover
        own = uow.experiments.claim("a", T0 + timedelta(seconds=31), 30, experiment_ids=[e1.id])
        uow.commit()
    assert own == [e1.id] and own.taken_over == frozenset()  # type: ignore[attr-defined]
    with store.uow() as uow:  # b's and a's other lease have expired: c takes both over
        later = uow.experiments.claim("c", T0 + timedelta(seconds=40), 30)
        uow.commit()
    assert sorted(later) == sorted([e2.id, e3.id])
    assert later.taken_over == {e2.id, e3.id}  # type: ignore[attr-defined]


def test_transitions_are_counted_after_a_successful_commit_only(store: Database) -> None:  # noqa: F811
    exp = new_experiment()
    with store.uow() as uow:
        uow.experiments.add(exp)
        uow.commit()
    before = counted(State.PENDING, State.INITIALIZING)
    with store.uow() as uow:
        e = uow.experiments.get(exp.id)
        e.start("test")
        uow.experiments.save(e)
        assert counted(State.PENDING, State.INITIALIZING) == before  # written, not committed
    assert counted(State.PENDING, State.INITIALIZING) == before  # rolled back
    with store.uow() as uow:
        e = uow.experiments.get(exp.id)
        stale = uow.experiments.get(exp.id)
        e.start("test")
        uow.experiments.save(e)
        uow.commit()
        uow.commit()
    assert counted(State.PENDING, State.INITIALIZING) == before + 1
    cancelled = counted(State.PENDING, State.CANCELLED)
    with pytest.raises(ConcurrencyError), store.uow() as uow:  # a stale write fails: nothing counted
        stale.cancel("test", "too late")
        uow.experiments.save(stale)
        uow.commit()
    assert counted(State.PENDING, State.CANCELLED) == cancelled
