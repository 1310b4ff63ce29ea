"""The ``/api/v1`` routes: parse, call one service method with the Actor, shape the answer."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response
from fastapi.security import OAuth2PasswordRequestForm

from core.api.idempotency import Idempotency
from core.api.problems import PreconditionFailed, PreconditionRequired
from core.api.schemas import (
    CancelIn,
    ExperimentOut,
    ExperimentPage,
    ExperimentRow,
    PipelineOut,
    PipelineVersionOut,
    PromoteIn,
    RefreshIn,
    SampleOut,
    Token,
    Validation,
)
from core.api.security import ActorDep, Tokens
from core.bootstrap import Services
from core.catalog.compiler import validate_graph
from core.catalog.templates import TEMPLATE_NAMES
from core.domain.errors import NotFoundError, ValidationError
from core.domain.pipeline import Pipeline
from core.domain.production import ProductionRecord
from core.services.requests import (
    CancelExperiment,
    CreateExperiment,
    Promote,
    RerunExperiment,
    SavePipelineVersion,
)

#: How many experiments a listing looks through to page by cursor.
LIST_SCAN = 10_000
MAX_PAGE = 500

router = APIRouter(prefix="/api/v1")


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(services)]


# ------------------------------------------------------------------ auth

@router.post("/auth/token", response_model=Token, tags=["auth"])
def token(form: Annotated[OAuth2PasswordRequestForm, Depends()], svc: ServicesDep, request: Request) -> Token:
    """OAuth2 password flow: form fields ``username`` and ``password``."""
    actor = svc.accounts.authenticate(form.username, form.password, "api")
    return _pair(request.app.state.tokens, actor.name)


@router.post("/auth/refresh", response_model=Token, tags=["auth"])
def refresh(body: RefreshIn, svc: ServicesDep, request: Request) -> Token:
    tokens: Tokens = request.app.state.tokens
    name = tokens.subject(body.refresh_token, "refresh")
    try:
        actor = svc.accounts.actor_for_name(name, "api")  # disabled or removed accounts stop here
    except NotFoundError:
        raise ValidationError("the account of this refresh token no longer exists") from None
    return _pair(tokens, actor.name)


def _pair(tokens: Tokens, name: str) -> Token:
    pair = tokens.issue(name)
    return Token(access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in)


# ------------------------------------------------------------------ experiments

def _cursor(experiment_id: str) -> str:
    return base64.urlsafe_b64encode(experiment_id.encode()).decode().rstrip("=")


def _after(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ValidationError("cursor: not a cursor this API gave out") from None


@router.get("/experiments", response_model=ExperimentPage, tags=["experiments"])
def list_experiments(actor: ActorDep, svc: ServicesDep,
                     state: Annotated[list[str] | None, Query()] = None,
                     limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
                     cursor: str | None = None) -> ExperimentPage:
    """Newest first. ``state`` may repeat; ``cursor`` is the ``next_cursor`` of the previous page."""
    rows = svc.experiments.list(actor, states=state, limit=LIST_SCAN)
    start = 0
    if cursor:
        after = _after(cursor)
        ids = [r.id for r in rows]
        if after not in ids:
            raise ValidationError("cursor: that experiment is no longer in this listing; start again without one")
        start = ids.index(after) + 1
    page = rows[start:start + limit]
    more = start + limit < len(rows)
    return ExperimentPage(items=[ExperimentRow.of(r) for r in page],
                          next_cursor=_cursor(page[-1].id) if more and page else None)


def _body_hash(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


@router.post("/experiments", status_code=201, response_model=ExperimentOut, tags=["experiments"])
def create_experiment(actor: ActorDep, svc: ServicesDep, request: Request, response: Response,
                      body: Annotated[dict[str, Any], Body()],
                      idempotency_key: Annotated[str | None, Header(max_length=200)] = None) -> Any:
    """Body: the fields of ``CreateExperiment``. ``Idempotency-Key``: the same key and body return the
    first answer; the same key with another body is a 409."""
    keys: Idempotency = request.app.state.idempotency
    digest = _body_hash(body)
    if idempotency_key:
        earlier = keys.get(actor.name, idempotency_key, digest)
        if earlier is not None:
            response.headers["ETag"] = f'"{earlier["version"]}"'
            return earlier
    exp = svc.experiments.create(actor, CreateExperiment.of(**body))
    out = ExperimentOut.of(exp).model_dump(mode="json")
    if idempotency_key:
        keys.put(actor.name, idempotency_key, digest, out)
    response.headers["ETag"] = f'"{exp.version}"'
    response.headers["Location"] = f"/api/v1/experiments/{exp.id}"
    return out


@router.get("/experiments/{experiment_id}", response_model=ExperimentOut, tags=["experiments"])
def get_experiment(experiment_id: str, actor: ActorDep, svc: ServicesDep, response: Response) -> ExperimentOut:
    exp = svc.experiments.get(actor, experiment_id)
    response.headers["ETag"] = f'"{exp.version}"'
    return ExperimentOut.of(exp)


def _version(if_match: str) -> int:
    tag = if_match.strip().removeprefix("W/").strip('"')
    if not tag.isdigit():
        raise ValidationError("If-Match: give the ETag of the experiment (its version), e.g. \"3\"")
    return int(tag)


@router.post("/experiments/{experiment_id}/cancel", response_model=ExperimentOut, tags=["experiments"],
             responses={412: {"description": "the experiment changed since that ETag"},
                        428: {"description": "If-Match is missing"}})
def cancel_experiment(experiment_id: str, actor: ActorDep, svc: ServicesDep, response: Response,
                      if_match: Annotated[str | None, Header()] = None,
                      body: CancelIn | None = None) -> ExperimentOut:
    """Needs ``If-Match: "<version>"`` (the ETag of GET): a stale version is a 412."""
    if not if_match:
        raise PreconditionRequired("send If-Match with the ETag of the experiment to cancel")
    expected = _version(if_match)
    current = svc.experiments.get(actor, experiment_id)
    if current.version != expected:
        raise PreconditionFailed(f"experiment {experiment_id} is at version {current.version}, "
                                 f"not {expected}; GET it again and decide")
    exp = svc.experiments.cancel(actor, CancelExperiment(experiment_id=experiment_id,
                                                         reason=body.reason if body else ""))
    response.headers["ETag"] = f'"{exp.version}"'
    return ExperimentOut.of(exp)


@router.post("/experiments/{experiment_id}/rerun", status_code=201, response_model=ExperimentOut,
             tags=["experiments"])
def rerun_experiment(experiment_id: str, actor: ActorDep, svc: ServicesDep) -> ExperimentOut:
    return ExperimentOut.of(svc.experiments.rerun(actor, RerunExperiment(experiment_id=experiment_id)))


@router.post("/experiments/{experiment_id}/promote", tags=["experiments"])
def promote_experiment(experiment_id: str, actor: ActorDep, svc: ServicesDep,
                       body: PromoteIn | None = None) -> dict[str, Any]:
    opts = body or PromoteIn()
    rec: ProductionRecord = svc.promotion.promote(
        actor, Promote(experiment_id=experiment_id, force=opts.force, reason=opts.reason))
    return rec.to_dict(with_graph=False)


@router.get("/experiments/{experiment_id}/samples", response_model=list[SampleOut], tags=["experiments"])
def experiment_samples(experiment_id: str, actor: ActorDep, svc: ServicesDep) -> list[SampleOut]:
    svc.experiments.get(actor, experiment_id)  # 404 for an unknown id rather than an empty list
    return [SampleOut.of(s) for s in svc.experiments.samples(actor, experiment_id)]


# ------------------------------------------------------------------ pipelines and templates

@router.get("/pipelines", response_model=list[PipelineOut], tags=["pipelines"])
def list_pipelines(actor: ActorDep, svc: ServicesDep) -> list[PipelineOut]:
    return [PipelineOut.of(r) for r in svc.pipelines.list_pipelines(actor)]


@router.get("/pipelines/{name}/versions/{number}", response_model=PipelineVersionOut, tags=["pipelines"])
def get_pipeline_version(name: str, number: int, actor: ActorDep, svc: ServicesDep) -> PipelineVersionOut:
    return PipelineVersionOut.of(svc.pipelines.version(actor, name, number))


@router.post("/pipelines/{name}/versions", status_code=201, tags=["pipelines"])
def save_pipeline_version(name: str, actor: ActorDep, svc: ServicesDep,
                          body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    """Body: ``{"pipeline": <pipeline JSON>, "message": "..."}``; the pipeline's name must be ``name``."""
    req = SavePipelineVersion.of(**body)
    if req.pipeline.name != name:
        raise ValidationError(f"pipeline.name is {req.pipeline.name!r} but the URL names {name!r}")
    saved = svc.pipelines.save_version(actor, req)
    return {"name": saved.name, "number": saved.number, "commit_id": saved.commit_id}


@router.post("/pipelines/validate", response_model=Validation, tags=["pipelines"])
def validate_pipeline(actor: ActorDep, body: Annotated[dict[str, Any], Body()]) -> Validation:
    """Every problem with a pipeline (its JSON form), without saving it."""
    problems = validate_graph(Pipeline.from_dict(body))
    return Validation(valid=not problems, problems=problems)


@router.get("/templates", tags=["pipelines"])
def list_templates(actor: ActorDep) -> list[str]:
    return list(TEMPLATE_NAMES)


@router.get("/templates/{name}", tags=["pipelines"])
def get_template(name: str, actor: ActorDep, svc: ServicesDep) -> dict[str, Any]:
    if name not in TEMPLATE_NAMES:
        raise NotFoundError(f"no built-in template {name!r}; known: {', '.join(TEMPLATE_NAMES)}")
    return svc.pipelines.load(actor, name).to_dict()
