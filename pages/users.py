"""Users (admins): list the accounts, add one, change a role, disable or enable, reset a password.

Every change goes through AccountService, which checks the role again and audits it; the
last enabled admin can be neither demoted nor disabled.
"""

from __future__ import annotations

import streamlit as st

from app import guard
from app.widgets import backend
from app.widgets.boundary import boundary
from core.domain.accounts import Actor, Role
from core.domain.errors import PhoenixError
from core.domain.experiment import utcnow

FLASH = "users.flash"
ROLES = [r.label for r in Role]


def _done(message: str) -> None:
    st.session_state[FLASH] = message
    st.rerun()


def _add(actor: Actor) -> None:
    with st.form("users.add", clear_on_submit=True):
        st.subheader("Add a user")
        a, b = st.columns(2)
        name = a.text_input("Name", key="users.add_name")
        role = b.selectbox("Role", ROLES, key="users.add_role")
        password = st.text_input("Initial password (at least 8 characters)", type="password",
                                 key="users.add_password")
        if st.form_submit_button("Add user", type="primary"):
            try:
                rec = backend.services().accounts.add_user(actor, name, role, password)
            except PhoenixError as exc:
                st.error(f"Not added: {exc}")
            else:
                _done(f"Added {rec.name} ({rec.role.label}).")


def _change(actor: Actor, names: list[str]) -> None:
    st.subheader("Change a user")
    who = st.selectbox("User", names, key="users.pick")
    if who is None:
        return
    accounts = backend.services().accounts
    a, b, c = st.columns(3)
    role = a.selectbox("Role", ROLES, key="users.role")
    try:
        if a.button("Set role", key="users.set_role"):
            accounts.set_role(actor, who, role)
            _done(f"{who} is now {role}.")
        rec = accounts.get_user(actor, who)
        if rec.disabled:
            if b.button("Enable", key="users.enable"):
                accounts.enable(actor, who)
                _done(f"{who} is enabled.")
        elif b.button("Disable", key="users.disable"):
            accounts.disable(actor, who)
            _done(f"{who} is disabled; their sessions end at their next click.")
        password = c.text_input("New password", type="password", key="users.new_password")
        if c.button("Reset password", key="users.reset"):
            accounts.reset_password(actor, who, password)
            st.session_state.pop("users.new_password", None)
            _done(f"The password of {who} was reset.")
    except PhoenixError as exc:
        st.error(f"Not changed: {exc}")


def render() -> None:
    guard.page("users", guard.Role.ADMIN)
    actor = guard.current_user()
    st.title("Users")
    if FLASH in st.session_state:
        st.success(st.session_state.pop(FLASH))
    users = backend.services().accounts.list_users(actor)
    now = utcnow()
    st.dataframe([{"name": u.name, "role": u.role.label, "disabled": u.disabled,
                   "failed sign-ins": u.failed_logins,
                   "locked until": f"{u.locked_until:%Y-%m-%d %H:%M:%S} UTC"
                   if u.locked_until and u.locked_until > now else "",
                   "created": f"{u.created_at:%Y-%m-%d %H:%M}"} for u in users], hide_index=True, width="stretch")
    _change(actor, [u.name for u in users])
    _add(actor)


with boundary("Users"):
    render()
