"""``/pipelines`` and ``/templates``: saved versions, validate, render, estimate, diff."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Query, UploadFile
from fastapi.responses import PlainTextResponse

from core.api.routes._common import ServicesDep, needs
from core.api.schemas import (
    PIPELINE_NAME,
    DiffOut,
    EstimateOut,
    PipelineJSON,
    PipelineOut,
    PipelineVersionIn,
    PipelineVersionOut,
    RecommendOut,
    Rendered,
    SavedVersionOut,
    Validation,
    VersionSummary,
)
from core.api.security import ActorDep
from core.domain.errors import ValidationError
from core.domain.pipeline import Pipeline
from core.services.requests import EstimatePipeline, Recommend, SavePipelineVersion, UsageFile

router = APIRouter(tags=["pipelines"])

PipelineName = Annotated[str, Path(pattern=PIPELINE_NAME, description="a saved pipeline's name")]
VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1)]
#: The largest snapshot ``POST /pipelines/estimate`` takes (the only route above the 1 MiB body limit).
SNAPSHOT_MAX_BYTES = 20 * 1024 * 1024
ESTIMATE_PATH = "/api/v1/pipelines/estimate"
RECOMMEND_PATH = "/api/v1/pipelines/recommend"  # a snapshot too, with rule files and dashboards
_YAML = {200: {"description": "the collector configuration", "content": {"application/yaml": {"schema": {
    "type": "string"}}}}}


@router.get("/pipelines", response_model=list[PipelineOut], **needs("pipeline.read"))
def list_pipelines(actor: ActorDep, svc: ServicesDep) -> list[PipelineOut]:
    """Saved pipelines with their latest version."""
    return [PipelineOut.of(r) for r in svc.pipelines.list_pipelines(actor)]


@router.get("/pipelines/{name}/versions", response_model=list[VersionSummary], **needs("pipeline.read", 404))
def list_versions(name: PipelineName, actor: ActorDep, svc: ServicesDep) -> list[VersionSummary]:
    """Every saved version of one pipeline, oldest first (without graphs)."""
    return [VersionSummary.of(v) for v in svc.pipelines.list_versions(actor, name)]


@router.get("/pipelines/{name}/versions/{number}", response_model=PipelineVersionOut,
            **needs("pipeline.read", 404))
def get_pipeline_version(name: PipelineName, number: VersionNumber, actor: ActorDep,
                         svc: ServicesDep) -> PipelineVersionOut:
    return PipelineVersionOut.of(svc.pipelines.version(actor, name, number))


class YamlResponse(PlainTextResponse):
    media_type = "application/yaml"


@router.get("/pipelines/{name}/versions/{number}/render", response_class=YamlResponse,
            **needs("pipeline.read", 404, ok=_YAML))
def render_pipeline_version(name: PipelineName, number: VersionNumber, actor: ActorDep,
                            svc: ServicesDep) -> YamlResponse:
    """The collector YAML saved with that version."""
    return YamlResponse(svc.pipelines.version(actor, name, number).collector_yaml)


@router.post("/pipelines/{name}/versions", status_code=201, response_model=SavedVersionOut,
             **needs("pipeline.save", 409, body=True))
def save_pipeline_version(name: PipelineName, body: PipelineVersionIn, actor: ActorDep,
                          svc: ServicesDep) -> SavedVersionOut:
    """The next immutable version (a GitOps commit); ``pipeline.name`` must be ``name``."""
    if body.pipeline.name != name:
        raise ValidationError(f"pipeline.name is {body.pipeline.name!r} but the URL names {name!r}")
    return SavedVersionOut.of(svc.pipelines.save_version(actor, SavePipelineVersion.of(**body.as_dict())))


@router.get("/pipelines/{name}/diff", response_model=DiffOut, **needs("pipeline.read", 404, 409))
def diff_versions(name: PipelineName, actor: ActorDep, svc: ServicesDep,
                  from_: Annotated[int, Query(alias="from", ge=1, le=2**31 - 1)],
                  to: Annotated[int, Query(ge=1, le=2**31 - 1)]) -> DiffOut:
    """A unified diff between two saved versions (their GitOps files)."""
    return DiffOut(pipeline=name, from_version=from_, to_version=to, diff=svc.pipelines.diff(actor, name, from_, to))


@router.post("/pipelines/validate", response_model=Validation, **needs("pipeline.read", body=True))
def validate_pipeline(body: PipelineJSON, actor: ActorDep, svc: ServicesDep) -> Validation:
    """Every problem with a pipeline (the body is its JSON), without saving it. A graph the domain
    cannot even read (two nodes with one id, a critical rule that is not a regex) is a 422 naming why."""
    problems = svc.pipelines.validate(actor, Pipeline.from_dict(body.as_dict()))
    return Validation(valid=not problems, problems=problems)


@router.post("/pipelines/render", response_model=Rendered, **needs("pipeline.read", body=True))
def render_pipeline(body: PipelineJSON, actor: ActorDep, svc: ServicesDep) -> Rendered:
    """The collector YAML of a pipeline (the body is its JSON), checked as a save checks it;
    a 422 lists why when it is not valid."""
    return Rendered(collector_yaml=svc.pipelines.render(actor, Pipeline.from_dict(body.as_dict())).collector_yaml)


@router.post("/pipelines/estimate", response_model=EstimateOut, **needs("pipeline.read", 400, 404, 409, body=True))
def estimate_pipeline(actor: ActorDep, svc: ServicesDep,
                      snapshot: Annotated[UploadFile, File(description="a process snapshot CSV (at most 20 MiB; "
                                                                       "columns: docs/pipeline-semantics.md)")],
                      pipeline: Annotated[str | None, Form(max_length=200, description="NAME or NAME@N")] = None,
                      graph: Annotated[str | None, Form(max_length=1 << 20, description="pipeline JSON")] = None,
                      ) -> EstimateOut:
    """What ``phoenix estimate`` answers for one pipeline (``pipeline`` or ``graph``) on an uploaded snapshot."""
    request = EstimatePipeline.of(pipeline=pipeline, graph=_json(graph, "graph"),
                                  source=(snapshot.filename or "snapshot")[:200])
    return EstimateOut.of(svc.pipelines.estimate(actor, request, snapshot.file.read()))


@router.post("/pipelines/recommend", response_model=RecommendOut, **needs("pipeline.read", 400, body=True))
def recommend_pipeline(actor: ActorDep, svc: ServicesDep,
                       snapshot: Annotated[UploadFile, File(description="a process snapshot CSV (at most 20 MiB)")],
                       rules: Annotated[list[UploadFile] | None, File(description="Prometheus rule files (YAML)")] = None,
                       dashboards: Annotated[list[UploadFile] | None,
                                             File(description="Grafana dashboards (JSON)")] = None,
                       prometheus: Annotated[bool, Form(description="also read the rules API of the Prometheus "
                                                                    "configured in Settings")] = False,
                       ) -> RecommendOut:
    """What ``phoenix recommend --json`` answers: the recommended pipeline, its estimate, and every
    query with whether the pipeline keeps it working (docs/recommend.md)."""
    request = Recommend.of(rule_files=_files(rules), dashboards=_files(dashboards), settings_prometheus=prometheus,
                           source=(snapshot.filename or "snapshot")[:200])
    return RecommendOut.of(svc.recommendations.recommend(actor, request, snapshot.file.read()))


def _files(uploads: list[UploadFile] | None) -> list[UsageFile]:
    return [UsageFile(name=(u.filename or f"upload-{i + 1}")[:200], text=u.file.read().decode("utf-8", errors="replace"))
            for i, u in enumerate(uploads or [])]


def _json(text: str | None, what: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValidationError(f"{what}: not JSON ({exc})") from None


@router.get("/templates", response_model=list[str], **needs("pipeline.read"))
def list_templates(actor: ActorDep, svc: ServicesDep) -> list[str]:
    """The built-in templates' names."""
    return svc.pipelines.templates(actor)


@router.get("/templates/{name}", response_model=dict[str, Any], **needs("pipeline.read", 404))
def get_template(name: Annotated[str, Path(pattern=PIPELINE_NAME)], actor: ActorDep,
                 svc: ServicesDep) -> dict[str, Any]:
    """A built-in template as pipeline JSON."""
    return svc.pipelines.template(actor, name).to_dict()
