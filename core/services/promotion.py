"""Promotion: the winning candidate becomes the production pipeline of its target.

Rules (``PromotionService.promote``):

- allowed when the experiment is Completed with verdict PROMOTE;
- otherwise only when *forced* by an admin with a non-empty reason (a Completed
  experiment with another verdict, never one still running: its result is not final);
- a reason (``check_reason``: at most 500 characters) is stored in the record, the commit
  message body and the audit entry; the app always asks for one (``preview`` shows it the
  diff against production first), the CLI and API only when forcing;
- idempotent: promoting the experiment that already is production for its target is a
  no-op that returns the stored record. Promoting an older experiment again (after
  another one superseded it) is a rollback and records a new promotion.

Effects, in this order so nothing is recorded for a pipeline that does not render:

1. render and validate the candidate (collector.yaml + k8s manifests);
2. commit ``graph.json``, ``collector.yaml``, ``k8s/*.yaml`` and ``promotion.json`` to the
   GitOps repository under ``production/<target-key>/`` (author = the actor); for a
   kubernetes target ``k8s/`` holds the production ``PhoenixProcessPipeline`` and its
   kustomization, which an Argo CD Application syncs (docs/kubernetes.md);
3. one unit of work: ``app_settings`` key ``production.<target-key>`` → the record (what
   ``phoenix collector --production`` runs), ``promotion.<experiment-id>`` → the same
   record (the experiment's view), and the audit entry (``experiment.promote``, or
   ``experiment.force_promote`` when the verdict was not PROMOTE).

If step 3 fails after the commit, the repository holds one commit no record points to;
promoting again commits again (git history is append-only anyway).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from core.catalog.templates import get_template, is_template
from core.domain.accounts import Actor, Role
from core.domain.criteria import Target
from core.domain.errors import NotFoundError, PermanentError, ValidationError
from core.domain.experiment import Experiment, State, utcnow
from core.domain.pipeline import Pipeline
from core.domain.ports import UnitOfWorkFactory
from core.domain.production import (
    ProductionRecord,
    check_reason,
    current_production,
    production_key,
    promotion_key,
    require_production,
    target_key,
)
from core.observability.metrics import PROMOTIONS
from core.observability.tracing import traced_service
from core.render.collector import render_collector
from core.render.k8s import K8sOptions
from core.render.k8s_resources import (
    CollectorPlacement,
    collector_options,
    default_placement,
    production_files,
    production_name,
    production_pipeline,
)
from core.render.k8s_validate import validate_custom_resource
from core.services.authz import mutation, query, record
from core.services.pipelines import render_checked
from core.services.requests import Promote
from core.store.refs import load_pipeline

__all__ = ["PromotionDenied", "PromotionGitOps", "PromotionPreview", "PromotionService", "ProductionRecord",
           "check_allowed", "target_key"]

PROMOTE_VERDICT = "PROMOTE"
AUDIT_ACTION = "experiment.promote"
FORCE_ACTION = "experiment.force_promote"


class PromotionGitOps(Protocol):
    """The part of the GitOps repository promotion needs (``GitRepo`` / ``InMemoryGitOps``)."""

    def commit_dir(self, rel_dir: str, files: dict[str, str], message: str, author: str) -> str: ...


@dataclass(frozen=True)
class PromotionPreview:
    """What a promotion would change, shown before it is confirmed: the candidate's collector
    YAML against the production pipeline of the same target (``production_ref`` None: nothing
    in production yet, and ``diff`` is the whole candidate)."""

    experiment_id: str
    target: str
    candidate_ref: str
    production_ref: str | None
    production_experiment: str | None
    diff: str
    already_production: bool


class PromotionDenied(PermanentError):
    """The experiment may not be promoted (state, verdict, missing admin reason)."""


def check_allowed(exp: Experiment, *, force: bool, reason: str | None, is_admin: bool) -> None:
    """Raise ``PromotionDenied`` with the precise reason, or return when promotion may go ahead."""
    verdict = (exp.result or {}).get("verdict")
    if exp.state is not State.COMPLETED:
        hint = f": {exp.error}" if exp.error else ""
        raise PromotionDenied(
            f"experiment {exp.id} is {exp.state.value}{hint}; only a Completed experiment can be promoted"
        )
    if verdict == PROMOTE_VERDICT:
        return
    if not force:
        raise PromotionDenied(
            f"experiment {exp.id} has verdict {verdict or 'none'}, not PROMOTE; an admin can force it "
            "with --force --reason TEXT"
        )
    if not is_admin:
        raise PromotionDenied(f"only an admin may force the promotion of {exp.id} (verdict {verdict or 'none'})")
    if not (reason or "").strip():
        raise PromotionDenied(f"forcing the promotion of {exp.id} needs a reason (--reason TEXT)")


@traced_service
class PromotionService:
    """Promote an experiment's candidate to production; read what runs in production."""

    def __init__(self, uow_factory: UnitOfWorkFactory, gitops: PromotionGitOps,
                 k8s_placement: Callable[[Target], CollectorPlacement] | None = None):
        self.uow_factory = uow_factory
        self.gitops = gitops
        # Image, resources and tolerations of a kubernetes target's production collectors
        # (bootstrap: from PHOENIX_K8S_*; None: the render's defaults).
        self.k8s_placement = k8s_placement or (lambda target: default_placement(target.node_selector))

    @query("production.read")
    def current(self, actor: Actor, target: str = "local") -> ProductionRecord | None:
        """What runs in production for ``target`` (None when nothing was promoted)."""
        return current_production(self.uow_factory, target)

    @query("production.read")
    def require(self, actor: Actor, target: str = "local") -> ProductionRecord:
        return require_production(self.uow_factory, target)

    @query("production.read")
    def of(self, actor: Actor, experiment_id: str) -> ProductionRecord | None:
        """The promotion recorded for this experiment (also when it has since been superseded)."""
        with self.uow_factory() as uow:
            raw = uow.settings.get(promotion_key(experiment_id))
        return ProductionRecord.from_dict(raw) if raw else None

    @query("production.read")
    def preview(self, actor: Actor, experiment_id: str) -> PromotionPreview:
        """The diff a promotion of ``experiment_id`` would make to its target's production."""
        with self.uow_factory() as uow:
            exp = uow.experiments.get(experiment_id)
        key = target_key(exp.target)
        existing = current_production(self.uow_factory, key)
        pipeline, number = self._candidate(exp)
        ref = pipeline.name if number is None else f"{pipeline.name}@{number}"
        new = render_collector(pipeline).splitlines(keepends=True)
        old = render_collector(existing.pipeline_object()).splitlines(keepends=True) if existing else []
        diff = "".join(difflib.unified_diff(
            old, new, fromfile=f"production/{key}: {existing.ref}" if existing else f"production/{key}: nothing",
            tofile=f"candidate {ref}"))
        return PromotionPreview(experiment_id=exp.id, target=key, candidate_ref=ref,
                                production_ref=existing.ref if existing else None,
                                production_experiment=existing.experiment_id if existing else None, diff=diff,
                                already_production=existing is not None and existing.experiment_id == exp.id)

    def _candidate(self, exp: Experiment) -> tuple[Pipeline, int | None]:
        """The candidate that ran: a template, ``name@N``, or the latest version at the experiment's start."""
        name, version = exp.candidate.name, exp.candidate.version
        if is_template(name) and version is None:
            return get_template(name), None
        with self.uow_factory() as uow:
            if version is None:
                # "latest when deployed": the newest version saved before the run started.
                started = exp.started_at or exp.created_at
                try:
                    saved = uow.pipelines.list_versions(name)
                except NotFoundError:
                    saved = []
                versions = [v for v in saved if v.created_at <= started] or saved
                rec = max(versions, key=lambda v: v.number) if versions else None
            else:
                rec = uow.pipelines.get_version(name, version)
        if rec is None:  # not in the store: a pipeline file (load_pipeline says clearly if it is not one)
            return load_pipeline(name), None
        return Pipeline.from_dict(rec.graph), rec.number

    def _bundle_files(self, exp: Experiment, pipeline: Pipeline, number: int | None) -> dict[str, str]:
        """collector.yaml and k8s/: the DaemonSet bundle for this host's target; for a kubernetes
        target the production ``PhoenixProcessPipeline`` the operator reconciles (docs/kubernetes.md,
        "GitOps layout"), and no raw DaemonSet beside it to run the collectors twice."""
        if exp.target.kind != "kubernetes":
            return render_checked(pipeline, k8s=K8sOptions(pipeline_version=number)).files()
        placement = self.k8s_placement(exp.target)
        namespace = exp.target.namespace or K8sOptions.namespace
        bundle = render_checked(pipeline, collector_options(placement),
                                K8sOptions(namespace=namespace, node_selector=placement.node_selector,
                                           pipeline_version=number))  # fmt: skip
        obj = production_pipeline(namespace, pipeline=pipeline.name, version=number, config=bundle.collector_yaml,
                                  placement=placement, name=production_name(exp.target.node_selector),
                                  experiment_id=exp.id)  # fmt: skip
        if problems := validate_custom_resource(obj):
            raise ValidationError(problems)
        return {"collector.yaml": bundle.collector_yaml, **production_files(obj)}

    @mutation(AUDIT_ACTION)
    def promote(self, actor: Actor, request: Promote) -> ProductionRecord:
        """Make the experiment's candidate the production pipeline of its target (see module doc).

        Counted in ``phoenix_promotions_total`` by outcome: ``promoted``, ``unchanged`` (already
        production), ``denied`` (``PromotionDenied``: verdict, role or reason) or ``failed``.
        """
        outcome = "failed"
        try:
            promoted, changed = self._promote(actor, request)
            outcome = "promoted" if changed else "unchanged"
            return promoted
        except PromotionDenied:
            outcome = "denied"
            raise
        finally:
            PROMOTIONS.labels(outcome).inc()

    def _promote(self, actor: Actor, request: Promote) -> tuple[ProductionRecord, bool]:
        """The promotion, and whether it changed what runs in production."""
        force, reason = request.force, request.reason
        with self.uow_factory() as uow:
            exp = uow.experiments.get(request.experiment_id)
        key = target_key(exp.target)
        existing = self.current(actor, key)
        if existing is not None and existing.experiment_id == exp.id:
            with self.uow_factory() as uow:  # idempotent: already production for this target
                record(uow, exp.id, details={"target": key, "unchanged": True})
                uow.commit()
            return existing, False
        check_allowed(exp, force=force, reason=reason, is_admin=actor.role >= Role.ADMIN)
        reason = check_reason(reason, required=False)
        verdict = (exp.result or {}).get("verdict")
        forced = verdict != PROMOTE_VERDICT

        pipeline, number = self._candidate(exp)
        ref = pipeline.name if number is None else f"{pipeline.name}@{number}"
        promoted_at = utcnow().isoformat()
        meta = {"target": key, "pipeline": pipeline.name, "version": number, "ref": ref, "experiment_id": exp.id,
                "promoted_at": promoted_at, "actor": actor.name, "forced": forced, "reason": reason or None,
                "verdict": verdict}  # fmt: skip
        files = {"graph.json": pipeline.to_json(), **self._bundle_files(exp, pipeline, number),
                 "promotion.json": json.dumps(meta, indent=2) + "\n"}  # fmt: skip
        why = " (forced)" if forced else ""
        # The reason is the commit's body: one summary line for `git log --oneline`, then why.
        message = f"Promote {ref} to production/{key} from experiment {exp.id}{why}"
        if reason:
            message += f"\n\nReason: {reason}"
        commit_id = self.gitops.commit_dir(f"production/{key}", files, message, actor.name)

        promoted = ProductionRecord(
            target=key, pipeline=pipeline.name, version=number, ref=ref, experiment_id=exp.id,
            promoted_at=promoted_at, actor=actor.name, commit_id=commit_id, forced=forced,
            reason=reason, verdict=verdict, interval_s=float(exp.timing.interval_s),
            critical_rules=exp.critical_rules, graph=pipeline.to_dict(),
        )  # fmt: skip
        with self.uow_factory() as uow:
            raw = uow.settings.get(production_key(key))
            if raw and raw.get("experiment_id") == exp.id:
                # A concurrent promote of the same experiment won: keep its record (our commit
                # stays in the append-only history, unreferenced).
                record(uow, exp.id, details={"target": key, "unchanged": True})
                uow.commit()
                return ProductionRecord.from_dict(raw), False
            previous = raw.get("experiment_id") if raw else None
            uow.settings.set(production_key(key), promoted.to_dict(), by=actor.name)
            uow.settings.set(promotion_key(exp.id), promoted.to_dict(with_graph=False), by=actor.name)
            record(uow, exp.id, action=FORCE_ACTION if forced else AUDIT_ACTION,
                   before={"production": previous}, after={"production": exp.id, "pipeline": ref}, details={
                "target": key, "pipeline": ref, "commit_id": commit_id, "forced": forced,
                "reason": promoted.reason, "verdict": verdict, "replaces_experiment": previous,
            })  # fmt: skip
            uow.commit()
        return promoted, True
