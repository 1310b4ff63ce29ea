"""The Audit page (admins): filters, newest first, paging, and a CSV export safe in a spreadsheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.widgets import audit as aw
from core.bootstrap import Services, bootstrap
from core.domain.accounts import Actor, Role
from core.domain.errors import AuthenticationError
from core.domain.records import AuditEntry
from core.settings import Settings
from tests.app.conftest import page

ADMIN = Actor("ada", Role.ADMIN, "ui")
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _e(i: int, actor: str = "ada", action: str = "user.add", source: str = "ui", subject: str = "x",
       **kw: object) -> AuditEntry:
    return AuditEntry(actor, action, subject, T0 + timedelta(days=i), source=source, **kw)  # type: ignore[arg-type]


def test_filters_combine_and_keep_newest_first() -> None:
    entries = [_e(0), _e(1, "bob", source="cli"), _e(2, action="auth.login", subject="exp-42"), _e(3, "bob")]
    assert [e.at.day for e in aw.select(entries, aw.AuditFilter())] == [4, 3, 2, 1]
    assert [e.at.day for e in aw.select(entries, aw.AuditFilter(actors=("bob",)))] == [4, 2]
    assert [e.at.day for e in aw.select(entries, aw.AuditFilter(actors=("bob",), sources=("cli",)))] == [2]
    assert [e.at.day for e in aw.select(entries, aw.AuditFilter(actions=("auth.login",)))] == [3]
    assert [e.at.day for e in aw.select(entries, aw.AuditFilter(target="EXP-4"))] == [3]
    span = aw.AuditFilter(since=date(2026, 3, 2), until=date(2026, 3, 3))  # both days inclusive
    assert [e.at.day for e in aw.select(entries, span)] == [3, 2]


def test_pages_are_clamped() -> None:
    entries = [_e(i) for i in range(120)]
    assert aw.pages(120) == 3 and aw.pages(0) == 1
    assert len(aw.page_of(entries, 3)) == 20
    assert aw.page_of(entries, 99) == aw.page_of(entries, 3)
    assert aw.page_of(entries, 0) == entries[:50]


@pytest.mark.parametrize("evil", ["=HYPERLINK(\"http://x\")", "+1", "-2+3", "@SUM(A1)", "\tcmd", "\r=1"])
def test_csv_cells_that_start_a_formula_are_escaped(evil: str) -> None:
    text = aw.to_csv([_e(0, actor=evil, subject=evil, details={"k": 1})])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(aw.COLUMNS)
    assert rows[1][1] == "'" + evil and rows[1][4] == "'" + evil
    assert rows[1][5] == '{"k": 1}'


def test_plain_cells_are_left_alone() -> None:
    rows = list(csv.reader(io.StringIO(aw.to_csv([_e(0, before={"role": "viewer"}, after={"role": "admin"})]))))
    assert rows[1][:5] == ["2026-03-01 12:00:00", "ada", "ui", "user.add", "x"]
    assert rows[1][6:] == ['{"role": "viewer"}', '{"role": "admin"}']


@pytest.fixture
def svc(app_env: Path) -> Iterator[Services]:
    s = bootstrap(Settings.from_env())
    yield s
    s.close()


def test_the_page_lists_filters_and_exports_real_entries(svc: Services) -> None:
    with pytest.raises(AuthenticationError):  # anyone can put a name of their choosing in the log
        svc.accounts.authenticate("=evil", "not a password", "ui")
    svc.accounts.add_user(Actor("root", Role.ADMIN, "cli"), "vic", "viewer", "correct horse battery")
    at = AppTest.from_file(page("audit.py"), default_timeout=60)
    at.session_state["phoenix_actor"] = ADMIN
    at.run()
    assert not at.exception
    shown = at.dataframe[0].value
    assert shown["target"].tolist() == ["vic", "=evil"]  # newest first
    assert shown["action"].tolist() == ["user.manage", "auth.login_failed"]
    at.multiselect(key="audit.source").select("cli").run()
    assert at.dataframe[0].value["actor"].tolist() == ["root"]
    at.multiselect(key="audit.source").unselect("cli").run()
    at.text_input(key="audit.target").input("nothing like it").run()
    assert not at.exception and any("No entry matches" in i.value for i in at.info)
    at.text_input(key="audit.target").input("evil").run()
    assert at.dataframe[0].value["target"].tolist() == ["=evil"]
    assert [d.proto.label for d in at.get("download_button")] == ["Export 1 entries as CSV"]
