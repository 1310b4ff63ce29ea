"""The ``Analyzer`` port for real experiments: samples → verdict (``analyze_samples``).

Source of the figures: the database samples always; when a Prometheus URL is configured
(``PHOENIX_PROMETHEUS_URL``) the same figures are read from Prometheus and used, with the
database result kept alongside (``result["database"]``) so both can be compared.
No samples at all is a permanent failure with a reason (the scheduler marks the
experiment Failed); too few samples is an INCONCLUSIVE verdict.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from core.analysis.verdict import PriceFn, analyze_samples
from core.domain.errors import PermanentError, TemporaryError, ValidationError
from core.domain.experiment import Experiment
from core.domain.samples import MeasurementSample


def default_prices(hosts: int = 1) -> dict[str, PriceFn]:
    """One price function per default price card (``core.cost``), keyed by card id."""
    from core.cost import load_price_cards, monthly_cost

    def fn(card: Any) -> PriceFn:
        return lambda series, dpm, bpm: monthly_cost(card, series, dpm, bpm, hosts).usd_per_month

    return {c.id: fn(c) for c in load_price_cards()}


@dataclass
class ExperimentAnalyzer:
    prices: Mapping[str, PriceFn] | Callable[[], Mapping[str, PriceFn]] | None = None
    # A callable is asked at each analysis, so a URL changed in Settings applies to the next one.
    prometheus_url: str | None | Callable[[], str | None] = None

    def _prices(self) -> Mapping[str, PriceFn] | None:
        p = self.prices() if callable(self.prices) else self.prices
        return p

    def analyze(self, experiment: Experiment, samples: Sequence[MeasurementSample]) -> dict[str, Any]:
        if not samples:
            raise PermanentError(
                "no measurements were recorded: the collectors never completed an interval "
                f"(interval {experiment.timing.interval_s:g}s, duration {experiment.timing.duration_s:g}s)"
            )
        interval = float(experiment.timing.interval_s)
        # A broken setting (price cards, Prometheus URL) must not throw away a finished run: the
        # verdict is computed without it and the result says why (a cost criterion is then uncertain).
        price_error = None
        try:
            prices = self._prices()
        except ValidationError as exc:
            prices, price_error = None, str(exc)
        db = analyze_samples(samples, experiment.criteria, interval_s=interval, prices=prices)
        db["source"] = "database"
        if price_error:
            db["price_cards_error"] = price_error
        try:
            prometheus_url = self.prometheus_url() if callable(self.prometheus_url) else self.prometheus_url
        except ValidationError as exc:
            db["prometheus_error"] = str(exc)
            return db
        if not prometheus_url:
            return db
        from core.analysis.prometheus_reader import PrometheusReader

        start = min(s.t for s in samples) - timedelta(seconds=interval)
        end = max(s.t for s in samples) + timedelta(seconds=interval)
        try:
            prom_samples = PrometheusReader(prometheus_url).read_samples(experiment.id, start, end, interval)
        except TemporaryError as exc:
            db["prometheus_error"] = str(exc)
            return db
        if not prom_samples:
            db["prometheus_error"] = "Prometheus holds no samples of this experiment (is it scraping the collectors?)"
            return db
        result = analyze_samples(prom_samples, experiment.criteria, interval_s=interval, prices=prices)
        result["source"] = "prometheus"
        if price_error:
            result["price_cards_error"] = price_error
        result["database"] = {k: db[k] for k in ("verdict", "series_reduction_pct", "datapoint_reduction_pct",
                                                 "bytes_reduction_pct", "critical_coverage_pct", "paired_intervals")}  # fmt: skip
        return result
