"""Shareable links: the current page's URL with its query params, shown for copying."""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlencode


def base_url() -> str:
    """The app's public address (``PHOENIX_PUBLIC_URL``), else the local default; never with a password."""
    from core.redact import mask_url

    raw = os.environ.get("PHOENIX_PUBLIC_URL") or "http://localhost:8501"
    return (mask_url(raw) if "@" in raw else raw).rstrip("/")


def link(path: str, params: Mapping[str, str]) -> str:
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return f"{base_url()}/{path.strip('/')}" + (f"?{query}" if query else "")


def copy_link(params: Mapping[str, str], what: str, path: str | None = None) -> str:
    """A copy-able link (st.code has a copy button) to this view."""
    import streamlit as st

    if path is None:
        ctx_url = _current_path()
        path = ctx_url or ""
    url = link(path, params)
    st.caption(f"Share this {what}:")
    st.code(url, language=None)
    return url


def _current_path() -> str:
    import streamlit as st

    try:
        return st.context.url.split("?")[0].split("/", 3)[3] if st.context.url else ""
    except (AttributeError, IndexError):
        return ""


def page_link(file: str, label: str, query_params: Mapping[str, str] | None = None) -> None:
    """A same-tab link to another page (``pages/<file>``) with query params.

    ``st.page_link`` resolves paths from the main script's folder (``app/``); when the page
    is not registered (a page run on its own, as in AppTest) a plain link stands in.
    """
    import streamlit as st
    from streamlit.errors import StreamlitAPIException

    try:
        st.page_link(f"../pages/{file}", label=label, query_params=dict(query_params or {}))
    except StreamlitAPIException:
        st.markdown(f"[{label}]({link(file.removesuffix('.py'), query_params or {})})")
