"""Error boundary: exceptions become ``st.error`` with a correlation id, never a traceback.

User errors (``PhoenixError``) show their message as-is. Anything else is a bug: the
user sees a short message and an id; the log holds the traceback under the same id.
The id is the script run's correlation id (``app.telemetry``), which every log line of
that run carries, so ``grep '"correlation_id": "<id>"'`` finds the traceback and its context.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar

from core.domain.errors import PhoenixError
from core.observability import context
from core.observability.metrics import UI_ERRORS

log = logging.getLogger("phoenix.app")

#: The page this script run shows (set by ``app.telemetry.page_run``): the ``page`` label of UI_ERRORS.
CURRENT_PAGE: ContextVar[str | None] = ContextVar("phoenix_ui_page", default=None)


def correlation_id() -> str:
    """This run's correlation id; outside a run of the router (a page run alone, tests) a new one, bound."""
    cid = context.correlation_id()
    if cid is None:
        cid = context.new_id()
        context.bind(correlation_id=cid)
    return cid


def report(exc: BaseException, where: str = "page") -> str:
    """Show ``exc`` in the page, log it and count it; returns the reference shown (the correlation id)."""
    import streamlit as st

    cid = correlation_id()
    UI_ERRORS.labels(CURRENT_PAGE.get() or where, "user" if isinstance(exc, PhoenixError) else "bug").inc()
    if isinstance(exc, PhoenixError):
        log.warning("%s: %s [%s]", where, exc, cid)
        st.error(f"{exc}  \n(reference {cid})")
    else:
        log.exception("%s failed [%s]", where, cid, exc_info=exc)
        st.error(f"Something went wrong in {where}: {type(exc).__name__}: {exc}.  \n"
                 f"The details are in the server log under reference **{cid}**.")
    return cid


def _is_control_flow(exc: BaseException) -> bool:
    # st.rerun / st.stop / st.switch_page work by raising; they must pass through.
    name = type(exc).__name__
    return name in {"RerunException", "StopException"}


@contextlib.contextmanager
def boundary(where: str = "page") -> Iterator[None]:
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - the point of a boundary
        if _is_control_flow(exc):
            raise
        report(exc, where)
