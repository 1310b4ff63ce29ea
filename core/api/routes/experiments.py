"""``/experiments``: list, create, get, cancel, rerun, promote, samples, analysis, report."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response
from pydantic import Field

from core.api.idempotency import IdempotencyKeys
from core.api.paging import Cursors
from core.api.routes._common import (
    ServicesDep,
    etag,
    if_match_version,
    needs,
)
from core.api.schemas import (
    EXPERIMENT_ID,
    IF_MATCH_VERSION,
    PAGE_CURSOR,
    PIPELINE_NAME,
    PLAIN_TEXT,
    STATE_NAME,
    AnalysisOut,
    CancelIn,
    ExperimentIn,
    ExperimentOut,
    ExperimentPage,
    ExperimentRow,
    ProductionOut,
    PromoteIn,
    SampleOut,
)
from core.api.security import ActorDep
from core.services.experiments import MAX_PAGE
from core.services.requests import (
    CancelExperiment,
    CreateExperiment,
    ExperimentReport,
    Promote,
    RerunExperiment,
)

router = APIRouter(prefix="/experiments", tags=["experiments"])

ExperimentId = Annotated[str, Path(pattern=EXPERIMENT_ID, description="e.g. exp-1a2b3c4d")]
REPORT_TYPES = {"csv": "text/csv; charset=utf-8", "html": "text/html; charset=utf-8", "pdf": "application/pdf"}


@router.get("", response_model=ExperimentPage, **needs("experiment.read"))
def list_experiments(actor: ActorDep, svc: ServicesDep, request: Request,
                     state: Annotated[list[Annotated[str, Field(pattern=STATE_NAME)]] | None,
                                      Query(max_length=20, description="a state, any letter case")] = None,
                     owner: Annotated[str | None, Query(max_length=200, pattern=PLAIN_TEXT)] = None,
                     pipeline: Annotated[str | None, Query(pattern=PIPELINE_NAME)] = None,
                     limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
                     cursor: Annotated[str | None, Query(pattern=PAGE_CURSOR)] = None) -> ExperimentPage:
    """Newest first. ``state`` may repeat; ``pipeline`` matches baseline or candidate;
    ``cursor`` is the ``next_cursor`` of the previous page (keyset paging)."""
    cursors: Cursors = request.app.state.cursors
    page = svc.experiments.page(actor, states=state, owner=owner, pipeline=pipeline, limit=limit,
                                after=cursors.decode(cursor) if cursor else None)
    return ExperimentPage(items=[ExperimentRow.of(r) for r in page.items],
                          next_cursor=cursors.encode(page.next_after) if page.next_after else None)


def _body_hash(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


@router.post("", status_code=201, response_model=ExperimentOut, **needs("experiment.create", 409, body=True))
def create_experiment(body: ExperimentIn, actor: ActorDep, svc: ServicesDep, request: Request, response: Response,
                      idempotency_key: Annotated[str | None, Header(max_length=200, pattern=PLAIN_TEXT)] = None,
                      ) -> Any:
    """``Idempotency-Key``: the same key and body return the first answer; another body is a 409."""
    keys: IdempotencyKeys = request.app.state.idempotency
    fields = body.model_dump(mode="json", exclude_unset=True)

    def create() -> dict[str, Any]:
        return ExperimentOut.of(svc.experiments.create(actor, CreateExperiment.of(**fields))).model_dump(mode="json")

    answer = keys.run(actor.name, idempotency_key, _body_hash(fields), create) if idempotency_key else create()
    response.headers["ETag"] = etag(answer["version"])
    response.headers["Location"] = f"/api/v1/experiments/{answer['id']}"
    return answer


@router.get("/{experiment_id}", response_model=ExperimentOut, **needs("experiment.read", 404))
def get_experiment(experiment_id: ExperimentId, actor: ActorDep, svc: ServicesDep,
                   response: Response) -> ExperimentOut:
    """``ETag`` is the experiment's version: send it back as ``If-Match`` to cancel."""
    exp = svc.experiments.get(actor, experiment_id)
    response.headers["ETag"] = etag(exp.version)
    return ExperimentOut.of(exp)


