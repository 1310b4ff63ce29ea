"""Per-interval measurements of one experiment variant."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

VARIANTS: tuple[str, ...] = ("baseline", "candidate")


@dataclass(frozen=True)
class MeasurementSample:
    experiment_id: str
    variant: str  # baseline | candidate
    t: datetime
    series: int
    datapoints: int
    bytes: int
    collector_cpu_pct: float | None = None
    collector_rss_mb: float | None = None
    critical_coverage_pct: float | None = None
    processes_seen: int | None = None
    series_created: int | None = None
    series_removed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["t"] = self.t.isoformat()
        return d
