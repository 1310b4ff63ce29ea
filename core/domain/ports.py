"""Interfaces to the side effects the core drives (cosmicpython ports).

Persistence: the repositories and the abstract ``UnitOfWork`` (bottom of this module).

Real implementations live in ``core/runtime`` (deployers) and ``core/analysis``
(analyzers); ``core/runtime/memory.py`` has in-memory ones that record calls, used by
tests and by dry runs (``PHOENIX_RUNTIME=memory``). Implementations raise
``TemporaryError`` for "retry next tick" and anything else for "fail the experiment".
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from core.domain.accounts import Role, TokenRecord, UserRecord
from core.domain.events import TransitionEvent
from core.domain.experiment import Experiment, State
from core.domain.records import (
    AuditEntry,
    CollectorProcess,
    PipelineRecord,
    PipelineVersionRecord,
    ShareLinkRecord,
    SnapshotRecord,
)
from core.domain.samples import MeasurementSample


@runtime_checkable
class Deployer(Protocol):
    """Starts, watches and stops the baseline and candidate collectors of an experiment.

    Every method must be idempotent: the scheduler may call it again after a crash.
    """

    #: True when nothing real is deployed; such experiments are labelled "dry run".
    dry_run: bool

    def deploy(self, experiment: Experiment) -> dict[str, Any]:
        """Start both variants (and the load). Returns runtime info (pids, ports, …) to store."""
        ...

    def is_ready(self, experiment: Experiment) -> bool:
        """Both variants serve metrics."""
        ...

    def healthy(self, experiment: Experiment) -> bool:
        """Still running as deployed (no collector died)."""
        ...

    def teardown(self, experiment: Experiment) -> None:
        """Stop everything the deployment started; safe when nothing runs."""
        ...


@runtime_checkable
class Analyzer(Protocol):
    def analyze(self, experiment: Experiment, samples: Sequence[MeasurementSample]) -> dict[str, Any]:
        """Result dict with at least ``verdict`` (PROMOTE | REJECT | INCONCLUSIVE) and ``reasons``."""
        ...


@runtime_checkable
class SampleSource(Protocol):
    """Optional for a Deployer: measurements taken since the last call.

    When the deployer has ``collect``, the scheduler calls it on every tick while the
    experiment runs (and once more before tearing down) and stores what it returns, so
    a runtime does not need its own database access.
    """

    def collect(self, experiment: Experiment) -> Sequence[MeasurementSample]: ...


# ---- persistence: the repositories and the unit of work ---------------------------------
# ``core/store/uow.py`` (SQLAlchemy) and ``core/store/memory.py`` (tests, dry runs) implement
# these; services and the scheduler see only the Protocols, so the store stays an adapter.


@dataclass(frozen=True)
class ExperimentSummary:
    """One row of an experiment listing: no event log, no result body, no runtime info."""

    id: str
    name: str
    state: str
    owner: str
    baseline: str
    candidate: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float
    dry_run: bool
    verdict: str | None
    error: str | None
    #: The measured series reduction (``result["series_reduction_pct"]``), once analysed.
    reduction_pct: float | None = None

    @property
    def key(self) -> ExperimentKey:
        """Where the next page of a listing starts (see ``ExperimentRepository.page``)."""
        return (self.created_at, self.id)

    @classmethod
    def of(cls, e: Experiment) -> ExperimentSummary:
        return cls(id=e.id, name=e.name, state=e.state.value, owner=e.owner, baseline=str(e.baseline),
                   candidate=str(e.candidate), created_at=e.created_at, started_at=e.started_at,
                   finished_at=e.finished_at, duration_s=e.timing.duration_s, dry_run=e.dry_run,
                   verdict=(e.result or {}).get("verdict"), error=e.error,
                   reduction_pct=_number((e.result or {}).get("series_reduction_pct")))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


#: Columns an experiment table sorts by (``TableQuery.sort``).
TABLE_SORTS = ("created", "name", "state", "owner", "pipelines", "reduction", "verdict")


@dataclass(frozen=True)
class TableQuery:
    """One page of the experiment table: filters, one sort column, and an offset.

    Unlike the keyset ``page`` (newest first only, for APIs walking everything), a table
    sorts by any column of ``TABLE_SORTS``; rows without a value (no verdict, no
    reduction yet) come last either way, and the id breaks ties so pages never overlap.
    """

    states: tuple[State, ...] | None = None
    owner: str | None = None
    pipeline: str | None = None
    verdict: str | None = None
    sort: str = "created"
    descending: bool = True
    offset: int = 0
    limit: int = 25


#: A keyset position in the newest-first experiment order: ``(created_at, id)``.
ExperimentKey = tuple[datetime, str]


class ExperimentRepository(Protocol):
    def get(self, experiment_id: str) -> Experiment: ...
    def list(self, states: Iterable[State | str] | None = None, limit: int = 500) -> list[Experiment]: ...
    def page(self, *, states: Collection[State] | None = None, owner: str | None = None,
             pipeline: str | None = None, after: ExperimentKey | None = None,
             limit: int = 50) -> list[ExperimentSummary]:
        """Up to ``limit`` summaries, newest first by ``(created_at, id)``, strictly after ``after``.

        Keyset paging over ``ix_experiments_created_id``: reads ``limit`` rows whatever the
        page, and never the heavy JSON columns. ``pipeline`` matches baseline or candidate.
        """
        ...

    def table(self, query: TableQuery) -> list[ExperimentSummary]:
        """Up to ``query.limit`` summaries after skipping ``query.offset``, filtered and
        sorted by the store (see ``TableQuery``); never the heavy JSON columns."""
        ...

    def counts_by_state(self) -> dict[str, int]: ...
    def add(self, exp: Experiment) -> None: ...
    def save(self, exp: Experiment) -> None: ...
    def claim(self, owner: str, now: datetime, lease_s: float, limit: int = 50, *,
              experiment_ids: Collection[str] | None = None, dry_run: bool | None = None) -> list[str]: ...
    def holds_claim(self, experiment_id: str, owner: str, now: datetime) -> bool: ...
    def release(self, experiment_id: str, owner: str) -> None: ...
    def release_all(self, owner: str) -> None: ...
    def events_after(self, after_id: int, limit: int = 500) -> list[tuple[int, TransitionEvent]]:
        """Every experiment's transitions with a log id above ``after_id``, oldest first (the live feed)."""
        ...
    def last_event_id(self) -> int:
        """The newest log id (0 when empty): where a live-only feed starts."""
        ...


