"""Error boundary: exceptions become ``st.error`` with a correlation id, never a traceback.

User errors (``PhoenixError``) show their message as-is. Anything else is a bug: the
user sees a short message and an id; the log holds the traceback under the same id.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator

from core.domain.errors import PhoenixError

log = logging.getLogger("phoenix.app")


def correlation_id() -> str:
    return uuid.uuid4().hex[:12]


def report(exc: BaseException, where: str = "page") -> str:
    """Show ``exc`` in the page and log it; returns the correlation id."""
    import streamlit as st

    cid = correlation_id()
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
