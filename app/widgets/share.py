"""Shareable links: the current page's URL with its query params, shown for copying.

The query parameters of a shared link are hostile input (anyone can edit a URL), so each
page reads them through a pure parser here — ``experiment_query`` (``/experiment?id=``),
``builder_query`` (``/builder?pipeline=&version=``) and ``cost_explorer_query``
(``/cost_explorer?hosts=&procs=&interval=&pipeline=&card=``) — that returns values the page
can use as they are, or raises ``ValidationError`` with a sentence to show. The cost explorer
never refuses: a value it cannot use falls back to its default.

Those links only say where to look; whoever opens them still needs the app. A *signed* share
link (``?share=<token>``, ``core.services.shares``) opens one experiment or pipeline version
read-only without login: ``share_token`` reads it, ``links_section`` lists, creates and
revokes an experiment's links.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from app import guard
from app.widgets import backend
from app.widgets.backend import public_url
from core.domain.accounts import Actor
from core.domain.errors import ValidationError
from core.services.shares import parse_ttl

#: Longest query value echoed back in a message.
_SHOWN = 40
_EXPERIMENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,31}$")  # ids are at most 32 characters (the column)
_PIPELINE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,79}$")  # core.domain.pipeline.NAME_RE
_MAX_VERSION = 999_999_999
COST_DEFAULTS: dict[str, Any] = {"hosts": 1000, "procs": 300, "interval": 10, "pipeline": "process-topk-v1",
                                 "card": "all"}
COST_LIMITS = {"hosts": (1, 100_000), "procs": (10, 2000), "interval": (1, 3600)}
COST_INTERVALS = (5, 10, 15, 30, 60, 120, 300)


def _shown(value: object) -> str:
    text = str(value)
    text = "".join(c if c.isprintable() else "?" for c in text[:_SHOWN])
    return repr(text + ("…" if len(str(value)) > _SHOWN else ""))


def _param(params: Mapping[str, Any], key: str) -> str | None:
    """One query value as text (Streamlit gives the last of repeated keys; lists are taken the same way)."""
    value = params.get(key)
    if isinstance(value, list | tuple):
        value = value[-1] if value else None
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def experiment_query(params: Mapping[str, Any]) -> str | None:
    """``?id=`` → the experiment id to open (None when absent); ValidationError when it cannot be one."""
    raw = _param(params, "id")
    if raw is None or not raw.strip():
        return None
    value = raw.strip()
    if not _EXPERIMENT_ID.match(value):
        raise ValidationError(f"{_shown(raw)} is not an experiment id (like exp-1a2b3c4d)")
    return value


def builder_query(params: Mapping[str, Any]) -> tuple[str, int | None] | None:
    """``?pipeline=NAME[&version=N]`` → (name, version or None); None when no pipeline is named."""
    name = _param(params, "pipeline")
    if name is None or not name.strip():
        return None
    name = name.strip()
    if not _PIPELINE_NAME.match(name):
        raise ValidationError(f"{_shown(name)} is not a pipeline name (a-z, 0-9, '.', '_', '-'; at most 80)")
    raw = _param(params, "version")
    if raw is None or not raw.strip():
        return name, None
    v = raw.strip()
    if not (v.isascii() and v.isdigit()) or len(v) > 9 or not 1 <= int(v) <= _MAX_VERSION:
        raise ValidationError(f"version {_shown(raw)} of {name} must be a whole number from 1")
    return name, int(v)


def missing_note(params: Mapping[str, Any], key: str, known: Sequence[str], what: str,
                 instead: str | None = None) -> str | None:
    """The warning for a link whose ``?key=`` names a ``what`` that does not exist here (None when
    it exists or is absent), so a page never falls back silently to something else."""
    want = _param(params, key)
    if want is None or not want.strip() or want.strip() in known:
        return None
    shown = f" Showing {instead} instead." if instead else ""
    return f"This link asks for {what} {_shown(want.strip())}, which does not exist here.{shown}"


def share_token(params: Mapping[str, Any]) -> str | None:
    """``?share=`` → the token as given (None when absent); the service judges it, bounded."""
    raw = _param(params, "share")
    return None if raw is None else raw[:4096]


def _int_or(raw: str | None, default: int, lo: int, hi: int) -> int:
    text = (raw or "").strip()
    body = text[1:] if text[:1] in "+-" else text
    if not body or not (body.isascii() and body.isdigit()) or len(body) > 12:
        return default
    return max(lo, min(hi, int(text)))


def cost_explorer_query(params: Mapping[str, Any], pipelines: Sequence[str], card_ids: Sequence[str]) -> dict[str, Any]:
    """The cost explorer's state from its link: every value usable as is, defaults for what is not."""
    out: dict[str, Any] = {}
    for key, (lo, hi) in COST_LIMITS.items():
        out[key] = _int_or(_param(params, key), int(COST_DEFAULTS[key]), lo, hi)
    out["interval"] = min(COST_INTERVALS, key=lambda v: (abs(v - out["interval"]), v))
    want_p, want_c = _param(params, "pipeline"), _param(params, "card")
    default_p = COST_DEFAULTS["pipeline"] if COST_DEFAULTS["pipeline"] in pipelines else (pipelines[0] if pipelines
                                                                                          else None)
    out["pipeline"] = want_p if want_p in pipelines else default_p
    out["card"] = want_c if want_c in card_ids else ("all" if "all" in card_ids or not card_ids else card_ids[0])
    return out


def base_url() -> str:
    """The app's public address (Settings or ``PHOENIX_PUBLIC_URL``), else the local default; never with a password."""
    from core.redact import mask_url

    raw = public_url()
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


def links_section(scope_kind: str, scope_ref: str, what: str) -> None:
    """The signed read-only links to one resource: who made them, until when, revoke; make one."""
    import streamlit as st

    shares = backend.services().shares
    st.subheader("Share links")
    st.caption(f"A share link opens this {what} read-only, without signing in, until it expires or is revoked.")
    links = shares.list_for(backend_actor(), scope_kind, scope_ref)
    for link in links:
        status = shares.status(link)
        c = st.columns([3, 3, 2, 1])
        c[0].markdown(f"`{link.id}` by **{link.created_by}**")
        c[1].markdown(f"expires {link.expires_at:%Y-%m-%d %H:%M} UTC")
        c[2].markdown(status + (f" (by {link.revoked_by})" if link.revoked_by else ""))
        if status == "active" and guard.allowed("share.revoke") and c[3].button("Revoke", key=f"share.revoke.{link.id}"):
            shares.revoke(backend_actor(), link.id)
            st.rerun()
    if not guard.allowed("share.create"):  # viewers see the links, not the controls
        return
    c = st.columns([2, 1])
    ttl = c[0].selectbox("Valid for", ["1h", "24h", "7d", "30d"], index=2, key=f"share.ttl.{scope_ref}")
    if c[1].button("Create share link", key=f"share.create.{scope_ref}"):
        _, url = shares.create(backend_actor(), scope_kind, scope_ref, parse_ttl(ttl))
        st.session_state["share.created"] = (scope_ref, url)
        st.rerun()  # redraw the list with the new link in it
    made = st.session_state.get("share.created")
    if made and made[0] == scope_ref:
        st.success("Share link created; copy it now:")
        st.code(made[1], language=None)


def backend_actor() -> Actor:
    """Who acts in the UI: the signed-in user (the services check the role)."""
    return guard.current_user()
