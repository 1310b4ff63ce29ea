"""Web sessions: a signed, expiring token per sign-in, and OIDC accounts mapped to roles.

A session token is ``base64url(payload).base64url(hmac)``: the payload names the user, the
role at sign-in, the issue and expiry times; the HMAC-SHA256 is keyed with the server secret
(``core.services.secret``) under a label of its own, so no other signed token of Phoenix (a
share link) can pass for a session. ``resume`` checks the signature and the expiry, then
re-reads the account, so a demotion or a disabled account applies on the next render.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from core.domain.accounts import Actor, Role, Source, check_name
from core.domain.durations import parse_duration
from core.domain.errors import AuthenticationError, ValidationError
from core.domain.experiment import utcnow
from core.domain.ports import UnitOfWorkFactory
from core.observability.tracing import traced_service
from core.services.authz import unauthenticated

log = logging.getLogger(__name__)

TTL_ENV = "PHOENIX_SESSION_TTL"
DEFAULT_TTL_S = 8 * 3600.0
MAX_TTL_S = 31 * 24 * 3600.0
OIDC_MAP_ENV = "PHOENIX_OIDC_ROLE_MAP"
#: Stored instead of an argon2 hash for an OIDC account: never verifies, so no password sign-in.
OIDC_NO_PASSWORD = "!oidc"
_LABEL = b"phoenix-session-v1\x00"
_MAX_TOKEN = 4096


def session_ttl_s(env: Mapping[str, str] | None = None) -> float:
    """``PHOENIX_SESSION_TTL`` (``8h``, ``30m``, seconds) or 8 hours; ValidationError when invalid."""
    env = os.environ if env is None else env
    raw = env.get(TTL_ENV, "").strip()
    if not raw:
        return DEFAULT_TTL_S
    ttl = parse_duration(raw, TTL_ENV)
    if not 60 <= ttl <= MAX_TTL_S:
        raise ValidationError(f"{TTL_ENV} must be between 1 minute and 31 days, got {raw!r}")
    return ttl


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    """What a valid token says (the role is the one at sign-in; ``resume`` re-reads it)."""

    name: str
    role: Role
    issued_at: datetime
    expires_at: datetime


def sign(secret: bytes, name: str, role: Role, issued_at: datetime, ttl_s: float) -> str:
    iat = int(issued_at.timestamp())
    payload = json.dumps({"u": name, "r": role.label, "iat": iat, "exp": iat + int(ttl_s)},
                         separators=(",", ":"), sort_keys=True).encode("utf-8")
    mac = hmac.new(secret, _LABEL + payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(mac)}"


def verify(secret: bytes, token: object, now: datetime) -> Session:
    """The session a token carries; AuthenticationError when it is malformed, tampered or expired."""
    if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN or token.count(".") != 1:
        raise AuthenticationError("the session is not valid; please sign in again")
    body, mac = token.split(".")
    try:
        payload, got = _unb64(body), _unb64(mac)
    except (binascii.Error, ValueError):
        raise AuthenticationError("the session is not valid; please sign in again") from None
    want = hmac.new(secret, _LABEL + payload, hashlib.sha256).digest()
    if not hmac.compare_digest(want, got) or _b64(payload) != body or _b64(got) != mac:
        raise AuthenticationError("the session was tampered with; please sign in again")
    try:
        data = json.loads(payload)
        session = Session(data["u"], Role.parse(data["r"]), datetime.fromtimestamp(data["iat"], UTC),
                          datetime.fromtimestamp(data["exp"], UTC))
    except (ValueError, KeyError, TypeError, OverflowError, ValidationError):
        # signed by us yet unreadable: an older format; treat like any invalid session
        raise AuthenticationError("the session is not valid; please sign in again") from None
    if session.expires_at <= now:
        raise AuthenticationError(f"the session expired at {session.expires_at:%Y-%m-%d %H:%M} UTC; "
                                  "please sign in again")
    return session


# ---- OIDC ------------------------------------------------------------------------------

def parse_role_map(text: str) -> list[tuple[str, Role]]:
    """``admins@corp=admin,group:sre=operator`` → ordered rules; ValidationError naming the bad part.

    A rule's key is an e-mail address, ``@domain`` (every address of the domain) or
    ``group:NAME``; ``*`` is the default for any other signed-in identity.
    """
    rules: list[tuple[str, Role]] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, eq, role = part.rpartition("=")
        if not eq or not key.strip():
            raise ValidationError(f"{OIDC_MAP_ENV}: {part!r} is not KEY=ROLE")
        try:
            rules.append((key.strip().lower(), Role.parse(role)))
        except ValidationError as exc:
            raise ValidationError(f"{OIDC_MAP_ENV}: {part!r}: {exc}") from None
    return rules


def map_oidc_role(email: str | None, groups: list[str] | tuple[str, ...] | None,
                  rules: list[tuple[str, Role]]) -> Role | None:
    """The highest role any rule grants this identity; None (refused) when no rule matches.

    Highest, not first: a user in two mapped groups gets the larger role, whatever the order.
    """
    addr = (email or "").strip().lower()
    domain = "@" + addr.rpartition("@")[2] if "@" in addr else None
    keys = {f"group:{g.strip().lower()}" for g in groups or () if isinstance(g, str) and g.strip()}
    if addr:
        keys.add(addr)
    if domain:
        keys.add(domain)
    granted = [role for key, role in rules if key in keys]
    if not granted and addr:
        granted = [role for key, role in rules if key == "*"]
    return max(granted) if granted else None


def oidc_account_name(email: str) -> str:
    """An OIDC account is named by its e-mail address (valid as an account name)."""
    return check_name(email.strip().lower())


@traced_service
class SessionService:
    """Issues and resumes web sessions; signs in OIDC identities as accounts without a password."""

    def __init__(self, uow_factory: UnitOfWorkFactory, secret: Callable[[], bytes],
                 ttl_s: Callable[[], float] = session_ttl_s, clock: Callable[[], datetime] = utcnow):
        # the secret and the TTL are read when first needed: a CLI command never creates a secret
        self.uow_factory = uow_factory
        self._secret = secret
        self._ttl_s = ttl_s
        self.clock = clock

    @unauthenticated("auth.session")
    def issue(self, actor: Actor) -> str:
        """A token for an actor AccountService.authenticate (or ``oidc_sign_in``) returned."""
        return sign(self._secret(), actor.name, actor.role, self.clock(), self._ttl_s())

    @unauthenticated("auth.session")
    def resume(self, token: object, source: Source = "ui") -> Actor:
        """The actor of a valid session, with the account's role as it is now."""
        session = verify(self._secret(), token, self.clock())
        with self.uow_factory() as uow:
            user = uow.users.find(session.name)
        if user is None or user.disabled:
            raise AuthenticationError("your account was disabled or removed; ask an admin")
        return Actor(user.name, user.role, source)

    @unauthenticated("auth.login")
    def oidc_sign_in(self, email: str | None, groups: list[str] | None, role_map: str) -> Actor:
        """Create or update the OIDC account of a signed-in identity and return its actor (audited).

        The role comes from the map on every sign-in, so changing a group changes the role.
        A local account of the same name is never taken over.
        """
        if not email:
            raise AuthenticationError("the identity provider sent no e-mail address")
        name = oidc_account_name(email)
        role = map_oidc_role(email, groups, parse_role_map(role_map))
        with self.uow_factory() as uow:
            if role is None:
                uow.audit.add(name, "auth.login_failed", name, {"reason": "no role mapped", "via": "oidc"},
                              source="ui")
                uow.commit()
                raise AuthenticationError(f"{name} has no role in Phoenix; ask an admin to map it "
                                          f"({OIDC_MAP_ENV})")
            user = uow.users.find(name)
            if user is not None and uow.users.password_hash(name) != OIDC_NO_PASSWORD:
                uow.audit.add(name, "auth.login_failed", name, {"reason": "local account", "via": "oidc"},
                              source="ui")
                uow.commit()
                raise AuthenticationError(f"{name} is a local account; sign in with its password")
            if user is not None and user.disabled:
                raise AuthenticationError(f"the account {name} is disabled; ask an admin")
            before = None if user is None else {"name": user.name, "role": user.role.label}
            if user is None:
                user = uow.users.add(name, role, OIDC_NO_PASSWORD)
            elif user.role != role:
                user = uow.users.update(name, role=role)
            uow.audit.add(name, "auth.login", name, {"via": "oidc"}, source="ui", before=before,
                          after={"name": user.name, "role": user.role.label})
            uow.commit()
        return Actor(user.name, user.role, "ui")
