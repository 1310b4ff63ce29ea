"""Resolve a pipeline reference to a ``Pipeline``: a built-in template, a file, or a saved version.

Below the services so the runtime (which loads the two pipelines of an experiment in
its collector child) and the services share one reading of ``NAME`` / ``NAME@N``.
"""

from __future__ import annotations

from pathlib import Path

from core.catalog.templates import TEMPLATE_NAMES, get_template, is_template
from core.domain.errors import NotFoundError, ValidationError
from core.domain.pipeline import Pipeline
from core.domain.ports import UnitOfWork


def load_pipeline(ref: str, uow: UnitOfWork | None = None) -> Pipeline:
    """A template name, ``name`` / ``name@N`` of a saved pipeline, or a JSON/YAML file path.

    ``uow`` is a unit of work that has not been entered yet; without one only templates
    and files resolve.
    """
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
