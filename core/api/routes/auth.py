"""``/auth``: the OAuth2 password flow and refresh (the only routes without a bearer token)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm

from core.api.routes._common import PUBLIC, ServicesDep, needs
from core.api.schemas import RefreshIn, Token
from core.api.security import Tokens
from core.domain.errors import AuthenticationError, NotFoundError

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/token", response_model=Token, **needs(PUBLIC, 400, 401, body=True))
def token(form: Annotated[OAuth2PasswordRequestForm, Depends()], svc: ServicesDep, request: Request) -> Token:
    """OAuth2 password flow: form fields ``username`` and ``password``."""
    actor = svc.accounts.authenticate(form.username, form.password, "api")
    return _pair(request.app.state.tokens, actor.name)


@router.post("/refresh", response_model=Token, **needs(PUBLIC, 401, body=True))
def refresh(body: RefreshIn, svc: ServicesDep, request: Request) -> Token:
    """A new pair for a valid refresh token of an account that is still enabled."""
    tokens: Tokens = request.app.state.tokens
    try:  # disabled or removed accounts stop here
        actor = svc.accounts.actor_for_name(tokens.subject(body.refresh_token, "refresh"), "api")
    except NotFoundError:
        raise AuthenticationError("the account of this refresh token no longer exists") from None
    return _pair(tokens, actor.name)


def _pair(tokens: Tokens, name: str) -> Token:
    pair = tokens.issue(name)
    return Token(access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in)
