"""The live view through the services: the durable log after a cursor, notices, readiness."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from core.domain.errors import NotFoundError, ValidationError
from core.domain.ports import Notice
from core.runtime.memory import InMemoryAnalyzer
from core.services.live import Cursor
from core.services.requests import CancelExperiment
from tests.actors import ADMIN, viewer
from tests.live_world import Clock, SamplingDeployer, drive, new_experiment

VIEWER = viewer()


@pytest.fixture
def world(memory_services: Any) -> Any:
    svc = memory_services
    clock = Clock()
    deployer = SamplingDeployer(clock)
    svc.deployer = deployer
    svc.analyzer = InMemoryAnalyzer(verdict="PROMOTE")
    svc.world_clock = clock
    svc.world_scheduler = svc.new_scheduler(scheduler_id="s1", clock=clock)
    return svc


def _finished(world: Any) -> str:
    eid = new_experiment(world, ADMIN)
    drive(world.world_scheduler, world.world_clock, eid, world, ADMIN)
    return eid


def test_the_whole_story_in_order_states_samples_verdict_end(world: Any) -> None:
    eid = _finished(world)
    batch = world.experiments.events_since(VIEWER, eid, None)
    kinds = [i.kind for i in batch.items]
    states = [i.data["to"] for i in batch.items if i.kind == "state"]
    assert states == ["Initializing", "Running", "Analyzing", "Completed"]
    assert kinds[-2:] == ["verdict", "end"] and batch.finished
    assert kinds.index("sample") > kinds.index("state") and kinds.count("sample") == world.deployer.collected * 2
    # samples come between Running and Analyzing, as they happened
    running, analyzing = (kinds.index("state") + 1, len(kinds) - 1 - kinds[::-1].index("state") - 1)
    assert all(k == "sample" for k in kinds[running + 1:analyzing - 1])
    verdict = next(i.data for i in batch.items if i.kind == "verdict")
    assert verdict["verdict"] == "PROMOTE" and verdict["reasons"] and verdict["summary"]["dry_run"] is True
    sample = next(i.data for i in batch.items if i.kind == "sample")
    assert set(sample) == {"variant", "t", "series", "datapoints", "bytes", "collector_cpu_pct",
                           "collector_rss_mb", "critical_coverage_pct"}
    assert batch.items[-1].data == {"experiment_id": eid, "state": "Completed"}
    assert [i.data["seq"] for i in batch.items if i.kind == "state"] == [1, 2, 3, 4]


def test_resuming_after_any_cursor_gives_no_duplicates_and_no_gaps(world: Any) -> None:
    eid = _finished(world)
    everything = world.experiments.events_since(VIEWER, eid, None).items
    for n, item in enumerate(everything):
        rest = world.experiments.events_since(VIEWER, eid, Cursor.parse(str(item.cursor))).items
        expected = [i for i in everything[n + 1:] if not (i.kind == "verdict" and i.cursor == item.cursor)]
        if item.kind == "state" and n + 1 < len(everything) and everything[n + 1].kind == "verdict":
            continue  # the API sends no id on a state followed by its verdict: nobody resumes there
        if item.kind == "end":  # a reader that comes back after the end is told again, and stops
            expected = [item]
        assert [(i.kind, i.data) for i in rest] == [(i.kind, i.data) for i in expected], n


def test_a_live_reader_sees_each_step_once_as_it_happens(world: Any) -> None:
    eid = new_experiment(world, ADMIN)
    cursor, seen = Cursor(), []
    for _ in range(40):
        batch = world.experiments.events_since(VIEWER, eid, cursor)
        seen += batch.items
        cursor = batch.cursor
        if batch.finished:
            break
        world.world_scheduler.run_once()
        world.world_clock.advance(2)
    whole = world.experiments.events_since(VIEWER, eid, None).items
    assert [(i.kind, i.data) for i in seen] == [(i.kind, i.data) for i in whole]
    assert seen[-1].kind == "end"


def test_a_running_experiment_is_not_finished(world: Any) -> None:
    eid = new_experiment(world, ADMIN)
    batch = world.experiments.events_since(VIEWER, eid, None)
    assert not batch.finished and batch.items == [] and batch.state == "Pending"
    world.world_scheduler.run_once()
    batch = world.experiments.events_since(VIEWER, eid, batch.cursor)
    assert [i.data["to"] for i in batch.items] == ["Initializing"] and not batch.finished


@pytest.mark.parametrize("bad", ["x", "1", "1.", ".2", "-1.0", "1.2.3", "9" * 50 + ".1"])
def test_a_bad_cursor_is_a_clear_error(bad: str) -> None:
    with pytest.raises(ValidationError, match="not an event cursor"):
        Cursor.parse(bad)


def test_an_unknown_experiment_is_not_found(world: Any) -> None:
    with pytest.raises(NotFoundError):
        world.experiments.events_since(VIEWER, "exp-nope", None)


def test_commits_notify_the_bus_create_scheduler_steps_samples_and_cancel(world: Any) -> None:
    sub = world.experiments.watch(VIEWER, None)
    eid = new_experiment(world, ADMIN)
    assert sub.wait(0) == [Notice(eid, "state")]
    for _ in range(4):  # start, deploy, ready → Running, collect
        world.world_scheduler.run_once()
    got = sub.wait(0)
    assert Notice(eid, "state") in got and Notice(eid, "sample") in got
    world.experiments.cancel(ADMIN, CancelExperiment(experiment_id=eid))
    assert Notice(eid, "state") in sub.wait(0)
    sub.close()


def test_a_bus_that_fails_never_breaks_a_transition(world: Any) -> None:
    def broken(notice: Notice) -> None:
        raise ConnectionError("redis went away")

    world.world_scheduler.notify = broken
    eid = new_experiment(world, ADMIN)
    world.world_scheduler.run_once()
    assert world.experiments.get(ADMIN, eid).state.value == "Initializing"


def test_the_feed_lists_every_experiments_transitions_after_a_position(world: Any) -> None:
    head = world.experiments.feed_head(VIEWER)
    a = _finished(world)
    items = world.experiments.feed_since(VIEWER, head)
    assert [(i.kind, i.data.get("to")) for i in items][-2:] == [("state", "Completed"), ("verdict", None)]
    assert {i.data["experiment_id"] for i in items} == {a}
    assert world.experiments.feed_since(VIEWER, items[-1].event_id) == []
    assert world.experiments.feed_head(VIEWER) == items[-1].event_id


# ---- heartbeat and readiness ----------------------------------------------------------------


def test_each_tick_beats_and_readiness_follows_the_newest_beat(world: Any) -> None:
    system = world.system
    system.require_scheduler, system.clock, system.scheduler_interval_s = True, world.world_clock, 2.0
    assert system.readiness(VIEWER).failing == ["scheduler"]
    assert system.readiness(VIEWER).checks["scheduler"] == "no scheduler has ever beaten"
    world.world_scheduler.run_once()
    ready = system.readiness(VIEWER)
    assert ready.ready and ready.checks == {"database": "ok", "scheduler": "ok"}
    world.world_clock.advance(6.5)  # more than 3 intervals
    stale = system.readiness(VIEWER)
    assert stale.failing == ["scheduler"]
    assert stale.checks["scheduler"].startswith("no scheduler has beaten since 2026-03-01T12:00:00")
    world.world_scheduler.run_once()
    assert system.readiness(VIEWER).ready


def test_without_requiring_a_scheduler_readiness_is_the_database(world: Any) -> None:
    world.system.require_scheduler = False
    assert world.system.readiness(VIEWER).checks == {"database": "ok"}


def test_a_database_that_does_not_answer_makes_it_not_ready_without_saying_a_secret(world: Any) -> None:
    def broken() -> Any:
        raise RuntimeError("connection to db.internal (password=hunter2) refused")

    world.system.uow_factory = broken
    result = world.system.readiness(VIEWER)
    assert result.failing == ["database"] and "hunter2" not in str(result.checks)


def test_heartbeat_rows_name_the_scheduler(world: Any) -> None:
    world.world_scheduler.run_once()
    with world.uow() as uow:
        beat = uow.heartbeats.newest()
    assert beat.scheduler_id == "s1" and beat.beat_at == world.world_clock()
    world.world_clock.advance(timedelta(seconds=3).total_seconds())
    world.world_scheduler.run_once()
    with world.uow() as uow:
        assert uow.heartbeats.newest().beat_at == world.world_clock()


def test_the_feed_position_delivers_a_late_commit_below_the_newest_id_once() -> None:
    from core.services.live import FeedItem, FeedPosition

    def item(i: int, kind: str = "state") -> FeedItem:
        return FeedItem(kind, i, {"experiment_id": f"e{i}"})

    position = FeedPosition(head=10)
    position.prime([item(9), item(10)])  # there when the reader connected: not sent
    assert position.take([item(9), item(10), item(12)]) == [item(12)]
    # id 11 was drawn before 12 but committed after it (two schedulers on PostgreSQL)
    assert position.take([item(9), item(10), item(11), item(12)]) == [item(11)]
    assert position.take([item(11), item(12), item(13), item(13, "verdict")]) == [item(13), item(13, "verdict")]
    assert position.take([item(11), item(12), item(13), item(13, "verdict")]) == []
    assert position.head == 13
