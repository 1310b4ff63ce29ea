"""Sign-in for the web app: the login form, the signed session, logout, SSO.

The session token (``core.services.sessions``) lives in ``st.session_state`` and is verified
on every render; the account is re-read each time, so a demotion or a disabled account
applies at once. ``app.guard`` reads the resulting actor from ``ACTOR_KEY``.

Streamlit offers no API to set a cookie, so the session lives as long as the browser tab's
websocket session: a reload signs out (docs/accounts.md).
"""

from __future__ import annotations

import logging
import os

import streamlit as st

from app import guard
from app.widgets import backend
from core.domain.accounts import Actor
from core.domain.errors import PhoenixError
from core.services.sessions import OIDC_MAP_ENV

log = logging.getLogger("phoenix.app.auth")

SESSION_KEY = "phoenix_session"
ACTOR_KEY = guard.SESSION_KEY  # where guard.current_user() finds the signed-in Actor
FLASH_KEY = "phoenix_auth_flash"
SSO_REFUSED_KEY = "phoenix_sso_refused"  # why the SSO identity of this session was refused


def auth_off() -> bool:
    """``PHOENIX_AUTH=off``: development and tests only, everyone is guard.DEV_ACTOR."""
    return not guard.auth_enabled()


def _forget(message: str | None = None) -> None:
    st.session_state.pop(SESSION_KEY, None)
    st.session_state.pop(ACTOR_KEY, None)
    if message:
        st.session_state[FLASH_KEY] = message


def start_session(actor: Actor) -> None:
    st.session_state[SESSION_KEY] = backend.services().sessions.issue(actor)
    st.session_state[ACTOR_KEY] = actor


def current_session() -> Actor | None:
    """The actor of a valid session (re-read from the database), None after telling why not."""
    token = st.session_state.get(SESSION_KEY)
    if token is None:
        st.session_state.pop(ACTOR_KEY, None)  # an actor without a signed token is never trusted
        return None
    try:
        actor = backend.services().sessions.resume(token)
    except PhoenixError as exc:  # invalid or expired, or the secret cannot be read: sign in again
        _forget(str(exc))
        return None
    st.session_state[ACTOR_KEY] = actor
    return actor


def _sso_configured() -> bool:
    """Streamlit's ``[auth]`` section exists in secrets.toml."""
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - no secrets file at all raises; it just means "not configured"
        return False


def _sso_user() -> tuple[str | None, list[str]] | None:
    """(email, groups) of a Streamlit OIDC sign-in, None when nobody is signed in that way."""
    user = getattr(st, "user", None)
    if user is None or not user.get("is_logged_in", False):
        return None
    groups = user.get("groups") or []
    return user.get("email"), [str(g) for g in groups] if isinstance(groups, list | tuple) else []


def _sso_sign_in() -> bool:
    identity = _sso_user()
    if identity is None:
        st.session_state.pop(SSO_REFUSED_KEY, None)
        return False
    if SSO_REFUSED_KEY in st.session_state:
        return False  # refused in this session: no retry (and no audit entry) on every rerun
    try:
        actor = backend.services().sessions.oidc_sign_in(identity[0], identity[1], os.environ.get(OIDC_MAP_ENV, ""))
    except PhoenixError as exc:
        # Not st.logout() here: it reloads the page into a new session and the reason would be
        # lost. The form shows it and offers to sign out of the identity provider.
        st.session_state[SSO_REFUSED_KEY] = str(exc)
        return False
    start_session(actor)
    return True


def login_form() -> None:
    """The only thing a visitor without a session sees."""
    st.title("Sign in to Phoenix")
    if FLASH_KEY in st.session_state:
        st.warning(st.session_state.pop(FLASH_KEY))
    with st.form("login", clear_on_submit=False):
        name = st.text_input("Name", key="login.name", autocomplete="username")
        password = st.text_input("Password", type="password", key="login.password", autocomplete="current-password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        # the router registered the pages before this form, so the rerun opens the page asked for
        try:
            actor = backend.services().accounts.authenticate(name.strip(), password, "ui")
            start_session(actor)
        except PhoenixError as exc:
            # the service's words: backoff and lockout say when to retry, never whether the name
            # exists; a bad PHOENIX_SESSION_TTL or PHOENIX_SECRET_KEY names the setting
            st.error(str(exc))
        else:
            st.session_state.pop("login.password", None)  # the typed password does not linger
            st.rerun()
    if _sso_configured():
        st.divider()
        refused = st.session_state.get(SSO_REFUSED_KEY)
        if refused:
            st.error(refused)
            if st.button("Sign out of SSO", key="login.sso_logout"):
                st.session_state.pop(SSO_REFUSED_KEY, None)
                st.logout()
        elif st.button("Sign in with SSO", key="login.sso"):
            st.login()
    st.caption("First run: the initial admin password is in the data directory "
               "(initial_admin_password). Reloading the page signs you out.")


def signed_in() -> Actor | None:
    """Every render: the actor of a valid session (or of a fresh SSO sign-in); None otherwise,
    and always None when sign-in is off. ``app/main.py`` shows ``login_form`` for None."""
    if auth_off():
        return None
    actor = current_session()
    if actor is None and _sso_sign_in():
        actor = st.session_state[ACTOR_KEY]
    return actor


def sidebar(actor: Actor | None) -> None:
    if actor is None:
        st.sidebar.caption("Sign-in is off (PHOENIX_AUTH=off): everyone is an admin.")
        return
    st.sidebar.caption(f"Signed in as **{actor.name}** ({actor.role.label})")
    if st.sidebar.button("Log out", key="auth.logout"):
        log.info("%s signed out", actor.name)
        _forget("Signed out.")
        if _sso_user() is not None:
            st.logout()  # sends the browser to /auth/logout, which drops Streamlit's identity cookie
            st.stop()  # not st.rerun(): a rerun discards that redirect and the cookie signs in again
        st.rerun()
