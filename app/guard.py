"""The one guard every page render and every action passes through (DESIGN §10).

Today there is a single local user with the ``admin`` role; the shape is what matters:
pages call ``guard.page(name)`` before rendering and wrap each state-changing action as
``guard.action("experiment.cancel", Role.OPERATOR)(fn)``. When accounts (local or OIDC
through ``st.login``) arrive, only ``current_user`` changes.
"""

from __future__ import annotations

import enum
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

import streamlit as st

from core.domain.errors import PhoenixError

log = logging.getLogger("phoenix.app.guard")
P = ParamSpec("P")
R = TypeVar("R")


class Role(enum.IntEnum):
    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3


@dataclass(frozen=True)
class User:
    name: str
    role: Role


LOCAL_ADMIN = User(name="local", role=Role.ADMIN)


class PermissionDenied(PhoenixError):
    pass


def current_user() -> User:
    """The signed-in actor ``app.auth`` keeps in the session; the local admin when there is none."""
    return st.session_state.get("phoenix_actor") or LOCAL_ADMIN


def allowed(required: Role, user: User | None = None) -> bool:
    return (user or current_user()).role >= required


def page(name: str, required: Role = Role.VIEWER) -> User:
    """Check the current user may see page ``name``; raise PermissionDenied otherwise."""
    user = current_user()
    if user.role < required:
        raise PermissionDenied(f"{user.name} ({user.role.name.lower()}) may not open {name}")
    return user


def action(name: str, required: Role = Role.OPERATOR) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a named action: role check, then the call, with the actor logged."""

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            user = current_user()
            if user.role < required:
                raise PermissionDenied(
                    f"{user.name} ({user.role.name.lower()}) may not {name}; needs {required.name.lower()}")
            log.info("action %s by %s", name, user.name)
            return fn(*args, **kwargs)

        inner.action_name = name  # type: ignore[attr-defined]
        return inner

    return wrap
