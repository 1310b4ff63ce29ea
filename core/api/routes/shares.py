"""``/shares``: read-only links to one experiment or one pipeline version."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from core.api.routes._common import ServicesDep, needs
from core.api.schemas import SHARE_EXPERIMENT_REF, SHARE_PIPELINE_REF, NewShare, ShareIn, ShareOut
from core.api.security import ActorDep
from core.services.shares import parse_ttl

router = APIRouter(prefix="/shares", tags=["shares"])
#: Either grammar: which one applies follows ``kind``.
ANY_REF = f"^({SHARE_EXPERIMENT_REF.strip('^$')}|{SHARE_PIPELINE_REF.strip('^$')})$"


@router.post("", status_code=201, response_model=NewShare, **needs("share.create", 404, body=True))
def create_share(body: ShareIn, actor: ActorDep, svc: ServicesDep) -> NewShare:
    """A link to hand out; its URL (with the signed token) is in this answer only."""
    link, url = svc.shares.create(actor, body.kind, body.ref, parse_ttl(body.ttl))
    return NewShare(**ShareOut.of(link).model_dump(), url=url)


@router.get("", response_model=list[ShareOut], **needs("share.read"))
def list_shares(actor: ActorDep, svc: ServicesDep, kind: Annotated[Literal["experiment", "pipeline"], Query()],
                ref: Annotated[str, Query(pattern=ANY_REF, description="an experiment id or NAME@N")]) -> list[ShareOut]:
    """Every link made to one resource, newest first (revoked and expired ones included; no URLs)."""
    return [ShareOut.of(link) for link in svc.shares.list_for(actor, kind, ref)]


@router.delete("/{link_id}", response_model=ShareOut, **needs("share.revoke", 404))
def revoke_share(link_id: Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")], actor: ActorDep,
                 svc: ServicesDep) -> ShareOut:
    """The link stops opening at once; revoking twice changes nothing."""
    return ShareOut.of(svc.shares.revoke(actor, link_id))
