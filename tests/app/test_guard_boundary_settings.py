"""Guard, error boundary and settings helpers."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from app import guard
from app.widgets import settings_tools
from core.cost import load_price_cards
from core.domain.errors import ValidationError
from core.services.settings import SettingsService
from core.store.memory import MemoryDatabase


def test_guard_checks_roles_and_keeps_the_action_name(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    @guard.action("thing.do", guard.Role.ADMIN)
    def do(x: int) -> int:
        calls.append(x)
        return x * 2

    assert do(2) == 4 and do.action_name == "thing.do"
    monkeypatch.setattr(guard, "current_user", lambda: guard.User("v", guard.Role.VIEWER))
    with pytest.raises(guard.PermissionDenied, match="may not thing.do; needs admin"):
        do(3)
    with pytest.raises(guard.PermissionDenied):
        guard.page("settings", guard.Role.OPERATOR)
    assert calls == [2]


def _boom_page() -> None:
    from app.widgets.boundary import boundary
    from core.domain.errors import NotFoundError

    with boundary("user error"):
        raise NotFoundError("no pipeline named 'x'")
    with boundary("bug"):
        raise KeyError("internal")
    import streamlit as st

    st.write("still rendering")


def test_boundary_turns_exceptions_into_messages_with_a_reference() -> None:
    at = AppTest.from_function(_boom_page).run()
    assert not at.exception
    user, bug = (e.value for e in at.error)
    assert user.startswith("no pipeline named 'x'") and "reference" in user
    assert "KeyError" in bug and "server log under reference" in bug and "Traceback" not in bug
    assert at.markdown[-1].value == "still rendering"


def test_price_cards_round_trip_and_refuse_bad_edits() -> None:
    rows = settings_tools.cards_as_rows(None)
    assert {r["id"] for r in rows} == {c.id for c in load_price_cards()}
    rows[0]["params"] = rows[0]["params"].replace("6.5", "7.25")
    configuration = SettingsService(MemoryDatabase().uow, env={})
    configuration.set_price_cards(settings_tools.rows_to_cards(rows), "admin")
    edited = {c.id: c for c in configuration.price_cards()}
    assert settings_tools.cards_as_rows(configuration.price_cards()) == rows  # what is shown is what was saved
    assert edited[rows[0]["id"]].source == rows[0]["source"] and edited[rows[0]["id"]].as_of == rows[0]["as_of"]
    assert 7.25 in edited[rows[0]["id"]].params.values()
    bad = [dict(r) for r in rows]
    bad[1]["params"] = "{unclosed"
    bad[2]["model"] = "magic"
    with pytest.raises(ValidationError) as exc:
        settings_tools.rows_to_cards(bad)
    assert any("not valid YAML" in p for p in exc.value.problems)
    assert any("magic" in p for p in exc.value.problems)


def test_policy_test_names_the_deciding_rule() -> None:
    policy = settings_tools.load_policy_text(
        "rules:\n- match: owner\n  pattern: ^postgres$\n  priority: high\n"
        "- match: executable_name\n  pattern: ^nginx$\n  priority: critical\n", "t")
    assert settings_tools.test_process(policy, "nginx") == {
        "priority": "critical", "rule": {"match": "executable_name", "pattern": "^nginx$", "priority": "critical"}}
    assert settings_tools.test_process(policy, "psql", owner="postgres")["priority"] == "high"
    assert settings_tools.test_process(policy, "bash") == {"priority": "low", "rule": None}
