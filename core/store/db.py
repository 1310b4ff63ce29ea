"""Engines: SQLite (WAL, busy timeout, foreign keys) or PostgreSQL via psycopg.

Every driver error becomes one line a user can act on (never a traceback, SQL text, SQL
parameters or a password) through ``translate_error`` / ``translate_db_errors``:

- cannot be reached (server down, file unopenable, locked) → ``TemporaryError`` "is unavailable"
- not an SQLite file / damaged pages → ``PermanentError`` "is corrupted"
- a Phoenix table is missing → ``PermanentError`` "is not migrated: run `phoenix db upgrade`",
  or "is not a Phoenix database" when the tables there belong to another application
- anything else the database refuses → one line from the driver's first message line
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from core.domain.errors import PermanentError, PhoenixError, TemporaryError, ValidationError
from core.redact import mask_url, redact

SQLITE_BUSY_TIMEOUT_MS = 10_000
UPGRADE_HINT = "run `phoenix db upgrade`"
# Driver messages (SQLite) and SQLSTATEs (PostgreSQL) of each failure shape.
_CORRUPT = ("file is not a database", "file is encrypted or is not a database", "database disk image is malformed",
            "malformed database schema")
_MISSING = ("no such table", "no such column", "has no column named")
_MISSING_SQLSTATES = frozenset({"42P01", "42703"})  # undefined_table, undefined_column


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def sqlite_file_missing(url: str) -> str | None:
    """The path of an SQLite database file that no longer exists (None: not SQLite, in memory, or present)."""
    parsed = make_url(url)
    db = parsed.database
    if parsed.get_backend_name() != "sqlite" or not db or db == ":memory:" or db.startswith("file:"):
        return None
    path = Path(db).expanduser()
    return None if path.exists() else str(path)


def masked(url: str) -> str:
    """The database URL with its password hidden (``core.redact.mask_url``)."""
    return mask_url(url)


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


def _first_line(url: str, orig: BaseException) -> str:
    lines = [ln.strip() for ln in str(orig).strip().splitlines() if ln.strip()]
    # Later lines of a driver message carry SQL (LINE 1: SELECT …) or values (DETAIL: Key …=(…)).
    return redact(lines[0] if lines else type(orig).__name__, url)


def _is_driver_error(exc: BaseException) -> bool:
    mod = type(exc).__module__ or ""
    return mod.startswith(("sqlite3", "psycopg", "_sqlite3"))


def not_a_phoenix_database(url: str, tables: list[str]) -> PermanentError:
    shown = ", ".join(sorted(tables)[:5]) + (", …" if len(tables) > 5 else "")
    return PermanentError(f"database at {masked(url)} is not a Phoenix database: it holds other tables ({shown}) "
                          "and no Phoenix schema; point PHOENIX_DATABASE_URL at a new or a Phoenix database")


def not_migrated(url: str) -> PermanentError:
    return PermanentError(f"database at {masked(url)} is not migrated: {UPGRADE_HINT}")


#: Says why a Phoenix table is missing (``core.store.migrate.diagnose_missing_schema``): passed in
#: by the callers, because the diagnosis needs the migrations and the migrations need this module.
Diagnosis = Callable[[str], PhoenixError]


def translate_error(url: str, exc: BaseException, diagnose_missing: Diagnosis | None = None) -> Exception | None:
    """The user-facing error for a driver/ORM exception, or None if it is not ours to translate.

    A missing table is "not migrated" unless ``diagnose_missing`` finds a more precise reason.
    """
    from sqlalchemy.orm.exc import StaleDataError

    from core.domain.errors import ConcurrencyError

    if isinstance(exc, StaleDataError):
        return ConcurrencyError("the row was changed by someone else while saving; reload and try again")
    if not isinstance(exc, sa_exc.DBAPIError) and not _is_driver_error(exc):
        return None
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).lower()
    sqlstate = getattr(orig, "sqlstate", None)
    if any(m in text for m in _CORRUPT):
        return PermanentError(f"database at {masked(url)} is corrupted or is not an SQLite database file "
                              f"({_first_line(url, orig)}); restore it from a backup or point PHOENIX_DATABASE_URL "
                              "at a new file")
    if sqlstate in _MISSING_SQLSTATES or any(m in text for m in _MISSING):
        return diagnose_missing(url) if diagnose_missing is not None else not_migrated(url)
    detail = _first_line(url, orig)
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError) or (
        isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated
    ) or type(orig).__name__ in ("OperationalError", "InterfaceError"):
        return TemporaryError(f"database {masked(url)} is unavailable: {detail}")
    if isinstance(exc, sa_exc.DataError) or type(orig).__name__ == "DataError":
        return ValidationError(f"database at {masked(url)} refused a value: {detail}")
    return PermanentError(f"database at {masked(url)} refused the operation: {detail}")


@contextlib.contextmanager
def translate_db_errors(url: str, diagnose_missing: Diagnosis | None = None) -> Iterator[None]:
    """Turn driver errors into the one-line PhoenixError users can read (``translate_error``)."""
    try:
        yield
    except Exception as exc:
        translated = translate_error(url, exc, diagnose_missing)
        if translated is not None:
            raise translated from None
        raise
