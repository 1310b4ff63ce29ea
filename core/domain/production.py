"""What runs in production for a target: the record a promotion writes, and how it is read.

The promotion use case (``core.services.promotion``) writes it; the standing production
collector (``core.runtime.production``) reads it. Both sit above this module, so the record
and its read live here, over the ``UnitOfWork`` port.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from core.domain.criteria import Target
from core.domain.errors import NotFoundError, ValidationError
from core.domain.pipeline import Pipeline
from core.domain.ports import UnitOfWorkFactory

PRODUCTION_PREFIX = "production."
PROMOTION_PREFIX = "promotion."
#: A promotion's reason goes into the GitOps commit message and the audit entry: a sentence or
#: a short paragraph, not a document.
REASON_MAX_CHARS = 500
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def check_reason(reason: str | None, *, required: bool) -> str | None:
    """The promotion reason stripped (None when blank and not ``required``), or one clear
    ``ValidationError``: missing when required, too long, or with control characters."""
    text = (reason or "").strip()
    if not text:
        if required:
            raise ValidationError("a promotion needs a reason: say why this candidate should run in production")
        return None
    if len(text) > REASON_MAX_CHARS:
        raise ValidationError(f"the promotion reason is {len(text)} characters; at most {REASON_MAX_CHARS}")
    if _CONTROL.search(text):
        raise ValidationError("the promotion reason may hold line breaks but no other control characters")
    return text


@dataclass(frozen=True)
class ProductionRecord:
    """What runs in production for one target, and why."""

    target: str  # target key, e.g. "local" or "kubernetes-observability"
    pipeline: str
    version: int | None  # None: a built-in template (not versioned in the store)
    ref: str  # NAME or NAME@VERSION, loadable with core.store.refs.load_pipeline
    experiment_id: str
    promoted_at: str
    actor: str
    commit_id: str
    forced: bool = False
    reason: str | None = None
    verdict: str | None = None
    interval_s: float | None = None
    critical_rules: list[dict[str, str]] | None = None
    graph: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self, *, with_graph: bool = True) -> dict[str, Any]:
        d = asdict(self)
        if not with_graph:
            d.pop("graph")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProductionRecord:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})

    def pipeline_object(self) -> Pipeline:
        return Pipeline.from_dict(self.graph)


def target_key(target: Target) -> str:
    """A directory- and key-safe name for a target: ``local`` or ``kubernetes-<ns>[-<selector>]``."""
    if target.kind == "local":
        return "local"
    parts = ["kubernetes", target.namespace or "default"]
    parts += [f"{k}-{v}" for k, v in sorted(target.node_selector.items())]
    key = re.sub(r"[^a-z0-9._-]+", "-", "-".join(parts).lower()).strip("-.")
    return key[:80] or "kubernetes"


def production_key(target: str) -> str:
    return f"{PRODUCTION_PREFIX}{target}"


def promotion_key(experiment_id: str) -> str:
    return f"{PROMOTION_PREFIX}{experiment_id}"


def current_production(uow_factory: UnitOfWorkFactory, target: str = "local") -> ProductionRecord | None:
    """The record of what runs in production for ``target``, or None when nothing was promoted."""
    with uow_factory() as uow:
        raw = uow.settings.get(production_key(target))
    return ProductionRecord.from_dict(raw) if raw else None


def require_production(uow_factory: UnitOfWorkFactory, target: str = "local") -> ProductionRecord:
    """Like ``current_production``, but a clear error when there is nothing to run."""
    rec = current_production(uow_factory, target)
    if rec is None:
        raise NotFoundError(
            f"no pipeline has been promoted to production for target {target!r}; "
            "promote a completed experiment first: phoenix experiment promote ID"
        )
    if not rec.graph:
        raise ValidationError(f"the production record of {target!r} holds no pipeline graph; promote again")
    return rec
