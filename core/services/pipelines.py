"""Pipeline use cases: resolve, render, save a version (database + GitOps commit), history.

Saving order: render and validate everything first (nothing is written for an invalid
pipeline), then commit to git, then append the version row with the commit id. If the
database write fails after the git commit, the repository holds one commit no version
points to; the next save simply commits again (git history is append-only anyway).

Every version is its own commit in the pipeline's history, even when nothing else changed:
``pipelines/<name>/version.json`` records the version number, so saving an unchanged
pipeline still changes the directory. A version needs a message (blank is refused here,
so the builder, the CLI and the API all get the same error).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from core.catalog.compiler import ensure_valid, validate_graph
from core.catalog.templates import TEMPLATE_NAMES, get_template, is_template
from core.domain.accounts import Actor
from core.domain.errors import ConcurrencyError, NotFoundError, ValidationError
from core.domain.pipeline import Pipeline
from core.domain.ports import UnitOfWorkFactory
from core.domain.records import PipelineRecord, PipelineVersionRecord
from core.engine.snapshot import load_snapshot
from core.gitops import CommitInfo, GitOps
from core.observability.tracing import traced_service
from core.otelcol.validate import check_collector_yaml
from core.render.bundle import Bundle, render_bundle
from core.render.collector import RenderOptions
from core.render.k8s import K8sOptions
from core.render.k8s_validate import validate_manifests_text
from core.services.authz import mutation, query, record
from core.services.estimate import Estimates
from core.services.requests import EstimatePipeline, SavePipelineVersion
from core.services.settings import SettingsService
from core.store.refs import load_pipeline

MAX_MESSAGE = 10_000
VERSION_FILE = "version.json"


def check_message(message: object) -> str:
    """The version message, trimmed; ValidationError when blank or not storable."""
    if not isinstance(message, str) or not message.strip():
        raise ValidationError("a version message is required: say what changed and why")
    text = message.strip()
    if len(text) > MAX_MESSAGE:
        raise ValidationError(f"the version message must be at most {MAX_MESSAGE:,} characters, got {len(text):,}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("the version message contains characters that are not valid text") from None
    if "\x00" in text:
        raise ValidationError("the version message must not contain NUL characters")
    return text


@dataclass(frozen=True)
class SavedVersion:
    """What saving a version produced."""

    name: str
    number: int
    commit_id: str


def render_checked(pipeline: Pipeline, opts: RenderOptions | None = None, k8s: K8sOptions | None = None) -> Bundle:
    """Render and validate everything a version contains; ValidationError lists problems."""
    ensure_valid(pipeline)
    bundle = render_bundle(pipeline, opts, k8s)
    # Schemas first, then the real collector when built: a version it refuses is never saved.
    problems = [f"collector.yaml: {p}" for p in check_collector_yaml(bundle.collector_yaml).problems]
    problems += validate_manifests_text({f"k8s/{n}": t for n, t in bundle.manifests.items()})
    if problems:  # an emitter bug: say exactly what, never write a broken version
        raise ValidationError(problems)
    return bundle


def version_files(pipeline: Pipeline, bundle: Bundle, number: int | None = None) -> dict[str, str]:
    files = {"graph.json": pipeline.to_json(), **bundle.files()}
    if number is not None:  # changes on every save: each version is a commit in the pipeline's history
        files[VERSION_FILE] = json.dumps({"pipeline": pipeline.name, "version": number}) + "\n"
    return files


def computed_params(pipeline: Pipeline) -> dict[str, Any]:
    """Phoenix-computed values recorded with a version (thresholds, learned names)."""
    out: dict[str, Any] = {}
    for n in pipeline.nodes:
        for key in ("computed", "learned"):
            if n.params.get(key):
                out.setdefault(n.id, {})[key] = n.params[key]
    return out


def json_safe(value: Any) -> Any:
    """A report as JSON can carry it: NaN and infinities become null, numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        return json_safe(value.item())
    return value


