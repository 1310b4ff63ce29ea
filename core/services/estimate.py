"""The estimate use case: one pipeline on one process snapshot, priced and classified with
what Settings holds. ``phoenix estimate``, the builder, the wizard preview and the cost
explorer all call this, so an edit in Settings changes every one of them alike.
"""

from __future__ import annotations

from typing import Any

from core.domain.critical import CriticalPolicy
from core.domain.pipeline import Pipeline
from core.engine.estimate import EstimateResult, estimate
from core.observability.tracing import traced
from core.services.settings import CRITICAL_POLICY, SettingsService


def policy_for(pipeline: Pipeline, configuration: SettingsService,
               policy: CriticalPolicy | None = None) -> CriticalPolicy | None:
    """The critical policy an estimate applies: the one given (``--critical-file``), else the
    pipeline's own, else the default saved in Settings. None leaves the engine's built-in default."""
    if policy is not None or pipeline.critical_policy is not None:
        return policy
    saved = configuration.get(CRITICAL_POLICY)
    return None if saved.source == "default" else saved.require()


@traced("estimate_pipeline")
def estimate_pipeline(
    pipeline: Pipeline,
    snapshot: Any,
    configuration: SettingsService,
    *,
    source: str = "snapshot",
    policy: CriticalPolicy | None = None,
    with_cost: bool = True,
) -> EstimateResult:
    """``core.engine.estimate.estimate`` with the critical policy and price cards in use.

    A broken setting (an invalid ``PHOENIX_PRICE_CARD_FILE``, say) is a ValidationError
    naming its source, raised before any work is done.
    """
    chosen = policy_for(pipeline, configuration, policy)
    cards = configuration.price_cards() if with_cost else None
    return estimate(pipeline, snapshot, policy=chosen, source=source, with_cost=with_cost, cards=cards)
