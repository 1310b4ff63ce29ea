"""SQLAlchemy 2.0 typed models. Repositories map them to domain objects; nothing else uses them.

Times are stored as naive UTC (``UTCDateTime``) so SQLite and PostgreSQL agree, and come
back timezone-aware.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON}


class ExperimentRow(Base):
    __tablename__ = "experiments"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    owner: Mapped[str] = mapped_column(String(200), default="anonymous")
    state: Mapped[str] = mapped_column(String(20), index=True)
    baseline_pipeline: Mapped[str] = mapped_column(String(200))
    baseline_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    candidate_pipeline: Mapped[str] = mapped_column(String(200))
    candidate_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    target: Mapped[dict[str, Any]] = mapped_column(JSON)
    load_profile: Mapped[dict[str, Any]] = mapped_column(JSON)
    duration_s: Mapped[float] = mapped_column(Float)
    interval_s: Mapped[float] = mapped_column(Float)
    criteria: Mapped[dict[str, Any]] = mapped_column(JSON)
    critical_policy: Mapped[list[dict[str, str]] | None] = mapped_column(JSON, nullable=True)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    # The creating request's correlation id (docs/observability.md); None before 0006.
    correlation_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    runtime_info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # True while a terminal experiment may still have collectors up (scheduler cleans up).
    needs_teardown: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)
    # Scheduler claim: a lease that expires, so a crashed scheduler's work is picked up.
    # Claims are written with Core UPDATEs and never bump `version`.
    claimed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": version}
    # The scheduler's claim reads `state IN (active) OR needs_teardown`: both sides indexed.
    __table_args__ = (
        Index("ix_experiments_needs_teardown", "needs_teardown",
              postgresql_where=text("needs_teardown"), sqlite_where=text("needs_teardown")),
        # The API's keyset paging: newest first by (created_at, id).
        Index("ix_experiments_created_id", "created_at", "id"),
    )


class ExperimentEventRow(Base):
    __tablename__ = "experiment_events"
    __table_args__ = (UniqueConstraint("experiment_id", "seq", name="uq_experiment_event_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    experiment_id: Mapped[str] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), index=True)
    # Position in the experiment's log; the unique constraint makes a duplicated write fail loudly.
    seq: Mapped[int] = mapped_column(Integer)
    from_state: Mapped[str] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class PipelineRow(Base):
    __tablename__ = "pipelines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)


class PipelineVersionRow(Base):
    """Immutable: repositories only insert; (pipeline, number) is unique."""

    __tablename__ = "pipeline_versions"
    __table_args__ = (UniqueConstraint("pipeline_id", "number", name="uq_pipeline_version_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    graph: Mapped[dict[str, Any]] = mapped_column(JSON)
    collector_yaml: Mapped[str] = mapped_column(Text, default="")
    commit_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str] = mapped_column(String(200), default="anonymous")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)
    computed: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class MeasurementSampleRow(Base):
    __tablename__ = "measurement_samples"
    __table_args__ = (Index("ix_samples_experiment_variant_t", "experiment_id", "variant", "t"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    experiment_id: Mapped[str] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    variant: Mapped[str] = mapped_column(String(20))
    t: Mapped[datetime] = mapped_column(UTCDateTime())
    series: Mapped[int] = mapped_column(BigInteger)
    datapoints: Mapped[int] = mapped_column(BigInteger)
    bytes: Mapped[int] = mapped_column(BigInteger)
    collector_cpu_pct: Mapped[float | None] = mapped_column(Float, nullable=True)
    collector_rss_mb: Mapped[float | None] = mapped_column(Float, nullable=True)
    critical_coverage_pct: Mapped[float | None] = mapped_column(Float, nullable=True)
    processes_seen: Mapped[int | None] = mapped_column(Integer, nullable=True)
    series_created: Mapped[int | None] = mapped_column(Integer, nullable=True)
    series_removed: Mapped[int | None] = mapped_column(Integer, nullable=True)


class AuditLogRow(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(String(200), default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source: Mapped[str] = mapped_column(String(20), default="")
    before: Mapped[Any] = mapped_column(JSON, nullable=True)
    after: Mapped[Any] = mapped_column(JSON, nullable=True)


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[int] = mapped_column(Integer)  # core.domain.accounts.Role
    password_hash: Mapped[str] = mapped_column(String(255))  # argon2id, never the password
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)


class ApiTokenRow(Base):
    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), ForeignKey("users.name"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the secret
    role: Mapped[int] = mapped_column(Integer)  # at most the owner's role when created
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class CollectorProcessRow(Base):
    __tablename__ = "collector_processes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # An experiment id, or 'production' for a promoted pipeline's collector.
    owner_ref: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(50))  # baseline | candidate | loadsim | production
    pid: Mapped[int] = mapped_column(Integer)
    port: Mapped[int | None] = mapped_column(Integer, nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)
    status: Mapped[str] = mapped_column(String(20), default="running")  # running | stopped | lost


class SchedulerHeartbeatRow(Base):
    """One row per scheduler, rewritten each tick; readiness reads the newest beat."""

    __tablename__ = "scheduler_heartbeats"

    scheduler_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class AppSettingRow(Base):
    __tablename__ = "app_settings"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)
    updated_by: Mapped[str] = mapped_column(String(200), default="system")


class ShareLinkRow(Base):
    """A read-only share link; revoked, never deleted (the list shows who shared what)."""

    __tablename__ = "share_links"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    scope_kind: Mapped[str] = mapped_column(String(20))
    scope_ref: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(200), nullable=True)

    __table_args__ = (Index("ix_share_links_scope", "scope_kind", "scope_ref"),)


class ProcessSnapshotRow(Base):
    """A stored process snapshot (Parquet bytes) and what listings show without reading it."""

    __tablename__ = "process_snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(100))
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime())
    added_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)
    added_by: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(200), default="")
    hosts: Mapped[int] = mapped_column(Integer)
    rows: Mapped[int] = mapped_column(Integer)
    scrapes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (
        Index("ix_process_snapshots_scope_taken", "scope", "taken_at"),
        UniqueConstraint("scope", "sha256", name="uq_process_snapshots_scope_sha256"),
    )
