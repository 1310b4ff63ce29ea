"""Roles and audit, enforced once in the services layer.

- every public method of every service class is declared a query, a mutation (or one of the
  few unauthenticated / internal entry points);
- every mutation leaves exactly one audit entry (actor, source, action, target);
- the role × action matrix: every action of PERMISSIONS × the three roles, through a real
  service call; a refused call changes nothing and writes nothing.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from argon2 import PasswordHasher

from core.catalog.templates import get_template
from core.cost import bundled_price_card_text
from core.domain.accounts import PERMISSIONS, Actor, Role
from core.domain.errors import PermissionDenied
from core.domain.experiment import Experiment
from core.domain.pipeline import Pipeline
from core.domain.records import SnapshotRecord
from core.engine.fleet import generate_fleet
from core.engine.history import encode
from core.engine.snapshot import write_snapshot
from core.services.accounts import AccountService
from core.services.authz import AuditProtocolError, declared, mutation, public_methods, record
from core.services.experiments import ExperimentService
from core.services.learning import LearningService
from core.services.pipelines import PipelineService
from core.services.promotion import PromotionService
from core.services.reports import ReportService
from core.services.requests import (
    AddSnapshot,
    CancelExperiment,
    CreateExperiment,
    ExperimentReport,
    Promote,
    RerunExperiment,
    RetrainPipeline,
    SavePipelineVersion,
)
from core.services.sessions import SessionService
from core.services.settings import SettingsService
from core.services.shares import ShareService
from core.services.system import SystemService

SERVICE_CLASSES = (ExperimentService, PipelineService, PromotionService, ReportService, SettingsService,
                   AccountService, SystemService, ShareService, SessionService, LearningService)
ACTORS = {role: Actor(f"{role.label}-user", role, "api") for role in Role}
ADMIN = ACTORS[Role.ADMIN]
POLICY = "rules:\n- match: executable_name\n  pattern: postgres\n  priority: critical\n"


def _declarations() -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for cls in SERVICE_CLASSES:
        for name, fn in public_methods(cls).items():
            decl = declared(fn)
            assert decl is not None, f"{cls.__name__}.{name} is neither a query nor a mutation"
            out[f"{cls.__name__}.{name}"] = decl
    return out


def test_every_public_service_method_is_declared() -> None:
    decls = _declarations()
    kinds = {kind for kind, _ in decls.values()}
    assert kinds <= {"query", "mutation", "unauthenticated", "internal"}
    for where, (kind, action) in decls.items():
        if kind in ("query", "mutation"):
            assert action in PERMISSIONS, where
        if kind == "internal":  # a read the system makes without a user: viewer-level data only
            assert PERMISSIONS[action] is Role.VIEWER, where
    # unauthenticated entry points are exactly these (sign-in, tokens, first run, start-up)
    assert sorted(w for w, (k, _) in decls.items() if k == "unauthenticated") == [
        "AccountService.actor_for_name", "AccountService.actor_for_token", "AccountService.authenticate",
        "AccountService.ensure_initial_admin", "SessionService.issue", "SessionService.oidc_sign_in",
        "SessionService.resume", "SettingsService.adopt_legacy_files", "ShareService.open"]


def test_the_decorators_refuse_what_cannot_be_enforced() -> None:
    with pytest.raises(ValueError, match="not in core.domain.accounts.PERMISSIONS"):
        mutation("experiment.explode")
    with pytest.raises(TypeError, match="takes no actor"):
        @mutation("experiment.create")
        def no_actor(self: object) -> None: ...


# ---- a world to act in --------------------------------------------------------------------

def _completed(svc: Any, verdict: str) -> str:
    exp = svc.experiments.create(ADMIN, CreateExperiment(name=f"done {verdict}", baseline="process-baseline-v1",
                                                         candidate="process-topk-v1", duration_s=60, interval_s=5))
    with svc.uow() as uow:
        e: Experiment = uow.experiments.get(exp.id)
        e.start("test")
        e.mark_running("test")
        e.begin_analysis("test")
        e.complete({"verdict": verdict, "reasons": []}, "test")
        uow.experiments.save(e)
        uow.commit()
    return exp.id


@pytest.fixture
def svc(memory_services: Any) -> Any:
    s = memory_services
    s.accounts.hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    with s.uow() as uow:
        for actor in ACTORS.values():
            uow.users.add(actor.name, actor.role, s.accounts.hasher.hash("a-password"))
        uow.users.add("victim", Role.VIEWER, s.accounts.hasher.hash("a-password"))
        uow.commit()
    s.world = {"pending": s.experiments.create(ADMIN, CreateExperiment(
        name="pending", baseline="process-baseline-v1", candidate="process-topk-v1", duration_s=60, interval_s=5)).id,
        "promote": _completed(s, "PROMOTE"), "reject": _completed(s, "REJECT")}
    _, s.world["token_secret"] = s.accounts.create_token(ADMIN, "t", "1h")
    s.world["token"] = s.accounts.list_tokens(ADMIN)[0].id
    s.world["link"] = s.shares.create(ADMIN, "experiment", s.world["pending"])[0].id
    # History to retrain from, written straight to the store (no audit: the world, not an action).
    with s.uow() as uow:
        uow.snapshots.add(SnapshotRecord(0, "default", T_SNAP, T_SNAP, "admin-user", "w.csv", 2, 1, 3, "w" * 64, 1),
                          _snapshot_bytes(1)[1])
        smart = get_template("process-intelligent-v1").to_dict()
        uow.pipelines.add_version("smart", {**smart, "name": "smart"}, "", message="first", author="admin-user")
        uow.commit()
    return s


T_SNAP = datetime(2026, 11, 27, tzinfo=UTC)


@functools.cache
def _snapshot_bytes(seed: int) -> tuple[bytes, bytes]:
    """A small fleet (2 hosts × 20 processes × 3 scrapes) as CSV and as stored Parquet."""
    frame = generate_fleet(2, 20, seed=seed, scrapes=3)
    buf = io.BytesIO()
    write_snapshot(frame, buf)
    return buf.getvalue(), encode(frame)


def _pipeline(name: str) -> Pipeline:
    from core.catalog.templates import get_template

    data = get_template("process-topk-v1").to_dict()
    data["name"] = name
    return Pipeline.from_dict(data)


#: One real call per mutation method: (service attribute, method) → call(services, actor).
MUTATIONS: dict[str, Callable[[Any, Actor], Any]] = {
    "ExperimentService.create": lambda s, a: s.experiments.create(a, CreateExperiment(
        name="new", baseline="process-baseline-v1", candidate="process-topk-v1", duration_s=60, interval_s=5)),
    "ExperimentService.rerun": lambda s, a: s.experiments.rerun(a, RerunExperiment(experiment_id=s.world["reject"])),
    "ExperimentService.cancel": lambda s, a: s.experiments.cancel(a, CancelExperiment(experiment_id=s.world["pending"])),
    "PipelineService.save_version": lambda s, a: s.pipelines.save_version(a, SavePipelineVersion.of(
        pipeline=_pipeline("mine"), message="first")),
    "PromotionService.promote": lambda s, a: s.promotion.promote(a, Promote(experiment_id=s.world["promote"])),
    "SettingsService.set_critical_policy": lambda s, a: s.configuration.set_critical_policy(POLICY, a),
    "SettingsService.set_price_cards": lambda s, a: s.configuration.set_price_cards(
        yaml.safe_load(bundled_price_card_text()), a),
    "SettingsService.set_prometheus_url": lambda s, a: s.configuration.set_prometheus_url("http://prom:9090", a),
    "SettingsService.set_retention_days": lambda s, a: s.configuration.set_retention_days(30, a),
    "SettingsService.set_public_url": lambda s, a: s.configuration.set_public_url("https://phoenix.example", a),
    "SettingsService.reset": lambda s, a: s.configuration.reset("retention_days", a),
    "SettingsService.change": lambda s, a: s.configuration.change(a, "retention_days", 45),
    "AccountService.add_user": lambda s, a: s.accounts.add_user(a, "newbie", "viewer", "newbie-password"),
    "AccountService.set_role": lambda s, a: s.accounts.set_role(a, "victim", "operator"),
    "AccountService.disable": lambda s, a: s.accounts.disable(a, "victim"),
    "AccountService.enable": lambda s, a: s.accounts.enable(a, "victim"),
    "AccountService.reset_password": lambda s, a: s.accounts.reset_password(a, "victim", "another-password"),
    "AccountService.create_token": lambda s, a: s.accounts.create_token(a, "ci", "1h"),
    "AccountService.revoke_token": lambda s, a: s.accounts.revoke_token(a, s.world["token"]),
    "ShareService.create": lambda s, a: s.shares.create(a, "experiment", s.world["pending"]),
    "ShareService.revoke": lambda s, a: s.shares.revoke(a, s.world["link"]),
    "SystemService.prune": lambda s, a: s.system.prune(a),
    "LearningService.add_snapshot": lambda s, a: s.learning.add_snapshot(a, AddSnapshot(source="n.csv"),
                                                                         _snapshot_bytes(2)[0]),
    "LearningService.retrain": lambda s, a: s.learning.retrain(a, RetrainPipeline(pipeline="smart")),
}

#: One real call per action of PERMISSIONS (the matrix's rows).
ACTIONS: dict[str, Callable[[Any, Actor], Any]] = {
    "experiment.read": lambda s, a: s.experiments.get(a, s.world["pending"]),
    "pipeline.read": lambda s, a: s.pipelines.list_pipelines(a),
    "production.read": lambda s, a: s.promotion.current(a),
    "report.download": lambda s, a: s.reports.render(a, ExperimentReport.of(experiment_id=s.world["reject"],
                                                                            format="csv")),
    "settings.read": lambda s, a: s.configuration.effective(),  # internal: configuration everyone reads
    "system.read": lambda s, a: s.system.collector_processes(a),
    "token.own": MUTATIONS["AccountService.create_token"],
    "experiment.create": MUTATIONS["ExperimentService.create"],
    "experiment.rerun": MUTATIONS["ExperimentService.rerun"],
    "experiment.cancel": MUTATIONS["ExperimentService.cancel"],
    "pipeline.save": MUTATIONS["PipelineService.save_version"],
    "experiment.promote": MUTATIONS["PromotionService.promote"],
    "experiment.force_promote": lambda s, a: s.promotion.promote(a, Promote(
        experiment_id=s.world["reject"], force=True, reason="we measured it by hand")),
    "settings.edit": MUTATIONS["SettingsService.set_retention_days"],
    "settings.inspect": lambda s, a: s.configuration.overview(a),
    "user.read": lambda s, a: s.accounts.list_users(a),
    "user.manage": MUTATIONS["AccountService.add_user"],
    "token.manage": lambda s, a: s.accounts.list_tokens(a, everyone=True),
    "audit.read": lambda s, a: s.accounts.audit_log(a),
    "share.read": lambda s, a: s.shares.list_for(a, "experiment", s.world["pending"]),
    "share.create": MUTATIONS["ShareService.create"],
    "share.revoke": MUTATIONS["ShareService.revoke"],
    "system.prune": MUTATIONS["SystemService.prune"],
    "snapshot.add": MUTATIONS["LearningService.add_snapshot"],
    "pipeline.retrain": MUTATIONS["LearningService.retrain"],
}


def test_every_mutation_has_a_case_here() -> None:
    mutations = {w for w, (k, _) in _declarations().items() if k == "mutation"}
    assert mutations == set(MUTATIONS)
    assert set(ACTIONS) == set(PERMISSIONS)


@pytest.mark.parametrize("method", sorted(MUTATIONS))
def test_each_mutation_leaves_exactly_one_audit_entry(svc: Any, method: str) -> None:
    before = len(svc.database.store.audit)
    MUTATIONS[method](svc, ADMIN)
    new = svc.database.store.audit[before:]
    assert len(new) == 1, [(e.action, e.subject) for e in new]
    (entry,) = new
    kind, action = declared(_method(method))  # type: ignore[misc]
    assert kind == "mutation"
    assert (entry.actor, entry.source) == (ADMIN.name, "api")
    assert entry.action.split(".")[0] == action.split(".")[0] and entry.at is not None
    # nothing secret in an entry
    assert "password" not in repr(entry.after or "") and svc.world["token_secret"] not in repr(entry)


def _method(where: str) -> Callable[..., Any]:
    cls_name, name = where.split(".")
    cls = next(c for c in SERVICE_CLASSES if c.__name__ == cls_name)
    return public_methods(cls)[name]


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.label)
@pytest.mark.parametrize("action", sorted(PERMISSIONS))
def test_role_action_matrix(svc: Any, action: str, role: Role) -> None:
    actor = ACTORS[role]
    before = (len(svc.database.store.audit), len(svc.database.store.experiments), dict(svc.database.store.users))
    if role >= PERMISSIONS[action]:
        ACTIONS[action](svc, actor)
    else:
        with pytest.raises(PermissionDenied, match=f"{actor.name} \\({role.label}\\) may not"):
            ACTIONS[action](svc, actor)
        after = (len(svc.database.store.audit), len(svc.database.store.experiments), dict(svc.database.store.users))
        assert after == before, "a refused call changed something"


def test_a_forged_actor_is_refused(svc: Any) -> None:
    with pytest.raises(PermissionDenied, match="nobody"):
        svc.experiments.create("admin", name="x", baseline="process-baseline-v1", candidate="process-topk-v1")
    with pytest.raises(PermissionDenied):
        svc.experiments.list({"name": "admin", "role": 3})


def test_record_is_once_and_only_inside_a_mutation(svc: Any) -> None:
    with svc.uow() as uow, pytest.raises(AuditProtocolError, match="outside a mutation"):
        record(uow, "x")

    class Twice:
        uow_factory = svc.database.uow

        @mutation("experiment.create")
        def go(self, actor: Actor) -> None:
            with self.uow_factory() as uow:
                record(uow, "a")
                record(uow, "b")
                uow.commit()

    before = len(svc.database.store.audit)
    with pytest.raises(AuditProtocolError, match="exactly one"):
        Twice().go(ADMIN)
    assert len(svc.database.store.audit) == before  # the unit of work rolled back


def test_a_rerun_is_one_entry_of_its_own_action(svc: Any) -> None:
    before = len(svc.database.store.audit)
    new = svc.experiments.rerun(ACTORS[Role.OPERATOR], RerunExperiment(experiment_id=svc.world["reject"]))
    (entry,) = svc.database.store.audit[before:]
    assert (entry.action, entry.subject, entry.actor) == ("experiment.rerun", new.id, "operator-user")


def test_force_promotion_is_audited_as_such(svc: Any) -> None:
    svc.promotion.promote(ADMIN, Promote(experiment_id=svc.world["reject"], force=True, reason="by hand"))
    entry = svc.database.store.audit[-1]
    assert (entry.action, entry.subject, entry.details["forced"]) == ("experiment.force_promote",
                                                                     svc.world["reject"], True)
