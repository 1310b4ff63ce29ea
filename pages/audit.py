"""Audit (admins): who did what, when, from where; filters, paging and a CSV export."""

from __future__ import annotations

from datetime import date

import streamlit as st

from app import guard
from app.widgets import audit as aw
from app.widgets import backend
from app.widgets.boundary import boundary


def render() -> None:
    guard.page("audit", guard.Role.ADMIN)
    st.title("Audit")
    entries = backend.services().accounts.audit_log(guard.current_user(), limit=aw.FETCH_LIMIT)
    st.caption("Every state change and sign-in, newest first. The log is append-only."
               + (f" Showing the newest {aw.FETCH_LIMIT} entries." if len(entries) >= aw.FETCH_LIMIT else ""))
    a, b, c = st.columns(3)
    actors = a.multiselect("Actor", sorted({e.actor for e in entries}), key="audit.actor")
    actions = b.multiselect("Action", sorted({e.action for e in entries}), key="audit.action")
    sources = c.multiselect("Source", sorted({e.source or "" for e in entries}), key="audit.source")
    d, t = st.columns([1, 2])
    days = d.date_input("Time range (UTC days)", value=(), key="audit.range")
    target = t.text_input("Target contains", key="audit.target")
    span = tuple(days) if isinstance(days, tuple | list) else (days,)
    since: date | None = span[0] if span else None
    until: date | None = span[1] if len(span) > 1 else since
    chosen = aw.select(entries, aw.AuditFilter(tuple(actors), tuple(actions), tuple(sources), since, until, target))
    n_pages = aw.pages(len(chosen))
    if st.session_state.get("audit.page", 1) > n_pages:
        st.session_state["audit.page"] = n_pages  # the filters narrowed: stay on a page that exists
    p1, p2 = st.columns([1, 3])
    page = p1.number_input(f"Page (of {n_pages})", 1, n_pages, 1, key="audit.page")
    p2.download_button(f"Export {len(chosen)} entries as CSV", aw.to_csv(chosen), "phoenix-audit.csv",
                       "text/csv", key="audit.csv")
    if not chosen:
        st.info("No entry matches these filters.")
        return
    st.dataframe([aw.row(e) for e in aw.page_of(chosen, int(page))], hide_index=True, width="stretch")


with boundary("Audit"):
    render()
