"""Sign-in through the router (app/main.py): the login gate, failures, lockout, sessions, logout."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.bootstrap import Services, bootstrap
from core.domain.accounts import Actor, Role
from core.domain.experiment import utcnow
from core.services.secret import server_secret
from core.services.sessions import sign
from core.settings import Settings

ROOT_DIR = Path(__file__).resolve().parents[2]
MAIN = str(ROOT_DIR / "app" / "main.py")
PASSWORD = "correct horse battery"
ROOT = Actor("root", Role.ADMIN, "cli")


@pytest.fixture
def svc(app_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Services]:
    monkeypatch.delenv("PHOENIX_AUTH")  # conftest turns sign-in off for page tests; these test it
    s = bootstrap(Settings.from_env())
    for name, role in (("ada", "admin"), ("olly", "operator"), ("vic", "viewer")):
        s.accounts.add_user(ROOT, name, role, PASSWORD)
    yield s
    s.close()


def _main() -> AppTest:
    return AppTest.from_file(MAIN, default_timeout=60)


def _sign_in(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="login.name").input(name)
    at.text_input(key="login.password").input(password)
    next(b for b in at.button if b.label == "Sign in").click()
    return at.run()


def _on_login_form(at: AppTest) -> bool:
    return [t.value for t in at.title] == ["Sign in to Phoenix"]


def _messages(at: AppTest) -> str:
    return " ".join(m.value for m in [*at.error, *at.warning, *at.success])


def test_without_a_session_every_visit_shows_only_the_login_form(svc: Services) -> None:
    at = _main().run()
    assert not at.exception
    assert _on_login_form(at)
    assert {t.key for t in at.text_input} == {"login.name", "login.password"}
    at.session_state["phoenix_actor"] = Actor("vic", Role.ADMIN, "ui")  # an actor without a signed token
    at.run()
    assert _on_login_form(at) and "phoenix_actor" not in at.session_state


def test_a_good_password_opens_the_app_with_a_signed_session(svc: Services) -> None:
    at = _sign_in(_main().run(), "ada", PASSWORD)
    assert not at.exception
    assert not _on_login_form(at)
    assert at.title[0].value == "Overview"
    assert at.session_state["phoenix_actor"] == Actor("ada", Role.ADMIN, "ui")
    assert at.session_state["phoenix_session"].count(".") == 1
    assert any("Signed in as **ada** (admin)" in c.value for c in at.sidebar.caption)
    entries = svc.accounts.audit_log(ROOT)
    assert (entries[0].actor, entries[0].action, entries[0].source) == ("ada", "auth.login", "ui")


@pytest.mark.parametrize("name", ["ada", "nobody"])
def test_a_failure_never_says_whether_the_user_exists(svc: Services, name: str) -> None:
    at = _sign_in(_main().run(), name, "wrong password!")
    assert not at.exception
    assert _on_login_form(at)
    assert [e.value for e in at.error] == ["wrong name or password"]
    assert "phoenix_session" not in at.session_state


def test_repeated_failures_back_off_then_lock_with_a_retry_time(svc: Services) -> None:
    at = _main().run()
    for _ in range(5):
        at = _sign_in(at, "olly", "wrong password!")
        assert not at.exception
    assert "try again in" in _messages(at)
    at = _sign_in(at, "olly", PASSWORD)  # locked: even the right password waits
    assert "try again in" in _messages(at) and _on_login_form(at)


def test_a_tampered_session_goes_back_to_the_login_form_with_a_message(svc: Services) -> None:
    at = _sign_in(_main().run(), "vic", PASSWORD)
    token = at.session_state["phoenix_session"]
    at.session_state["phoenix_session"] = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    at.run()
    assert not at.exception
    assert _on_login_form(at)
    assert "tampered" in _messages(at)


def test_an_expired_session_goes_back_to_the_login_form(svc: Services) -> None:
    at = _main()
    at.session_state["phoenix_session"] = sign(server_secret(svc.settings), "ada", Role.ADMIN,
                                               utcnow() - timedelta(hours=9), 8 * 3600)
    at.run()
    assert _on_login_form(at) and "expired" in _messages(at)


def test_a_demotion_or_a_disable_applies_on_the_next_render(svc: Services) -> None:
    at = _sign_in(_main().run(), "olly", PASSWORD)
    assert at.session_state["phoenix_actor"].role == Role.OPERATOR
    svc.accounts.set_role(ROOT, "olly", "viewer")
    at.run()
    assert at.session_state["phoenix_actor"].role == Role.VIEWER
    svc.accounts.disable(ROOT, "olly")
    at.run()
    assert _on_login_form(at) and "disabled" in _messages(at)


def test_logout_returns_to_the_login_form(svc: Services) -> None:
    at = _sign_in(_main().run(), "ada", PASSWORD)
    at.sidebar.button(key="auth.logout").click().run()
    assert not at.exception
    assert _on_login_form(at) and "Signed out." in _messages(at)
    assert "phoenix_session" not in at.session_state


def test_no_sso_button_without_an_auth_section(svc: Services) -> None:
    at = _main().run()
    assert not [b for b in at.button if b.key == "login.sso"]


def test_a_bad_session_setting_is_a_message_not_a_traceback(svc: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHOENIX_SESSION_TTL", "soon")
    at = _sign_in(_main().run(), "ada", PASSWORD)
    assert not at.exception
    assert _on_login_form(at) and "PHOENIX_SESSION_TTL" in _messages(at)
