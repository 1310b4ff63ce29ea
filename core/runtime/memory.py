"""In-memory Deployer and Analyzer: record every call, start nothing.

Used by tests and by dry runs (``PHOENIX_RUNTIME=memory``). Decisions are derived from
the experiment itself (its stored ``runtime_info``), not from in-process state, so a
restarted scheduler process continues where a killed one stopped.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from core.domain.experiment import Experiment
from core.domain.samples import MeasurementSample


@dataclass
class InMemoryDeployer:
    dry_run: bool = True
    #: is_ready answers False this many times per experiment before True.
    not_ready_polls: int = 0
    #: experiment ids whose deploy raises / that report unhealthy (for failure tests).
    fail_deploy: set[str] = field(default_factory=set)
    unhealthy: set[str] = field(default_factory=set)
    calls: list[tuple[str, str]] = field(default_factory=list)
    _polls: dict[str, int] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _record(self, op: str, exp: Experiment) -> None:
        with self._lock:
            self.calls.append((op, exp.id))

    def calls_for(self, experiment_id: str) -> list[str]:
        with self._lock:
            return [op for op, eid in self.calls if eid == experiment_id]

    def deploy(self, experiment: Experiment) -> dict[str, Any]:
        self._record("deploy", experiment)
        if experiment.id in self.fail_deploy:
            raise RuntimeError(f"dry-run deployer was told to fail deploying {experiment.id}")
        return {"runtime": "memory", "dry_run": True, "pids": [], "ports": {}}

    def is_ready(self, experiment: Experiment) -> bool:
        self._record("is_ready", experiment)
        with self._lock:
            n = self._polls.get(experiment.id, 0)
            self._polls[experiment.id] = n + 1
        return bool(experiment.runtime_info) and n >= self.not_ready_polls

    def healthy(self, experiment: Experiment) -> bool:
        self._record("healthy", experiment)
        return experiment.id not in self.unhealthy

    def teardown(self, experiment: Experiment) -> None:
        self._record("teardown", experiment)


@dataclass
class InMemoryAnalyzer:
    verdict: str = "INCONCLUSIVE"
    fail: bool = False
    calls: list[tuple[str, int]] = field(default_factory=list)

    def analyze(self, experiment: Experiment, samples: Sequence[MeasurementSample]) -> dict[str, Any]:
        self.calls.append((experiment.id, len(samples)))
        if self.fail:
            raise RuntimeError("dry-run analyzer was told to fail")
        per_variant = {v: sum(1 for s in samples if s.variant == v) for v in ("baseline", "candidate")}
        reasons = (
            ["dry run: no collectors were started, so there is nothing to compare"]
            if not samples
            else [f"dry-run analyzer: {per_variant['baseline']} baseline and {per_variant['candidate']} candidate samples"]
        )
        return {"verdict": self.verdict, "reasons": reasons, "samples": per_variant, "dry_run": True}
