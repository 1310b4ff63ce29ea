"""Experiment use cases and bootstrap wiring, on the in-memory unit of work."""

from __future__ import annotations

import pytest

from core.bootstrap import DEFAULT_RUNTIME, resolve_runtime
from core.domain.errors import ConcurrencyError, InvalidTransitionError, NotFoundError, ValidationError
from core.domain.experiment import State
from core.domain.views import experiment_to_dict
from core.runtime.memory import InMemoryAnalyzer, InMemoryDeployer
from core.services.experiments import ExperimentService
from core.services.requests import CancelExperiment, CreateExperiment, ExperimentTable, RerunExperiment
from core.settings import Settings
from core.store.memory import MemoryStore, MemoryUnitOfWork
from tests.actors import ADMIN, admin


def test_create_list_get_and_audit(memory_services) -> None:
    svc = memory_services.experiments
    with memory_services.uow() as uow:  # a saved pipeline with two versions
        for _ in range(2):
            uow.pipelines.add_version("my-topk", {"name": "my-topk"}, "")
        uow.commit()
    exp = svc.create(ADMIN, name="  first  ", baseline="process-baseline-v1", candidate="my-topk@2", duration_s=30, interval_s=5)
    assert exp.name == "first" and exp.state is State.PENDING and exp.dry_run is True
    assert exp.owner == "alice" and exp.version == 1
    rows = svc.list(ADMIN)
    assert [(r.id, r.state, r.baseline, r.candidate, r.dry_run) for r in rows] == [
        (exp.id, "Pending", "process-baseline-v1", "my-topk@2", True)]
    assert svc.get(ADMIN, exp.id).candidate.version == 2
    assert svc.counts_by_state(ADMIN) == {s.value: (1 if s is State.PENDING else 0) for s in State}
    (entry,) = svc.audit(ADMIN, exp.id)
    assert (entry.actor, entry.action) == ("alice", "experiment.create")
    d = experiment_to_dict(svc.get(ADMIN, exp.id))
    assert d["state"] == "Pending" and d["events"] == [] and d["baseline"] == "process-baseline-v1"


def test_create_rejects_bad_input_without_storing(memory_services) -> None:
    svc = memory_services.experiments
    with pytest.raises(ValidationError, match="interval"):
        svc.create(ADMIN, name="x", baseline="process-baseline-v1", candidate="process-topk-v1", duration_s=5, interval_s=10)
    assert svc.list(ADMIN) == []


def test_cancel_records_actor_and_reason(memory_services) -> None:
    svc = memory_services.experiments
    exp = svc.create(ADMIN, name="x", baseline="process-baseline-v1", candidate="process-topk-v1")
    out = svc.cancel(admin("bob"), CancelExperiment(experiment_id=exp.id, reason="typo in candidate"))
    assert out.state is State.CANCELLED
    ev = svc.get(ADMIN, exp.id).events[-1]
    assert (ev.from_state, ev.to_state, ev.actor, ev.reason) == ("Pending", "Cancelled", "bob", "typo in candidate")
    assert [a.action for a in svc.audit(ADMIN, exp.id)] == ["experiment.cancel", "experiment.create"]
    with pytest.raises(InvalidTransitionError, match="is Cancelled and can no longer be cancelled"):
        svc.cancel(admin("bob"), CancelExperiment(experiment_id=exp.id))
    with pytest.raises(NotFoundError, match="no experiment with id 'exp-nope'"):
        svc.cancel(ADMIN, CancelExperiment(experiment_id="exp-nope"))


def test_cancel_retries_after_a_concurrent_scheduler_write() -> None:
    store = MemoryStore()
    writes = {"n": 0}

    class Racing(MemoryUnitOfWork):
        """Before the user's first save, the 'scheduler' advances the experiment."""

        def __enter__(self):
            uow = super().__enter__()
            original = uow.experiments.save

            def save(exp):
                if writes["n"] == 0:
                    writes["n"] += 1
                    with MemoryUnitOfWork(store) as other:
                        e = other.experiments.get(exp.id)
                        e.start("scheduler:x")
                        other.experiments.save(e)
                        other.commit()
                return original(exp)

            uow.experiments.save = save
            return uow

    svc = ExperimentService(lambda: Racing(store), dry_run=True)
    exp = svc.create(ADMIN, name="x", baseline="process-baseline-v1", candidate="process-topk-v1")
    out = svc.cancel(admin("carol"), CancelExperiment(experiment_id=exp.id))
    events = [(e.from_state, e.to_state) for e in svc.get(ADMIN, exp.id).events]
    assert out.state is State.CANCELLED
    assert events == [("Pending", "Initializing"), ("Initializing", "Cancelled")]


def test_stale_save_raises_concurrency_error() -> None:
    store = MemoryStore()
    svc = ExperimentService(lambda: MemoryUnitOfWork(store), dry_run=False)
    exp = svc.create(ADMIN, name="x", baseline="process-baseline-v1", candidate="process-topk-v1")
    a, b = svc.get(ADMIN, exp.id), svc.get(ADMIN, exp.id)
    with MemoryUnitOfWork(store) as uow:
        a.start("s")
        uow.experiments.save(a)
        uow.commit()
    with MemoryUnitOfWork(store) as uow, pytest.raises(ConcurrencyError, match="changed by someone else"):
        b.cancel("alice")
        uow.experiments.save(b)


