"""Interfaces to the side effects the scheduler drives (cosmicpython ports).

Real implementations live in ``core/runtime`` (deployers) and ``core/analysis``
(analyzers); ``core/runtime/memory.py`` has in-memory ones that record calls, used by
tests and by dry runs (``PHOENIX_RUNTIME=memory``). Implementations raise
``TemporaryError`` for "retry next tick" and anything else for "fail the experiment".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from core.domain.experiment import Experiment
from core.domain.samples import MeasurementSample


@runtime_checkable
class Deployer(Protocol):
    """Starts, watches and stops the baseline and candidate collectors of an experiment.

    Every method must be idempotent: the scheduler may call it again after a crash.
    """

    #: True when nothing real is deployed; such experiments are labelled "dry run".
    dry_run: bool

    def deploy(self, experiment: Experiment) -> dict[str, Any]:
        """Start both variants (and the load). Returns runtime info (pids, ports, …) to store."""
        ...

    def is_ready(self, experiment: Experiment) -> bool:
        """Both variants serve metrics."""
        ...

    def healthy(self, experiment: Experiment) -> bool:
        """Still running as deployed (no collector died)."""
        ...

    def teardown(self, experiment: Experiment) -> None:
        """Stop everything the deployment started; safe when nothing runs."""
        ...


@runtime_checkable
class Analyzer(Protocol):
    def analyze(self, experiment: Experiment, samples: Sequence[MeasurementSample]) -> dict[str, Any]:
        """Result dict with at least ``verdict`` (PROMOTE | REJECT | INCONCLUSIVE) and ``reasons``."""
        ...


@runtime_checkable
class SampleSource(Protocol):
    """Optional for a Deployer: measurements taken since the last call.

    When the deployer has ``collect``, the scheduler calls it on every tick while the
    experiment runs (and once more before tearing down) and stores what it returns, so
    a runtime does not need its own database access.
    """

    def collect(self, experiment: Experiment) -> Sequence[MeasurementSample]: ...
