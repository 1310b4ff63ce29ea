"""What the API answers: response models, built from the services' dataclasses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from core.domain.experiment import Experiment
from core.domain.records import PipelineRecord, PipelineVersionRecord
from core.domain.samples import MeasurementSample
from core.services.experiments import ExperimentSummary


class ExperimentOut(BaseModel):
    id: str
    name: str
    state: str
    owner: str
    description: str
    baseline: str
    candidate: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float
    interval_s: float
    dry_run: bool
    version: int
    verdict: str | None
    result: dict[str, Any] | None
    error: str | None

    @classmethod
    def of(cls, e: Experiment) -> ExperimentOut:
        return cls(id=e.id, name=e.name, state=e.state.value, owner=e.owner, description=e.description,
                   baseline=str(e.baseline), candidate=str(e.candidate), created_at=e.created_at,
                   started_at=e.started_at, finished_at=e.finished_at, duration_s=e.timing.duration_s,
                   interval_s=e.timing.interval_s, dry_run=e.dry_run, version=e.version,
                   verdict=(e.result or {}).get("verdict"), result=e.result, error=e.error)


class ExperimentRow(BaseModel):
    id: str
    name: str
    state: str
    owner: str
    baseline: str
    candidate: str
    created_at: datetime
    finished_at: datetime | None
    dry_run: bool
    verdict: str | None

    @classmethod
    def of(cls, s: ExperimentSummary) -> ExperimentRow:
        return cls(id=s.id, name=s.name, state=s.state, owner=s.owner, baseline=s.baseline,
                   candidate=s.candidate, created_at=s.created_at, finished_at=s.finished_at,
                   dry_run=s.dry_run, verdict=s.verdict)


class ExperimentPage(BaseModel):
    items: list[ExperimentRow]
    next_cursor: str | None


class SampleOut(BaseModel):
    variant: str
    t: datetime
    series: int
    datapoints: int
    bytes: int
    collector_cpu_pct: float | None
    collector_rss_mb: float | None
    critical_coverage_pct: float | None

    @classmethod
    def of(cls, s: MeasurementSample) -> SampleOut:
        return cls(variant=s.variant, t=s.t, series=s.series, datapoints=s.datapoints, bytes=s.bytes,
                   collector_cpu_pct=s.collector_cpu_pct, collector_rss_mb=s.collector_rss_mb,
                   critical_coverage_pct=s.critical_coverage_pct)


class PipelineOut(BaseModel):
    name: str
    description: str
    builtin: bool
    latest_version: int | None

    @classmethod
    def of(cls, r: PipelineRecord) -> PipelineOut:
        return cls(name=r.name, description=r.description, builtin=r.builtin, latest_version=r.latest_version)


class PipelineVersionOut(BaseModel):
    pipeline: str
    number: int
    graph: dict[str, Any]
    collector_yaml: str
    commit_id: str | None
    message: str
    author: str
    created_at: datetime

    @classmethod
    def of(cls, r: PipelineVersionRecord) -> PipelineVersionOut:
        return cls(pipeline=r.pipeline, number=r.number, graph=r.graph, collector_yaml=r.collector_yaml,
                   commit_id=r.commit_id, message=r.message, author=r.author, created_at=r.created_at)


class Validation(BaseModel):
    valid: bool
    problems: list[str]


class Token(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int


class RefreshIn(BaseModel):
    refresh_token: str


class PromoteIn(BaseModel):
    force: bool = False
    reason: str | None = None


class CancelIn(BaseModel):
    reason: str = ""
