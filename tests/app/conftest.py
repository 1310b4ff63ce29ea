"""AppTest fixtures: every test gets its own data directory (SQLite file, GitOps repo).

Autouse: a page that touches services must never bootstrap against ./data.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def app_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("PHOENIX_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PHOENIX_DATABASE_URL", f"sqlite:///{tmp_path}/phoenix.db")
    monkeypatch.setenv("PHOENIX_GITOPS_REPO", str(tmp_path / "gitops"))
    monkeypatch.setenv("PHOENIX_EMBEDDED_SCHEDULER", "false")
    monkeypatch.setenv("PHOENIX_RUNTIME", "memory")
    monkeypatch.setenv("PHOENIX_AUTH", "off")  # signed in as guard.DEV_ACTOR (an admin); tests of sign-in unset it
    monkeypatch.delenv("PHOENIX_KUBE_CONTEXT", raising=False)
    monkeypatch.delenv("PHOENIX_PRICE_CARD_FILE", raising=False)
    yield tmp_path
    import streamlit as st

    from app.services import close_all

    close_all()  # dispose the cached services (database, scheduler) of this test
    st.cache_data.clear()


def page(name: str) -> str:
    return str(ROOT / "pages" / name)
