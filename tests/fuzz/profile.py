"""The one hypothesis setting every fuzz property uses (a decorator, not a global profile,
so the unit suite's own hypothesis tests keep their sizes)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# 500 in `make test` (the whole suite has a time budget); `make fuzz` runs 20,000.
EXAMPLES = int(os.environ.get("PHOENIX_FUZZ_EXAMPLES", "500"))

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
