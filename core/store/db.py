"""Engines: SQLite (WAL, busy timeout, foreign keys) or PostgreSQL via psycopg.

A database that cannot be reached becomes ``TemporaryError`` with a one-line message
(never a driver traceback) through ``translate_db_errors``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from core.domain.errors import TemporaryError, ValidationError

SQLITE_BUSY_TIMEOUT_MS = 10_000


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def masked(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - never echo a malformed URL that may hold a secret
        return "<unparseable database URL>"


def make_engine(url: str, **kwargs: Any) -> Engine:
    try:
        parsed = make_url(url)
    except sa_exc.ArgumentError:
        raise ValidationError(f"PHOENIX_DATABASE_URL is not a valid database URL: {masked(url)}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        db = parsed.database
        if db and db != ":memory:" and not db.startswith("file:"):
            Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets the app read while the scheduler writes; busy_timeout makes
            # concurrent writers wait instead of failing with "database is locked".
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    if backend == "postgresql":
        if parsed.drivername == "postgresql":  # default to psycopg 3, which is what we install
            parsed = parsed.set(drivername="postgresql+psycopg")
        kwargs.setdefault("pool_pre_ping", True)
        kwargs.setdefault("connect_args", {"connect_timeout": 5})
        return create_engine(parsed, **kwargs)
    raise ValidationError(
        f"unsupported database {backend!r} in PHOENIX_DATABASE_URL; use sqlite:///path or postgresql+psycopg://…"
    )


def translate_error(url: str, exc: BaseException) -> Exception | None:
    """The user-facing error for a driver/ORM exception, or None if it is not ours to translate."""
    from sqlalchemy.orm.exc import StaleDataError

    from core.domain.errors import ConcurrencyError

    if isinstance(exc, StaleDataError):
        return ConcurrencyError("the row was changed by someone else while saving; reload and try again")
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError) or (
        isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated
    ):
        orig = getattr(exc, "orig", None) or exc
        lines = str(orig).strip().splitlines()
        detail = lines[0] if lines else type(orig).__name__
        return TemporaryError(f"database {masked(url)} is unavailable: {detail}")
    return None


@contextlib.contextmanager
def translate_db_errors(url: str) -> Iterator[None]:
    """Turn connection-level driver errors into a TemporaryError users can read."""
    try:
        yield
    except Exception as exc:
        translated = translate_error(url, exc)
        if translated is not None:
            raise translated from None
        raise
