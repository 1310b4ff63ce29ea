"""The experiment listing through the cache: a hit equals the database's answer, and any
change a summary shows (new experiment, transition, verdict) is a new key at once — also
when another process (its own services, the same database and cache) made the change."""

from __future__ import annotations

from typing import Any

from core.cache import MemoryCache
from core.domain.experiment import State
from core.domain.ports import ExperimentSummary
from core.services import listing_cache
from core.services.experiments import ExperimentService
from core.services.requests import CancelExperiment
from core.store.memory import MemoryDatabase
from tests.actors import ADMIN, viewer


class CountingCache(MemoryCache):
    def __init__(self) -> None:
        super().__init__()
        self.results: list[str] = []

    def get(self, namespace: str, key: str) -> bytes | None:
        value = super().get(namespace, key)
        if namespace == listing_cache.CACHE_NAME:
            self.results.append("miss" if value is None else "hit")
        return value


def _world() -> tuple[MemoryDatabase, CountingCache, ExperimentService, ExperimentService]:
    db, cache = MemoryDatabase(), CountingCache()
    # two processes: each its own service, one database, one (shared) cache
    return db, cache, ExperimentService(db.uow, dry_run=True, cache=cache), ExperimentService(db.uow, dry_run=True,
                                                                                               cache=cache)


def _create(service: ExperimentService, name: str) -> Any:
    return service.create(ADMIN, name=name, baseline="process-baseline-v1", candidate="process-topk-v1")


def _uncached(db: MemoryDatabase, **kw: Any) -> list[ExperimentSummary]:
    with db.uow() as uow:
        return [ExperimentSummary.of(e) for e in uow.experiments.list(**kw)]


def test_a_hit_equals_the_database_answer() -> None:
    db, cache, one, _ = _world()
    for i in range(3):
        _create(one, f"e{i}")
    first = one.list(viewer())
    second = one.list(viewer())
    assert cache.results == ["miss", "hit"]
    assert first == second == _uncached(db)
    assert [s.created_at for s in second] == [s.created_at for s in first]  # times keep their zone
    assert one.list(viewer(), states=["Pending"], limit=2) == _uncached(db, states=["Pending"], limit=2)
    assert cache.results[-1] == "miss"  # other arguments, other key


def test_every_change_a_summary_shows_is_a_new_key_in_every_process() -> None:
    db, cache, one, other = _world()
    exp = _create(one, "first")
    assert [s.name for s in one.list(ADMIN)] == ["first"]
    _create(other, "second")  # another process
    assert [s.name for s in one.list(ADMIN)] == ["second", "first"]
    other.cancel(ADMIN, CancelExperiment(experiment_id=exp.id, reason="changed my mind"))
    assert {s.name: s.state for s in one.list(ADMIN)}["first"] == State.CANCELLED.value
    with db.uow() as uow:  # the scheduler's path: a transition written straight through the store
        second = uow.experiments.list(states=["Pending"])[0]
        second.start("scheduler")
        uow.experiments.save(second)
        uow.commit()
    assert {s.name: s.state for s in one.list(ADMIN)}["second"] == State.INITIALIZING.value
    assert one.list(ADMIN) == _uncached(db)
    assert cache.results == ["miss", "miss", "miss", "miss", "hit"]


def test_an_unreadable_entry_is_read_from_the_database_again() -> None:
    db, cache, one, _ = _world()
    _create(one, "x")
    one.list(ADMIN)
    for name in list(cache._entries):
        cache._entries[name] = (cache._entries[name][0], b'[{"id": 1}]')
    assert one.list(ADMIN) == _uncached(db)
    assert listing_cache.decode(b"not json") is None and listing_cache.decode(None) is None
