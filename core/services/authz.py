"""Roles enforced once, here: every public service method is a query or a mutation.

::

    @query("experiment.read")
    def get(self, actor: Actor, experiment_id: str) -> Experiment: ...

    @mutation("experiment.cancel")
    def cancel(self, actor: Actor, request: CancelExperiment) -> Experiment:
        with self.uow_factory() as uow:
            ...
            record(uow, exp.id, before=..., after=...)   # in the same unit of work
            uow.commit()

Both decorators check ``PERMISSIONS`` before the method runs (``PermissionDenied``, nothing
done). A mutation leaves **exactly one** audit entry when it returns: the one its body wrote
with ``record`` inside its unit of work (so it commits atomically with the change), or, when
the body wrote none (no database change: a no-op, a change outside the database), one the
decorator writes itself afterwards. A second ``record`` in one call is refused.

``unauthenticated`` marks the few entry points that run before anyone is signed in
(sign-in, token look-up, the initial admin, adopting old settings files at start-up); they
audit themselves. ``internal`` marks reads the system itself makes without a user (the
price cards an analysis prices with): only for actions every viewer may do anyway.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal, ParamSpec, TypeVar

from core.domain.accounts import PERMISSIONS, Actor, require
from core.domain.ports import UnitOfWork, UnitOfWorkFactory

P = ParamSpec("P")
R = TypeVar("R")
Kind = Literal["query", "mutation", "unauthenticated", "internal"]
#: Attribute the decorators set on a method: ``(kind, action)``.
DECLARED = "__phoenix_authz__"


@dataclass
class _Pending:
    actor: Actor
    action: str
    details: dict[str, Any] = field(default_factory=dict)
    recorded: int = 0


_pending: ContextVar[_Pending | None] = ContextVar("phoenix_pending_audit", default=None)


class AuditProtocolError(RuntimeError):
    """A programming error: a service recorded twice, or outside a mutation."""


def declared(fn: Callable[..., Any]) -> tuple[Kind, str] | None:
    """``(kind, action)`` of a decorated method, None when undeclared."""
    return getattr(fn, DECLARED, None)


def _actor_of(sig: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Actor:
    bound = sig.bind_partial(*args, **kwargs)
    actor = bound.arguments.get("actor")
    return actor  # type: ignore[return-value]  # ``require`` refuses anything that is not an Actor


def _declare(kind: Kind, action: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    if action not in PERMISSIONS and kind != "unauthenticated":
        raise ValueError(f"{action!r} is not in core.domain.accounts.PERMISSIONS")
    if kind == "internal" and PERMISSIONS[action] != min(PERMISSIONS.values()):
        raise ValueError(f"{action!r} needs more than a viewer: it cannot be read without an actor")

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        sig = inspect.signature(fn)
        if kind in ("query", "mutation") and "actor" not in sig.parameters:
            raise TypeError(f"{fn.__qualname__} is declared {kind} {action!r} but takes no actor")

        @functools.wraps(fn)
        def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            if kind in ("unauthenticated", "internal"):
                return fn(*args, **kwargs)
            actor = _actor_of(sig, args, kwargs)
            require(actor, action)
            if kind == "query" or _pending.get() is not None:
                # a query, or a helper call inside a mutation: the outer mutation audits
                return fn(*args, **kwargs)
            pending = _Pending(actor, action)
            token = _pending.set(pending)
            try:
                result = fn(*args, **kwargs)
            finally:
                _pending.reset(token)
            if pending.recorded == 0:
                owner = args[0] if args else None
                factory: UnitOfWorkFactory | None = getattr(owner, "uow_factory", None)
                if factory is None:
                    raise AuditProtocolError(f"{fn.__qualname__}: a mutation without a unit of work to audit in")
                with factory() as uow:
                    _write(uow, pending, "", None, None, {})
                    uow.commit()
            return result

        setattr(inner, DECLARED, (kind, action))
        return inner

    return wrap


def query(action: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A read: the actor's role must reach ``PERMISSIONS[action]``; nothing is audited."""
    return _declare("query", action)


def mutation(action: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A state change: role check first, then exactly one audit entry (see the module doc)."""
    return _declare("mutation", action)


def unauthenticated(action: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """An entry point that runs before anyone is signed in; it audits itself."""
    return _declare("unauthenticated", action)


def internal(action: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A viewer-level read the system makes without a user (configuration it runs with)."""
    return _declare("internal", action)


def current_actor() -> Actor | None:
    """The actor of the mutation in progress (None outside one)."""
    pending = _pending.get()
    return None if pending is None else pending.actor


def _write(uow: UnitOfWork, pending: _Pending, target: str, before: Any, after: Any,
           details: dict[str, Any]) -> None:
    pending.recorded += 1
    uow.audit.add(pending.actor.name, pending.action, target, {**pending.details, **details},
                  source=pending.actor.source, before=before, after=after)


def record(uow: UnitOfWork, target: str, *, before: Any = None, after: Any = None,
           details: dict[str, Any] | None = None, action: str | None = None) -> None:
    """Write the audit entry of the mutation in progress into ``uow`` (commit it with the change).

    ``action`` refines the declared one when a method covers two (promote / force promote);
    it must need at least the same role.
    """
    pending = _pending.get()
    if pending is None:
        raise AuditProtocolError("record() outside a mutation")
    if pending.recorded:
        raise AuditProtocolError(f"{pending.action}: a mutation records exactly one audit entry")
    if action is not None and action != pending.action:
        if PERMISSIONS[action] < PERMISSIONS[pending.action]:
            raise AuditProtocolError(f"{action} needs less than {pending.action}")
        require(pending.actor, action)
        pending.action = action
    _write(uow, pending, target, before, after, dict(details or {}))


def public_methods(cls: type) -> dict[str, Callable[..., Any]]:
    """Every public method a service class offers (what must be declared)."""
    return {name: fn for name, fn in inspect.getmembers(cls, inspect.isfunction) if not name.startswith("_")}
