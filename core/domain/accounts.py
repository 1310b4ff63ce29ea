"""Who may do what: roles, the acting user, and the permission table the services enforce.

Every service method names one action of ``PERMISSIONS``; ``core.services.authz`` refuses
an actor whose role is below that action's minimum before anything happens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Literal

from core.domain.errors import PermissionDenied, ValidationError

Source = Literal["ui", "cli", "api", "grpc", "scheduler", "operator", "share"]
SOURCES: tuple[str, ...] = ("ui", "cli", "api", "grpc", "scheduler", "operator", "share")

#: Account names: short, printable, usable on a command line and in a git author.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024


class Role(IntEnum):
    """Ordered: a higher role may do everything a lower one may."""

    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str | int | Role) -> Role:
        """``viewer`` / ``operator`` / ``admin`` (any case) or the number; ValidationError otherwise."""
        if isinstance(value, Role):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                return cls(value)
            except ValueError:
                pass
        elif isinstance(value, str) and value.strip().upper() in cls.__members__:
            return cls[value.strip().upper()]
        raise ValidationError(f"role must be one of viewer, operator, admin, got {value!r}")


@dataclass(frozen=True)
class Actor:
    """The acting user of one call: an account name, its role, and where the call came from."""

    name: str
    role: Role
    source: Source

    def __str__(self) -> str:
        return f"{self.name} ({self.role.label}, {self.source})"


#: The scheduler's own transitions (deploy, analyse, tear down) are audited under this actor.
SYSTEM_SCHEDULER = Actor("scheduler", Role.ADMIN, "scheduler")

_V, _O, _A = Role.VIEWER, Role.OPERATOR, Role.ADMIN

#: action → the lowest role that may do it.
PERMISSIONS: dict[str, Role] = {
    # viewer: read everything that is not about accounts, download reports
    "experiment.read": _V,
    "pipeline.read": _V,
    "production.read": _V,
    "report.download": _V,
    "settings.read": _V,
    "system.read": _V,
    "share.read": _V,
    # operator: experiments (``phoenix experiment run`` is create + drive) and pipelines
    "experiment.create": _O,
    "experiment.rerun": _O,
    "experiment.cancel": _O,
    "pipeline.save": _O,
    "pipeline.retrain": _O,
    "snapshot.add": _O,
    "share.create": _O,
    "share.revoke": _O,
    # admin: production, settings, accounts, the audit log
    "experiment.promote": _A,
    "experiment.force_promote": _A,
    "settings.edit": _A,
    "settings.inspect": _A,  # every setting with its source (URLs masked): the Settings page's view
    "system.prune": _A,
    "user.read": _A,
    "user.manage": _A,
    "token.manage": _A,
    "audit.read": _A,
    # every signed-in user makes and revokes their own tokens (capped at their role);
    # ``token.manage`` above is for everyone's tokens
    "token.own": _V,
}

#: Actions recorded without a signed-in actor (the attempt itself is the event).
LOGIN_ACTIONS = ("auth.login", "auth.login_failed")


def allowed(role: Role, action: str) -> bool:
    """True when ``role`` may do ``action``; an action missing from the table is a programming error."""
    return role >= PERMISSIONS[action]


def require(actor: Actor, action: str) -> None:
    """PermissionDenied unless ``actor`` may do ``action``."""
    if not isinstance(actor, Actor):
        raise PermissionDenied(str(actor), "nobody", action, PERMISSIONS[action].label)
    needed = PERMISSIONS[action]
    if actor.role < needed:
        raise PermissionDenied(actor.name, actor.role.label, action, needed.label)


def check_name(name: object) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name.strip()):
        raise ValidationError("an account name is 1 to 64 letters, digits, '.', '_', '@' or '-', "
                              "starting with a letter or digit")
    return name.strip()


def check_password(password: object) -> str:
    """The password as given; the error never repeats it."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise ValidationError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise ValidationError(f"a password must be at most {MAX_PASSWORD} characters")
    if "\x00" in password or "\n" in password:
        raise ValidationError("a password must not contain NUL or newline characters")
    return password


@dataclass(frozen=True)
class UserRecord:
    """An account as the store holds it (the password hash never leaves the store via this)."""

    name: str
    role: Role
    disabled: bool
    failed_logins: int
    locked_until: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class TokenRecord:
    """An API token; only the hash of its secret is stored."""

    id: str
    owner: str
    name: str
    role: Role
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
