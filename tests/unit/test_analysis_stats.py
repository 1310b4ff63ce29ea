"""Statistics against hand-computed numbers and scipy."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from core.analysis.stats import cohens_d, mann_whitney, mean_ci, paired_reduction_pct, welch_t

A = [1.0, 2.0, 3.0, 4.0, 5.0]
B = [2.0, 4.0, 6.0, 8.0, 10.0]


def test_welch_t_by_hand_and_scipy():
    r = welch_t(A, B)
    # means 3 and 6, variances 2.5 and 10: se = sqrt(0.5 + 2) → t = -3 / 1.5811
    assert r.statistic == pytest.approx(-1.897367, abs=1e-6)
    ref = stats.ttest_ind(A, B, equal_var=False)
    assert r.p_value == pytest.approx(ref.pvalue)
    # Welch–Satterthwaite df = 6.25 / (0.0625 + 1) = 5.882 → p from the t distribution
    assert r.p_value == pytest.approx(2 * stats.t.sf(1.897367, 6.25 / 1.0625), abs=1e-6)
    assert r.effect_size == pytest.approx(-1.2)  # pooled sd = sqrt((4·2.5 + 4·10)/8) = 2.5


def test_mann_whitney_u_and_rank_biserial_by_hand():
    r = mann_whitney(A, B)
    # pairs a > b: 1→0, 2→0.5 (tie), 3→1, 4→1.5, 5→2  ⇒ U = 5
    assert r.statistic == pytest.approx(5.0)
    assert r.effect_size == pytest.approx(2 * 5 / 25 - 1)
    assert r.p_value == pytest.approx(stats.mannwhitneyu(A, B, alternative="two-sided").pvalue)


def test_mean_ci_by_hand():
    i = mean_ci([10.0, 12.0, 14.0])
    half = 4.302653 * 2 / math.sqrt(3)  # t(0.975, 2) · sd / sqrt(n)
    assert i.estimate == pytest.approx(12.0)
    assert (i.low, i.high) == (pytest.approx(12 - half, abs=1e-5), pytest.approx(12 + half, abs=1e-5))


def test_paired_reduction_by_hand():
    i = paired_reduction_pct([100, 100, 200], [50, 40, 100])  # 50%, 60%, 50%
    assert i.estimate == pytest.approx(160 / 3)
    half = 4.302653 * (100 / 3) ** 0.5 / math.sqrt(3)
    assert i.low == pytest.approx(160 / 3 - half, abs=1e-4)
    assert i.high == pytest.approx(160 / 3 + half, abs=1e-4)


def test_paired_reduction_skips_zero_baselines_and_rejects_unpaired():
    assert paired_reduction_pct([0, 100], [0, 25]).estimate == pytest.approx(75.0)
    assert paired_reduction_pct([0, 100], [0, 25]).n == 1
    with pytest.raises(ValueError, match="equal lengths"):
        paired_reduction_pct([1, 2], [1])


def test_degenerate_constant_samples():
    same = welch_t([5, 5, 5], [5, 5, 5])
    assert same.p_value == 1.0 and same.effect_size == 0.0
    differ = welch_t([10, 10, 10], [4, 4, 4])
    assert differ.p_value == 0.0 and math.isinf(differ.effect_size) and differ.effect_size > 0
    assert mean_ci([7, 7, 7]).low == mean_ci([7, 7, 7]).high == 7
    assert mann_whitney([5, 5], [5, 5]).p_value == 1.0
    assert math.isnan(welch_t([1], [2]).p_value)
    assert math.isnan(cohens_d([1], [2, 3]))
    assert mean_ci([]).n == 0
