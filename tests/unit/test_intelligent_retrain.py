"""Stored snapshots and retraining (issue 16, item 2), through the services the CLI and the
scheduler call: a new pipeline version only when the learned set changes, one audit entry per
retrain, and the scheduler's periodic job doing the same when due."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.catalog.templates import get_template
from core.domain.accounts import SYSTEM_SCHEDULER, Actor, Role
from core.domain.errors import PermissionDenied, ValidationError
from core.domain.pipeline import Pipeline
from core.engine.anomalies import inject_anomalies
from core.engine.fleet import generate_fleet
from core.engine.snapshot import write_snapshot
from core.runtime.memory import InMemoryAnalyzer, InMemoryDeployer
from core.scheduler import Scheduler
from core.services.requests import AddSnapshot, RetrainPipeline, SavePipelineVersion

OPERATOR = Actor("olga", Role.OPERATOR, "cli")


def _csv(frame: Any) -> bytes:
    buf = io.BytesIO()
    write_snapshot(frame, buf)
    return buf.getvalue()


@pytest.fixture
def world(memory_services: Any) -> Any:
    s = memory_services
    fleet = inject_anomalies(generate_fleet(6, 120, seed=3, scrapes=12, interval_s=60.0), per_kind=1, seed=3).frame
    s.halves = [_csv(fleet[fleet["scrape"] < 6]), _csv(fleet[fleet["scrape"] >= 6])]
    p = get_template("process-intelligent-v1").to_dict()
    s.pipelines.save_version(OPERATOR, SavePipelineVersion(pipeline=Pipeline.from_dict({**p, "name": "smart"}),
                                                           message="nothing learned yet"))
    return s


def _audit(s: Any, action: str) -> list[Any]:
    return [e for e in s.database.store.audit if e.action == action]


def test_retrain_saves_a_version_only_when_the_learned_set_changes(world: Any) -> None:
    s = world
    with pytest.raises(ValidationError, match="no snapshots stored in scope 'default'"):
        s.learning.retrain(OPERATOR, RetrainPipeline(pipeline="smart"))
    for i, data in enumerate(s.halves):
        s.learning.add_snapshot(OPERATOR, AddSnapshot(source=f"half-{i}.csv"), data)
    with pytest.raises(ValidationError, match="already stored"):
        s.learning.add_snapshot(OPERATOR, AddSnapshot(source="again.csv"), s.halves[0])
    assert [r.source for r in s.learning.snapshots(OPERATOR, "default")] == ["half-1.csv", "half-0.csv"]
    assert len(_audit(s, "snapshot.add")) == 2

    first = s.learning.retrain(OPERATOR, RetrainPipeline(pipeline="smart"))
    assert first.changed and first.version == 2 and first.snapshots == 2
    learned = s.pipelines.version(OPERATOR, "smart", 2).graph
    node = next(n for n in learned["nodes"] if n["type"] == "intelligent")["params"]["learned"]
    assert node["mode"] == "history" and node["hosts"] and node["source"] == "2 stored snapshot(s) of scope default"
    assert all(e["reasons"] and all(r.startswith("kept: ") for r in e["reasons"]) for e in node["explanations"])
    (entry,) = _audit(s, "pipeline.retrain")
    assert entry.subject == "smart" and entry.after["version"] == 2 and entry.actor == "olga"

    again = s.learning.retrain(OPERATOR, RetrainPipeline(pipeline="smart"))
    assert not again.changed and again.version == 2
    assert sorted(v.number for v in s.pipelines.list_versions(OPERATOR, "smart")) == [1, 2]
    assert _audit(s, "pipeline.retrain")[-1].details["unchanged"] is True


def test_a_viewer_may_not_add_snapshots_or_retrain_and_bad_input_is_one_clear_error(world: Any) -> None:
    s = world
    viewer = Actor("vic", Role.VIEWER, "cli")
    with pytest.raises(PermissionDenied):
        s.learning.add_snapshot(viewer, AddSnapshot(), s.halves[0])
    with pytest.raises(PermissionDenied):
        s.learning.retrain(viewer, RetrainPipeline(pipeline="smart"))
    with pytest.raises(ValidationError, match="snapshot is empty|missing column"):
        s.learning.add_snapshot(OPERATOR, AddSnapshot(), b"timestamp,host_name\n")
    with pytest.raises(ValidationError, match="scope"):
        s.learning.add_snapshot(OPERATOR, AddSnapshot(scope="a${b}"), s.halves[0])
    s.learning.add_snapshot(OPERATOR, AddSnapshot(), s.halves[0])
    with pytest.raises(ValidationError, match="no intelligent node"):
        p = get_template("process-topk-v1").to_dict()
        s.pipelines.save_version(OPERATOR, SavePipelineVersion(pipeline=Pipeline.from_dict({**p, "name": "tk"}),
                                                               message="m"))
        s.learning.retrain(OPERATOR, RetrainPipeline(pipeline="tk"))


def test_the_scheduler_retrains_when_due_and_not_before(world: Any) -> None:
    s = world
    for data in s.halves:
        s.learning.add_snapshot(OPERATOR, AddSnapshot(), data)
    now = [datetime(2026, 12, 1, tzinfo=UTC)]
    sched = Scheduler(s.uow, InMemoryDeployer(), InMemoryAnalyzer(), clock=lambda: now[0],
                      retrain=s.retrain, retrain_check_s=60.0)
    assert s.learning.retrainable(SYSTEM_SCHEDULER) == ["smart"]
    sched.run_once()
    versions = s.pipelines.list_versions(OPERATOR, "smart")
    assert len(versions) == 2 and _audit(s, "pipeline.retrain")[-1].actor == "scheduler"
    sched.run_once()  # within retrain_check_s: not even asked
    now[0] += timedelta(minutes=5)
    sched.run_once()  # asked, but the last retrain is younger than PHOENIX_RETRAIN_INTERVAL (24 h)
    assert len(_audit(s, "pipeline.retrain")) == 1
    s.learning.retrain_interval_s = 0  # off
    assert not s.learning.retrain_due(SYSTEM_SCHEDULER, now[0] + timedelta(days=2))


def test_two_schedulers_retraining_at_once_save_one_version(world: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second retrain learned from version 1 too, but version 2 was saved while it worked:
    it saves nothing (a ConcurrencyError the scheduler logs), so the change is not saved twice."""
    from core.domain.errors import ConcurrencyError

    s = world
    for data in s.halves:
        s.learning.add_snapshot(OPERATOR, AddSnapshot(), data)
    history = type(s.learning)._history

    def the_other_scheduler_first(self: Any, scope: str) -> Any:
        monkeypatch.setattr(type(s.learning), "_history", history)
        s.learning.retrain(SYSTEM_SCHEDULER, RetrainPipeline(pipeline="smart"))  # saves version 2
        return history(self, scope)

    monkeypatch.setattr(type(s.learning), "_history", the_other_scheduler_first)
    with pytest.raises(ConcurrencyError, match="changed while it was retrained"):
        s.learning.retrain(SYSTEM_SCHEDULER, RetrainPipeline(pipeline="smart"))
    assert [v.number for v in s.pipelines.list_versions(OPERATOR, "smart")] in ([1, 2], [2, 1])
    calls = []

    def lost_the_race(actor: Any, request: Any) -> Any:
        calls.append(request.pipeline)
        raise ConcurrencyError("pipeline smart changed while it was retrained")

    monkeypatch.setattr(s.learning, "retrain_due", lambda actor, now: True)
    monkeypatch.setattr(s.learning, "retrain", lost_the_race)
    s.retrain(datetime(2026, 12, 1, tzinfo=UTC))  # the scheduler's job: logged, not raised
    assert calls == ["smart"]
    with pytest.raises(ConcurrencyError, match="at version 2 now, not 1"):
        s.pipelines.save_version(OPERATOR, SavePipelineVersion(pipeline=s.pipelines.resolve(OPERATOR, "smart"),
                                                               message="stale tab", expected_version=1))
