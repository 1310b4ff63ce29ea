"""Alembic, driven from code: no alembic.ini needed in the working directory.

``upgrade(url)`` brings any database (empty or older) to the latest schema; it is what
``phoenix db upgrade`` and the app's start-up run.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from core.store.db import make_engine, translate_db_errors

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation would choke on '%' in passwords.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["database_url"] = url
    return cfg


def head_revision() -> str:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    head = script.get_current_head()
    assert head is not None
    return head


def current_revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with translate_db_errors(url), engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def is_up_to_date(url: str) -> bool:
    return current_revision(url) == head_revision()


def upgrade(url: str, revision: str = "head") -> str:
    """Migrate to ``revision``; returns the revision the database is at afterwards."""
    with translate_db_errors(url):
        command.upgrade(alembic_config(url), revision)
    rev = current_revision(url)
    return rev or "base"


def downgrade(url: str, revision: str = "base") -> None:
    with translate_db_errors(url):
        command.downgrade(alembic_config(url), revision)
