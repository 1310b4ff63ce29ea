"""Accounts: sign-in (argon2, backoff, lockout), users, API tokens, the initial admin.

Passwords and token secrets never reach a log line, an error message or an audit entry:
the store keeps an argon2id hash of a password and a sha256 of a token secret (a token
secret is 256 random bits, so a fast hash is enough; a password is not, hence argon2).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from core.domain.accounts import (
    Actor,
    Role,
    Source,
    TokenRecord,
    UserRecord,
    check_name,
    check_password,
    require,
)
from core.domain.durations import parse_duration
from core.domain.errors import AuthenticationError, ValidationError
from core.domain.experiment import utcnow
from core.domain.ports import UnitOfWorkFactory
from core.domain.records import AuditEntry
from core.observability.tracing import traced_service
from core.services.authz import mutation, query, record, unauthenticated

log = logging.getLogger(__name__)

#: Failures before the account locks, and for how long.
LOCK_AFTER = 5
LOCK_FOR = timedelta(minutes=15)
#: Backoff before the lock: 1 s after the first failure, doubling (1, 2, 4, 8 s).
BACKOFF_BASE_S = 1.0
MAX_TOKEN_TTL_S = 366 * 24 * 3600.0
TOKEN_PREFIX = "phx_"
INITIAL_ADMIN = "admin"
INITIAL_PASSWORD_FILE = "initial_admin_password"
_BAD_LOGIN = "wrong name or password"
#: Names without an account whose failures are remembered (oldest forgotten first).
MAX_UNKNOWN_TRACKED = 10_000
MAX_AUDIT_PAGE = 1000


@dataclass(frozen=True)
class AuditPage:
    """Audit entries, newest first, and the id the next page starts below (None on the last)."""

    items: list[AuditEntry]
    next_before: int | None


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def _shown_name(name: object) -> str:
    """A tried name as it may appear in the audit log (bounded, printable)."""
    text = name if isinstance(name, str) else repr(name)
    return "".join(c if c.isprintable() else "?" for c in text)[:64] or "?"


@traced_service
class AccountService:
    def __init__(self, uow_factory: UnitOfWorkFactory, *, hasher: PasswordHasher | None = None,
                 clock: Callable[[], datetime] = utcnow):
        self.uow_factory = uow_factory
        self.hasher = hasher or PasswordHasher()
        self.clock = clock
        self._dummy: str | None = None
        # name → (failures, backing off until) for names without an account (see authenticate)
        self._unknown: OrderedDict[str, tuple[int, datetime | None]] = OrderedDict()

    @property
    def _dummy_hash(self) -> str:
        """Verified for unknown names too, so a miss costs as long as a wrong password (made on first use)."""
        if self._dummy is None:
            self._dummy = self.hasher.hash(secrets.token_urlsafe(16))
        return self._dummy

    # ---- sign-in -----------------------------------------------------------------------

    def _verify(self, stored: str | None, password: str) -> bool:
        try:
            return self.hasher.verify(stored or self._dummy_hash, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    @unauthenticated("auth.login")
    def authenticate(self, name: str, password: str, source: Source) -> Actor:
        """The actor for a name and password; AuthenticationError (audited) otherwise.

        After a failure the name backs off (1, 2, 4, 8 s); the fifth failure in a row locks it
        for 15 minutes. During a backoff or lock the password is not checked and the error
        says when to retry. Names without an account back off alike (tracked in this process,
        ``_unknown``), so neither the wording nor the timing tells whether an account exists.
        """
        now = self.clock()
        shown = _shown_name(name)
        key = name.strip().lower() if isinstance(name, str) else ""
        with self.uow_factory() as uow:
            user = uow.users.find(name) if isinstance(name, str) else None
            failures, until = ((user.failed_logins, user.locked_until) if user is not None
                               else self._unknown.get(key, (0, None)))
            if until is not None and until > now:
                wait = (until - now).total_seconds()
                uow.audit.add(shown, "auth.login_failed", shown, {"reason": "backing off"}, source=source)
                uow.commit()
                raise AuthenticationError(f"too many failed sign-ins for {shown}; try again in {math.ceil(wait)} s",
                                          retry_after_s=wait)
            ok = isinstance(password, str) and self._verify(uow.users.password_hash(name) if user else None, password)
            if user is None or not ok or user.disabled:
                reason = "unknown user" if user is None else ("disabled" if ok else "wrong password")
                retry: float | None = None
                if not ok:
                    failures += 1
                    delay = LOCK_FOR if failures >= LOCK_AFTER else timedelta(
                        seconds=BACKOFF_BASE_S * 2 ** (failures - 1))
                    if user is not None:
                        uow.users.update(user.name, failed_logins=failures, locked_until=now + delay)
                    else:
                        self._remember_unknown(key, failures, now + delay)
                    if failures >= LOCK_AFTER:
                        retry = delay.total_seconds()
                uow.audit.add(shown, "auth.login_failed", shown, {"reason": reason}, source=source)
                uow.commit()
                if user is not None and ok and user.disabled:  # only with the right password
                    raise AuthenticationError(f"the account {user.name} is disabled; ask an admin")
                if retry is not None:
                    raise AuthenticationError(
                        f"{_BAD_LOGIN}; too many failed sign-ins: locked, try again in {int(retry)} s",
                        retry_after_s=retry)
                raise AuthenticationError(_BAD_LOGIN)
            if user.failed_logins or user.locked_until:
                uow.users.update(user.name, failed_logins=0, locked_until=None)
            uow.audit.add(user.name, "auth.login", user.name, {}, source=source)
            uow.commit()
        return Actor(user.name, user.role, source)

    def _remember_unknown(self, key: str, failures: int, until: datetime) -> None:
        self._unknown[key] = (failures, until)
        self._unknown.move_to_end(key)
        while len(self._unknown) > MAX_UNKNOWN_TRACKED:  # bounded: a flood of names cannot grow it
            self._unknown.popitem(last=False)

    @unauthenticated("auth.token")
    def actor_for_token(self, secret: str, source: Source) -> Actor:
        """The actor an API token stands for: its owner, with the token's role capped by the owner's."""
        if not isinstance(secret, str) or not secret.startswith(TOKEN_PREFIX):
            raise AuthenticationError(f"not a Phoenix API token (they start with {TOKEN_PREFIX})")
        now = self.clock()
        with self.uow_factory() as uow:
            token = uow.tokens.by_hash(token_hash(secret))
            if token is None:
                raise AuthenticationError("unknown API token")
            if token.revoked_at is not None:
                raise AuthenticationError(f"API token {token.id} ({token.name}) was revoked")
            if token.expires_at <= now:
                raise AuthenticationError(f"API token {token.id} ({token.name}) expired at "
                                          f"{token.expires_at:%Y-%m-%d %H:%M} UTC")
            owner = uow.users.find(token.owner)
            if owner is None or owner.disabled:
                raise AuthenticationError(f"API token {token.id}: its owner {token.owner} is disabled")
            uow.tokens.update(token.id, last_used_at=now)
            uow.commit()
        return Actor(owner.name, min(token.role, owner.role), source)

    @unauthenticated("auth.local")
    def actor_for_name(self, name: str, source: Source) -> Actor:
        """The actor of a local account, without a password: the CLI trusts the OS user who runs it
        against this database (a remote caller signs in or uses a token). NotFoundError when unknown."""
        with self.uow_factory() as uow:
            user = uow.users.get(name)
        if user.disabled:
            raise AuthenticationError(f"the account {user.name} is disabled; ask an admin")
        return Actor(user.name, user.role, source)

    @unauthenticated("user.init")
    def ensure_initial_admin(self, data_dir: Path | str) -> str | None:
        """When no user exists: create ``admin`` with a random password, write it to
        ``data_dir/initial_admin_password`` (mode 0600) and return it. None when users exist."""
        path = Path(data_dir) / INITIAL_PASSWORD_FILE
        with self.uow_factory() as uow:
            if uow.users.count():
                return None
            password = secrets.token_urlsafe(18)
            rec = uow.users.add(INITIAL_ADMIN, Role.ADMIN, self.hasher.hash(password))
            path.parent.mkdir(parents=True, exist_ok=True)
            # created 0600 from the start: never readable by others, not even briefly
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(password + "\n")
            os.chmod(path, 0o600)  # an existing file keeps its mode on O_CREAT
            uow.audit.add("phoenix", "user.add", rec.name, {"role": rec.role.label, "initial": True},
                          source="cli", after={"name": rec.name, "role": rec.role.label})
            uow.commit()
        log.info("created the initial admin account %r", INITIAL_ADMIN)
        return password

    # ---- users -------------------------------------------------------------------------

    @mutation("user.manage")
    def add_user(self, actor: Actor, name: str, role: Role | str, password: str) -> UserRecord:
        name, role, password = check_name(name), Role.parse(role), check_password(password)
        with self.uow_factory() as uow:
            rec = uow.users.add(name, role, self.hasher.hash(password))
            record(uow, name, after=_user_view(rec))
            uow.commit()
        return rec

    @query("user.read")
    def list_users(self, actor: Actor) -> list[UserRecord]:
        with self.uow_factory() as uow:
            return uow.users.list()

    @query("user.read")
    def get_user(self, actor: Actor, name: str) -> UserRecord:
        with self.uow_factory() as uow:
            return uow.users.get(name)

    def _change_user(self, name: str, removes_an_admin: Callable[[UserRecord], bool],
                     **changes: object) -> UserRecord:
        """One audited change to an account; refused when it would leave no enabled admin."""
        with self.uow_factory() as uow:
            old = uow.users.get(name)
            if removes_an_admin(old):
                _keep_an_admin(uow.users.list(), name)
            rec = uow.users.update(name, **changes)
            record(uow, name, before=_user_view(old), after=_user_view(rec))
            uow.commit()
        return rec

    @mutation("user.manage")
    def set_role(self, actor: Actor, name: str, role: Role | str) -> UserRecord:
        role = Role.parse(role)
        return self._change_user(name, lambda old: old.role == Role.ADMIN and role < Role.ADMIN, role=role)

    @mutation("user.manage")
    def disable(self, actor: Actor, name: str) -> UserRecord:
        return self._change_user(name, lambda old: old.role == Role.ADMIN and not old.disabled, disabled=True)

    @mutation("user.manage")
    def enable(self, actor: Actor, name: str) -> UserRecord:
        return self._change_user(name, lambda old: False, disabled=False, failed_logins=0, locked_until=None)

    @mutation("user.manage")
    def reset_password(self, actor: Actor, name: str, password: str) -> UserRecord:
        """A new password; also lifts a lockout. The audit entry says that it changed, never what to."""
        password = check_password(password)
        with self.uow_factory() as uow:
            uow.users.get(name)
            rec = uow.users.update(name, password_hash=self.hasher.hash(password), failed_logins=0,
                                   locked_until=None)
            record(uow, name, details={"password": "changed"})
            uow.commit()
        return rec

    # ---- API tokens --------------------------------------------------------------------

    @mutation("token.own")
    def create_token(self, actor: Actor, name: str, ttl: timedelta | float | str,
                     role: Role | str | None = None) -> tuple[TokenRecord, str]:
        """A new token for ``actor`` itself; returns the record and the secret (shown once, never stored).

        The token's role is at most the owner's (``role`` None: the owner's)."""
        label = (name or "").strip() if isinstance(name, str) else ""
        if not label or len(label) > 100 or not label.isprintable():
            raise ValidationError("a token name is 1 to 100 printable characters")
        seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else parse_duration(ttl, "token ttl")
        if not 60 <= seconds <= MAX_TOKEN_TTL_S:
            raise ValidationError("token ttl must be between 1 minute and 366 days")
        wanted = actor.role if role is None else Role.parse(role)
        if wanted > actor.role:
            raise ValidationError(f"a token's role is at most its owner's: {actor.name} is {actor.role.label}, "
                                  f"asked for {wanted.label}")
        now = self.clock()
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = TokenRecord(secrets.token_hex(6), actor.name, label, wanted, now, now + timedelta(seconds=seconds))
        with self.uow_factory() as uow:
            uow.users.get(actor.name)  # a token belongs to an account
            uow.tokens.add(token, token_hash(secret))
            record(uow, f"token:{token.id}", after=_token_view(token))
            uow.commit()
        return token, secret

    @query("token.own")
    def list_tokens(self, actor: Actor, owner: str | None = None, *, everyone: bool = False) -> list[TokenRecord]:
        """The actor's own tokens; another user's, or everyone's, need ``token.manage`` (admin)."""
        if everyone or (owner is not None and owner != actor.name):
            require(actor, "token.manage")
        with self.uow_factory() as uow:
            return uow.tokens.list(None if everyone else (owner or actor.name))

    @mutation("token.own")
    def revoke_token(self, actor: Actor, token_id: str) -> TokenRecord:
        """Revoke one of the actor's tokens (an admin may revoke anyone's); revoking twice is a no-op."""
        with self.uow_factory() as uow:
            old = uow.tokens.get(token_id)
            if old.owner != actor.name:
                require(actor, "token.manage")
            rec = old if old.revoked_at is not None else uow.tokens.update(token_id, revoked_at=self.clock())
            record(uow, f"token:{token_id}", before=_token_view(old), after=_token_view(rec))
            uow.commit()
        return rec

    @query("audit.read")
    def audit_page(self, actor: Actor, *, subject: str | None = None, by: str | None = None,
                   before: int | None = None, limit: int = 100) -> AuditPage:
        """A keyset page of the audit log, newest first, by subject and/or acting account (``by``)."""
        if not 1 <= limit <= MAX_AUDIT_PAGE:
            raise ValidationError(f"limit must be between 1 and {MAX_AUDIT_PAGE}")
        with self.uow_factory() as uow:
            rows = uow.audit.page(subject=subject, actor=by, before=before, limit=limit + 1)
        items = rows[:limit]
        return AuditPage([e for _, e in items], items[-1][0] if len(rows) > limit else None)

    @query("audit.read")
    def audit_log(self, actor: Actor, subject: str | None = None, limit: int = 500) -> list[AuditEntry]:
        """The newest audit entries (all subjects, or one)."""
        with self.uow_factory() as uow:
            return uow.audit.list(subject=subject, limit=limit)


def _keep_an_admin(users: list[UserRecord], name: str) -> None:
    if not any(u.role == Role.ADMIN and not u.disabled and u.name != name for u in users):
        raise ValidationError(f"{name} is the last enabled admin; make another user admin first")


def _user_view(rec: UserRecord) -> dict[str, object]:
    return {"name": rec.name, "role": rec.role.label, "disabled": rec.disabled}


def _token_view(rec: TokenRecord) -> dict[str, object]:
    return {"id": rec.id, "owner": rec.owner, "name": rec.name, "role": rec.role.label,
            "expires_at": rec.expires_at.isoformat(),
            "revoked_at": rec.revoked_at.isoformat() if rec.revoked_at else None}
