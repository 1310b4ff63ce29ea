"""Claim filters (an exclusive run's own experiments, the runtime's kind) on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

from core.domain.criteria import SuccessCriteria, Timing
from core.domain.experiment import Experiment, utcnow
from core.store.uow import Database


def _add(db: Database, n: int, *, dry_run: bool) -> list[str]:
    ids = []
    with db.uow() as uow:
        for i in range(n):
            e = Experiment.create(name=f"e{i}", baseline="process-baseline-v1", candidate="process-topk-v1",
                                  timing=Timing(60, 1), criteria=SuccessCriteria(min_samples=2), dry_run=dry_run)  # fmt: skip
            uow.experiments.add(e)
            ids.append(e.id)
        uow.commit()
    return ids


def _claim(db: Database, owner: str, **kw) -> list[str]:  # noqa: ANN003
    with db.uow() as uow:
        got = uow.experiments.claim(owner, utcnow(), 30, **kw)
        uow.commit()
    return got


def test_claim_filters(database: Database) -> None:
    real, dry = _add(database, 3, dry_run=False), _add(database, 2, dry_run=True)
    assert _claim(database, "run@a", experiment_ids=[real[1]]) == [real[1]]
    assert _claim(database, "run@b", experiment_ids=[]) == []
    assert _claim(database, "run@c", experiment_ids=[real[1], dry[0]]) == [dry[0]]  # real[1] is run@a's
    assert sorted(_claim(database, "local", dry_run=False)) == sorted([real[0], real[2]])
    assert _claim(database, "memory", dry_run=True) == [dry[1]]
    with database.uow() as uow:
        claims = uow.experiments.claims()
    assert claims == {real[0]: "local", real[1]: "run@a", real[2]: "local", dry[0]: "run@c", dry[1]: "memory"}
    # an expired lease is free again — for a scheduler allowed to take it
    with database.uow() as uow:
        later = utcnow() + timedelta(seconds=60)
        assert sorted(uow.experiments.claim("memory", later, 30, dry_run=True)) == sorted(dry)
        assert uow.experiments.claim("run@d", later, 30, experiment_ids=[real[1]]) == [real[1]]


def test_concurrent_filtered_claims_never_share_an_experiment(database: Database) -> None:
    ids = _add(database, 20, dry_run=False)
    got: dict[str, list[str]] = {}

    def claim(name: str) -> None:
        got[name] = _claim(database, name, experiment_ids=ids, dry_run=False)

    threads = [threading.Thread(target=claim, args=(f"s{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [eid for v in got.values() for eid in v]
    assert len(claimed) == len(set(claimed)) and set(claimed) <= set(ids)
