"""The audit log cannot be changed or deleted through the ORM, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from core.store.audit_guard import AuditImmutableError
from core.store.migrate import upgrade
from core.store.models import AuditLogRow
from core.store.uow import Database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'audit.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_empty_url")
    upgrade(url)
    database = Database(url)
    with database.uow() as uow:
        uow.audit.add("alice", "experiment.create", "exp-1", {"name": "x"}, source="ui")
        uow.commit()
    try:
        yield database
    finally:
        database.dispose()


def _entries(db: Database) -> list[tuple[str, str]]:
    with db.uow() as uow:
        return [(e.actor, e.action) for e in uow.audit.list()]


def test_changing_an_audit_row_is_refused(db: Database) -> None:
    with db.uow() as uow:
        assert uow.session is not None
        row = uow.session.scalars(select(AuditLogRow)).one()
        row.actor = "mallory"
        with pytest.raises(AuditImmutableError, match="cannot be changed or deleted"):
            uow.session.flush()
    assert _entries(db) == [("alice", "experiment.create")]


def test_deleting_an_audit_row_is_refused(db: Database) -> None:
    with db.uow() as uow:
        assert uow.session is not None
        uow.session.delete(uow.session.scalars(select(AuditLogRow)).one())
        with pytest.raises(AuditImmutableError):
            uow.session.flush()
    assert _entries(db) == [("alice", "experiment.create")]


@pytest.mark.parametrize("statement", [update(AuditLogRow).values(actor="mallory"), delete(AuditLogRow)])
def test_bulk_update_and_delete_are_refused(db: Database, statement: object) -> None:
    with db.uow() as uow:
        assert uow.session is not None
        with pytest.raises(AuditImmutableError):
            uow.session.execute(statement)  # type: ignore[call-overload]
    assert _entries(db) == [("alice", "experiment.create")]


def test_adding_entries_still_works(db: Database) -> None:
    with db.uow() as uow:
        uow.audit.add("bob", "experiment.cancel", "exp-1", source="cli")
        uow.commit()
    assert _entries(db)[0] == ("bob", "experiment.cancel")
