"""Settings: where every setting comes from, price cards, the default critical policy,
service URLs and retention, connection status. Saved through the settings service
(database, audited); an environment override wins and is shown as such."""

from __future__ import annotations

from types import EllipsisType
from typing import Any

import streamlit as st

from app import guard
from app.widgets import backend, settings_tools
from app.widgets.boundary import boundary
from core.domain.errors import ValidationError
from core.services.settings import (
    CRITICAL_POLICY,
    ENV_VARS,
    PRICE_CARDS,
    PROMETHEUS_URL,
    PUBLIC_URL,
    RETENTION_DAYS,
    EffectiveSettings,
    Sourced,
)

FLASH = "settings.flash"


def _actor() -> guard.Actor:
    return guard.current_user()


@guard.action("settings.edit")
def _save_cards(doc: dict) -> None:
    backend.configuration().set_price_cards(doc, _actor())


@guard.action("settings.edit")
def _save_policy(text: str):
    return backend.configuration().set_critical_policy(text, _actor())


@guard.action("settings.edit")
def _save_services(prometheus_url: str | None | EllipsisType, public_url: str, retention_days: int) -> None:
    """``prometheus_url``: ``...`` keeps the saved one, None forgets it."""
    conf = backend.configuration()
    if prometheus_url is not ...:
        conf.set_prometheus_url(prometheus_url, _actor())
    conf.set_public_url(public_url.strip() or None, _actor())
    conf.set_retention_days(retention_days, _actor())


def _saved(message: str) -> None:
    """Rerun so every tab (sources included) shows the saved values; the message survives the rerun."""
    st.session_state[FLASH] = message
    st.session_state.pop("settings.prometheus_url", None)  # a typed password does not linger in the form
    st.rerun()


def _problems(exc: ValidationError) -> str:
    return "Not saved:\n" + "\n".join(f"- {p}" for p in exc.problems)


def _override_note(name: str, s: Sourced[Any]) -> None:
    """Say plainly when what is saved here is not what is used."""
    if s.error:
        st.error(f"The {name.replace('_', ' ')} in use is invalid ({s.origin}): {s.error}. "
                 "Fix it there; nothing has been discarded.")
    if s.source == "environment":
        st.warning(f"{ENV_VARS[name]} is set ({s.origin}): it overrides what is saved here.")


def _sources(eff: EffectiveSettings) -> None:
    st.subheader("Where each setting comes from")
    st.caption("Precedence: built-in default < database (saved here) < environment (PHOENIX_* variables). "
               "See docs/configuration.md.")
    if eff.database_error:
        st.error(eff.database_error)
    st.dataframe(settings_tools.source_rows(eff.items()), hide_index=True, width="stretch")


NEW_CARD = "+ new card"


def _price_cards(eff: EffectiveSettings) -> None:
    st.subheader("Price cards")
    s = eff.price_cards
    _override_note(PRICE_CARDS, s)
    st.caption(f"In use: {s.origin} — every card keeps its source and date.")
    cards = s.value if s.value is not None else settings_tools.load_price_cards()
    st.dataframe(settings_tools.card_summary_rows(cards), hide_index=True, width="stretch",
                 column_config={"source": st.column_config.LinkColumn("source")})
    if not guard.allowed("settings.edit"):
        return
    by_id = {c.id: c for c in cards}
    pick = st.selectbox("Edit price card", [*by_id, NEW_CARD], key="settings.card_pick")
    card = by_id.get(pick)
    models = list(settings_tools.MODEL_TEXT)
    # Outside the form: the price fields below depend on the model, so picking one redraws them.
    model = st.selectbox("Pricing model", models, index=models.index(card.model) if card else 0,
                         key=f"settings.card_model.{pick}", help="Fixes the formula: see docs/configuration.md")
    st.caption(f"Charges for {settings_tools.MODEL_TEXT[model]}.")
    values = settings_tools.card_values(card, model)
    with st.form(f"settings.card_form.{pick}", border=True):
        a, b, c = st.columns(3)
        values["id"] = a.text_input("Card id", values["id"], key=f"settings.card.{pick}.id",
                                    help="Unique, e.g. datadog-pro")
        values["vendor"] = b.text_input("Vendor", values["vendor"], key=f"settings.card.{pick}.vendor")
        values["plan"] = c.text_input("Plan", values["plan"], key=f"settings.card.{pick}.plan")
        cols = st.columns(3)
        for i, f in enumerate(settings_tools.param_fields(model)):
            col = cols[i % 3]
            values[f.key] = (col.number_input(f.label, min_value=0.0, value=float(values[f.key] or 0.0),
                                              format="%g", key=f"settings.card.{pick}.{model}.{f.key}")
                             if f.numeric else col.text_input(f.label, str(values[f.key]),
                                                              key=f"settings.card.{pick}.{model}.{f.key}"))
        d, e = st.columns([2, 1])
        values["source"] = d.text_input("Source (the vendor's price page, http(s) URL)", values["source"],
                                        key=f"settings.card.{pick}.source")
        values["as_of"] = e.text_input("Prices as of (YYYY-MM-DD)", values["as_of"],
                                       key=f"settings.card.{pick}.as_of")
        values["notes"] = st.text_input("Notes", values["notes"], key=f"settings.card.{pick}.notes")
        saved = st.form_submit_button("Save price card", type="primary", key="settings.save_cards")
    if saved:
        try:
            _save_cards(settings_tools.upsert_card(cards, card.id if card else None, values))
        except ValidationError as exc:
            st.error(_problems(exc))
        else:
            st.cache_data.clear()
            _saved(f"Price card {values['id'].strip()} saved.")
    if card is not None and st.button(f"Delete {card.id}", key="settings.card_delete"):
        try:
            _save_cards(settings_tools.remove_card(cards, card.id))
        except ValidationError as exc:
            st.error(_problems(exc))
        else:
            st.cache_data.clear()
            _saved(f"Price card {card.id} deleted.")


