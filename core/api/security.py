"""Who calls: OAuth2 password flow → short-lived JWT access token + refresh token, or a ``phx_`` API token.

JWTs are HS256-signed with the server secret (``core.services.secret``). An access token
lives 15 minutes, a refresh token 12 hours; each use re-reads the account, so a disabled
account or a lowered role takes effect at once, not when the token expires.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal

import jwt
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from core.domain.accounts import Actor, Source
from core.domain.errors import AuthenticationError, NotFoundError
from core.services.accounts import TOKEN_PREFIX, AccountService

ACCESS_TTL_S = 15 * 60
REFRESH_TTL_S = 12 * 3600
ALGORITHM = "HS256"
ISSUER = "phoenix"

TokenKind = Literal["access", "refresh"]

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


class Tokens:
    """Issues and checks the JWTs of one server secret."""

    def __init__(self, secret: bytes, clock: Callable[[], float] = time.time):
        self._secret = secret
        self._clock = clock

    def _encode(self, subject: str, kind: TokenKind, ttl_s: int) -> str:
        now = int(self._clock())
        claims = {"iss": ISSUER, "sub": subject, "typ": kind, "iat": now, "exp": now + ttl_s,
                  "jti": uuid.uuid4().hex}
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def issue(self, subject: str) -> TokenPair:
        return TokenPair(self._encode(subject, "access", ACCESS_TTL_S),
                         self._encode(subject, "refresh", REFRESH_TTL_S), ACCESS_TTL_S)

    def subject(self, token: str, kind: TokenKind) -> str:
        """The account name a valid token of ``kind`` names; AuthenticationError otherwise (never why in detail)."""
        try:
            claims = jwt.decode(token, self._secret, algorithms=[ALGORITHM], issuer=ISSUER,
                                options={"require": ["exp", "sub", "typ"]})
        except jwt.ExpiredSignatureError:
            raise AuthenticationError(f"the {kind} token has expired; sign in again") from None
        except jwt.PyJWTError:
            raise AuthenticationError(f"not a valid {kind} token") from None
        if claims.get("typ") != kind:
            raise AuthenticationError(f"not a valid {kind} token")
        return str(claims["sub"])


def actor_for(accounts: AccountService, tokens: Tokens, credential: str, source: Source = "api") -> Actor:
    """The Actor behind a bearer credential: an API token (``phx_…``) or an access JWT.

    ``source`` is what its audit entries say the calls came through (``api``, ``grpc``).
    """
    if credential.startswith(TOKEN_PREFIX):
        return accounts.actor_for_token(credential, source)
    name = tokens.subject(credential, "access")
    try:
        return accounts.actor_for_name(name, source)
    except NotFoundError:
        raise AuthenticationError("the account of this token no longer exists") from None


def current_actor(request: Request, credential: Annotated[str | None, Depends(oauth2)]) -> Actor:
    """FastAPI dependency: the signed-in Actor, or 401 with ``WWW-Authenticate``."""
    if not credential:
        raise AuthenticationError("sign in: send 'Authorization: Bearer <token>' (POST /api/v1/auth/token, "
                                  "or an API token from 'phoenix token create')")
    state = request.app.state
    return actor_for(state.services.accounts, state.tokens, credential)


ActorDep = Annotated[Actor, Depends(current_actor)]
