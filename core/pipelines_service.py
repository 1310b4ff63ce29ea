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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.catalog.compiler import ensure_valid
from core.catalog.templates import TEMPLATE_NAMES, get_template, is_template
from core.domain.errors import NotFoundError, ValidationError
from core.domain.pipeline import Pipeline
from core.gitops import CommitInfo, GitOps
from core.otelcol.validate import check_collector_yaml
from core.render.bundle import Bundle, render_bundle
from core.render.collector import RenderOptions
from core.render.k8s import K8sOptions
from core.render.k8s_validate import validate_manifests_text

MAX_MESSAGE = 10_000
VERSION_FILE = "version.json"


def check_message(message: Any) -> str:
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


def save_version(uow: Any, gitops: GitOps, pipeline: Pipeline, message: str, author: str) -> tuple[int, str]:
    """Create the next immutable version of ``pipeline``: returns (number, commit id).

    ``uow`` is a unit of work that has not been entered yet (``db.uow()``).
    """
    message = check_message(message)
    if is_template(pipeline.name):
        raise ValidationError(f"{pipeline.name} is a built-in template; save an edited copy under a new name")
    bundle = render_checked(pipeline)
    with uow:
        try:
            number = uow.pipelines.get_version(pipeline.name).number + 1
        except NotFoundError:
            number = 1
        commit_id = gitops.commit_pipeline(
            pipeline.name, version_files(pipeline, bundle, number), f"{pipeline.name} v{number}: {message}", author
        )
        record = uow.pipelines.add_version(
            pipeline.name,
            pipeline.to_dict(),
            bundle.collector_yaml,
            message=message,
            author=author,
            commit_id=commit_id,
            computed=computed_params(pipeline) or None,
            description=pipeline.description,
        )
        uow.commit()
    return record.number, commit_id


def load_pipeline(ref: str, uow: Any | None = None) -> Pipeline:
    """A template name, ``name`` / ``name@N`` of a saved pipeline, or a JSON/YAML file path."""
    if is_template(ref):
        return get_template(ref)
    path = Path(ref)
    if path.suffix.lower() in (".json", ".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise NotFoundError(f"pipeline file {ref} does not exist")
        return Pipeline.from_file(path)
    if uow is None:
        raise NotFoundError(f"{ref!r} is neither a built-in template ({', '.join(TEMPLATE_NAMES)}) nor a file")
    name, _, num = ref.partition("@")
    if num and not num.isdigit():
        raise ValidationError(f"version in {ref!r} must be a number (name@3)")
    with uow:
        rec = uow.pipelines.get_version(name, int(num) if num else None)
    return Pipeline.from_dict(rec.graph)


def history(gitops: GitOps, name: str, limit: int = 50) -> list[CommitInfo]:
    return gitops.history(name, limit)


def diff_versions(uow: Any, gitops: GitOps, name: str, old: int, new: int) -> str:
    with uow:
        a = uow.pipelines.get_version(name, old)
        b = uow.pipelines.get_version(name, new)
    if not a.commit_id or not b.commit_id:
        raise NotFoundError(f"{name} v{old} or v{new} has no GitOps commit")
    return gitops.diff(a.commit_id, b.commit_id, name)