@traced_service
class PipelineService:
    """Saved pipelines: save a version (database + GitOps commit), list, load, resolve, history, diff."""

    def __init__(self, uow_factory: UnitOfWorkFactory, gitops: GitOps, configuration: SettingsService | None = None,
                 estimates: Estimates | None = None):
        self.uow_factory = uow_factory
        self.gitops = gitops
        # the price cards and default critical policy an estimate uses
        self.configuration = configuration or SettingsService(uow_factory)
        # estimate reports, through the cache bootstrap wires (Redis when configured)
        self.estimates = estimates or Estimates(self.configuration)

    @mutation("pipeline.save")
    def save_version(self, actor: Actor, request: SavePipelineVersion) -> SavedVersion:
        """Create the next immutable version of the pipeline (see the module doc for the order)."""
        pipeline = request.pipeline
        message = check_message(request.message)
        if is_template(pipeline.name):
            raise ValidationError(f"{pipeline.name} is a built-in template; save an edited copy under a new name")
        bundle = render_checked(pipeline)
        with self.uow_factory() as uow:
            try:
                number = uow.pipelines.get_version(pipeline.name).number + 1
            except NotFoundError:
                number = 1
            if request.expected_version is not None and number - 1 != request.expected_version:
                raise ConcurrencyError(f"pipeline {pipeline.name} is at version {number - 1} now, not "
                                       f"{request.expected_version}: someone saved in between; reload and save again")
            commit_id = self.gitops.commit_pipeline(
                pipeline.name, version_files(pipeline, bundle, number), f"{pipeline.name} v{number}: {message}", actor.name
            )
            saved = uow.pipelines.add_version(
                pipeline.name,
                pipeline.to_dict(),
                bundle.collector_yaml,
                message=message,
                author=actor.name,
                commit_id=commit_id,
                computed=computed_params(pipeline) or None,
                description=pipeline.description,
            )
            record(uow, pipeline.name, after={"pipeline": pipeline.name, "version": saved.number,
                                              "commit_id": commit_id}, details={"message": message[:200]})
            uow.commit()
        return SavedVersion(pipeline.name, saved.number, commit_id)

    @query("pipeline.read")
    def estimate(self, actor: Actor, request: EstimatePipeline, snapshot: bytes) -> dict[str, Any]:
        """``phoenix estimate`` over a snapshot CSV's bytes: the report, JSON-safe (NaN and
        infinities become null). A bad snapshot is one ValidationError listing its rows' problems."""
        pipeline = request.graph if request.graph is not None else self.resolve(actor, request.pipeline or "")
        frame = load_snapshot(snapshot)
        return json_safe(self.estimates.report(pipeline, frame, source=request.source))

    @query("pipeline.read")
    def list_pipelines(self, actor: Actor) -> list[PipelineRecord]:
        with self.uow_factory() as uow:
            return list(uow.pipelines.list_pipelines())

    @query("pipeline.read")
    def names(self, actor: Actor) -> list[str]:
        """Saved pipelines that have at least one version."""
        return [p.name for p in self.list_pipelines(actor) if p.latest_version]

    @query("pipeline.read")
    def list_versions(self, actor: Actor, name: str) -> list[PipelineVersionRecord]:
        with self.uow_factory() as uow:
            return list(uow.pipelines.list_versions(name))

    @query("pipeline.read")
    def version(self, actor: Actor, name: str, number: int | None = None) -> PipelineVersionRecord:
        """One saved version (the latest when ``number`` is None)."""
        with self.uow_factory() as uow:
            return uow.pipelines.get_version(name, number)

    @query("pipeline.read")
    def load(self, actor: Actor, ref: str) -> Pipeline:
        """A template name, ``name`` / ``name@N`` of a saved pipeline, or a JSON/YAML file path."""
        return load_pipeline(ref, self.uow_factory())

    @query("pipeline.read")
    def resolve(self, actor: Actor, ref: str) -> Pipeline:
        """``name`` (template or latest saved) or ``name@N``; never a file (what pages offer)."""
        name, _, ver = ref.partition("@")
        if not ver and is_template(name):
            return get_template(name)
        if ver and not ver.isdigit():
            raise NotFoundError(f"bad pipeline version in {ref!r}")
        return Pipeline.from_dict(self.version(actor, name, int(ver) if ver else None).graph)

    @query("pipeline.read")
    def history(self, actor: Actor, name: str, limit: int = 50) -> list[CommitInfo]:
        return self.gitops.history(name, limit)

    @query("pipeline.read")
    def diff(self, actor: Actor, name: str, old: int, new: int) -> str:
        """The GitOps diff between two saved versions of ``name``."""
        with self.uow_factory() as uow:
            a = uow.pipelines.get_version(name, old)
            b = uow.pipelines.get_version(name, new)
        if not a.commit_id or not b.commit_id:
            raise NotFoundError(f"{name} v{old} or v{new} has no GitOps commit")
        return self.gitops.diff(a.commit_id, b.commit_id, name)

    @query("pipeline.read")
    def validate(self, actor: Actor, pipeline: Pipeline) -> list[str]:
        """Every problem with ``pipeline``, one sentence each, without saving it (empty: valid)."""
        return validate_graph(pipeline)

    @query("pipeline.read")
    def render(self, actor: Actor, pipeline: Pipeline) -> Bundle:
        """The collector YAML and manifests of ``pipeline``, checked as a save checks them (nothing saved)."""
        return render_checked(pipeline)

    @query("pipeline.read")
    def templates(self, actor: Actor) -> list[str]:
        """The names of the built-in templates."""
        return list(TEMPLATE_NAMES)

    @query("pipeline.read")
    def template(self, actor: Actor, name: str) -> Pipeline:
        """A built-in template by name (NotFoundError for any other name, a saved pipeline's too)."""
        return get_template(name)
