"""Use cases in one call for tests: save a pipeline version, promote an experiment (the real services)."""

from __future__ import annotations

from core.domain.accounts import Actor, Role
from core.domain.pipeline import Pipeline
from core.domain.ports import UnitOfWorkFactory
from core.domain.production import ProductionRecord
from core.gitops import GitOps
from core.services.pipelines import PipelineService
from core.services.promotion import PromotionGitOps, PromotionService
from core.services.requests import Promote, SavePipelineVersion


def _actor(who: str | Actor, role: Role) -> Actor:
    return who if isinstance(who, Actor) else Actor(who, role, "cli")


def save_version(uow_factory: UnitOfWorkFactory, gitops: GitOps, pipeline: Pipeline, message: str | None,
                 author: str | Actor) -> tuple[int, str]:
    """``(number, commit id)`` of the saved version (a name acts as an operator)."""
    saved = PipelineService(uow_factory, gitops).save_version(
        _actor(author, Role.OPERATOR), SavePipelineVersion.of(pipeline=pipeline, message=message))
    return saved.number, saved.commit_id


def promote(uow_factory: UnitOfWorkFactory, gitops: PromotionGitOps, experiment_id: str, *, actor: str | Actor,
            force: bool = False, reason: str | None = None, is_admin: bool = True) -> ProductionRecord:
    """Promote as ``actor`` (a name: an admin, or an operator with ``is_admin=False``)."""
    return PromotionService(uow_factory, gitops).promote(
        _actor(actor, Role.ADMIN if is_admin else Role.OPERATOR),
        Promote(experiment_id=experiment_id, force=force, reason=reason))