def test_runtime_selection_is_a_mapping() -> None:
    assert resolve_runtime("memory")[0] == "memory"
    name, factory = resolve_runtime("local")
    assert name == "local"
    deployer, analyzer = factory(None)  # type: ignore[arg-type]
    assert hasattr(deployer, "deploy") and hasattr(analyzer, "analyze")
    name, factory = resolve_runtime("kubernetes")  # a real runtime now, not a dry run
    assert name == "kubernetes" and DEFAULT_RUNTIME != "kubernetes"
    deployer, analyzer = factory(Settings())
    assert deployer.dry_run is False and hasattr(deployer, "collect") and hasattr(analyzer, "analyze")
    with pytest.raises(ValidationError, match="PHOENIX_RUNTIME must be one of"):
        resolve_runtime("cloud")


def test_memory_runtime_flags_dry_run(memory_services) -> None:
    assert isinstance(memory_services.deployer, InMemoryDeployer)
    assert isinstance(memory_services.analyzer, InMemoryAnalyzer)
    assert memory_services.dry_run is True


def test_rerun_copies_a_finished_experiment_and_refuses_a_running_one(memory_services) -> None:
    svc = memory_services.experiments
    old = svc.create(ADMIN, CreateExperiment(name="n" * 120, baseline="process-baseline-v1", candidate="process-topk-v1",
                                      owner="carol", description="why", duration_s=90, interval_s=15,
                                      critical_rules=[{"match": "executable_name", "pattern": "^pg$",
                                                       "priority": "critical"}]))
    with pytest.raises(InvalidTransitionError, match="is Pending; only a finished experiment can be re-run"):
        svc.rerun(admin("bob"), RerunExperiment(experiment_id=old.id))
    svc.cancel(ADMIN, CancelExperiment(experiment_id=old.id))
    new = svc.rerun(admin("bob"), RerunExperiment(experiment_id=old.id))
    assert new.id != old.id and new.state is State.PENDING and new.name == ("n" * 120 + " (re-run)")[:120]
    assert (new.baseline, new.candidate, new.timing, new.load, new.target, new.criteria, new.critical_rules,
            new.owner, new.description) == (old.baseline, old.candidate, old.timing, old.load, old.target,
                                            old.criteria, old.critical_rules, "carol", "why")
    (entry,) = svc.audit(ADMIN, new.id)
    assert (entry.actor, entry.action) == ("bob", "experiment.rerun")
    with pytest.raises(NotFoundError, match="exp-nope"):
        svc.rerun(ADMIN, RerunExperiment(experiment_id="exp-nope"))


def test_requests_refuse_wrong_types_with_a_clear_error(memory_services) -> None:
    with pytest.raises(ValidationError) as info:
        memory_services.experiments.create(ADMIN, name=5, baseline="process-baseline-v1", candidate="process-topk-v1",
                                           colour="red")
    assert info.value.problems == ["name: Input should be a valid string", "colour: Extra inputs are not permitted"]
    assert memory_services.experiments.list(ADMIN) == []


def test_requests_take_the_json_form_an_api_sends(memory_services) -> None:
    body = {"name": "from the API", "baseline": "process-baseline-v1", "candidate": "process-topk-v1",
            "duration_s": 120, "interval_s": "10", "load": {"name": "process-churn"},
            "target": {"kind": "kubernetes", "namespace": "obs"}, "criteria": {"min_samples": 7}}
    exp = memory_services.experiments.create(admin("api"), CreateExperiment.of(**body))
    assert (exp.load.name, exp.target.namespace, exp.criteria.min_samples, exp.timing.interval_s) == (
        "process-churn", "obs", 7, 10.0)
    with pytest.raises(ValidationError, match="target has unknown field"):
        CreateExperiment.of(**{**body, "target": {"kind": "local", "colour": "red"}})
    with pytest.raises(ValidationError, match="unknown load profile 'chaos'"):
        memory_services.experiments.create(admin("api"), CreateExperiment.of(**{**body, "load": {"name": "chaos"}}))
    assert len(memory_services.experiments.list(ADMIN)) == 1


def test_the_table_pages_and_refuses_unknown_columns(memory_services) -> None:
    svc = memory_services.experiments
    made = [svc.create(ADMIN, name=f"e{i}", baseline="process-baseline-v1", candidate="process-topk-v1",
                       duration_s=30, interval_s=5).id for i in range(5)]
    first = svc.table(ADMIN, ExperimentTable.of(sort="name", descending=False, page_size=2))
    assert [r.name for r in first.items] == ["e0", "e1"] and first.has_next
    last = svc.table(ADMIN, ExperimentTable.of(sort="name", descending=False, page=2, page_size=2))
    assert [r.name for r in last.items] == ["e4"] and not last.has_next and last.page == 2
    assert {r.id for r in svc.table(ADMIN, ExperimentTable.of(page_size=50)).items} == set(made)
    for bad in ({"sort": "secret_column"}, {"states": ["Sleeping"]}, {"page_size": 0}, {"page": -1}):
        with pytest.raises(ValidationError):
            svc.table(ADMIN, ExperimentTable.of(**bad))
