"""Statistics for A/B experiments, thin and checkable against scipy.

Both variants see the identical input in each interval (one scrape feeds both pipelines),
so reductions are computed on **paired** per-interval values: ``r_i = 100·(1 − c_i/b_i)``;
the 95% CI is the Student-t interval of the mean of those ratios. Welch's t-test and the
Mann–Whitney U test compare the two samples as independent groups (what the criteria
"is the candidate different at all" ask), with Cohen's d and the rank-biserial
correlation as effect sizes.

Degenerate inputs are common here (a deterministic pipeline gives the same series count
every interval, so variances are zero); each function says what it returns then instead
of passing scipy's NaN on.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided confidence interval."""

    estimate: float
    low: float
    high: float
    n: int
    confidence: float = 0.95

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _arr(values: Sequence[float] | np.ndarray) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    return a[np.isfinite(a)]


def mean_ci(values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> Interval:
    """Mean with a Student-t CI; zero spread (or n = 1) gives a zero-width interval."""
    a = _arr(values)
    n = int(a.size)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, confidence)
    m = float(a.mean())
    if n == 1:
        return Interval(m, m, m, 1, confidence)
    se = float(a.std(ddof=1)) / math.sqrt(n)
    if se == 0:
        return Interval(m, m, m, n, confidence)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * se
    return Interval(m, m - half, m + half, n, confidence)


def paired_reduction_pct(
    baseline: Sequence[float] | np.ndarray, candidate: Sequence[float] | np.ndarray, confidence: float = 0.95
) -> Interval:
    """Mean per-interval reduction ``100·(1 − candidate/baseline)`` with its CI.

    Pairs whose baseline is 0 carry no information about a ratio and are skipped.
    """
    b = np.asarray(baseline, dtype=float)
    c = np.asarray(candidate, dtype=float)
    if b.shape != c.shape:
        raise ValueError(f"paired samples need equal lengths, got {b.size} and {c.size}")
    ok = np.isfinite(b) & np.isfinite(c) & (b != 0)
    return mean_ci(100.0 * (1.0 - c[ok] / b[ok]), confidence)


def ratio_of_totals_reduction_pct(baseline: Sequence[float], candidate: Sequence[float]) -> float:
    b = float(np.nansum(np.asarray(baseline, dtype=float)))
    c = float(np.nansum(np.asarray(candidate, dtype=float)))
    return math.nan if b == 0 else 100.0 * (1.0 - c / b)


@dataclass(frozen=True)
class TestResult:
    statistic: float
    p_value: float
    effect_size: float
    effect_name: str

    def to_dict(self) -> dict[str, float | str]:
        return asdict(self)


def _constant_case(a: np.ndarray, b: np.ndarray) -> float | None:
    """p-value when both groups have no spread: identical → 1, different → 0."""
    if a.std() == 0 and b.std() == 0:
        return 1.0 if a[0] == b[0] else 0.0
    return None


def cohens_d(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """(mean a − mean b) / pooled SD. Zero pooled SD: 0 when means agree, ±inf otherwise."""
    x, y = _arr(a), _arr(b)
    nx, ny = x.size, y.size
    if nx < 2 or ny < 2:
        return math.nan
    pooled = math.sqrt(((nx - 1) * x.var(ddof=1) + (ny - 1) * y.var(ddof=1)) / (nx + ny - 2))
    diff = float(x.mean() - y.mean())
    if pooled == 0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return diff / pooled


def welch_t(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> TestResult:
    """Welch's unequal-variance t-test (two-sided), effect size Cohen's d."""
    x, y = _arr(a), _arr(b)
    if x.size < 2 or y.size < 2:
        return TestResult(math.nan, math.nan, math.nan, "cohens_d")
    d = cohens_d(x, y)
    const = _constant_case(x, y)
    if const is not None:
        t = 0.0 if const == 1.0 else math.copysign(math.inf, float(x.mean() - y.mean()))
        return TestResult(t, const, d, "cohens_d")
    with warnings.catch_warnings():
        # one constant group makes scipy warn about precision; the result is still right
        warnings.simplefilter("ignore", RuntimeWarning)
        r = stats.ttest_ind(x, y, equal_var=False)
    return TestResult(float(r.statistic), float(r.pvalue), d, "cohens_d")


def mann_whitney(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> TestResult:
    """Two-sided Mann–Whitney U (U of the first sample); effect size rank-biserial
    ``r = 2U/(n₁n₂) − 1`` (positive: the first sample tends to be larger)."""
    x, y = _arr(a), _arr(b)
    if x.size < 1 or y.size < 1:
        return TestResult(math.nan, math.nan, math.nan, "rank_biserial")
    const = _constant_case(x, y)
    if const == 1.0:
        return TestResult(x.size * y.size / 2, 1.0, 0.0, "rank_biserial")
    r = stats.mannwhitneyu(x, y, alternative="two-sided")
    u = float(r.statistic)
    return TestResult(u, float(r.pvalue), 2 * u / (x.size * y.size) - 1, "rank_biserial")
