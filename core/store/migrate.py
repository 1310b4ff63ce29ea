"""Alembic, driven from code: no alembic.ini needed in the working directory.

``upgrade(url)`` brings any database (empty or older) to the latest schema; it is what
``phoenix db upgrade`` and the app's start-up run. It refuses a database that is not
Phoenix's (another application's tables without a Phoenix schema version, or a schema
revision Phoenix does not know), so Phoenix never writes its tables into someone else's
database.
"""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from core.domain.errors import PermanentError, PhoenixError
from core.store.db import make_engine, masked, not_a_phoenix_database, not_migrated, translate_db_errors

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation would choke on '%' in passwords.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["database_url"] = url
    return cfg


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config("sqlite://"))


def head_revision() -> str:
    head = _script().get_current_head()
    assert head is not None
    return head


def known_revisions() -> set[str]:
    return {rev.revision for rev in _script().walk_revisions()}


def current_revision(url: str) -> str | None:
    """The schema revision of a Phoenix database (None when empty).

    Raises ``PermanentError`` when the database holds another application's tables and no
    Phoenix schema version, or a revision this Phoenix does not know.
    """
    engine = make_engine(url)
    try:
        with translate_db_errors(url, diagnose_missing_schema), engine.connect() as conn:
            tables = inspect(conn).get_table_names()
            if "alembic_version" not in tables:
                if tables:
                    raise not_a_phoenix_database(url, tables)
                return None
            rev = MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
    if rev is not None and rev not in known_revisions():
        raise PermanentError(f"database at {masked(url)} is not a Phoenix database this version knows: its schema "
                             f"revision {rev!r} is not one of Phoenix's (another application, or a newer Phoenix)")
    return rev


def is_up_to_date(url: str) -> bool:
    return current_revision(url) == head_revision()


def missing_tables(url: str) -> list[str]:
    """Phoenix tables absent from the database (all of them when it is empty)."""
    from core.store.models import Base

    engine = make_engine(url)
    try:
        with translate_db_errors(url, diagnose_missing_schema), engine.connect() as conn:
            present = set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    return sorted(set(Base.metadata.tables) - present)


def lacks_tables_error(url: str, rev: str, missing: list[str]) -> PermanentError:
    return PermanentError(f"database at {masked(url)} lacks Phoenix tables ({', '.join(missing)}) although its "
                          f"schema is at revision {rev}: restore it from a backup or point PHOENIX_DATABASE_URL "
                          "at a new database")


def upgrade(url: str, revision: str = "head") -> str:
    """Migrate to ``revision``; returns the revision the database is at afterwards."""
    current_revision(url)  # refuses a corrupted or foreign database before writing anything
    with translate_db_errors(url, diagnose_missing_schema):
        command.upgrade(alembic_config(url), revision)
    rev = current_revision(url)
    if rev == head_revision():
        missing = missing_tables(url)
        if missing:  # stamped at head, tables dropped by hand: migrating again cannot help
            raise lacks_tables_error(url, rev, missing)
    return rev or "base"


def downgrade(url: str, revision: str = "base") -> None:
    with translate_db_errors(url, diagnose_missing_schema):
        command.downgrade(alembic_config(url), revision)


_diagnosing = threading.local()


def diagnose_missing_schema(url: str) -> PhoenixError:
    """A Phoenix table is missing: an un-migrated database, or somebody else's database."""
    if getattr(_diagnosing, "active", False):  # the diagnosis itself hit a missing table: stop there
        return not_migrated(url)
    _diagnosing.active = True
    try:
        rev = current_revision(url)  # raises "not a Phoenix database" / unknown revision when that is the case
        if rev is not None and rev == head_revision():
            missing = missing_tables(url)
            if missing:
                return lacks_tables_error(url, rev, missing)
    except PhoenixError as exc:
        return exc
    except Exception:  # noqa: BLE001 - the diagnosis is best effort; the hint below still holds
        pass
    finally:
        _diagnosing.active = False
    return not_migrated(url)
