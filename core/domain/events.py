"""Events recorded by the experiment aggregate: one per state transition."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class TransitionEvent:
    """``from_state → to_state`` by ``actor`` (a user or ``scheduler:<id>``) because ``reason``."""

    experiment_id: str
    from_state: str
    to_state: str
    actor: str
    reason: str
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment_id": self.experiment_id,
            "from": self.from_state,
            "to": self.to_state,
            "actor": self.actor,
            "reason": self.reason,
            "at": self.at.isoformat(),
        }
