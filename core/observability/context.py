"""The correlation id (and the experiment id) of the work in hand, for every log line and span.

A correlation id names one piece of work a user started: an API request (its
``X-Request-ID``), one Streamlit script run, one CLI invocation. It lives in a
``contextvars.ContextVar``, so threads and asyncio tasks each see their own, and
``core.observability.logs`` puts it on every line. It travels on:

- API/UI → services: the same thread or task, nothing to pass;
- services → scheduler: stored with the experiment it created (``Experiment.correlation_id``);
  the scheduler binds it again while it steps that experiment;
- runtime → child processes: ``PHOENIX_CORRELATION_ID`` / ``PHOENIX_EXPERIMENT_ID`` in their
  environment (:func:`child_env`), read back by :func:`bind_from_env`.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Final

CORRELATION_ENV: Final = "PHOENIX_CORRELATION_ID"
EXPERIMENT_ENV: Final = "PHOENIX_EXPERIMENT_ID"

#: What an id taken from outside (a header, the environment) may look like: short, no spaces,
#: nothing a log parser or a shell could trip on.
_SANE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

_correlation_id: ContextVar[str | None] = ContextVar("phoenix_correlation_id", default=None)
_experiment_id: ContextVar[str | None] = ContextVar("phoenix_experiment_id", default=None)


def new_id() -> str:
    """A fresh correlation id: 16 hex digits, short enough to read out from an error message."""
    return secrets.token_hex(8)


def sane_id(value: str | None) -> str | None:
    """``value`` if it is a usable id (≤ 64 of ``[A-Za-z0-9._-]``), else None."""
    if value is None:
        return None
    value = value.strip()
    return value if _SANE_ID.fullmatch(value) else None


def correlation_id() -> str | None:
    """The correlation id bound in this context, if any."""
    return _correlation_id.get()


def experiment_id() -> str | None:
    """The experiment id bound in this context, if any."""
    return _experiment_id.get()


@contextmanager
def correlation(cid: str | None = None, *, experiment: str | None = None) -> Iterator[str]:
    """Bind ``cid`` (a new id when None) and, if given, ``experiment`` for the block; yields the id.

    Everything bound inside the block (also by :func:`bind`) is undone when it ends.
    """
    cid = cid or new_id()
    with scope():
        _correlation_id.set(cid)
        if experiment is not None:
            _experiment_id.set(experiment)
        yield cid


@contextmanager
def scope(*, experiment: str | None = None) -> Iterator[None]:
    """Restore both ids to their values at entry when the block ends (whatever it bound).

    With ``experiment``, binds that experiment id for the block (the correlation id stays).
    """
    tokens = (_correlation_id.set(_correlation_id.get()), _experiment_id.set(_experiment_id.get()))
    try:
        if experiment is not None:
            _experiment_id.set(experiment)
        yield
    finally:
        _experiment_id.reset(tokens[1])
        _correlation_id.reset(tokens[0])


def bind(*, correlation_id: str | None = None, experiment_id: str | None = None) -> None:
    """Bind ids until the enclosing :func:`scope`/:func:`correlation` ends (None: leave as is).

    For code that learns an id half-way through a scoped block (the scheduler reads an
    experiment's correlation id from the database inside the step's scope). Outside any
    scope it binds for the rest of the thread or task: a process's entry point does that once.
    """
    if correlation_id:
        _correlation_id.set(correlation_id)
    if experiment_id:
        _experiment_id.set(experiment_id)


def child_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` plus the bound ids as ``PHOENIX_CORRELATION_ID``/``PHOENIX_EXPERIMENT_ID`` for a child process."""
    out = dict(env or {})
    cid, eid = _correlation_id.get(), _experiment_id.get()
    if cid:
        out[CORRELATION_ENV] = cid
    if eid:
        out[EXPERIMENT_ENV] = eid
    return out


def bind_from_env(env: Mapping[str, str]) -> str | None:
    """In a child process: bind the ids its parent passed (insane values are ignored); the correlation id."""
    cid = sane_id(env.get(CORRELATION_ENV))
    bind(correlation_id=cid, experiment_id=sane_id(env.get(EXPERIMENT_ENV)))
    return cid
