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
from tests.actors import admin


def test_guard_checks_roles_and_keeps_the_action_name(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    @guard.action("thing.do", guard.Role.ADMIN)
    def do(x: int) -> int:
        calls.append(x)
        return x * 2

    assert do(2) == 4 and do.action_name == "thing.do"
    monkeypatch.setattr(guard, "current_user", lambda: guard.Actor("v", guard.Role.VIEWER, "ui"))
    with pytest.raises(guard.PermissionDenied, match=r"v \(viewer\) may not thing.do: it needs the admin role"):
        do(3)
    with pytest.raises(guard.PermissionDenied):
        guard.page("settings", guard.Role.OPERATOR)
    assert calls == [2]
    assert not guard.allowed("experiment.promote") and guard.allowed("report.download")


def _signed_out_page() -> None:
    from app import guard

    guard.page("overview")
    import streamlit as st

    st.write("secret content")


def test_signed_out_visitors_see_sign_in_and_nothing_else(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PHOENIX_AUTH", raising=False)  # the default: on
    at = AppTest.from_function(_signed_out_page).run()
    assert not at.exception
    assert [i.value for i in at.info] == [guard.SIGN_IN]
    assert not any("secret" in m.value for m in at.markdown)
    at.session_state[guard.SESSION_KEY] = guard.Actor("vera", guard.Role.VIEWER, "ui")
    at.run()
    assert not at.info and any("secret" in m.value for m in at.markdown)


def test_a_tampered_session_gets_an_error_from_the_services_not_the_action(memory_services: object) -> None:
    from core.domain.errors import PermissionDenied
    from core.services.requests import CreateExperiment

    forged = {"name": "root", "role": 3}  # not an Actor: whatever a session held, the services refuse it
    with pytest.raises(PermissionDenied):
        memory_services.experiments.create(forged, CreateExperiment(  # type: ignore[attr-defined]
            name="x", baseline="process-baseline-v1", candidate="process-topk-v1"))
    assert memory_services.experiments.list(guard.DEV_ACTOR) == []  # type: ignore[attr-defined]


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
    configuration.set_price_cards(settings_tools.rows_to_cards(rows), admin("admin"))
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


def test_price_card_form_edits_adds_and_refuses_with_clear_problems() -> None:
    from core.cost import parse_price_cards

    cards = load_price_cards()
    grafana = next(c for c in cards if c.model == "grafana_cloud")
    assert [f.label for f in settings_tools.param_fields("grafana_cloud")] == [
        "USD per 1000 series", "Free series", "Included DPM per series"]
    values = settings_tools.card_values(grafana, "grafana_cloud")
    values["usd_per_1000_series"], values["free_series"] = 7.25, 20000.0
    doc = settings_tools.upsert_card(cards, grafana.id, values)
    edited = {c.id: c for c in parse_price_cards(doc, "t")}
    assert [c["id"] for c in doc["cards"]] == [c.id for c in cards]  # edited in place, order kept
    assert edited[grafana.id].params == {**grafana.params, "usd_per_1000_series": 7.25, "free_series": 20000}
    assert isinstance(edited[grafana.id].params["free_series"], int)  # 20000.0 from the field is stored as 20000

    new = settings_tools.card_values(None, "new_relic")
    assert new["bytes_from"] == "otlphttp" and new["usd_per_gb"] == 0.0
    new.update(id="nr-eu", vendor="New Relic", source="https://newrelic.com/pricing", as_of="2026-12-01",
               usd_per_gb=0.35, bytes_per_gb=1e9)
    added = settings_tools.upsert_card(cards, None, new)
    assert added["cards"][-1]["id"] == "nr-eu" and added["cards"][-1]["params"]["bytes_per_gb"] == 1_000_000_000

    with pytest.raises(ValidationError, match="exists already"):
        settings_tools.upsert_card(cards, None, {**new, "id": grafana.id})
    bad = {**values, "source": "not a url", "as_of": "yesterday", "included_dpm_per_series": 0.0}
    with pytest.raises(ValidationError) as exc:
        settings_tools.upsert_card(cards, grafana.id, bad)
    assert {p.split(": ", 1)[1].split(" must")[0] for p in exc.value.problems} == {
        "'source'", "'as_of'", "params.included_dpm_per_series"}
    with pytest.raises(ValidationError, match="last price card cannot be deleted"):
        settings_tools.remove_card(cards[:1], cards[0].id)
    assert [c["id"] for c in settings_tools.remove_card(cards, grafana.id)["cards"]] == [
        c.id for c in cards if c.id != grafana.id]
