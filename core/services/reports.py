"""Report use case: one experiment as CSV samples, self-contained HTML or PDF (``core.reports``)."""

from __future__ import annotations

from core.domain.accounts import Actor
from core.domain.errors import PhoenixError
from core.observability.tracing import traced_service
from core.render.collector import render_collector
from core.reports import build, render
from core.services.authz import query
from core.services.experiments import ExperimentService
from core.services.pipelines import PipelineService
from core.services.requests import ExperimentReport


@traced_service
class ReportService:
    def __init__(self, experiments: ExperimentService, pipelines: PipelineService):
        self.experiments = experiments
        self.pipelines = pipelines

    def _collector_yaml(self, actor: Actor, ref: str) -> str:
        # A pipeline deleted or unreadable since the run still gets a report: the diff says why.
        try:
            return render_collector(self.pipelines.load(actor, ref))
        except PhoenixError as exc:
            return f"# {ref}: {exc}\n"

    @query("report.download")
    def render(self, actor: Actor, request: ExperimentReport) -> bytes:
        """The report body in ``request.format`` (an unknown format is a ValidationError from ``render``)."""
        exp = self.experiments.get(actor, request.experiment_id)
        samples = self.experiments.samples(actor, request.experiment_id)
        data = build(exp, samples, self._collector_yaml(actor, str(exp.baseline)),
                     self._collector_yaml(actor, str(exp.candidate)))
        return render(data, request.format)
