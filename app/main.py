"""Phoenix app entry point: a router over the pages (no logic here)."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# `streamlit run app/main.py` puts app/ on sys.path, not the repository root that holds
# the `app` and `pages` packages the pages import.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from app import auth, guard, telemetry  # noqa: E402 - needs the repository root on sys.path (above)

PAGES_DIR = Path(__file__).resolve().parent.parent / "pages"

st.set_page_config(page_title="Phoenix", page_icon="🔥", layout="wide")
telemetry.start_run()  # this run's correlation id: its log lines, spans, and any error's reference

# (file, title, icon, default).
PAGES = [
    ("overview.py", "Overview", ":material/dashboard:", True),
    ("builder.py", "Pipeline Builder", ":material/account_tree:", False),
    ("catalogue.py", "Pipeline Catalogue", ":material/library_books:", False),
    ("wizard.py", "New Experiment", ":material/science:", False),
    ("experiment.py", "Experiments", ":material/monitoring:", False),
    ("cost_explorer.py", "Cost Explorer", ":material/payments:", False),
    ("recommend.py", "Recommend", ":material/recommend:", False),
    ("settings.py", "Settings", ":material/settings:", False),
]

if "share" in st.query_params:
    # A share link: only its read-only view, at the path the link names; no other page is
    # registered, so there is no navigation and no sign-in (the signed token is the credential).
    navigation = st.navigation([
        st.Page(PAGES_DIR / "shared.py", title="Shared experiment", url_path="experiment", default=True),
        st.Page(PAGES_DIR / "shared.py", title="Shared pipeline", url_path="builder"),
    ], position="hidden")
    with telemetry.page_run(navigation.title):
        navigation.run()
    st.stop()

# Admin pages: (file, title, icon, the action that shows them in the navigation).
ADMIN_PAGES = [
    ("users.py", "Users", ":material/group:", "user.read"),
    ("audit.py", "Audit", ":material/policy:", "audit.read"),
]

# Nobody gets a page without a signed session. The pages are registered even then (hidden),
# so the address asked for survives the sign-in form and opens once signed in.
actor = auth.signed_in()
signed = actor is not None or auth.auth_off()

navigation = st.navigation(
    [
        st.Page(PAGES_DIR / file, title=title, icon=icon, default=default)
        for file, title, icon, default in PAGES
    ]
    + [
        st.Page(PAGES_DIR / file, title=title, icon=icon)
        for file, title, icon, needs in ADMIN_PAGES
        if not signed or guard.allowed(needs)
    ],
    position="sidebar" if signed else "hidden",
)
if not signed:
    with telemetry.page_run("Sign in"):
        auth.login_form()
    st.stop()
auth.sidebar(actor)
with telemetry.page_run(navigation.title):
    navigation.run()
