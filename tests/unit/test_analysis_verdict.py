"""Verdicts and reasons from per-variant samples (hand-checked figures)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from core.analysis.verdict import analyze_samples, criteria_dict
from core.domain.criteria import SuccessCriteria
from core.domain.samples import MeasurementSample

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make_samples(n=8, base=(1000, 1010), cand=(300, 303), coverage=100.0, cpu=(1.0, 1.2), rss=(40.0, 42.0)):
    out = []
    for i in range(n):
        t = T0 + timedelta(seconds=5 * i)
        for variant, series, c, r in (("baseline", base[i % 2], cpu[0], rss[0]), ("candidate", cand[i % 2], cpu[1], rss[1])):
            out.append(MeasurementSample(
                experiment_id="e1", variant=variant, t=t, series=series, datapoints=series, bytes=series * 100,
                collector_cpu_pct=c + 0.01 * (i % 3), collector_rss_mb=r, processes_seen=150,
                critical_coverage_pct=coverage if variant == "candidate" else 100.0,
                series_created=2, series_removed=1,
            ))  # fmt: skip
    return out


def by(result, criterion):
    return next(c for c in result["criteria"] if c["criterion"] == criterion)


def test_promote_with_reasons_per_criterion_and_hand_checked_figures():
    crit = SuccessCriteria(min_series_reduction_pct=50, max_cpu_overhead_pct=1.0, max_memory_overhead_mb=10,
                           min_cost_reduction_pct=40, min_samples=5)  # fmt: skip
    price = lambda series, dpm, bpm: series * 6.5 / 1000  # noqa: E731 - $6.50 per 1,000 series
    r = analyze_samples(make_samples(), crit, interval_s=5.0, prices={"grafana": price})
    assert r["verdict"] == "PROMOTE", r["reasons"]
    assert r["paired_intervals"] == 8 and r["samples"] == {"baseline": 8, "candidate": 8}
    assert r["series_reduction_pct"] == pytest.approx(70.0)  # 300/1000 and 303/1010 are both 70 %
    assert r["cpu_overhead_pct"] == pytest.approx(0.2)
    assert r["memory_overhead_mb"] == pytest.approx(2.0)
    assert r["critical_coverage_pct"] == 100.0
    assert r["identical_input"] is True
    assert r["means"]["baseline"]["datapoints_per_minute"] == pytest.approx(1005 * 12)
    assert r["means"]["baseline"]["bytes_per_month"] == pytest.approx(100500 * 730 * 3600 / 5, rel=1e-9)
    assert r["cost"]["grafana"]["baseline_usd"] == pytest.approx(1005 * 6.5 / 1000, abs=0.01)
    assert r["cost"]["grafana"]["reduction_pct"] == pytest.approx(70.0, abs=0.01)
    assert [c["status"] for c in r["criteria"]] == ["met"] * 5
    assert len(r["reasons"]) == 5 and all(x.endswith(": met") for x in r["reasons"])
    assert r["churn"]["baseline"] == {"series_created": 16, "series_removed": 8}
    json.dumps(r, allow_nan=False)  # strictly JSON-serialisable


def test_reject_on_lost_critical_coverage_and_on_small_reduction():
    r = analyze_samples(make_samples(coverage=87.5), SuccessCriteria(), interval_s=5)
    assert r["verdict"] == "REJECT"
    cov = by(r, "require_full_critical_coverage")
    assert cov["status"] == "missed" and cov["measured"] == 87.5
    assert "fell to 87.5%" in cov["reason"]

    r = analyze_samples(make_samples(cand=(900, 909)), SuccessCriteria(min_series_reduction_pct=50), interval_s=5)
    assert r["verdict"] == "REJECT"
    s = by(r, "min_series_reduction_pct")
    assert s["status"] == "missed" and s["measured"] == pytest.approx(10.0)
    assert "10.0%" in s["reason"] and "≥ 50% required" in s["reason"]


def test_reject_on_cpu_overhead():
    r = analyze_samples(make_samples(cpu=(1.0, 4.0)), {"max_cpu_overhead_pct": 1.0}, interval_s=5)
    assert r["verdict"] == "REJECT"
    assert by(r, "max_cpu_overhead_pct")["status"] == "missed"
    assert "+3.00 pp" in by(r, "max_cpu_overhead_pct")["reason"]


def test_too_few_samples_is_inconclusive_whatever_the_numbers():
    r = analyze_samples(make_samples(n=3), SuccessCriteria(min_samples=5), interval_s=5)
    assert r["verdict"] == "INCONCLUSIVE"
    assert r["reasons"][0].startswith("only 3 paired interval(s)")


def test_noisy_reduction_straddling_threshold_is_inconclusive():
    samples = []
    for i, (b, c) in enumerate([(1000, 400), (1000, 600), (1000, 450), (1000, 580), (1000, 500), (1000, 470)]):
        t = T0 + timedelta(seconds=i)
        samples += [{"t": t, "variant": "baseline", "series": b, "datapoints": b, "bytes": b, "critical_coverage_pct": 100},
                    {"t": t, "variant": "candidate", "series": c, "datapoints": c, "bytes": c, "critical_coverage_pct": 100}]  # fmt: skip
    r = analyze_samples(pd.DataFrame(samples), {"min_series_reduction_pct": 50}, interval_s=1)
    s = by(r, "min_series_reduction_pct")
    assert s["status"] == "uncertain" and "CI" in s["reason"]
    assert r["verdict"] == "INCONCLUSIVE"


def test_cost_criterion_without_prices_and_missing_measurements_are_uncertain():
    samples = [{k: v for k, v in s.to_dict().items() if k not in {"collector_cpu_pct", "collector_rss_mb"}}
               for s in make_samples()]  # fmt: skip
    r = analyze_samples(samples, {"min_cost_reduction_pct": 20, "max_memory_overhead_mb": 5}, interval_s=5)
    assert by(r, "min_cost_reduction_pct")["status"] == "uncertain"
    assert "no price card" in by(r, "min_cost_reduction_pct")["reason"]
    assert by(r, "max_memory_overhead_mb")["status"] == "uncertain"
    assert r["verdict"] == "INCONCLUSIVE"


def test_unpaired_intervals_are_ignored_and_empty_input_is_inconclusive():
    s = make_samples(n=6)
    s.append(MeasurementSample("e1", "baseline", T0 + timedelta(hours=1), 5, 5, 5))
    r = analyze_samples(s, None, interval_s=5)
    assert r["paired_intervals"] == 6 and r["samples"]["baseline"] == 7
    empty = analyze_samples([], None, interval_s=5)
    assert empty["verdict"] == "INCONCLUSIVE" and empty["paired_intervals"] == 0


def test_criteria_dict_accepts_dataclass_dict_and_none():
    assert criteria_dict(None)["min_samples"] == 5
    assert criteria_dict({"min_samples": 9})["min_samples"] == 9
    assert criteria_dict(SuccessCriteria(max_cpu_overhead_pct=2.0))["max_cpu_overhead_pct"] == 2.0
