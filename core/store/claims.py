"""Scheduler claims (``Claimed``: who took over whose lease) and the count of committed transitions.

``Claimed`` is a ``list`` of experiment ids (what the ``claim`` port promises, so callers
and the store contract tests see no difference) that also says which of them were
*taken over*: their lease belonged to another scheduler and had expired. The scheduler
counts those as ``phoenix_scheduler_lease_takeovers`` — a takeover means a scheduler died
or stalled for longer than a lease.
"""

from __future__ import annotations

from collections.abc import Iterable

from core.domain.events import TransitionEvent
from core.observability.metrics import TRANSITIONS


class Claimed(list[str]):
    """Claimed experiment ids, in claim order, plus ``taken_over``: the ids whose expired lease was another's."""

    def __init__(self, ids: Iterable[str] = (), taken_over: Iterable[str] = ()):
        super().__init__(ids)
        self.taken_over: frozenset[str] = frozenset(taken_over) & frozenset(self)


def count_committed(events: list[TransitionEvent]) -> None:
    """Count committed transitions (``phoenix_experiment_transitions``) and forget them.

    Both units of work (SQL and in-memory) call this right after a successful commit.
    """
    for ev in events:
        TRANSITIONS.labels(ev.from_state, ev.to_state).inc()
    events.clear()
