"""The SQL store itself: migrations, SQLite settings, connection errors.

What every store must do (repositories, unit of work, optimistic locking, claims) is the
contract suite in ``test_store_contract.py``, run on SQLite, PostgreSQL and the in-memory fake.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, text

from core.domain.criteria import LoadProfile, SuccessCriteria, Target, Timing
from core.domain.errors import TemporaryError, ValidationError
from core.domain.experiment import Experiment
from core.store.db import make_engine
from core.store.migrate import current_revision, downgrade, head_revision, is_up_to_date, upgrade
from core.store.uow import Database

T0 = datetime(2026, 5, 1, 8, 30, tzinfo=UTC)
TABLES = {"experiments", "experiment_events", "pipelines", "pipeline_versions", "measurement_samples",
          "audit_log", "collector_processes", "app_settings"}


def new_experiment(**kw) -> Experiment:
    base = dict(name="store test", baseline="process-baseline-v1", candidate="process-topk-v1@3", owner="alice",
                description="checks the round trip", timing=Timing(120, 10),
                target=Target(kind="kubernetes", namespace="obs", node_selector={"role": "worker"}),
                load=LoadProfile(name="custom", params={"patterns": [{"name_template": "nginx-{i}", "count": 4}]}),
                criteria=SuccessCriteria(min_series_reduction_pct=60, max_cpu_overhead_pct=5, min_samples=3),
                critical_rules=[{"match": "executable_name", "pattern": "^postgres$", "priority": "critical"}],
                now=T0)
    base.update(kw)
    return Experiment.create(**base)


def test_migrations_from_empty_and_back(db_url: str) -> None:
    assert current_revision(db_url) is None
    assert not is_up_to_date(db_url)
    assert upgrade(db_url) == head_revision()
    engine = make_engine(db_url)
    try:
        assert set(inspect(engine).get_table_names()) >= TABLES
        downgrade(db_url, "base")
        assert not (TABLES & set(inspect(engine).get_table_names()))
        upgrade(db_url)
        upgrade(db_url)  # idempotent
        assert is_up_to_date(db_url)
    finally:
        engine.dispose()


def test_models_and_migrations_agree(migrated_url: str) -> None:
    """Autogenerate finds nothing to add: the migration creates exactly what the models declare."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from core.store.models import Base

    engine = make_engine(migrated_url)
    try:
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diffs == []


def test_sqlite_runs_in_wal_mode(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'sub' / 'p.db'}"  # parent dir created on demand
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 10000
    finally:
        engine.dispose()


def test_unreachable_database_is_a_temporary_error() -> None:
    db = Database("postgresql+psycopg://postgres@127.0.0.1:9/phoenix")
    with pytest.raises(TemporaryError, match=r"database postgresql\+psycopg://postgres@127.0.0.1:9/phoenix is unavailable"):
        db.ping()
    with pytest.raises(TemporaryError, match="is unavailable"), db.uow() as uow:
        uow.experiments.list()
    with pytest.raises(TemporaryError, match="is unavailable"):
        current_revision("postgresql+psycopg://postgres:secret@127.0.0.1:9/phoenix")
    try:
        current_revision("postgresql+psycopg://postgres:secret@127.0.0.1:9/phoenix")
    except TemporaryError as exc:
        assert "secret" not in str(exc)  # passwords never reach a message


def test_bad_database_url_is_a_clear_error() -> None:
    with pytest.raises(ValidationError, match="unsupported database 'mysql'"):
        make_engine("mysql://x@y/z")
    with pytest.raises(ValidationError, match="not a valid database URL"):
        make_engine("not a url")
