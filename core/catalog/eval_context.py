"""What kernels share while one pipeline is evaluated (docs/pipeline-semantics.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.catalog.process_metrics import DEFAULT_METRICS

DEFAULT_COLLECTION_INTERVAL_S = 60.0  # hostmetrics receiver default (1m)


@dataclass
class EvalContext:
    """Mutable state of one evaluation.

    ``enabled_metrics`` is what the receiver scrapes (after its toggles and receiver-mode
    metric selection); per-row drops by filter-mode metric selection live on the frame as
    ``drop::<metric>`` columns because they exempt critical processes.
    """

    enabled_metrics: set[str] = field(default_factory=lambda: set(DEFAULT_METRICS))
    collection_interval_s: float = DEFAULT_COLLECTION_INTERVAL_S
    processor_interval_s: float | None = None
    critical_policy: Any = None
    # Receiver patches of receiver-mode nodes ({"metrics": {name: bool}}), in graph order.
    receiver_patches: list[dict[str, Any]] = field(default_factory=list)
    node_id: str = ""
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def export_interval_s(self) -> float:
        """Seconds between exported points: the interval processor never speeds things up."""
        if self.processor_interval_s is None:
            return self.collection_interval_s
        return max(self.collection_interval_s, self.processor_interval_s)

    def report(self, **values: Any) -> None:
        """Record facts about the current node (achieved K, thresholds, rows dropped…)."""
        self.reports.setdefault(self.node_id, {}).update(values)

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)
