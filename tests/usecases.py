"""Use cases in one call for tests: save a pipeline version, promote an experiment (the real services)."""

from __future__ import annotations

from core.domain.pipeline import Pipeline
from core.domain.ports import UnitOfWorkFactory
from core.domain.production import ProductionRecord
from core.gitops import GitOps
from core.services.pipelines import PipelineService
from core.services.promotion import PromotionGitOps, PromotionService
from core.services.requests import Promote, SavePipelineVersion


def save_version(uow_factory: UnitOfWorkFactory, gitops: GitOps, pipeline: Pipeline, message: str | None,
                 author: str) -> tuple[int, str]:
    """``(number, commit id)`` of the saved version."""
    saved = PipelineService(uow_factory, gitops).save_version(
        SavePipelineVersion.of(pipeline=pipeline, message=message), actor=author)
    return saved.number, saved.commit_id


def promote(uow_factory: UnitOfWorkFactory, gitops: PromotionGitOps, experiment_id: str, *, actor: str,
            force: bool = False, reason: str | None = None, is_admin: bool = False) -> ProductionRecord:
    return PromotionService(uow_factory, gitops).promote(
        Promote(experiment_id=experiment_id, force=force, reason=reason), actor=actor, is_admin=is_admin)
