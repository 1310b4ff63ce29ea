"""Settings: price cards, the default critical policy, connection status."""

from __future__ import annotations

import streamlit as st

from app import guard
from app.widgets import backend, settings_tools
from app.widgets.boundary import boundary
from core.domain.errors import ValidationError


@guard.action("settings.price_cards", guard.Role.ADMIN)
def _save_cards(rows: list[dict], data_dir) -> None:
    settings_tools.save_cards(settings_tools.rows_to_cards(rows), data_dir)


@guard.action("settings.critical_policy", guard.Role.ADMIN)
def _save_policy(text: str, data_dir):
    return settings_tools.save_policy(text, data_dir)


def _price_cards(s) -> None:
    st.subheader("Price cards")
    path = backend.price_card_file()
    st.caption(f"In use: `{path or 'bundled defaults (core/data)'}` — every card keeps its source and date.")
    rows = settings_tools.cards_as_rows(path)
    edited = st.data_editor(rows, num_rows="dynamic", width="stretch", key="settings.cards",
                            column_config={"source": st.column_config.LinkColumn("source"),
                                           "params": st.column_config.TextColumn("params (YAML)")})
    if st.button("Save price cards", key="settings.save_cards", type="primary"):
        try:
            _save_cards(list(edited), s.data_dir)
        except ValidationError as exc:
            st.error("Not saved:\n" + "\n".join(f"- {p}" for p in exc.problems))
        else:
            st.cache_data.clear()
            st.success("Price cards saved.")


def _policy(s) -> None:
    st.subheader("Default critical policy")
    policy = settings_tools.current_policy(s.data_dir)
    text = st.text_area("Rules (YAML: match executable_name | command_line | owner, RE2 pattern, priority)",
                        settings_tools.policy_text(policy), height=260, key="settings.policy")
    if st.button("Save policy", key="settings.save_policy", type="primary"):
        try:
            _save_policy(text, s.data_dir)
        except ValidationError as exc:
            st.error("Not saved:\n" + "\n".join(f"- {p}" for p in exc.problems))
        else:
            st.success("Default critical policy saved.")
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


def _connections(s) -> None:
    st.subheader("Connections")
    checks = settings_tools.connection_checks(s, backend.db_probe())
    icon = {True: "✅", False: "❌", None: "➖"}
    st.dataframe([{"": icon[c.ok], "component": c.name, "status": c.detail, "configuration": c.config}
                  for c in checks], hide_index=True, width="stretch")


def render() -> None:
    guard.page("settings")
    st.title("Settings")
    s = backend.settings()
    t1, t2, t3 = st.tabs(["Price cards", "Critical policy", "Connections"])
    with t1, boundary("price cards"):
        _price_cards(s)
    with t2, boundary("critical policy"):
        _policy(s)
    with t3, boundary("connections"):
        _connections(s)


with boundary("Settings"):
    render()