def _policy(eff: EffectiveSettings) -> None:
    st.subheader("Default critical policy")
    s = eff.critical_policy
    _override_note(CRITICAL_POLICY, s)
    st.caption(f"In use: {s.origin}. New experiments without their own policy, and estimates of pipelines "
               "without one, use it.")
    text = st.text_area("Rules (YAML: match executable_name | command_line | owner, RE2 pattern, priority)",
                        settings_tools.policy_text(s.value), height=260, key="settings.policy")
    if guard.allowed("settings.edit") and st.button("Save policy", key="settings.save_policy", type="primary"):
        try:
            _save_policy(text)
        except ValidationError as exc:
            st.error(_problems(exc))
        else:
            st.cache_data.clear()
            _saved("Default critical policy saved.")
    st.markdown("**Test a process against the policy**")
    a, b, c = st.columns(3)
    name = a.text_input("Executable name", key="settings.test_name", placeholder="postgres")
    cmd = b.text_input("Command line", key="settings.test_cmd")
    owner = c.text_input("Owner", key="settings.test_owner")
    if name or cmd or owner:
        try:
            test_policy = settings_tools.load_policy_text(text, source="edited policy")
        except ValidationError as exc:
            st.error("The edited policy is invalid:\n" + "\n".join(f"- {p}" for p in exc.problems))
            return
        r = settings_tools.test_process(test_policy, name, cmd, owner)
        rule = r["rule"]
        why = (f"rule `{rule['match']}` ~ `{rule['pattern']}`" if rule else "no rule matched: default priority")
        st.info(f"**{r['priority']}** — {why}")


def _services(eff: EffectiveSettings) -> None:
    st.subheader("Prometheus, public URL, retention")
    for name, s in ((PROMETHEUS_URL, eff.prometheus_url), (PUBLIC_URL, eff.public_url),
                    (RETENTION_DAYS, eff.retention_days)):
        _override_note(name, s)
    # The stored URL may carry credentials: it is never sent back to the browser. Empty keeps it.
    stored = eff.prometheus_url.source == "database" or "database" in eff.prometheus_url.hidden
    prom_in = st.text_input("Prometheus URL (empty: keep the saved one)", "", key="settings.prometheus_url",
                            type="password", placeholder=settings_tools.shown_url(eff.prometheus_url))
    clear = stored and st.checkbox("Forget the saved Prometheus URL", key="settings.prometheus_clear")
    public = eff.public_url.value if eff.public_url.source == "database" else ""
    public_in = st.text_input("Public URL of this app (share links; empty: the default)", public or "",
                              key="settings.public_url", placeholder="http://localhost:8501")
    days = st.number_input("Retention (days)", 1, 3650, int(eff.retention_days.value), key="settings.retention")
    if guard.allowed("settings.edit") and st.button("Save", key="settings.save_services", type="primary"):
        try:
            _save_services(None if clear else (prom_in.strip() or ...), public_in, int(days))
        except ValidationError as exc:
            st.error(_problems(exc))
        else:
            _saved("Saved.")


def _connections(s, eff: EffectiveSettings) -> None:
    st.subheader("Connections")
    prom = eff.prometheus_url.value if not eff.prometheus_url.error else None
    checks = settings_tools.connection_checks(s, backend.db_probe(), prometheus_url=prom)
    icon = {True: "✅", False: "❌", None: "➖"}
    st.dataframe([{"": icon[c.ok], "component": c.name, "status": c.detail, "configuration": c.config}
                  for c in checks], hide_index=True, width="stretch")


def render() -> None:
    guard.page("settings")
    st.title("Settings")
    if not guard.allowed("settings.edit"):
        st.info("Read-only: only an admin can change settings.")
    # Always one slot for the "saved" message, so the tabs below keep their place in the page
    # from one run to the next, and with it the tab the user is on.
    flash = st.empty()
    if FLASH in st.session_state:
        flash.success(st.session_state.pop(FLASH))
    s = backend.settings()
    eff = backend.configuration().effective()
    t0, t1, t2, t3, t4 = st.tabs(["Sources", "Price cards", "Critical policy", "Services & retention",
                                  "Connections"])
    with t0, boundary("setting sources"):
        _sources(eff)
    with t1, boundary("price cards"):
        _price_cards(eff)
    with t2, boundary("critical policy"):
        _policy(eff)
    with t3, boundary("services and retention"):
        _services(eff)
    with t4, boundary("connections"):
        _connections(s, eff)


with boundary("Settings"):
    render()
