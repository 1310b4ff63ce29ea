"""Shareable links: the current page's URL with its query params, shown for copying."""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlencode


def base_url() -> str:
    """The app's public address (``PHOENIX_PUBLIC_URL``), else the local default."""
    return os.environ.get("PHOENIX_PUBLIC_URL", "http://localhost:8501").rstrip("/")


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
