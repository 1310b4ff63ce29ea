"""Per-experiment reports: CSV samples, self-contained HTML, PDF (see ``render``)."""

from __future__ import annotations

from typing import Any

from core.reports.data import ReportData, build
from core.reports.render import FORMATS, render

__all__ = ["FORMATS", "ReportData", "build", "render", "experiment_report"]


def _collector_yaml(ref: str, uow: Any) -> str:
    from core.domain.errors import PhoenixError
    from core.pipelines_service import load_pipeline
    from core.render.collector import render_collector

    try:
        return render_collector(load_pipeline(ref, uow))
    except PhoenixError as exc:
        return f"# {ref}: {exc}\n"


def experiment_report(services: Any, experiment_id: str, fmt: str) -> bytes:
    """The report of one experiment in ``fmt`` (csv | html | pdf), from the services."""
    exp = services.experiments.get(experiment_id)
    samples = services.experiments.samples(experiment_id)
    data = build(exp, samples, _collector_yaml(str(exp.baseline), services.uow()),
                 _collector_yaml(str(exp.candidate), services.uow()))
    return render(data, fmt)
