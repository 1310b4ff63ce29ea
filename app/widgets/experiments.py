"""Experiment page helpers (no Streamlit): live panel data, analysis tables, named actions."""

from __future__ import annotations

from typing import Any

from app import guard
from app.widgets import backend
from core.domain.experiment import Experiment

FIRST_BASELINE, FIRST_CANDIDATE = "process-baseline-v1", "process-topk-v1"
LIVE_METRICS = (("series", "Active series", ""), ("datapoints_per_min", "Data points / min", ""),
                ("bytes_per_min", "Bytes / min", "bytes"), ("collector_cpu_pct", "Collector CPU", "%"),
                ("collector_rss_mb", "Collector RSS", "MB"), ("critical_coverage_pct", "Critical coverage", "%"))


def live_rows(samples: list[Any], interval_s: float) -> list[dict[str, Any]]:
    """Samples as dict rows with per-minute rates (shared axes for both variants)."""
    per_min = 60.0 / interval_s if interval_s > 0 else 1.0
    return [{
        "t": s.t, "variant": s.variant, "series": s.series,
        "datapoints_per_min": s.datapoints * per_min, "bytes_per_min": s.bytes * per_min,
        "collector_cpu_pct": s.collector_cpu_pct, "collector_rss_mb": s.collector_rss_mb,
        "critical_coverage_pct": s.critical_coverage_pct,
    } for s in samples]


def timeline(exp: Experiment) -> list[dict[str, Any]]:
    return [{"at": e.at.isoformat(timespec="seconds"), "from": e.from_state, "to": e.to_state, "actor": e.actor,
             "reason": e.reason} for e in exp.events]


def criteria_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    icon = {"met": "✅", "missed": "❌", "uncertain": "❔"}
    return [{"": icon.get(c.get("status"), ""), "criterion": c.get("criterion"), "measured": c.get("measured"),
             "threshold": c.get("threshold"), "reason": c.get("reason")} for c in result.get("criteria") or []]


def stats_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    means = result.get("means") or {}
    keys = list(dict.fromkeys(k for v in means.values() for k in v))
    return [{"measure": k, "baseline": means.get("baseline", {}).get(k),
             "candidate": means.get("candidate", {}).get(k)} for k in keys]


def cost_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"vendor": name, "before": c.get("baseline_usd"), "after": c.get("candidate_usd"),
             "saving_pct": c.get("reduction_pct")} for name, c in (result.get("cost") or {}).items()]


@guard.action("experiment.create")
def create_first_experiment() -> str:
    """The empty-state button: the baseline template against top-K, one minute on this host."""
    exp = backend.services().experiments.create(
        name="First experiment: baseline vs top-K", baseline=FIRST_BASELINE, candidate=FIRST_CANDIDATE,
        actor=guard.current_user().name, description="Created from the built-in templates.",
        duration_s=60.0, interval_s=5.0)
    return exp.id


@guard.action("experiment.cancel")
def cancel(experiment_id: str) -> None:
    backend.services().experiments.cancel(experiment_id, actor=guard.current_user().name, reason="cancelled in the app")


@guard.action("experiment.rerun")
def rerun(exp: Experiment) -> str:
    new = backend.services().experiments.create(
        name=f"{exp.name} (re-run)"[:120], baseline=str(exp.baseline), candidate=str(exp.candidate),
        actor=guard.current_user().name, owner=exp.owner, description=exp.description,
        duration_s=exp.timing.duration_s, interval_s=exp.timing.interval_s, load=exp.load, target=exp.target,
        criteria=exp.criteria, critical_rules=exp.critical_rules)
    return new.id


def promote_available() -> bool:
    return callable(getattr(backend.services().experiments, "promote", None))


def promotion(experiment_id: str) -> dict[str, Any] | None:
    """The experiment's promotion record (None when never promoted or unsupported)."""
    fn = getattr(backend.services().experiments, "promotion", None)
    return fn(experiment_id) if callable(fn) else None


@guard.action("experiment.promote")
def promote(experiment_id: str) -> Any:
    return backend.services().experiments.promote(experiment_id, actor=guard.current_user().name)


def report(experiment_id: str, fmt: str) -> bytes:
    from core.reports import experiment_report

    return experiment_report(backend.services(), experiment_id, fmt)
