"""Messages in and out of the gRPC services: the services' dataclasses ↔ the generated protobuf types.

Shapes only, as ``core.api.schemas`` is for REST: the rules and their wording stay in the
domain, so a JSON field gets the same validation sentences as the REST body does.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from core.api.grpc_gen.phoenix.v1 import experiments_pb2 as xpb
from core.api.grpc_gen.phoenix.v1 import pipelines_pb2 as ppb
from core.domain.errors import ValidationError
from core.domain.experiment import Experiment
from core.domain.pipeline import Pipeline
from core.domain.production import ProductionRecord
from core.domain.records import PipelineRecord, PipelineVersionRecord
from core.domain.samples import MeasurementSample
from core.render.bundle import Bundle
from core.services.experiments import ExperimentSummary
from core.services.requests import CreateExperiment

# ------------------------------------------------------------------ in


def json_value(text: str, field: str) -> Any:
    """The JSON in a ``*_json`` field; None when empty; ValidationError naming the field otherwise."""
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{field}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None


def pipeline_of(text: str, field: str = "pipeline_json") -> Pipeline:
    value = json_value(text, field)
    if value is None:
        raise ValidationError(f"{field}: give the pipeline JSON (as 'phoenix pipeline export' writes it)")
    return Pipeline.from_dict(value)


def optional(message: Message, field: str) -> Any:
    """The value of a proto3 ``optional`` field, None when it was not sent."""
    return getattr(message, field) if message.HasField(field) else None


def create_request(req: xpb.CreateExperimentRequest) -> CreateExperiment:
    """The service request, with only what was sent (so the model's defaults apply to the rest)."""
    fields: dict[str, object] = {"name": req.name, "baseline": req.baseline, "candidate": req.candidate,
                                 "description": req.description}
    for name in ("owner", "duration_s", "interval_s"):
        if req.HasField(name):
            fields[name] = getattr(req, name)
    for name in ("load", "target", "criteria", "critical_rules"):
        value = json_value(getattr(req, f"{name}_json"), f"{name}_json")
        if value is not None:
            fields[name] = value
    return CreateExperiment.of(**fields)


# ------------------------------------------------------------------ out


def timestamp(moment: datetime | None) -> Timestamp | None:
    if moment is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(moment)
    return ts


def experiment(e: Experiment) -> xpb.Experiment:
    return xpb.Experiment(
        id=e.id, name=e.name, state=e.state.value, owner=e.owner, description=e.description,
        baseline=str(e.baseline), candidate=str(e.candidate), created_at=timestamp(e.created_at),
        started_at=timestamp(e.started_at), finished_at=timestamp(e.finished_at),
        duration_s=e.timing.duration_s, interval_s=e.timing.interval_s, dry_run=e.dry_run, version=e.version,
        verdict=(e.result or {}).get("verdict"), result_json=json.dumps(e.result) if e.result is not None else "",
        error=e.error,
    )


def summary(s: ExperimentSummary) -> xpb.ExperimentSummary:
    return xpb.ExperimentSummary(
        id=s.id, name=s.name, state=s.state, owner=s.owner, baseline=s.baseline, candidate=s.candidate,
        created_at=timestamp(s.created_at), finished_at=timestamp(s.finished_at), dry_run=s.dry_run,
        verdict=s.verdict,
    )


def sample(s: MeasurementSample) -> xpb.Sample:
    return xpb.Sample(variant=s.variant, t=timestamp(s.t), series=s.series, datapoints=s.datapoints,
                      bytes=s.bytes, collector_cpu_pct=s.collector_cpu_pct, collector_rss_mb=s.collector_rss_mb,
                      critical_coverage_pct=s.critical_coverage_pct)


def promotion(r: ProductionRecord) -> xpb.Promotion:
    return xpb.Promotion(target=r.target, pipeline=r.pipeline, version=r.version, ref=r.ref,
                         experiment_id=r.experiment_id, promoted_at=r.promoted_at, actor=r.actor,
                         commit_id=r.commit_id, forced=r.forced, reason=r.reason, verdict=r.verdict)


def pipeline(r: PipelineRecord) -> ppb.Pipeline:
    return ppb.Pipeline(name=r.name, description=r.description, builtin=r.builtin, latest_version=r.latest_version)


def pipeline_version(r: PipelineVersionRecord) -> ppb.PipelineVersion:
    return ppb.PipelineVersion(pipeline=r.pipeline, number=r.number, graph_json=json.dumps(r.graph),
                               collector_yaml=r.collector_yaml, commit_id=r.commit_id, message=r.message,
                               author=r.author, created_at=timestamp(r.created_at))


def rendered(b: Bundle) -> ppb.RenderedPipeline:
    return ppb.RenderedPipeline(collector_yaml=b.collector_yaml, manifests=b.manifests, notes=b.notes)


def template(p: Pipeline) -> ppb.Template:
    return ppb.Template(name=p.name, graph_json=p.to_json())
