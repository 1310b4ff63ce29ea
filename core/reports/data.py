"""What every report format shows, gathered once from an experiment (no I/O here).

The analysis result is a dict produced by ``core.analysis``; its exact keys may grow, so
this module normalises the parts reports show — verdict, per-criterion reasons,
reductions with confidence intervals, cost per vendor — and keeps the rest as a flat
statistics table rather than dropping it.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from core.domain.experiment import Experiment
from core.domain.samples import MeasurementSample
from core.domain.views import experiment_to_dict

SAMPLE_FIELDS = ("t", "variant", "series", "datapoints", "bytes", "collector_cpu_pct", "collector_rss_mb",
                 "critical_coverage_pct", "processes_seen", "series_created", "series_removed")


@dataclass
class ReportData:
    experiment: dict[str, Any]
    summary: list[tuple[str, str]]
    verdict: str
    reasons: list[dict[str, Any]]
    reductions: list[dict[str, Any]]
    stats: list[dict[str, Any]]
    cost: list[dict[str, Any]]
    samples: list[dict[str, Any]]
    yaml_diff: str
    notes: list[str] = field(default_factory=list)


def _reasons(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per criterion (status met | missed | uncertain), plus any gate reason first."""
    rows = [{"criterion": str(c.get("criterion", "")), "status": str(c.get("status", "")),
             "measured": c.get("measured"), "threshold": c.get("threshold"), "detail": str(c.get("reason", ""))}
            for c in result.get("criteria") or [] if isinstance(c, dict)]
    known = {r["detail"] for r in rows}
    gates = [{"criterion": "", "status": "", "measured": None, "threshold": None, "detail": str(r)}
             for r in result.get("reasons") or [] if str(r) not in known]
    return gates + rows


def _reductions(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for metric in ("series", "datapoint", "bytes"):
        pct = result.get(f"{metric}_reduction_pct")
        ci = result.get(f"{metric}_reduction_ci95") or {}
        if pct is None and not ci:
            continue
        rows.append({"metric": {"datapoint": "data points"}.get(metric, metric), "reduction_pct": pct,
                     "ci_low": ci.get("low"), "ci_high": ci.get("high"), "n": ci.get("n")})
    return rows


def _cost(result: dict[str, Any]) -> list[dict[str, Any]]:
    cost = result.get("cost") or {}
    rows = []
    for name, c in (cost.items() if isinstance(cost, dict) else []):
        if isinstance(c, dict):
            rows.append({"vendor": str(name), "before": c.get("baseline_usd"), "after": c.get("candidate_usd"),
                         "saving_pct": c.get("reduction_pct")})
    return rows


def _flatten(d: object, prefix: str = "") -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if isinstance(d, dict):
        for k, v in d.items():
            rows += _flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(d, list) and d and all(isinstance(x, int | float | str | bool | None) for x in d):
        rows.append({"name": prefix, "value": ", ".join(str(x) for x in d)})
    elif isinstance(d, int | float | str | bool) or d is None:
        rows.append({"name": prefix, "value": d})
    return rows


def _stats(result: dict[str, Any]) -> list[dict[str, Any]]:
    skip = {"verdict", "reasons", "criteria", "cost"}
    return _flatten({k: v for k, v in result.items() if k not in skip})


def build(exp: Experiment, samples: Sequence[MeasurementSample], baseline_yaml: str = "",
          candidate_yaml: str = "") -> ReportData:
    result = exp.result or {}
    summary = [
        ("Experiment", f"{exp.name} ({exp.id})"), ("State", exp.state.value), ("Owner", exp.owner),
        ("Baseline", str(exp.baseline)), ("Candidate", str(exp.candidate)), ("Target", exp.target.describe()),
        ("Load profile", exp.load.name), ("Duration / interval", f"{exp.timing.duration_s:g}s / "
                                          f"{exp.timing.interval_s:g}s"),
        ("Created", exp.created_at.isoformat(timespec="seconds")),
        ("Finished", exp.finished_at.isoformat(timespec="seconds") if exp.finished_at else "—"),
    ]
    if exp.dry_run:
        summary.append(("Runtime", "dry run (nothing was deployed)"))
    if exp.error:
        summary.append(("Error", exp.error))
    diff = "".join(difflib.unified_diff(baseline_yaml.splitlines(keepends=True),
                                        candidate_yaml.splitlines(keepends=True),
                                        fromfile=f"baseline {exp.baseline}", tofile=f"candidate {exp.candidate}"))
    return ReportData(
        experiment=experiment_to_dict(exp), summary=summary,
        verdict=str(result.get("verdict") or ("—" if not exp.is_terminal else exp.state.value.upper())),
        reasons=_reasons(result), reductions=_reductions(result), stats=_stats(result), cost=_cost(result),
        samples=[{k: (s.t.isoformat() if k == "t" else getattr(s, k)) for k in SAMPLE_FIELDS} for s in samples],
        yaml_diff=diff,
    )
