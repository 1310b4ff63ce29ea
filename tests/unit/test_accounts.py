"""AccountService: sign-in with backoff and lockout, users, API tokens, the initial admin."""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from core.domain.accounts import PERMISSIONS, Actor, Role, allowed
from core.domain.errors import AuthenticationError, NotFoundError, PermissionDenied, ValidationError
from core.services.accounts import LOCK_AFTER, AccountService
from core.store.memory import MemoryDatabase
from tests.accounts_world import PASSWORD, ROOT, Clock


def _audit(db: MemoryDatabase) -> list[tuple[str, str, str, str]]:
    return [(e.actor, e.action, e.subject, e.source) for e in db.store.audit]


def test_roles_are_ordered_and_the_table_covers_the_brief() -> None:
    assert Role.VIEWER < Role.OPERATOR < Role.ADMIN
    assert Role.parse("Operator") is Role.OPERATOR and Role.parse(3) is Role.ADMIN
    with pytest.raises(ValidationError, match="viewer, operator, admin"):
        Role.parse("root")
    for action in ("experiment.read", "report.download"):
        assert allowed(Role.VIEWER, action)
    for action in ("experiment.create", "experiment.cancel", "experiment.rerun", "pipeline.save"):
        assert not allowed(Role.VIEWER, action) and allowed(Role.OPERATOR, action)
    for action in ("experiment.promote", "experiment.force_promote", "settings.edit", "user.manage",
                   "token.manage", "audit.read"):
        assert not allowed(Role.OPERATOR, action) and allowed(Role.ADMIN, action)
    assert set(PERMISSIONS.values()) == set(Role)


def test_sign_in_success_is_audited_and_the_password_is_nowhere(accounts: AccountService, db: MemoryDatabase) -> None:
    actor = accounts.authenticate("root", PASSWORD, "ui")
    assert actor == Actor("root", Role.ADMIN, "ui")
    assert _audit(db) == [("root", "auth.login", "root", "ui")]
    assert PASSWORD not in repr(db.store.audit) and PASSWORD not in repr(db.store.users)


def test_wrong_password_backs_off_then_locks_and_says_when(accounts: AccountService, db: MemoryDatabase,
                                                           clock: Clock) -> None:
    for i in range(1, LOCK_AFTER):
        with pytest.raises(AuthenticationError, match="^wrong name or password$") as err:
            accounts.authenticate("root", "nope-nope", "ui")
        assert PASSWORD not in str(err.value) and "nope-nope" not in str(err.value)
        # backing off: even the right password waits 1, 2, 4, 8 s
        with pytest.raises(AuthenticationError, match="try again in") as err:
            accounts.authenticate("root", PASSWORD, "ui")
        assert err.value.retry_after_s == pytest.approx(2 ** (i - 1))
        clock.now += timedelta(seconds=2 ** (i - 1))
    with pytest.raises(AuthenticationError, match="locked, try again in 900 s") as err:
        accounts.authenticate("root", "nope-nope", "ui")
    assert err.value.retry_after_s == 900
    clock.now += timedelta(minutes=14)
    with pytest.raises(AuthenticationError, match="try again in 60 s"):
        accounts.authenticate("root", PASSWORD, "ui")
    clock.now += timedelta(minutes=1)
    assert accounts.authenticate("root", PASSWORD, "ui").role is Role.ADMIN
    with db.uow() as uow:
        assert (uow.users.get("root").failed_logins, uow.users.get("root").locked_until) == (0, None)
    actions = [a for _, a, _, _ in _audit(db)]
    assert actions.count("auth.login_failed") == 2 * (LOCK_AFTER - 1) + 2 and actions[-1] == "auth.login"


def test_unknown_and_disabled_users_are_refused(accounts: AccountService, db: MemoryDatabase) -> None:
    with pytest.raises(AuthenticationError, match="^wrong name or password$"):
        accounts.authenticate("ghost", PASSWORD, "cli")
    accounts.add_user(ROOT, "carol", "viewer", "carol-password")
    accounts.disable(ROOT, "carol")
    with pytest.raises(AuthenticationError, match="disabled"):
        accounts.authenticate("carol", "carol-password", "ui")
    with pytest.raises(AuthenticationError, match="^wrong name or password$"):
        accounts.authenticate("carol", "wrong-password", "ui")
    assert ("ghost", "auth.login_failed", "ghost", "cli") in _audit(db)