@router.post("/{experiment_id}/cancel", response_model=ExperimentOut,
             **needs("experiment.cancel", 404, 409, 412, 428, body=True))
def cancel_experiment(experiment_id: ExperimentId, actor: ActorDep, svc: ServicesDep, response: Response,
                      if_match: Annotated[str | None, Header(pattern=IF_MATCH_VERSION,
                                                             description='the ETag of GET, e.g. "3"')] = None,
                      body: CancelIn | None = None) -> ExperimentOut:
    """Needs ``If-Match: "<version>"``: checked in the same transaction that cancels, so of two
    cancels with one ETag exactly one succeeds and the other is a 412."""
    exp = svc.experiments.cancel(actor, CancelExperiment(
        experiment_id=experiment_id, reason=body.reason if body else "",
        expected_version=if_match_version(if_match, "experiment")))
    response.headers["ETag"] = etag(exp.version)
    return ExperimentOut.of(exp)


@router.post("/{experiment_id}/rerun", status_code=201, response_model=ExperimentOut,
             **needs("experiment.rerun", 404, 409))
def rerun_experiment(experiment_id: ExperimentId, actor: ActorDep, svc: ServicesDep,
                     response: Response) -> ExperimentOut:
    """A new Pending experiment with the settings of a finished one."""
    exp = svc.experiments.rerun(actor, RerunExperiment(experiment_id=experiment_id))
    response.headers["Location"] = f"/api/v1/experiments/{exp.id}"
    return ExperimentOut.of(exp)


@router.post("/{experiment_id}/promote", response_model=ProductionOut,
             **needs("experiment.promote", 404, 409, body=True))
def promote_experiment(experiment_id: ExperimentId, actor: ActorDep, svc: ServicesDep,
                       body: PromoteIn | None = None) -> ProductionOut:
    """Make the candidate the production pipeline of the experiment's target (``force`` needs a reason)."""
    opts = body or PromoteIn()
    return ProductionOut.of(svc.promotion.promote(
        actor, Promote(experiment_id=experiment_id, force=opts.force, reason=opts.reason)))


@router.get("/{experiment_id}/samples", response_model=list[SampleOut], **needs("experiment.read", 404))
def experiment_samples(experiment_id: ExperimentId, actor: ActorDep, svc: ServicesDep) -> list[SampleOut]:
    """Measurement samples, oldest first."""
    return [SampleOut.of(s) for s in svc.experiments.samples(actor, experiment_id, known=True)]


@router.get("/{experiment_id}/analysis", response_model=AnalysisOut, **needs("experiment.read", 404, 409))
def experiment_analysis(experiment_id: ExperimentId, actor: ActorDep, svc: ServicesDep) -> AnalysisOut:
    """The stored analysis: verdict, result and the criteria it was judged by (409 until it exists)."""
    return AnalysisOut.of(svc.experiments.analysis(actor, experiment_id))


_REPORT_CONTENT = {m.split(";")[0]: {"schema": {"type": "string", **({"format": "binary"} if k == "pdf" else {})}}
                   for k, m in REPORT_TYPES.items()}


@router.get("/{experiment_id}/report", response_class=Response,
            **needs("report.download", 404, 409, ok={200: {"description": "the report file", "content": _REPORT_CONTENT}}))
def experiment_report(experiment_id: ExperimentId, actor: ActorDep, svc: ServicesDep,
                      format: Annotated[Literal["csv", "html", "pdf"], Query()] = "html") -> Response:  # noqa: A002
    """The report as CSV samples, a self-contained HTML page or a PDF, as a download."""
    body = svc.reports.render(actor, ExperimentReport(experiment_id=experiment_id, format=format))
    return Response(body, media_type=REPORT_TYPES[format],
                    headers={"Content-Disposition": f'attachment; filename="{experiment_id}.{format}"'})
