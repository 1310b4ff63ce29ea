"""The built-in pipeline templates (``core/templates/pipelines/*.yaml``), loaded as Pipelines."""

from __future__ import annotations

from functools import cache

from core.catalog.compiler import validate_graph
from core.domain.errors import NotFoundError, ValidationError
from core.domain.pipeline import Pipeline
from core.resources import PIPELINE_TEMPLATES_DIR

TEMPLATES_DIR = PIPELINE_TEMPLATES_DIR

TEMPLATE_NAMES = (
    "process-baseline-v1",
    "process-priority-filter-v1",
    "process-topk-v1",
    "process-aggregated-v1",
    "process-adaptive-v1",
    "process-intelligent-v1",
    "process-minimal-v1",
)


@cache
def _load(name: str) -> str:
    path = TEMPLATES_DIR / f"{name}.yaml"
    if not path.is_file():
        raise NotFoundError(f"no built-in template {name!r}; known: {', '.join(TEMPLATE_NAMES)}")
    return path.read_text(encoding="utf-8")


def get_template(name: str) -> Pipeline:
    """A fresh copy of a template (callers may edit it)."""
    if name not in TEMPLATE_NAMES:
        raise NotFoundError(f"no built-in template {name!r}; known: {', '.join(TEMPLATE_NAMES)}")
    pipeline = Pipeline.from_text(_load(name), source=f"template {name}")
    problems = validate_graph(pipeline)
    if problems:  # a broken built-in is a bug, reported plainly rather than as a traceback
        raise ValidationError([f"template {name}: {p}" for p in problems])
    return pipeline


def list_templates() -> list[Pipeline]:
    return [get_template(n) for n in TEMPLATE_NAMES]


def is_template(name: str) -> bool:
    return name in TEMPLATE_NAMES
