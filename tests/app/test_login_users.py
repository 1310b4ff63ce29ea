"""The Users page (admins) drives AccountService: add, set role, disable, reset a password."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.bootstrap import Services, bootstrap
from core.domain.accounts import Actor, Role
from core.domain.errors import AuthenticationError
from core.settings import Settings
from tests.app.conftest import page

ADMIN = Actor("ada", Role.ADMIN, "ui")
PASSWORD = "correct horse battery"


@pytest.fixture
def svc(app_env: Path) -> Iterator[Services]:
    s = bootstrap(Settings.from_env())
    s.accounts.add_user(Actor("root", Role.ADMIN, "cli"), "ada", "admin", PASSWORD)
    yield s
    s.close()


def _users() -> AppTest:
    at = AppTest.from_file(page("users.py"), default_timeout=60)
    at.session_state["phoenix_actor"] = ADMIN
    return at.run()


def test_an_admin_adds_promotes_disables_and_resets(svc: Services) -> None:
    at = _users()
    assert not at.exception
    at.text_input(key="users.add_name").input("vic")
    at.selectbox(key="users.add_role").select("viewer")
    at.text_input(key="users.add_password").input(PASSWORD)
    next(b for b in at.button if b.label == "Add user").click()
    at.run()
    assert any("Added vic (viewer)" in s.value for s in at.success)
    assert svc.accounts.authenticate("vic", PASSWORD, "ui").role == Role.VIEWER

    at.selectbox(key="users.pick").select("vic")
    at.selectbox(key="users.role").select("operator")
    at.button(key="users.set_role").click().run()
    assert svc.accounts.get_user(ADMIN, "vic").role == Role.OPERATOR

    at.text_input(key="users.new_password").input("another long password")
    at.button(key="users.reset").click().run()
    assert not at.exception
    assert svc.accounts.authenticate("vic", "another long password", "ui").name == "vic"

    at.button(key="users.disable").click().run()
    assert svc.accounts.get_user(ADMIN, "vic").disabled
    with pytest.raises(AuthenticationError):
        svc.accounts.authenticate("vic", "another long password", "ui")
    actions = [e.action for e in svc.accounts.audit_log(ADMIN) if e.actor == "ada"]
    assert actions.count("user.manage") == 4


def test_bad_input_and_the_last_admin_get_a_message_not_a_traceback(svc: Services) -> None:
    at = _users()
    at.text_input(key="users.add_name").input("bad name!")
    at.text_input(key="users.add_password").input("short")
    next(b for b in at.button if b.label == "Add user").click()
    at.run()
    assert not at.exception and any("Not added" in e.value for e in at.error)
    at.selectbox(key="users.pick").select("ada")
    at.button(key="users.disable").click().run()
    assert not at.exception and any("last enabled admin" in e.value for e in at.error)
