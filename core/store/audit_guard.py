"""The audit log is append-only: the ORM refuses to update or delete an audit row.

Two doors are shut: a flush carrying a changed or deleted ``AuditLogRow`` (unit-of-work
path), and an ORM ``update(...)`` / ``delete(...)`` statement aimed at ``audit_log``
(bulk path). Both raise ``AuditImmutableError`` before anything reaches the database.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session

from core.domain.errors import PermanentError
from core.store.models import AuditLogRow


class AuditImmutableError(PermanentError):
    """Someone tried to change or remove an audit entry."""


def _refuse_flush(session: Session, _ctx: Any, _instances: Any) -> None:
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, AuditLogRow) and (obj in session.deleted or session.is_modified(obj)):
            raise AuditImmutableError("audit entries cannot be changed or deleted")


def _refuse_bulk(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete):
        return
    mapper = state.bind_mapper
    table = getattr(state.statement, "table", None)
    if (mapper is not None and mapper.class_ is AuditLogRow) or getattr(table, "name", None) == "audit_log":
        raise AuditImmutableError("audit entries cannot be changed or deleted")


def install() -> None:
    """Idempotent: listens on every Session."""
    if not event.contains(Session, "before_flush", _refuse_flush):
        event.listen(Session, "before_flush", _refuse_flush)
    if not event.contains(Session, "do_orm_execute", _refuse_bulk):
        event.listen(Session, "do_orm_execute", _refuse_bulk)


install()
