"""Experiment page helpers (no Streamlit): live panel data, analysis tables, named actions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app import guard
from app.widgets import backend, figures
from core.domain.durations import format_duration
from core.domain.experiment import Experiment, State, utcnow
from core.domain.ports import ExperimentSummary
from core.domain.production import ProductionRecord, check_reason
from core.services.experiments import TablePage
from core.services.promotion import PromotionPreview
from core.services.requests import (
    CancelExperiment,
    CreateExperiment,
    ExperimentReport,
    ExperimentTable,
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


# ---- the experiments table ----------------------------------------------------------------
TABLE_COLUMNS = ("name", "state", "owner", "pipelines", "reduction", "verdict", "created")
SORT_LABELS = {"created": "created", "name": "name", "state": "state", "owner": "owner",
               "pipelines": "pipelines (candidate)", "reduction": "series reduction", "verdict": "verdict"}
VERDICTS = ("PROMOTE", "REJECT", "INCONCLUSIVE")


def table_page(request: ExperimentTable) -> TablePage:
    """One page of the table, filtered and sorted by the store (``ExperimentService.table``)."""
    return backend.services().experiments.table(guard.current_user(), request)


def table_rows(items: list[ExperimentSummary]) -> list[dict[str, Any]]:
    """Rows for the table; the id column lets a selected row open its experiment."""
    return [{"name": r.name, "state": r.state, "owner": r.owner, "pipelines": f"{r.baseline} → {r.candidate}",
             "reduction": None if r.reduction_pct is None else round(r.reduction_pct, 1),
             "verdict": r.verdict or "", "created": r.created_at.strftime("%Y-%m-%d %H:%M"), "id": r.id}
            for r in items]


# ---- a running experiment -------------------------------------------------------------------
@dataclass(frozen=True)
class Progress:
    """Where an experiment stands in its run: the bar's fill and the sentence beside it."""

    fraction: float
    text: str
    eta_s: float | None  # seconds until the run's measuring phase ends (None: not known yet)


def progress(exp: Experiment, now: datetime | None = None) -> Progress | None:
    """Elapsed / duration and ETA while an experiment is under way; None once it ended."""
    if exp.is_terminal:
        return None
    duration = exp.timing.duration_s
    if exp.state is State.PENDING:
        return Progress(0.0, f"Pending: waiting for a scheduler · runs {format_duration(duration)} once started",
                        None)
    if exp.state is State.INITIALIZING:
        return Progress(0.0, f"Initializing: starting the collectors · runs {format_duration(duration)} once "
                        "they are ready", None)
    if exp.state is State.ANALYZING or exp.started_at is None:
        return Progress(1.0, "Analyzing the measurements", 0.0)
    elapsed = max(0.0, ((now or utcnow()) - exp.started_at).total_seconds())
    left = max(0.0, duration - elapsed)
    return Progress(min(1.0, elapsed / duration) if duration > 0 else 1.0,
                    f"Running: {clock(elapsed)} of {clock(duration)} · "
                    + (f"ETA {clock(left)}" if left > 0 else "analysis next"), left)


def clock(seconds: float) -> str:
    """Seconds as a clock reading: ``0:07``, ``2:17``, ``1:02:03``."""
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def collectors(exp: Experiment) -> str:
    """Whether this experiment's collectors are real, emulated or not deployed at all,
    from what the runtime recorded when it deployed them (``runtime_info``)."""
    info = exp.runtime_info or {}
    runtime = str(info.get("runtime") or "")
    kind = str((info.get("collector") or {}).get("kind") or "")
    if exp.dry_run or runtime == "memory" or info.get("dry_run"):
        return "Dry run: nothing deployed, the in-memory runtime simulates both variants"
    if not info:
        return "Collectors: not deployed yet"
    if kind == "real":
        return f"Real collectors: the OpenTelemetry Collector (otelcol) on this host ({runtime})"
    if kind == "kubernetes" or runtime == "kubernetes":
        where = f" in namespace {info['namespace']}" if info.get("namespace") else ""
        return f"Real collectors on Kubernetes{where}"
    if kind == "emulator":
        return f"Emulated collectors: Phoenix's built-in emulator on this host ({runtime}); build otelcol for real ones"
    return f"Collectors: {kind or 'unknown'} ({runtime or 'unknown runtime'})"


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
