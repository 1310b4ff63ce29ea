"""Experiment page helpers (no Streamlit): live panel data, analysis tables, named actions."""

from __future__ import annotations

from typing import Any

from app import guard
from app.widgets import backend, figures
from core.domain.experiment import Experiment
from core.domain.production import ProductionRecord, check_reason
from core.services.promotion import PromotionPreview
from core.services.requests import (
    CancelExperiment,
    CreateExperiment,
    ExperimentReport,
    Promote,
    RerunExperiment,
)

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


def live_charts(samples: list[Any], interval_s: float, key_prefix: str) -> None:
    """The variant time series of an experiment's samples, three to a row (experiment page
    and its shared view)."""
    import streamlit as st

    rows = live_rows(samples, interval_s)
    cols = st.columns(3)
    for i, (metric, title, unit) in enumerate(LIVE_METRICS):
        with cols[i % 3]:
            st.plotly_chart(figures.variant_timeseries(rows, metric, title, unit), width="stretch",
                            key=f"{key_prefix}.{metric}")


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
    exp = backend.services().experiments.create(guard.current_user(), CreateExperiment(
        name="First experiment: baseline vs top-K", baseline=FIRST_BASELINE, candidate=FIRST_CANDIDATE,
        description="Created from the built-in templates.", duration_s=60.0, interval_s=5.0,
    ))
    return exp.id


@guard.action("experiment.cancel")
def cancel(experiment_id: str) -> None:
    backend.services().experiments.cancel(guard.current_user(),
                                          CancelExperiment(experiment_id=experiment_id, reason="cancelled in the app"))


@guard.action("experiment.rerun")
def rerun(experiment_id: str) -> str:
    """The same experiment again (``ExperimentService.rerun``, also ``phoenix experiment rerun ID``)."""
    new = backend.services().experiments.rerun(guard.current_user(), RerunExperiment(experiment_id=experiment_id))
    return new.id


def promotion(experiment_id: str) -> ProductionRecord | None:
    """The experiment's promotion record (None when never promoted)."""
    return backend.services().promotion.of(guard.current_user(), experiment_id)


def promotion_preview(experiment_id: str) -> PromotionPreview:
    """What promoting would change: the candidate against its target's production pipeline."""
    return backend.services().promotion.preview(guard.current_user(), experiment_id)


@guard.action("experiment.promote")
def promote(experiment_id: str, reason: str) -> ProductionRecord:
    """Promote from the app: the reason is required here (the CLI and API ask for one only when
    forcing, which stays a CLI act). A missing or bad reason is a ``ValidationError``."""
    checked = check_reason(reason, required=True)
    return backend.services().promotion.promote(guard.current_user(),
                                                Promote(experiment_id=experiment_id, reason=checked))


def report(experiment_id: str, fmt: str) -> bytes:
    return backend.services().reports.render(guard.current_user(),
                                             ExperimentReport.of(experiment_id=experiment_id, format=fmt))
