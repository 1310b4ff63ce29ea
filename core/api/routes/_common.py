"""What every resource module shares: the Services dependency, route metadata, ETags.

Each route declares, once, the permission of ``core.domain.accounts.PERMISSIONS`` it needs
(``x-phoenix-permission`` in the OpenAPI document, read back by the role-matrix test) and
every error status it can answer, as ``application/problem+json``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from core.api.problems import PreconditionFailed, PreconditionRequired
from core.api.schemas import Problem
from core.bootstrap import Services
from core.domain.accounts import PERMISSIONS
from core.domain.errors import ValidationError

#: OpenAPI extension naming the permission a route needs ("public": no sign-in).
PERMISSION_KEY = "x-phoenix-permission"
PUBLIC = "public"

_DESCRIPTIONS = {
    400: "the body could not be read (not UTF-8 JSON, a broken multipart form)", 401: "no, bad or expired credentials", 403: "the role is below what this needs",
    404: "no such resource", 409: "not possible now (state, conflict or a reused Idempotency-Key)",
    412: "If-Match names another version than the current one", 413: "the request body is too large",
    422: "the request is not valid: every problem is listed", 428: "If-Match is required",
    429: "over the rate limit (see Retry-After)", 503: "the database is away (see Retry-After)",
}
#: What any route may answer whatever it does.
ALWAYS = (422, 429, 503)


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(services)]


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses for error statuses; ``core.api.openapi`` files them under problem+json."""
    return {s: {"model": Problem, "description": _DESCRIPTIONS[s]} for s in sorted(set(statuses))}


def needs(permission: str, *statuses: int, body: bool = False,
          ok: dict[int | str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Keyword arguments of a route decorator: its permission and the answers it may give
    (``ok``: a success answer described by hand, e.g. a file's media types)."""
    if permission != PUBLIC and permission not in PERMISSIONS:
        raise ValueError(f"{permission!r} is not in PERMISSIONS")
    signed_in = () if permission == PUBLIC else (401, 403)
    return {"openapi_extra": {PERMISSION_KEY: permission},
            "responses": {**(ok or {}),
                          **problem_responses(*ALWAYS, *signed_in, *((400, 413) if body else ()), *statuses)}}


def etag(version: int | str) -> str:
    return f'"{version}"'


def if_match_tag(if_match: str | None, what: str) -> str:
    """The tag of an If-Match header (without quotes or W/); 428 when missing."""
    if not if_match:
        raise PreconditionRequired(f"send If-Match with the ETag of the {what} (from GET)")
    tag = if_match.strip().removeprefix("W/").strip().strip('"')
    if not tag or tag == "*":
        raise PreconditionFailed(f"If-Match: give the ETag of the {what}, not {if_match[:40]!r}")
    return tag


def if_match_version(if_match: str | None, what: str) -> int:
    tag = if_match_tag(if_match, what)
    if not tag.isdigit() or len(tag) > 9:
        raise ValidationError(f'If-Match: give the ETag of the {what} (its version), e.g. "3"')
    return int(tag)
