"""Unit of work: one SQLAlchemy session, its repositories, one commit.

::

    with db.uow() as uow:
        exp = uow.experiments.get(eid)
        exp.cancel(actor="alice")
        uow.experiments.save(exp)
        uow.commit()

Implements the ``UnitOfWork`` port of ``core.domain.ports``. Leaving the block without
``commit()`` rolls back. Driver connection errors surface as
``TemporaryError`` and stale writes as ``ConcurrencyError`` — both with readable messages.
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.domain.errors import TemporaryError
from core.store import audit_guard  # noqa: F401 - installs the append-only audit guard
from core.store.claims import count_committed
from core.store.db import make_engine, masked, sqlite_file_missing, translate_error
from core.store.migrate import diagnose_missing_schema
from core.store.repositories import (
    SqlAuditRepository,
    SqlCollectorProcessRepository,
    SqlExperimentRepository,
    SqlHeartbeatRepository,
    SqlPipelineRepository,
    SqlSampleRepository,
    SqlSettingsRepository,
    SqlShareLinkRepository,
    SqlSnapshotRepository,
    SqlTokenRepository,
    SqlUserRepository,
)


class SqlAlchemyUnitOfWork:
    def __init__(self, session_factory: sessionmaker[Session], url: str):
        self._session_factory = session_factory
        self._url = url
        self.session: Session | None = None

    def __enter__(self) -> SqlAlchemyUnitOfWork:
        self.session = self._session_factory()
        self.experiments = SqlExperimentRepository(self.session)
        self.samples = SqlSampleRepository(self.session)
        self.pipelines = SqlPipelineRepository(self.session)
        self.audit = SqlAuditRepository(self.session)
        self.processes = SqlCollectorProcessRepository(self.session)
        self.settings = SqlSettingsRepository(self.session)
        self.share_links = SqlShareLinkRepository(self.session)
        self.users = SqlUserRepository(self.session)
        self.tokens = SqlTokenRepository(self.session)
        self.heartbeats = SqlHeartbeatRepository(self.session)
        self.snapshots = SqlSnapshotRepository(self.session)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self.session is not None
        self.experiments.written.clear()
        try:
            self.session.rollback()
        except Exception:  # noqa: BLE001 - a dead connection cannot roll back; closing is enough
            pass
        finally:
            self.session.close()
        if exc is not None:
            translated = translate_error(self._url, exc, diagnose_missing_schema)
            if translated is not None:
                raise translated from None

    def commit(self) -> None:
        assert self.session is not None
        try:
            self.session.commit()
        except Exception as exc:
            self.experiments.written.clear()  # rolled back: none of them happened
            translated = translate_error(self._url, exc, diagnose_missing_schema)
            if translated is not None:
                raise translated from None
            raise
        # Counted here, after the commit, and nowhere else: every writer of transitions
        # (scheduler, services, CLI) commits through a unit of work, so each is counted once.
        count_committed(self.experiments.written)

    def rollback(self) -> None:
        assert self.session is not None
        self.experiments.written.clear()
        self.session.rollback()


class Database:
    """An engine + session factory for one URL; hands out units of work."""

    def __init__(self, url: str, engine: Engine | None = None):
        self.url = url
        self.engine = engine or make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def uow(self) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(self._sessions, self.url)

    def ping(self) -> None:
        """Raise TemporaryError with a clear message when the database does not answer.

        An SQLite file deleted under a running process still answers on the connections
        the pool holds open (they read the unlinked file), so its path is checked too.
        """
        from sqlalchemy import text

        missing = sqlite_file_missing(self.url)
        if missing is not None:
            raise TemporaryError(f"database {masked(self.url)} is unavailable: {missing} does not exist")
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            translated = translate_error(self.url, exc, diagnose_missing_schema)
            if translated is not None:
                raise translated from None
            raise

    def dispose(self) -> None:
        self.engine.dispose()
