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
    out = []
    criteria = result.get("criteria")
    if isinstance(criteria, list):
        for c in criteria:
            if isinstance(c, dict):
                out.append({"criterion": str(c.get("name") or c.get("criterion") or ""),
                            "passed": c.get("passed", c.get("ok")),
                            "detail": str(c.get("reason") or c.get("detail") or c.get("message") or "")})
    elif isinstance(criteria, dict):
        for name, c in criteria.items():
            c = c if isinstance(c, dict) else {"passed": c}
            out.append({"criterion": str(name), "passed": c.get("passed", c.get("ok")),
                        "detail": str(c.get("reason") or c.get("detail") or "")})
    for r in result.get("reasons") or []:
        if isinstance(r, dict):
            out.append({"criterion": str(r.get("criterion") or r.get("name") or ""), "passed": r.get("passed"),
                        "detail": str(r.get("reason") or r.get("detail") or r.get("message") or "")})
        elif not any(str(r) == o["detail"] for o in out):
            out.append({"criterion": "", "passed": None, "detail": str(r)})
    return out


def _reductions(result: dict[str, Any]) -> list[dict[str, Any]]:
    red = result.get("reductions") or {}
    rows = []
    items = red.items() if isinstance(red, dict) else [(r.get("metric"), r) for r in red if isinstance(r, dict)]
    for metric, v in items:
        if isinstance(v, dict):
            ci = v.get("ci") or v.get("ci95") or [v.get("ci_low"), v.get("ci_high")]
            rows.append({"metric": str(metric), "reduction_pct": v.get("pct", v.get("reduction_pct", v.get("value"))),
                         "ci_low": ci[0] if isinstance(ci, list | tuple) and ci else None,
                         "ci_high": ci[1] if isinstance(ci, list | tuple) and len(ci) > 1 else None,
                         "p_value": v.get("p_value"), "test": v.get("test")})
        elif isinstance(v, int | float):
            rows.append({"metric": str(metric), "reduction_pct": v, "ci_low": None, "ci_high": None,
                         "p_value": None, "test": None})
    return rows


def _cost(result: dict[str, Any]) -> list[dict[str, Any]]:
    cost = result.get("cost") or {}
    cards = cost.get("cards") if isinstance(cost, dict) else cost
    rows = []
    for c in cards or []:
        if isinstance(c, dict):
            label = f"{c.get('vendor')} — {c['plan']}" if c.get("plan") else str(c.get("vendor") or c.get("card_id"))
            rows.append({"vendor": label, "before": c.get("before_usd", c.get("baseline_usd")),
                         "after": c.get("after_usd", c.get("candidate_usd")), "saving_pct": c.get("saving_pct"),
                         "source": c.get("source", ""), "as_of": c.get("as_of", "")})
    return rows


def _flatten(d: Any, prefix: str = "") -> list[dict[str, Any]]:
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
    skip = {"verdict", "reasons", "criteria", "reductions", "cost"}
    return _flatten({k: v for k, v in result.items() if k not in skip})


def build(exp: Experiment, samples: Sequence[MeasurementSample], baseline_yaml: str = "",
          candidate_yaml: str = "") -> ReportData:
    from core.services.experiments import experiment_to_dict

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
