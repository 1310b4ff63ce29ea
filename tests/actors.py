"""Actors for tests that call services directly (the services check the role of each)."""

from __future__ import annotations

from typing import Any

from core.domain.accounts import Actor, Role, Source


def admin(name: str = "alice", source: Source = "cli") -> Actor:
    return Actor(name, Role.ADMIN, source)


def operator(name: str = "olivia", source: Source = "cli") -> Actor:
    return Actor(name, Role.OPERATOR, source)


def viewer(name: str = "victor", source: Source = "cli") -> Actor:
    return Actor(name, Role.VIEWER, source)


ADMIN = admin()


def add_account(services: Any, actor: Actor, password_hash: str = "not-a-real-hash") -> Actor:
    """Store ``actor`` as an account (for the CLI's ``--as NAME``); no password can sign in to it."""
    with services.uow() as uow:
        if uow.users.find(actor.name) is None:
            uow.users.add(actor.name, actor.role, password_hash)
            uow.commit()
    return actor


def cli_account(database_url: str, monkeypatch: Any, actor: Actor | None = None) -> Actor:
    """Migrate ``database_url``, store ``actor`` (default: an admin) and make it the CLI's identity
    (``PHOENIX_USER``), as a person would with ``phoenix user add`` and their login name."""
    actor = store_account(database_url, actor)
    monkeypatch.setenv("PHOENIX_USER", actor.name)
    monkeypatch.delenv("PHOENIX_TOKEN", raising=False)
    return actor


def store_account(database_url: str, actor: Actor | None = None) -> Actor:
    """Migrate ``database_url`` and store ``actor`` (default: an admin named tester) as an account."""
    from core.store.migrate import upgrade
    from core.store.uow import Database

    actor = actor or admin("tester")
    upgrade(database_url)
    db = Database(database_url)
    try:
        with db.uow() as uow:
            if uow.users.find(actor.name) is None:
                uow.users.add(actor.name, actor.role, "not-a-real-hash")
                uow.commit()
    finally:
        db.dispose()
    return actor