def test_user_management_is_admin_only_and_audited_once_each(accounts: AccountService, db: MemoryDatabase) -> None:
    alice = accounts.add_user(ROOT, "alice", "operator", "alice-password")
    assert alice.role is Role.OPERATOR
    op = accounts.authenticate("alice", "alice-password", "cli")
    with pytest.raises(PermissionDenied, match=r"alice \(operator\) may not user.manage: it needs the admin role"):
        accounts.add_user(op, "eve", "admin", "eve-password")
    with pytest.raises(PermissionDenied):
        accounts.list_users(op)
    accounts.set_role(ROOT, "alice", Role.ADMIN)
    accounts.reset_password(ROOT, "alice", "new-alice-password")
    assert accounts.authenticate("alice", "new-alice-password", "ui").role is Role.ADMIN
    with pytest.raises(ValidationError, match="already exists"):
        accounts.add_user(ROOT, "alice", "viewer", "whatever-pw")
    with pytest.raises(ValidationError, match="at least 8"):
        accounts.add_user(ROOT, "dave", "viewer", "short")
    with pytest.raises(NotFoundError):
        accounts.set_role(ROOT, "nobody", "viewer")
    mutations = [e for e in db.store.audit if e.action == "user.manage"]
    assert [(e.actor, e.subject) for e in mutations] == [("root", "alice")] * 3
    assert mutations[1].before["role"] == "operator" and mutations[1].after["role"] == "admin"
    assert "new-alice-password" not in repr(db.store.audit)
    assert [u.name for u in accounts.list_users(ROOT)] == ["alice", "root"]


def test_the_last_admin_cannot_be_demoted_or_disabled(accounts: AccountService) -> None:
    with pytest.raises(ValidationError, match="last enabled admin"):
        accounts.set_role(ROOT, "root", "operator")
    with pytest.raises(ValidationError, match="last enabled admin"):
        accounts.disable(ROOT, "root")


def test_tokens_expire_revoke_and_cap_the_role(accounts: AccountService, db: MemoryDatabase, clock: Clock) -> None:
    record, secret = accounts.create_token(ROOT, "ci", "1h", role="operator")
    assert secret.startswith("phx_") and secret not in repr(db.store.tokens) and secret not in repr(db.store.audit)
    assert accounts.actor_for_token(secret, "api") == Actor("root", Role.OPERATOR, "api")
    assert accounts.list_tokens(ROOT)[0].last_used_at == clock.now
    # the owner's role caps the token even after the token was made
    accounts.add_user(ROOT, "other-admin", "admin", "other-password")
    accounts.set_role(Actor("other-admin", Role.ADMIN, "cli"), "root", "viewer")
    assert accounts.actor_for_token(secret, "api").role is Role.VIEWER
    viewer = Actor("root", Role.VIEWER, "cli")
    with pytest.raises(ValidationError, match="at most its owner's: root is viewer, asked for operator"):
        accounts.create_token(viewer, "x", "1h", role="operator")
    with pytest.raises(PermissionDenied):  # someone else's tokens are an admin's business
        accounts.list_tokens(viewer, everyone=True)
    clock.now += timedelta(hours=1)
    with pytest.raises(AuthenticationError, match=f"API token {record.id} \\(ci\\) expired"):
        accounts.actor_for_token(secret, "api")
    _, second = accounts.create_token(ROOT, "ci2", "2h")
    with pytest.raises(PermissionDenied):
        accounts.revoke_token(Actor("mallory", Role.OPERATOR, "cli"), accounts.list_tokens(ROOT)[-1].id)
    revoked = accounts.revoke_token(ROOT, accounts.list_tokens(ROOT)[-1].id)
    assert revoked.revoked_at == clock.now
    with pytest.raises(AuthenticationError, match="was revoked"):
        accounts.actor_for_token(second, "cli")
    for bad in ("phx_forged", "not-a-token", ""):
        with pytest.raises(AuthenticationError):
            accounts.actor_for_token(bad, "cli")
    with pytest.raises(ValidationError, match="between 1 minute and 366 days"):
        accounts.create_token(ROOT, "long", "9000h")


def test_initial_admin_only_when_no_user_exists(tmp_path: Path, db: MemoryDatabase) -> None:
    svc = AccountService(db.uow, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    password = svc.ensure_initial_admin(tmp_path / "data")
    assert password and len(password) >= 20
    path = tmp_path / "data" / "initial_admin_password"
    assert path.read_text() == password + "\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert svc.authenticate("admin", password, "cli").role is Role.ADMIN
    assert svc.ensure_initial_admin(tmp_path / "data") is None
    assert password not in repr(db.store.audit)


def test_a_name_without_an_account_answers_exactly_like_one_with_an_account(
        accounts: AccountService, clock: Clock) -> None:
    """Probing names learns nothing: the same words and the same waits for 'root' and 'ghost'."""

    def replies(name: str) -> list[tuple[str, float | None]]:
        out = []
        for step in range(LOCK_AFTER + 1):
            for password in ("nope-nope", "nope-nope"):  # a failure, then one during the backoff
                with pytest.raises(AuthenticationError) as err:
                    accounts.authenticate(name, password, "ui")
                out.append((str(err.value).replace(name, "NAME"), err.value.retry_after_s))
            clock.now += timedelta(seconds=2 ** step)
        clock.now += timedelta(hours=1)
        return out

    assert replies("root") == replies("ghost")
