"""The one guard every page render and every action passes through (docs/accounts.md).

``current_user()`` is the ``Actor`` the login page put in ``st.session_state["phoenix_actor"]``.
Pages call ``guard.page(name)`` first: with nobody signed in it shows "sign in" and stops the
page. State-changing widgets are wrapped as ``guard.action("experiment.cancel")``: an early,
friendly refusal, so a role's forbidden buttons can be hidden (``guard.allowed``). The rule
itself is enforced below, in the services (``core.services.authz``): a tampered session gets
``PermissionDenied`` there, never the action.

``PHOENIX_AUTH=off`` (tests, local development only) signs every visitor in as ``DEV_ACTOR``,
an admin; the default is on.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import streamlit as st

from core.domain.accounts import PERMISSIONS, Actor, Role
from core.domain.errors import PermissionDenied, PhoenixError

__all__ = ["DEV_ACTOR", "SESSION_KEY", "Actor", "NotSignedIn", "PermissionDenied", "Role", "action", "allowed",
           "auth_enabled", "current_user", "page"]

log = logging.getLogger("phoenix.app.guard")
P = ParamSpec("P")
R = TypeVar("R")

#: Where the login page keeps the signed-in Actor.
SESSION_KEY = "phoenix_actor"
#: Everyone, when PHOENIX_AUTH=off (never the default).
DEV_ACTOR = Actor("dev-no-auth", Role.ADMIN, "ui")
SIGN_IN = "Please sign in to use Phoenix."


class NotSignedIn(PhoenixError):
    """No signed-in user in this session."""

    def __init__(self) -> None:
        super().__init__(SIGN_IN)


def auth_enabled() -> bool:
    return os.environ.get("PHOENIX_AUTH", "on").strip().lower() not in ("off", "0", "false", "no")


def current_user() -> Actor:
    """The signed-in user; NotSignedIn when there is none (DEV_ACTOR with PHOENIX_AUTH=off)."""
    actor = st.session_state.get(SESSION_KEY)
    if isinstance(actor, Actor):
        return actor
    if not auth_enabled():
        return DEV_ACTOR
    raise NotSignedIn()


def _needed(name: str, required: Role | None) -> Role:
    return PERMISSIONS.get(name, required or Role.OPERATOR)


def allowed(name_or_role: str | Role, user: Actor | None = None) -> bool:
    """May ``user`` (default: the signed-in one) do this action (or hold this role)? False when signed out."""
    try:
        actor = user or current_user()
    except NotSignedIn:
        return False
    needed = name_or_role if isinstance(name_or_role, Role) else PERMISSIONS[name_or_role]
    return actor.role >= needed


def page(name: str, required: Role = Role.VIEWER) -> Actor:
    """The user who may see page ``name``. Signed out: the page shows "sign in" and stops.
    A role below ``required``: PermissionDenied."""
    try:
        user = current_user()
    except NotSignedIn:
        st.info(SIGN_IN)
        st.stop()
        raise  # st.stop() raises; this is for readers and type checkers
    if user.role < required:
        raise PermissionDenied(user.name, user.role.label, f"open {name}", required.label)
    return user


def action(name: str, required: Role | None = None) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a widget's named action: refuse early when the role is too low (the services check again)."""

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            user = current_user()
            needed = _needed(name, required)
            if user.role < needed:
                raise PermissionDenied(user.name, user.role.label, name, needed.label)
            log.info("action %s by %s", name, user.name)
            return fn(*args, **kwargs)

        inner.action_name = name  # type: ignore[attr-defined]
        return inner

    return wrap
