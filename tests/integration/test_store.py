"""Repositories, unit of work, migrations and optimistic locking on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect, text

from core.domain.criteria import LoadProfile, SuccessCriteria, Target, Timing
from core.domain.errors import ConcurrencyError, NotFoundError, TemporaryError, ValidationError
from core.domain.experiment import Experiment, State
from core.domain.samples import MeasurementSample
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


def test_experiment_round_trip(database: Database) -> None:
    exp = new_experiment()
    with database.uow() as uow:
        uow.experiments.add(exp)
        uow.commit()
    assert exp.version == 1
    with database.uow() as uow:
        got = uow.experiments.get(exp.id)
    for f in ("id", "name", "description", "owner", "state", "baseline", "candidate", "target", "load", "timing",
              "criteria", "critical_rules", "dry_run", "created_at", "version"):
        assert getattr(got, f) == getattr(exp, f), f
    assert got.created_at.tzinfo is not None


def test_transitions_write_the_event_log_in_order(database: Database) -> None:
    exp = new_experiment()
    with database.uow() as uow:
        uow.experiments.add(exp)
        uow.commit()
    steps = [("start", ()), ("mark_running", ()), ("begin_analysis", ())]
    for i, (name, _) in enumerate(steps):
        with database.uow() as uow:
            e = uow.experiments.get(exp.id)
            getattr(e, name)("scheduler:t", T0 + timedelta(seconds=i + 1))
            e.runtime_info = {"pids": [100 + i], "ports": {"baseline": 19000}}
            uow.experiments.save(e)
            uow.commit()
    with database.uow() as uow:
        e = uow.experiments.get(exp.id)
        e.complete({"verdict": "REJECT", "reasons": ["only 12% fewer series"]}, "scheduler:t", T0 + timedelta(seconds=9))
        uow.experiments.save(e)
        uow.commit()
    with database.uow() as uow:
        got = uow.experiments.get(exp.id)
    assert got.state is State.COMPLETED and got.version == 5
    assert got.result == {"verdict": "REJECT", "reasons": ["only 12% fewer series"]}
    assert got.runtime_info == {"pids": [102], "ports": {"baseline": 19000}}
    assert got.started_at == T0 + timedelta(seconds=2) and got.finished_at == T0 + timedelta(seconds=9)
    assert [(ev.from_state, ev.to_state, ev.at) for ev in got.events] == [
        ("Pending", "Initializing", T0 + timedelta(seconds=1)),
        ("Initializing", "Running", T0 + timedelta(seconds=2)),
        ("Running", "Analyzing", T0 + timedelta(seconds=3)),
        ("Analyzing", "Completed", T0 + timedelta(seconds=9)),
    ]


def test_optimistic_lock_conflict(database: Database) -> None:
    exp = new_experiment()
    with database.uow() as uow:
        uow.experiments.add(exp)
        uow.commit()
    with database.uow() as u1, database.uow() as u2:
        a = u1.experiments.get(exp.id)
        b = u2.experiments.get(exp.id)
        a.start("scheduler:a")
        u1.experiments.save(a)
        u1.commit()
        b.cancel("alice")
        with pytest.raises(ConcurrencyError, match=f"experiment {exp.id} was changed by someone else"):
            u2.experiments.save(b)
    with database.uow() as uow:
        got = uow.experiments.get(exp.id)
    assert got.state is State.INITIALIZING  # the stale write did not overwrite
    assert [e.to_state for e in got.events] == ["Initializing"]


def test_stale_object_from_an_earlier_unit_is_rejected(database: Database) -> None:
    exp = new_experiment()
    with database.uow() as uow:
        uow.experiments.add(exp)
        uow.commit()
    stale = new_experiment(id=exp.id)
    stale.version = 1
    with database.uow() as uow:
        e = uow.experiments.get(exp.id)
        e.start("s")
        uow.experiments.save(e)
        uow.commit()
    stale.cancel("bob")
    with database.uow() as uow, pytest.raises(ConcurrencyError):
        uow.experiments.save(stale)


def test_list_and_counts(database: Database) -> None:
    ids = []
    for i in range(3):
        e = new_experiment(name=f"e{i}", now=T0 + timedelta(minutes=i))
        with database.uow() as uow:
            uow.experiments.add(e)
            uow.commit()
        ids.append(e.id)
    with database.uow() as uow:
        e = uow.experiments.get(ids[0])
        e.cancel("alice")
        uow.experiments.save(e)
        uow.commit()
    with database.uow() as uow:
        assert [e.id for e in uow.experiments.list()] == list(reversed(ids))  # newest first
        assert [e.id for e in uow.experiments.list(states=["Cancelled"])] == [ids[0]]
        assert uow.experiments.counts_by_state() == {"Pending": 2, "Cancelled": 1}
        with pytest.raises(NotFoundError):
            uow.experiments.get("exp-missing")


def test_uncommitted_unit_rolls_back(database: Database) -> None:
    with database.uow() as uow:
        uow.experiments.add(new_experiment())
    with database.uow() as uow:
        assert uow.experiments.list() == []


def test_claims_are_exclusive_and_expire(database: Database) -> None:
    e1, e2 = new_experiment(now=T0), new_experiment(now=T0 + timedelta(seconds=1))
    with database.uow() as uow:
        uow.experiments.add(e1)
        uow.experiments.add(e2)
        uow.commit()
    with database.uow() as uow:
        assert uow.experiments.claim("a", T0, 30, limit=1) == [e1.id]
        uow.commit()
    with database.uow() as uow:
        assert uow.experiments.claim("b", T0, 30) == [e2.id]
        uow.commit()
    with database.uow() as uow:
        assert uow.experiments.holds_claim(e1.id, "a", T0 + timedelta(seconds=5))
        assert not uow.experiments.holds_claim(e1.id, "b", T0)
        assert uow.experiments.claim("c", T0 + timedelta(seconds=10), 30) == []
        assert sorted(uow.experiments.claim("c", T0 + timedelta(seconds=31), 30)) == sorted([e1.id, e2.id])
        uow.commit()
    with database.uow() as uow:
        uow.experiments.release_all("c")
        uow.commit()
    with database.uow() as uow:
        assert uow.experiments.claims() == {e1.id: None, e2.id: None}
        # claims never bump the optimistic version
        assert uow.experiments.get(e1.id).version == 1


def test_terminal_experiments_are_claimed_only_for_teardown(database: Database) -> None:
    done, pending_teardown = new_experiment(), new_experiment()
    with database.uow() as uow:
        uow.experiments.add(done)
        uow.experiments.add(pending_teardown)
        uow.commit()
    for exp, deployed in ((done, False), (pending_teardown, True)):
        with database.uow() as uow:
            e = uow.experiments.get(exp.id)
            e.start("s")
            if deployed:
                e.runtime_info = {"pids": [1]}
            e.cancel("alice")
            uow.experiments.save(e)
            uow.commit()
    with database.uow() as uow:
        assert uow.experiments.claim("s", T0 + timedelta(days=1), 30) == [pending_teardown.id]


def test_pipeline_versions_are_numbered_and_immutable(database: Database) -> None:
    with database.uow() as uow:
        v1 = uow.pipelines.add_version("my-pipe", {"nodes": [1]}, "receivers: {}\n", message="first", author="alice",
                                       commit_id="abc123", computed={"series": 10})
        v2 = uow.pipelines.add_version("my-pipe", {"nodes": [1, 2]}, "receivers: {}\n", message="second")
        uow.pipelines.add_version("other", {"nodes": []})
        uow.commit()
    assert (v1.number, v2.number, v2.ref) == (1, 2, "my-pipe@2")
    with database.uow() as uow:
        assert uow.pipelines.get_version("my-pipe").graph == {"nodes": [1, 2]}
        first = uow.pipelines.get_version("my-pipe", 1)
        assert (first.message, first.author, first.commit_id, first.computed) == ("first", "alice", "abc123", {"series": 10})
        assert [v.number for v in uow.pipelines.list_versions("my-pipe")] == [1, 2]
        assert [(p.name, p.latest_version) for p in uow.pipelines.list_pipelines()] == [("my-pipe", 2), ("other", 1)]
        with pytest.raises(NotFoundError, match="has no version 7"):
            uow.pipelines.get_version("my-pipe", 7)
        with pytest.raises(NotFoundError, match="no saved pipeline named 'nope'"):
            uow.pipelines.list_versions("nope")
        with pytest.raises(ValidationError):
            uow.pipelines.ensure_pipeline(" ")
    from core.store.repositories import SqlPipelineRepository

    assert not [m for m in dir(SqlPipelineRepository) if m.startswith(("update", "edit", "set"))]


def test_samples_audit_processes_settings(database: Database) -> None:
    exp = new_experiment()
    with database.uow() as uow:
        uow.experiments.add(exp)
        uow.samples.add_many([
            MeasurementSample(exp.id, v, T0 + timedelta(seconds=10 * i), 1000 - 600 * (v == "candidate"), 1000, 80_000,
                              collector_cpu_pct=1.5, collector_rss_mb=60.0, critical_coverage_pct=100.0,
                              processes_seen=250, series_created=3, series_removed=1)
            for i in range(3) for v in ("baseline", "candidate")
        ])
        uow.audit.add("alice", "experiment.create", exp.id, {"name": exp.name})
        pid_row = uow.processes.add(exp.id, "baseline", 4242, 19000)
        uow.settings.set("price_cards", {"grafana": 6.5}, by="alice")
        uow.commit()
    with database.uow() as uow:
        samples = uow.samples.list(exp.id)
        assert len(samples) == 6 and uow.samples.count(exp.id) == 6
        assert [s.series for s in uow.samples.list(exp.id, variant="candidate")] == [400, 400, 400]
        assert len(uow.samples.list(exp.id, since=T0 + timedelta(seconds=5))) == 4
        assert samples[0].t == T0 and samples[0].critical_coverage_pct == 100.0
        with pytest.raises(ValidationError, match="variant must be one of baseline, candidate"):
            uow.samples.add(MeasurementSample(exp.id, "third", T0, 1, 1, 1))
    with database.uow() as uow:
        (entry,) = uow.audit.list(subject=exp.id)
        assert (entry.actor, entry.action, entry.details) == ("alice", "experiment.create", {"name": "store test"})
        (proc,) = uow.processes.list(owner_ref=exp.id)
        assert (proc.pid, proc.port, proc.status) == (4242, 19000, "running")
        uow.processes.set_status(pid_row, "stopped")
        uow.settings.set("price_cards", {"grafana": 7.0})
        uow.commit()
    with database.uow() as uow:
        assert uow.processes.list(status="running") == []
        assert uow.settings.get("price_cards") == {"grafana": 7.0}
        assert uow.settings.get("missing", "dflt") == "dflt"
        assert uow.settings.all() == {"price_cards": {"grafana": 7.0}}


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
