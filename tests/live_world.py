"""A small world for live-event tests: a deployer that measures, and a scheduler driven by a clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from core.domain.experiment import Experiment
from core.domain.samples import MeasurementSample
from core.runtime.memory import InMemoryDeployer
from core.services.requests import CreateExperiment

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class SamplingDeployer(InMemoryDeployer):
    """The in-memory deployer, plus one baseline and one candidate sample per collection."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock
        self.collected = 0

    def collect(self, experiment: Experiment) -> list[MeasurementSample]:
        self.collected += 1
        n, t = self.collected, self.clock()
        return [MeasurementSample(experiment.id, "baseline", t, 1000 + n, 5000, 90_000, collector_cpu_pct=1.0,
                                  collector_rss_mb=50.0, critical_coverage_pct=100.0),
                MeasurementSample(experiment.id, "candidate", t, 300 + n, 1500, 30_000, collector_cpu_pct=1.2,
                                  collector_rss_mb=55.0, critical_coverage_pct=100.0)]


def new_experiment(services: Any, actor: Any, duration_s: float = 10, interval_s: float = 2) -> str:
    return services.experiments.create(actor, CreateExperiment(
        name="live", baseline="process-baseline-v1", candidate="process-topk-v1",
        duration_s=duration_s, interval_s=interval_s)).id


def drive(scheduler: Any, clock: Clock, experiment_id: str, services: Any, actor: Any, *,
          step_s: float = 2.0, max_ticks: int = 50) -> None:
    """Tick until the experiment ends, moving the clock ``step_s`` per tick."""
    for _ in range(max_ticks):
        scheduler.run_once()
        if services.experiments.get(actor, experiment_id).is_terminal:
            return
        clock.advance(step_s)
    raise AssertionError(f"{experiment_id} did not finish in {max_ticks} ticks")