class SampleRepository(Protocol):
    def add(self, sample: MeasurementSample) -> None: ...
    def add_many(self, samples: Iterable[MeasurementSample]) -> None: ...
    def list(self, experiment_id: str, variant: str | None = None,
             since: datetime | None = None) -> list[MeasurementSample]: ...
    def count(self, experiment_id: str) -> int: ...
    def after(self, experiment_id: str, after_id: int, limit: int = 500) -> list[tuple[int, MeasurementSample]]:
        """Samples stored with an id above ``after_id``, in the order they were stored (a resumable cursor)."""
        ...
    def prune_finished_before(self, cutoff: datetime) -> int:
        """Delete the samples of experiments that ended (a terminal state) before ``cutoff``;
        returns how many went. Experiments, their results and the audit log stay."""
        ...


class PipelineRepository(Protocol):
    def ensure_pipeline(self, name: str, description: str = "", builtin: bool = False) -> None: ...
    def add_version(self, name: str, graph: dict[str, Any], collector_yaml: str = "", *, message: str = "",
                    author: str = "anonymous", commit_id: str | None = None,
                    computed: dict[str, Any] | None = None, description: str = "",
                    builtin: bool = False) -> PipelineVersionRecord: ...
    def get_version(self, name: str, number: int | None = None) -> PipelineVersionRecord: ...
    def list_versions(self, name: str) -> list[PipelineVersionRecord]: ...
    def list_pipelines(self) -> list[PipelineRecord]: ...


class AuditRepository(Protocol):
    """Append-only: there is no update or delete, and the SQL store refuses one at flush time."""

    def add(self, actor: str, action: str, subject: str = "", details: dict[str, Any] | None = None, *,
            source: str = "", before: Any = None, after: Any = None) -> None: ...
    def list(self, subject: str | None = None, limit: int = 200) -> list[AuditEntry]: ...
    def page(self, *, subject: str | None = None, actor: str | None = None, before: int | None = None,
             limit: int = 100) -> list[tuple[int, AuditEntry]]:
        """Up to ``limit`` ``(id, entry)`` pairs, newest first by id, with ids below ``before``
        (keyset paging on the primary key: each page reads ``limit`` rows)."""
        ...


class UserRepository(Protocol):
    def add(self, name: str, role: Role, password_hash: str) -> UserRecord: ...
    def get(self, name: str) -> UserRecord: ...
    def find(self, name: str) -> UserRecord | None: ...
    def password_hash(self, name: str) -> str | None: ...
    def list(self) -> list[UserRecord]: ...
    def count(self) -> int: ...
    def update(self, name: str, **fields: Any) -> UserRecord:
        """Set any of role, disabled, password_hash, failed_logins, locked_until."""
        ...


class TokenRepository(Protocol):
    def add(self, token: TokenRecord, secret_hash: str) -> None: ...
    def get(self, token_id: str) -> TokenRecord: ...
    def by_hash(self, secret_hash: str) -> TokenRecord | None: ...
    def list(self, owner: str | None = None) -> list[TokenRecord]: ...
    def update(self, token_id: str, **fields: Any) -> TokenRecord:
        """Set revoked_at or last_used_at."""
        ...


class CollectorProcessRepository(Protocol):
    def add(self, owner_ref: str, role: str, pid: int, port: int | None = None) -> int: ...
    def list(self, owner_ref: str | None = None, status: str | None = None) -> list[CollectorProcess]: ...
    def set_status(self, process_id: int, status: str) -> None: ...
    def forget(self, owner_ref: str) -> None: ...


