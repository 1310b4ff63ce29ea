"""Fixtures the account and session tests share (tests/accounts_world.py)."""

from __future__ import annotations

import pytest

from core.services.accounts import AccountService
from core.store.memory import MemoryDatabase
from tests.accounts_world import Clock, account_service


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db() -> MemoryDatabase:
    return MemoryDatabase()


@pytest.fixture
def accounts(db: MemoryDatabase, clock: Clock) -> AccountService:
    return account_service(db, clock)
