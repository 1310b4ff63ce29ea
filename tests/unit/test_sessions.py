"""Web sessions (signed, expiring, re-read on resume) and the OIDC role mapping."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.domain.accounts import Actor, Role
from core.domain.errors import AuthenticationError, ValidationError
from core.services.accounts import AccountService
from core.services.sessions import (
    OIDC_NO_PASSWORD,
    SessionService,
    map_oidc_role,
    parse_role_map,
    session_ttl_s,
    sign,
    verify,
)
from core.store.memory import MemoryDatabase
from tests.accounts_world import PASSWORD, ROOT, Clock

SECRET = b"k" * 32


@pytest.fixture
def sessions(db: MemoryDatabase, clock: Clock) -> SessionService:
    return SessionService(db.uow, lambda: SECRET, lambda: 3600.0, clock)


def test_a_session_round_trips_and_carries_name_role_and_times(clock: Clock) -> None:
    token = sign(SECRET, "ann", Role.OPERATOR, clock.now, 3600)
    s = verify(SECRET, token, clock.now)
    assert (s.name, s.role) == ("ann", Role.OPERATOR)
    assert s.expires_at - s.issued_at == timedelta(hours=1)


def test_every_tampered_byte_and_another_secret_are_refused(clock: Clock) -> None:
    token = sign(SECRET, "ann", Role.VIEWER, clock.now, 3600)
    for i in range(len(token)):
        for c in "AaZ0_-.":
            forged = token[:i] + c + token[i + 1:]
            if forged != token:
                with pytest.raises(AuthenticationError):
                    verify(SECRET, forged, clock.now)
    with pytest.raises(AuthenticationError, match="tampered"):
        verify(b"x" * 32, token, clock.now)


def test_a_role_raised_in_the_payload_is_refused(clock: Clock) -> None:
    import base64
    import json

    token = sign(SECRET, "ann", Role.VIEWER, clock.now, 3600)
    body, mac = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    data["r"] = "admin"
    raised = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    with pytest.raises(AuthenticationError, match="tampered"):
        verify(SECRET, f"{raised}.{mac}", clock.now)


@pytest.mark.parametrize("junk", [None, "", "abc", "a.b.c", "!!.??", 42, "x" * 5000])
def test_malformed_tokens_get_a_clear_error(junk: object, clock: Clock) -> None:
    with pytest.raises(AuthenticationError, match="sign in again"):
        verify(SECRET, junk, clock.now)


def test_an_expired_session_says_when_it_expired(clock: Clock) -> None:
    token = sign(SECRET, "ann", Role.VIEWER, clock.now, 3600)
    with pytest.raises(AuthenticationError, match="expired"):
        verify(SECRET, token, clock.now + timedelta(hours=1, seconds=1))


def test_resume_rereads_the_role_and_refuses_a_disabled_account(
        accounts: AccountService, sessions: SessionService) -> None:
    accounts.add_user(ROOT, "ann", "operator", PASSWORD)
    token = sessions.issue(accounts.authenticate("ann", PASSWORD, "ui"))
    assert sessions.resume(token) == Actor("ann", Role.OPERATOR, "ui")
    accounts.set_role(ROOT, "ann", "viewer")
    assert sessions.resume(token).role == Role.VIEWER  # a demotion applies at once
    accounts.disable(ROOT, "ann")
    with pytest.raises(AuthenticationError, match="disabled"):
        sessions.resume(token)


def test_the_ttl_comes_from_the_environment() -> None:
    assert session_ttl_s({}) == 8 * 3600
    assert session_ttl_s({"PHOENIX_SESSION_TTL": "30m"}) == 1800
    for bad in ("soon", "1s", "400d"):
        with pytest.raises(ValidationError, match="PHOENIX_SESSION_TTL"):
            session_ttl_s({"PHOENIX_SESSION_TTL": bad})


# ---- OIDC mapping ----------------------------------------------------------------------

RULES = "admins@corp.example=admin, group:sre=operator, @corp.example=viewer"


def test_the_role_map_matches_emails_domains_and_groups() -> None:
    rules = parse_role_map(RULES)
    assert map_oidc_role("Admins@Corp.example", [], rules) == Role.ADMIN
    assert map_oidc_role("bob@corp.example", ["SRE"], rules) == Role.OPERATOR  # the highest grant wins
    assert map_oidc_role("bob@corp.example", None, rules) == Role.VIEWER
    assert map_oidc_role("eve@elsewhere.example", ["sre"], rules) == Role.OPERATOR
    assert map_oidc_role("eve@elsewhere.example", ["dev"], rules) is None  # unknown: refused
    assert map_oidc_role(None, None, rules) is None


def test_a_star_rule_is_the_default_and_an_empty_map_refuses_everyone() -> None:
    assert map_oidc_role("eve@elsewhere.example", [], parse_role_map("*=viewer")) == Role.VIEWER
    assert map_oidc_role("eve@elsewhere.example", [], parse_role_map("")) is None


@pytest.mark.parametrize("bad", ["admins", "=admin", "x=root", "group:sre=operator,y"])
def test_a_bad_role_map_names_the_bad_rule(bad: str) -> None:
    with pytest.raises(ValidationError, match="PHOENIX_OIDC_ROLE_MAP"):
        parse_role_map(bad)


def test_oidc_sign_in_creates_an_account_without_a_password_and_follows_the_map(
        db: MemoryDatabase, accounts: AccountService, sessions: SessionService) -> None:
    actor = sessions.oidc_sign_in("Bob@corp.example", ["sre"], RULES)
    assert actor == Actor("bob@corp.example", Role.OPERATOR, "ui")
    with db.uow() as uow:
        assert uow.users.password_hash("bob@corp.example") == OIDC_NO_PASSWORD
    with pytest.raises(AuthenticationError):  # no password sign-in for an OIDC account
        accounts.authenticate("bob@corp.example", OIDC_NO_PASSWORD, "ui")
    assert sessions.oidc_sign_in("bob@corp.example", [], RULES).role == Role.VIEWER  # group left: demoted
    with pytest.raises(AuthenticationError, match="no role"):
        sessions.oidc_sign_in("eve@elsewhere.example", [], RULES)


def test_oidc_never_takes_over_a_local_account(accounts: AccountService, sessions: SessionService) -> None:
    accounts.add_user(ROOT, "ann@corp.example", "viewer", PASSWORD)
    with pytest.raises(AuthenticationError, match="local account"):
        sessions.oidc_sign_in("ann@corp.example", [], "admins@corp.example=admin,ann@corp.example=admin")
