"""A small world for account tests: a settable clock, an admin named root with a known
password, and an AccountService with real but cheap argon2id parameters (the fixtures in
tests/unit/conftest.py build it)."""

from __future__ import annotations

from datetime import datetime

from argon2 import PasswordHasher

from core.domain.accounts import Actor, Role
from core.domain.experiment import utcnow
from core.services.accounts import AccountService
from core.store.memory import MemoryDatabase

PASSWORD = "correct horse battery"
ROOT = Actor("root", Role.ADMIN, "cli")


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


def account_service(db: MemoryDatabase, clock: Clock) -> AccountService:
    """Real argon2id with cheap parameters, so the suite stays fast; ``root`` exists."""
    svc = AccountService(db.uow, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1), clock=clock)
    with db.uow() as uow:
        uow.users.add(ROOT.name, Role.ADMIN, svc.hasher.hash(PASSWORD))
        uow.commit()
    return svc
