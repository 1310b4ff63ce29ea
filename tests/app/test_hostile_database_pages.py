"""Every page on a hostile database (issue 9): one clear, masked st.error — never a traceback.

Same shapes as tests/integration/test_hostile_databases.py, through AppTest: a corrupted
SQLite file, another application's SQLite database, a stamped database whose tables are
gone, and an unreachable PostgreSQL whose URL holds a password.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.conftest import page
from tests.integration.test_hostile_databases import (
    CORRUPTED,
    FORBIDDEN,
    LACKS,
    NOT_PHOENIX,
    SECRET,
    UNAVAILABLE,
    UNREACHABLE,
    foreign,
    random_bytes_file,
    tables_dropped,
)

PAGES = ("overview.py", "builder.py", "catalogue.py", "wizard.py", "experiment.py", "cost_explorer.py",
         "settings.py", "recommend.py")
#: Pages that read the database on their first render, so they must say what is wrong.
READS_DATABASE = {"overview.py", "catalogue.py", "experiment.py"}

SHAPES: dict[str, tuple[Callable[[Path], str], str]] = {
    "random-bytes": (lambda tmp: random_bytes_file(tmp / "junk.db"), CORRUPTED),
    "foreign": (lambda tmp: foreign(f"sqlite:///{tmp / 'other-app.db'}"), NOT_PHOENIX),
    "tables-dropped": (lambda tmp: tables_dropped(f"sqlite:///{tmp / 'dropped.db'}"), LACKS),
    "unreachable-postgres": (lambda tmp: UNREACHABLE, UNAVAILABLE),
}


def _texts(at: AppTest) -> list[str]:
    out: list[str] = []
    for group in (at.error, at.warning, at.info, at.success, at.markdown, at.caption, at.code, at.exception):
        out += [str(getattr(e, "value", "")) for e in group]
    out += [df.value.to_string() for df in at.dataframe]
    return out


@pytest.mark.parametrize("shape", list(SHAPES))
def test_pages_show_one_clear_line(shape: str, app_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build, phrase = SHAPES[shape]
    monkeypatch.setenv("PHOENIX_DATABASE_URL", build(app_env))
    for name in PAGES:
        at = AppTest.from_file(page(name), default_timeout=60).run()
        assert not at.exception, (name, [e.value for e in at.exception])
        texts = _texts(at)
        for text in texts:
            assert "Something went wrong" not in text, (name, text)
            for bad in FORBIDDEN:
                assert bad not in text, (name, bad, text)
        errors = [e.value for e in at.error if phrase in e.value]
        if name in READS_DATABASE:
            assert errors, (name, [e.value for e in at.error])
        if name == "settings.py":
            (table,) = [df.value for df in at.dataframe if "component" in df.value.columns]
            status = dict(zip(table["component"], table["status"], strict=True))
            assert phrase in status["Database"], status
            assert all(SECRET not in str(v) for v in table["configuration"])


def test_settings_page_masks_the_prometheus_url(app_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHOENIX_PROMETHEUS_URL", f"http://admin:{SECRET}@127.0.0.1:9/?token={SECRET}2")
    at = AppTest.from_file(page("settings.py"), default_timeout=60).run()
    assert not at.exception
    (table,) = [df.value for df in at.dataframe if "component" in df.value.columns]
    row = table[table["component"] == "Prometheus"].iloc[0]
    assert row["configuration"] == "http://admin:***@127.0.0.1:9/?token=***"
    assert SECRET not in row["status"] and row["status"]
    assert all(SECRET not in t for t in _texts(at))