class SettingsRepository(Protocol):
    """JSON values by key (``app_settings``): settings, production and promotion records."""

    def get(self, key: str, default: Any = None) -> Any: ...
    def set(self, key: str, value: Any, by: str = "system") -> None: ...
    def delete(self, key: str) -> None: ...
    def all(self) -> dict[str, Any]: ...


class ShareLinkRepository(Protocol):
    """Share links (``share_links``): added, listed per resource, revoked; never deleted."""

    def add(self, link: ShareLinkRecord) -> None: ...
    def get(self, link_id: str) -> ShareLinkRecord: ...
    def list_for(self, scope_kind: str, scope_ref: str) -> list[ShareLinkRecord]: ...
    def revoke(self, link_id: str, by: str, at: datetime) -> ShareLinkRecord: ...


class SnapshotRepository(Protocol):
    """Stored process snapshots (``process_snapshots``), per scope, newest first."""

    def add(self, record: SnapshotRecord, data: bytes) -> SnapshotRecord:
        """Store one; the returned record carries its id. Same scope and sha256 twice: ValidationError."""
        ...
    def list(self, scope: str | None = None, limit: int = 100) -> list[SnapshotRecord]:
        """Newest ``taken_at`` first (then newest id); every scope when None."""
        ...
    def data(self, snapshot_id: int) -> bytes: ...
    def prune(self, scope: str, keep: int) -> int:
        """Delete all but the ``keep`` newest of ``scope``; returns how many went."""
        ...


@dataclass(frozen=True)
class SchedulerBeat:
    """The last sign of life of one scheduler (``scheduler_heartbeats``)."""

    scheduler_id: str
    host: str
    pid: int
    started_at: datetime
    beat_at: datetime


class HeartbeatRepository(Protocol):
    """One row per scheduler, rewritten every tick; readiness reads the newest."""

    def beat(self, beat: SchedulerBeat) -> None:
        """Insert or overwrite this scheduler's row."""
        ...
    def newest(self) -> SchedulerBeat | None: ...


class UnitOfWork(Protocol):
    """One transaction over every repository; leaving it without ``commit()`` rolls back.

    The repositories exist between ``__enter__`` and ``__exit__`` only.
    """

    experiments: ExperimentRepository
    samples: SampleRepository
    pipelines: PipelineRepository
    audit: AuditRepository
    processes: CollectorProcessRepository
    settings: SettingsRepository
    share_links: ShareLinkRepository
    users: UserRepository
    tokens: TokenRepository
    heartbeats: HeartbeatRepository
    snapshots: SnapshotRepository

    def __enter__(self) -> UnitOfWork: ...
    def __exit__(self, *exc: object) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]


class Database(Protocol):
    """A store that hands out units of work (SQL ``Database`` or ``MemoryDatabase``)."""

    url: str

    def uow(self) -> UnitOfWork: ...
    def ping(self) -> None: ...
    def dispose(self) -> None: ...


# ---- live events: "experiment X has news" between processes ------------------------------
# The durable log is the database (transitions and samples); a bus only wakes readers up,
# so a lost notice delays a reader by one poll and never loses data.

#: What changed: a transition (``state``) or stored measurements (``sample``).
NOTICE_KINDS = ("state", "sample")


@dataclass(frozen=True)
class Notice:
    experiment_id: str
    kind: str


class Subscription(Protocol):
    def wait(self, timeout_s: float) -> list[Notice]:
        """Notices that arrived, waiting up to ``timeout_s`` for the first; [] on time-out or
        while the bus is unreachable (the reader then falls back to polling the log)."""
        ...
    def close(self) -> None: ...


class EventBus(Protocol):
    """``core/events/memory.py`` (one process) or ``core/events/redis.py`` (every process)."""

    def publish(self, notice: Notice) -> None:
        """Tell subscribers; never raises (a bus that is down must not break a state change)."""
        ...
    def subscribe(self, experiment_id: str | None = None) -> Subscription:
        """Notices about one experiment, or about all of them (None)."""
        ...
    def ping(self) -> None:
        """Raise TemporaryError when the bus cannot be reached (readiness)."""
        ...
    def close(self) -> None: ...


# ---- cache: computed answers shared between processes (core.cache) ---------------------------
# Only for answers that can be recomputed: a value that is missing, expired or unreachable
# costs a recomputation, never a wrong answer, so no caller depends on the cache for correctness.


class Cache(Protocol):
    """``core/cache/memory.py`` (one process) or ``core/cache/redis.py`` (every process).

    ``namespace`` names the cache (metrics label, key prefix); ``key`` is any text, stored
    only as its SHA-256. Values are bytes the caller encoded (never pickles: a shared store
    must not be able to run code in a reader).
    """

    def get(self, namespace: str, key: str) -> bytes | None:
        """The value, or None when absent, expired or unreachable; never raises for the backend."""
        ...
    def set(self, namespace: str, key: str, value: bytes, ttl_s: float) -> None:
        """Store for ``ttl_s`` seconds (bounded by the adapter); never raises for the backend."""
        ...
    def delete(self, namespace: str, key: str) -> None: ...
    def ping(self) -> None:
        """Raise TemporaryError when the shared backend cannot be reached (readiness)."""
        ...
    def close(self) -> None: ...
