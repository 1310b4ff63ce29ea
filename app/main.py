"""Phoenix app entry point: a router over the pages (no logic here)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

PAGES_DIR = Path(__file__).resolve().parent.parent / "pages"

st.set_page_config(page_title="Phoenix", page_icon="🔥", layout="wide")

# (file, title, icon, default). Pages built by other parts join this list as they land.
PAGES = [
    ("overview.py", "Overview", ":material/dashboard:", True),
    ("builder.py", "Pipeline Builder", ":material/account_tree:", False),
    ("cost_explorer.py", "Cost Explorer", ":material/payments:", False),
    ("settings.py", "Settings", ":material/settings:", False),
]

navigation = st.navigation(
    [
        st.Page(PAGES_DIR / file, title=title, icon=icon, default=default)
        for file, title, icon, default in PAGES
        if (PAGES_DIR / file).is_file()
    ]
)
navigation.run()
