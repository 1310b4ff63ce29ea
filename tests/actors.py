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
