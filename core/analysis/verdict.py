"""From per-interval samples of both variants to reductions, costs and a verdict.

Input: samples as ``MeasurementSample`` objects, dicts with the same keys, or a
DataFrame (``t, variant, series, datapoints, bytes, collector_cpu_pct, collector_rss_mb,
critical_coverage_pct, processes_seen, series_created, series_removed``). The two
variants are paired by interval timestamp ``t`` (one scrape feeds both).

Verdict rules (one reason per criterion, in the criteria's order):
- fewer paired intervals than ``min_samples`` → INCONCLUSIVE whatever else holds;
- any criterion **missed** → REJECT;
- any criterion **uncertain** (its 95% CI straddles the threshold, the reduction is not
  statistically significant, or the data it needs is missing) → INCONCLUSIVE;
- otherwise PROMOTE.

Overheads are differences of means, candidate − baseline: CPU in percentage points of one
core, memory in MB of RSS. Cost uses price functions ``(series, data points per minute,
bytes per month) → USD/month``; the first one given decides the cost criterion.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.analysis.stats import Interval, mann_whitney, mean_ci, paired_reduction_pct, welch_t

PriceFn = Callable[[float, float, float], float]
SECONDS_PER_MONTH = 730 * 3600  # the price cards' month
ALPHA = 0.05
PROMOTE, REJECT, INCONCLUSIVE = "PROMOTE", "REJECT", "INCONCLUSIVE"
MET, MISSED, UNCERTAIN = "met", "missed", "uncertain"

COLUMNS = (
    "series",
    "datapoints",
    "bytes",
    "collector_cpu_pct",
    "collector_rss_mb",
    "critical_coverage_pct",
    "processes_seen",
    "series_created",
    "series_removed",
)

_CRITERIA_DEFAULTS: dict[str, Any] = {
    "min_series_reduction_pct": 50.0,
    "require_full_critical_coverage": True,
    "max_cpu_overhead_pct": None,
    "max_memory_overhead_mb": None,
    "min_cost_reduction_pct": None,
    "min_samples": 5,
}


@dataclass(frozen=True)
class CriterionResult:
    criterion: str
    status: str  # met | missed | uncertain
    measured: float | None
    threshold: float | bool | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def criteria_dict(criteria: Any) -> dict[str, Any]:
    """``SuccessCriteria`` (or anything with ``to_dict``), a dict, or None → plain dict with defaults."""
    if criteria is None:
        raw: Mapping[str, Any] = {}
    elif isinstance(criteria, Mapping):
        raw = criteria
    elif hasattr(criteria, "to_dict"):
        raw = criteria.to_dict()
    else:
        raw = {k: getattr(criteria, k) for k in _CRITERIA_DEFAULTS if hasattr(criteria, k)}
    return {k: raw.get(k, v) for k, v in _CRITERIA_DEFAULTS.items()}


def samples_frame(samples: Iterable[Any] | pd.DataFrame) -> pd.DataFrame:
    """Normalise samples to a DataFrame with ``t``, ``variant`` and the numeric columns."""
    if isinstance(samples, pd.DataFrame):
        df = samples.copy()
    else:
        rows = [s.to_dict() if hasattr(s, "to_dict") else dict(s) for s in samples]
        df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=["t", "variant", *COLUMNS])
    missing = {"t", "variant"} - set(df.columns)
    if missing:
        raise ValueError(f"samples lack column(s) {', '.join(sorted(missing))}")
    for c in COLUMNS:
        df[c] = pd.to_numeric(df[c], errors="coerce") if c in df.columns else np.nan
    df["t"] = pd.to_datetime(df["t"], utc=True, format="mixed")
    return df.sort_values(["t", "variant"]).reset_index(drop=True)


def pair(df: pd.DataFrame) -> pd.DataFrame:
    """One row per interval seen by both variants: columns ``<col>_b`` and ``<col>_c``."""
    b = df[df["variant"] == "baseline"].drop_duplicates("t", keep="last").set_index("t")[list(COLUMNS)]
    c = df[df["variant"] == "candidate"].drop_duplicates("t", keep="last").set_index("t")[list(COLUMNS)]
    return b.merge(c, how="inner", left_index=True, right_index=True, suffixes=("_b", "_c")).sort_index()


def _num(x: float | None, nd: int = 4) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else (x if math.isinf(x) else round(x, nd))


def _iv(i: Interval) -> dict[str, Any]:
    return {"estimate": _num(i.estimate), "low": _num(i.low), "high": _num(i.high), "n": i.n}


def _fmt_ci(i: Interval, unit: str = "%") -> str:
    if i.n < 2 or i.low == i.high:
        return ""
    return f" (95% CI {i.low:.1f}–{i.high:.1f}{unit})"


def analyze_samples(
    samples: Iterable[Any] | pd.DataFrame,
    criteria: Any = None,
    *,
    interval_s: float,
    prices: Mapping[str, PriceFn] | PriceFn | None = None,
    alpha: float = ALPHA,
) -> dict[str, Any]:
    """Analyse both variants' samples against the success criteria. Returns a JSON-ready dict."""
    if not interval_s > 0:
        raise ValueError(f"interval must be positive, got {interval_s!r}")
    crit = criteria_dict(criteria)
    df = samples_frame(samples)
    p = pair(df)
    n = len(p)
    counts = {v: int((df["variant"] == v).sum()) for v in ("baseline", "candidate")}
    if prices is not None and not isinstance(prices, Mapping):
        prices = {"price": prices}

    series = paired_reduction_pct(p["series_b"], p["series_c"])
    dps = paired_reduction_pct(p["datapoints_b"], p["datapoints_c"])
    byt = paired_reduction_pct(p["bytes_b"], p["bytes_c"])
    sig_series = {"welch": welch_t(p["series_b"], p["series_c"]).to_dict(),
                  "mann_whitney": mann_whitney(p["series_b"], p["series_c"]).to_dict()}  # fmt: skip
    cpu_diff = mean_ci(p["collector_cpu_pct_c"] - p["collector_cpu_pct_b"])
    mem_diff = mean_ci(p["collector_rss_mb_c"] - p["collector_rss_mb_b"])
    cov_c = p["critical_coverage_pct_c"].dropna()
    cov_b = p["critical_coverage_pct_b"].dropna()

    means: dict[str, dict[str, float | None]] = {}
    for v, sfx in (("baseline", "_b"), ("candidate", "_c")):
        m = {c: _num(p[c + sfx].mean()) if n else None for c in COLUMNS}
        dpi = p["datapoints" + sfx].mean() if n else math.nan
        bpi = p["bytes" + sfx].mean() if n else math.nan
        m["datapoints_per_minute"] = _num(dpi * 60.0 / interval_s)
        m["bytes_per_month"] = _num(bpi * SECONDS_PER_MONTH / interval_s, 0)
        means[v] = m

    cost: dict[str, dict[str, float | None]] = {}
    if prices and n:
        for name, fn in prices.items():
            usd = {
                v: float(fn(means[v]["series"] or 0.0, means[v]["datapoints_per_minute"] or 0.0,
                            means[v]["bytes_per_month"] or 0.0))
                for v in ("baseline", "candidate")
            }  # fmt: skip
            red = 100.0 * (1 - usd["candidate"] / usd["baseline"]) if usd["baseline"] else None
            cost[name] = {"baseline_usd": _num(usd["baseline"], 2), "candidate_usd": _num(usd["candidate"], 2),
                          "reduction_pct": _num(red, 2)}  # fmt: skip

    results: list[CriterionResult] = []
    # -- series reduction
    thr = float(crit["min_series_reduction_pct"])
    if series.n == 0:
        results.append(CriterionResult("min_series_reduction_pct", UNCERTAIN, None, thr,
                                       "series reduction: no paired intervals with baseline series to compare"))  # fmt: skip
    else:
        pvals = [sig_series["welch"]["p_value"], sig_series["mann_whitney"]["p_value"]]
        significant = any(isinstance(x, float) and x < alpha for x in pvals)
        msg = f"series reduction {series.estimate:.1f}%{_fmt_ci(series)} vs ≥ {thr:g}% required"
        if series.estimate < thr and series.high < thr:
            results.append(CriterionResult("min_series_reduction_pct", MISSED, _num(series.estimate), thr, msg + ": missed"))
        elif series.estimate < thr or series.low < thr:
            results.append(CriterionResult("min_series_reduction_pct", UNCERTAIN, _num(series.estimate), thr,
                                           msg + ": uncertain, the 95% CI straddles the threshold"))  # fmt: skip
        elif thr > 0 and not significant:
            results.append(CriterionResult("min_series_reduction_pct", UNCERTAIN, _num(series.estimate), thr,
                                           msg + f": uncertain, not significant (p ≥ {alpha:g})"))  # fmt: skip
        else:
            results.append(CriterionResult("min_series_reduction_pct", MET, _num(series.estimate), thr, msg + ": met"))
    # -- critical coverage
    if crit["require_full_critical_coverage"]:
        if cov_c.empty:
            results.append(CriterionResult("require_full_critical_coverage", UNCERTAIN, None, True,
                                           "critical coverage was not measured"))  # fmt: skip
        else:
            low = float(cov_c.min())
            if low >= 100.0 - 1e-9:
                results.append(CriterionResult("require_full_critical_coverage", MET, 100.0, True,
                                               f"critical coverage 100% at all {len(cov_c)} intervals: met"))  # fmt: skip
            else:
                bad = int((cov_c < 100.0 - 1e-9).sum())
                results.append(CriterionResult("require_full_critical_coverage", MISSED, _num(low), True,
                               f"critical coverage fell to {low:.1f}% ({bad} of {len(cov_c)} intervals below 100%): missed"))  # fmt: skip
    # -- overheads
    for key, diff, unit, what in (
        ("max_cpu_overhead_pct", cpu_diff, " pp", "candidate CPU overhead"),
        ("max_memory_overhead_mb", mem_diff, " MB", "candidate memory overhead"),
    ):
        limit = crit[key]
        if limit is None:
            continue
        if diff.n == 0:
            results.append(CriterionResult(key, UNCERTAIN, None, limit, f"{what}: collector usage was not measured"))
            continue
        msg = f"{what} {diff.estimate:+.2f}{unit}{_fmt_ci(diff, unit)} vs ≤ {limit:g}{unit} allowed"
        if diff.estimate > limit:
            results.append(CriterionResult(key, MISSED, _num(diff.estimate), limit, msg + ": missed"))
        elif diff.high > limit:
            results.append(CriterionResult(key, UNCERTAIN, _num(diff.estimate), limit,
                                           msg + ": uncertain, the 95% CI reaches above the limit"))  # fmt: skip
        else:
            results.append(CriterionResult(key, MET, _num(diff.estimate), limit, msg + ": met"))
    # -- cost
    limit = crit["min_cost_reduction_pct"]
    if limit is not None:
        if not cost:
            results.append(CriterionResult("min_cost_reduction_pct", UNCERTAIN, None, limit,
                                           "cost reduction: no price card to price the samples"))  # fmt: skip
        else:
            name, row = next(iter(cost.items()))
            red = row["reduction_pct"]
            if red is None:
                results.append(CriterionResult("min_cost_reduction_pct", UNCERTAIN, None, limit,
                                               f"cost reduction on {name}: the baseline costs nothing, no ratio"))  # fmt: skip
            else:
                ok = red >= limit
                results.append(CriterionResult("min_cost_reduction_pct", MET if ok else MISSED, red, limit,
                    f"cost reduction {red:.1f}% on {name} (${row['baseline_usd']:,.2f} → ${row['candidate_usd']:,.2f}"
                    f"/month) vs ≥ {limit:g}% required: {'met' if ok else 'missed'}"))  # fmt: skip

    min_samples = int(crit["min_samples"])
    statuses = {r.status for r in results}
    if n < min_samples:
        verdict = INCONCLUSIVE
        gate = f"only {n} paired interval(s) measured; at least {min_samples} are needed before any verdict"
    elif MISSED in statuses:
        verdict, gate = REJECT, None
    elif UNCERTAIN in statuses:
        verdict, gate = INCONCLUSIVE, None
    else:
        verdict, gate = PROMOTE, None
    reasons = ([gate] if gate else []) + [r.reason for r in results]

    identical = None
    if n and p["processes_seen_b"].notna().all() and p["processes_seen_c"].notna().all():
        identical = bool((p["processes_seen_b"] == p["processes_seen_c"]).all())

    return _clean({
        "verdict": verdict,
        "reasons": reasons,
        "criteria": [r.to_dict() for r in results],
        "criteria_used": crit,
        "samples": counts,
        "paired_intervals": n,
        "interval_s": interval_s,
        "series_reduction_pct": _num(series.estimate, 2),
        "series_reduction_ci95": _iv(series),
        "datapoint_reduction_pct": _num(dps.estimate, 2),
        "datapoint_reduction_ci95": _iv(dps),
        "bytes_reduction_pct": _num(byt.estimate, 2),
        "bytes_reduction_ci95": _iv(byt),
        "critical_coverage_pct": _num(cov_c.min()) if not cov_c.empty else None,
        "baseline_critical_coverage_pct": _num(cov_b.min()) if not cov_b.empty else None,
        "cpu_overhead_pct": _num(cpu_diff.estimate, 3),
        "cpu_overhead_ci95": _iv(cpu_diff),
        "memory_overhead_mb": _num(mem_diff.estimate, 3),
        "memory_overhead_ci95": _iv(mem_diff),
        "means": means,
        "cost": cost,
        "significance": {"series": sig_series},
        "identical_input": identical,
        "churn": {
            v: {"series_created": _num(p["series_created" + s].sum()) if n else None,
                "series_removed": _num(p["series_removed" + s].sum()) if n else None}
            for v, s in (("baseline", "_b"), ("candidate", "_c"))
        },  # fmt: skip
    })


def _clean(x: Any) -> Any:
    """JSON-safe: NaN and ±inf become None (strict JSON has neither), numpy scalars plain."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x
