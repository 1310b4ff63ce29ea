"""SQLAlchemy repositories: domain objects in, domain objects out.

Each repository works inside the session of one unit of work and never commits.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from core.domain.accounts import Role, TokenRecord, UserRecord
from core.domain.criteria import LoadProfile, PipelineRef, SuccessCriteria, Target, Timing
from core.domain.errors import ConcurrencyError, NotFoundError, ValidationError
from core.domain.events import TransitionEvent
from core.domain.experiment import ACTIVE_STATES, TERMINAL_STATES, Experiment, State, utcnow
from core.domain.ports import TABLE_SORTS, ExperimentKey, ExperimentSummary, SchedulerBeat, TableQuery
from core.domain.records import (
    AuditEntry,
    CollectorProcess,
    PipelineRecord,
    PipelineVersionRecord,
    ShareLinkRecord,
    SnapshotRecord,
)
from core.domain.samples import VARIANTS, MeasurementSample
from core.store.claims import Claimed
from core.store.models import (
    ApiTokenRow,
    AppSettingRow,
    AuditLogRow,
    CollectorProcessRow,
    ExperimentEventRow,
    ExperimentRow,
    MeasurementSampleRow,
    PipelineRow,
    PipelineVersionRow,
    ProcessSnapshotRow,
    SchedulerHeartbeatRow,
    ShareLinkRow,
    UserRow,
)

_ACTIVE = sorted(s.value for s in ACTIVE_STATES)


def _to_domain(row: ExperimentRow, events: Sequence[ExperimentEventRow] = ()) -> Experiment:
    return Experiment(
        id=row.id,
        name=row.name,
        description=row.description,
        owner=row.owner,
        state=State(row.state),
        baseline=PipelineRef(row.baseline_pipeline, row.baseline_version),
        candidate=PipelineRef(row.candidate_pipeline, row.candidate_version),
        target=Target.from_dict(row.target),
        load=LoadProfile.from_dict(row.load_profile),
        timing=Timing(row.duration_s, row.interval_s),
        criteria=SuccessCriteria.from_dict(row.criteria),
        critical_rules=row.critical_policy,
        dry_run=row.dry_run,
        correlation_id=row.correlation_id,
        result=row.result,
        error=row.error,
        runtime_info=dict(row.runtime_info or {}),
        version=row.version,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        events=[
            TransitionEvent(row.id, e.from_state, e.to_state, e.actor, e.reason, e.at)
            for e in sorted(events, key=lambda e: e.seq)
        ],
    )


def _copy_into(row: ExperimentRow, exp: Experiment) -> None:
    row.name = exp.name
    row.description = exp.description
    row.owner = exp.owner
    row.state = exp.state.value
    row.baseline_pipeline, row.baseline_version = exp.baseline.name, exp.baseline.version
    row.candidate_pipeline, row.candidate_version = exp.candidate.name, exp.candidate.version
    row.target = exp.target.to_dict()
    row.load_profile = exp.load.to_dict()
    row.duration_s, row.interval_s = exp.timing.duration_s, exp.timing.interval_s
    row.criteria = exp.criteria.to_dict()
    row.critical_policy = exp.critical_rules
    row.dry_run = exp.dry_run
    row.correlation_id = exp.correlation_id
    row.result = exp.result
    row.error = exp.error
    row.runtime_info = dict(exp.runtime_info)
    row.needs_teardown = exp.needs_teardown
    row.created_at = exp.created_at
    row.started_at = exp.started_at
    row.finished_at = exp.finished_at
    row.updated_at = utcnow()


class SqlExperimentRepository:
    def __init__(self, session: Session):
        self.session = session
        self._recent: ExperimentRow | None = None
        #: Transition events written in this unit of work and not yet committed: the unit
        #: counts them (``phoenix_experiment_transitions``) once its commit succeeds.
        self.written: list[TransitionEvent] = []

    # ------------------------------------------------------------ reads

    def get(self, experiment_id: str) -> Experiment:
        row = self.session.get(ExperimentRow, experiment_id)
        if row is None:
            raise NotFoundError(f"no experiment with id {experiment_id!r}")
        events = self.session.scalars(
            select(ExperimentEventRow).where(ExperimentEventRow.experiment_id == experiment_id)
        ).all()
        return _to_domain(row, events)

    def list(self, states: Iterable[State | str] | None = None, limit: int = 500) -> list[Experiment]:
        """Newest first, without event logs (use ``get`` for one experiment's history)."""
        q = select(ExperimentRow).order_by(ExperimentRow.created_at.desc(), ExperimentRow.id).limit(limit)
        if states is not None:
            q = q.where(ExperimentRow.state.in_([State(s).value for s in states]))
        return [_to_domain(r) for r in self.session.scalars(q)]

    def page(self, *, states: Collection[State] | None = None, owner: str | None = None,
             pipeline: str | None = None, after: ExperimentKey | None = None,
             limit: int = 50) -> list[ExperimentSummary]:
        """Keyset page, newest first (see the port). Only the summary columns are read; the
        verdict is pulled out of ``result`` by the database, so no result body is loaded."""
        e = ExperimentRow
        q = select(e.id, e.name, e.state, e.owner, e.baseline_pipeline, e.baseline_version, e.candidate_pipeline,
                   e.candidate_version, e.created_at, e.started_at, e.finished_at, e.duration_s, e.dry_run,
                   e.result["verdict"].as_string(), e.error)
        if states is not None:
            # ``state || ''`` keeps the planner off the state index: walking (created_at, id)
            # newest first and filtering stops after ``limit`` rows, where the state index
            # would fetch every row of a common state (Completed) and sort them all.
            q = q.where((e.state + "").in_([State(s).value for s in states]))
        if owner is not None:
            q = q.where(e.owner == owner)
        if pipeline is not None:
            q = q.where(or_(e.baseline_pipeline == pipeline, e.candidate_pipeline == pipeline))
        if after is not None:
            at, last_id = after
            q = q.where(or_(e.created_at < at, and_(e.created_at == at, e.id < last_id)))
        q = q.order_by(e.created_at.desc(), e.id.desc()).limit(limit)
        return [ExperimentSummary(id=r[0], name=r[1], state=r[2], owner=r[3],
                                  baseline=str(PipelineRef(r[4], r[5])), candidate=str(PipelineRef(r[6], r[7])),
                                  created_at=r[8], started_at=r[9], finished_at=r[10], duration_s=r[11],
                                  dry_run=r[12], verdict=r[13], error=r[14])
                for r in self.session.execute(q)]

    def table(self, query: TableQuery) -> list[ExperimentSummary]:
        """Filtered, sorted and cut by the database (see ``TableQuery``)."""
        e = ExperimentRow
        verdict, reduction = e.result["verdict"].as_string(), e.result["series_reduction_pct"].as_float()
        q = select(e.id, e.name, e.state, e.owner, e.baseline_pipeline, e.baseline_version, e.candidate_pipeline,
                   e.candidate_version, e.created_at, e.started_at, e.finished_at, e.duration_s, e.dry_run,
                   verdict, e.error, reduction)
        if query.states is not None:
            q = q.where(e.state.in_([State(s).value for s in query.states]))
        if query.owner is not None:
            q = q.where(e.owner == query.owner)
        if query.pipeline is not None:
            q = q.where(or_(e.baseline_pipeline == query.pipeline, e.candidate_pipeline == query.pipeline))
        if query.verdict is not None:
            q = q.where(verdict == query.verdict)
        columns: dict[str, tuple[Any, ...]] = {
            "created": (e.created_at,), "name": (e.name,), "state": (e.state,), "owner": (e.owner,),
            "pipelines": (e.candidate_pipeline, e.baseline_pipeline), "reduction": (reduction,),
            "verdict": (verdict,)}
        if query.sort not in columns:
            raise ValidationError(f"sort: unknown column {query.sort!r}; one of {', '.join(TABLE_SORTS)}")
        order = [(c.desc() if query.descending else c.asc()).nulls_last() for c in columns[query.sort]]
        order.append(e.id.desc() if query.descending else e.id.asc())
        q = q.order_by(*order).offset(query.offset).limit(query.limit)
        return [ExperimentSummary(id=r[0], name=r[1], state=r[2], owner=r[3],
                                  baseline=str(PipelineRef(r[4], r[5])), candidate=str(PipelineRef(r[6], r[7])),
                                  created_at=r[8], started_at=r[9], finished_at=r[10], duration_s=r[11],
                                  dry_run=r[12], verdict=r[13], error=r[14],
                                  reduction_pct=None if r[15] is None else float(r[15]))
                for r in self.session.execute(q)]

    def counts_by_state(self) -> dict[str, int]:
        rows = self.session.execute(select(ExperimentRow.state, func.count()).group_by(ExperimentRow.state))
        return {state: int(n) for state, n in rows}

    # ------------------------------------------------------------ writes

    def add(self, exp: Experiment) -> None:
        if self.session.get(ExperimentRow, exp.id) is not None:
            raise ConcurrencyError(f"an experiment with id {exp.id} already exists")
        row = ExperimentRow(id=exp.id)
        _copy_into(row, exp)
        self.session.add(row)
        self.session.flush()  # version_id_col assigns version 1
        self._write_events(exp)
        exp.version = row.version

    def save(self, exp: Experiment) -> None:
        """Write back a loaded experiment. Fails with ConcurrencyError if someone changed it since."""
        row = self.session.get(ExperimentRow, exp.id, populate_existing=True)
        if row is None:
            raise NotFoundError(f"no experiment with id {exp.id!r}")
        if row.version != exp.version:
            raise ConcurrencyError(
                f"experiment {exp.id} was changed by someone else (now {row.state}, version {row.version}; "
                f"you had version {exp.version}); reload and try again"
            )
        _copy_into(row, exp)
        try:
            self.session.flush()  # UPDATE … WHERE version = :loaded — the optimistic lock
        except StaleDataError:
            raise ConcurrencyError(
                f"experiment {exp.id} was changed by someone else while saving; reload and try again"
            ) from None
        self._write_events(exp)
        exp.version = row.version

    def _write_events(self, exp: Experiment) -> None:
        first_seq = len(exp.events) - len(exp.pending_events) + 1
        for i, ev in enumerate(exp.pending_events):
            self.session.add(
                ExperimentEventRow(
                    experiment_id=exp.id,
                    seq=first_seq + i,
                    from_state=ev.from_state,
                    to_state=ev.to_state,
                    actor=ev.actor,
                    reason=ev.reason,
                    at=ev.at,
                )
            )
        try:
            self.session.flush()
        except sa_exc.IntegrityError:
            raise ConcurrencyError(f"experiment {exp.id}'s event log was written concurrently; reload") from None
        self.written.extend(exp.pending_events)
        exp.pending_events.clear()

    # ------------------------------------------------------------ scheduler claims

    def claim(
        self,
        owner: str,
        now: datetime,
        lease_s: float,
        limit: int = 50,
        *,
        experiment_ids: Collection[str] | None = None,
        dry_run: bool | None = None,
    ) -> Claimed:
        """Claim up to ``limit`` experiments needing work (active, or terminal awaiting teardown).

        A claim is a lease (``claimed_by``, ``lease_until``) so it works on SQLite and
        expires when its scheduler dies. On PostgreSQL the candidates are locked with
        ``FOR UPDATE SKIP LOCKED`` so concurrent schedulers split the work instead of
        queueing on each other. Claims never bump the optimistic-lock version.

        ``experiment_ids``: only these (a scheduler that drives just its own experiments,
        ``experiment run --wait``); ``dry_run``: only experiments of that kind of runtime
        (a runtime that starts real processes never takes a dry run, and back).
        The answer's ``taken_over`` names the claimed ones whose expired lease was another
        scheduler's (``core.store.claims``).
        """
        if experiment_ids is not None and not experiment_ids:
            return Claimed()
        free = or_(
            ExperimentRow.claimed_by.is_(None),
            ExperimentRow.claimed_by == owner,
            ExperimentRow.lease_until < now,
        )
        q = (
            select(ExperimentRow.id, ExperimentRow.claimed_by)
            # `= true`, not `IS true`: only the former can use ix_experiments_needs_teardown.
            .where(or_(ExperimentRow.state.in_(_ACTIVE), ExperimentRow.needs_teardown == True))  # noqa: E712
            .where(free)
            # Least recently claimed first (never claimed, then expired, then our oldest
            # leases): with more work than `limit` every experiment still gets its turn
            # instead of the oldest `limit` ones being re-claimed forever.
            .order_by(ExperimentRow.lease_until.asc().nulls_first(), ExperimentRow.created_at, ExperimentRow.id)
            .limit(limit)
        )
        if experiment_ids is not None:
            q = q.where(ExperimentRow.id.in_(sorted(set(experiment_ids))))
        if dry_run is not None:
            q = q.where(ExperimentRow.dry_run.is_(bool(dry_run)))
        if self.session.get_bind().dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        rows = list(self.session.execute(q))
        if not rows:
            return Claimed()
        ids = [eid for eid, _ in rows]
        # A candidate still held by someone else is free only because that lease expired.
        others = {eid for eid, holder in rows if holder is not None and holder != owner}
        until = now + timedelta(seconds=lease_s)
        # One conditional UPDATE (not one per row): atomic on both backends, so two
        # schedulers cannot both win a row; RETURNING says which ones this one won.
        won = set(
            self.session.scalars(
                update(ExperimentRow)
                .where(ExperimentRow.id.in_(ids), free)
                .values(claimed_by=owner, lease_until=until)
                .returning(ExperimentRow.id)
                .execution_options(synchronize_session=False)
            )
        )
        return Claimed([eid for eid in ids if eid in won], taken_over=others & won)

    def holds_claim(self, experiment_id: str, owner: str, now: datetime) -> bool:
        # Loads (and refreshes) the whole row and keeps it referenced (the session's identity
        # map is weak): the `get` that follows in this unit of work finds it without a query.
        row = self.session.get(ExperimentRow, experiment_id, populate_existing=True)
        self._recent = row
        return row is not None and row.claimed_by == owner and row.lease_until is not None and row.lease_until > now

    def release(self, experiment_id: str, owner: str) -> None:
        self.session.execute(
            update(ExperimentRow)
            .where(ExperimentRow.id == experiment_id, ExperimentRow.claimed_by == owner)
            .values(claimed_by=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )

    def release_all(self, owner: str) -> None:
        self.session.execute(
            update(ExperimentRow)
            .where(ExperimentRow.claimed_by == owner)
            .values(claimed_by=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )

    def claims(self) -> dict[str, str | None]:
        """experiment id → claiming scheduler (diagnostics and tests)."""
        return dict(self.session.execute(select(ExperimentRow.id, ExperimentRow.claimed_by)).all())  # type: ignore[arg-type]

    def events_after(self, after_id: int, limit: int = 500) -> list[tuple[int, TransitionEvent]]:
        q = (select(ExperimentEventRow).where(ExperimentEventRow.id > after_id)
             .order_by(ExperimentEventRow.id).limit(limit))
        return [(e.id, TransitionEvent(e.experiment_id, e.from_state, e.to_state, e.actor, e.reason, e.at))
                for e in self.session.scalars(q)]

    def last_event_id(self) -> int:
        return int(self.session.scalar(select(func.max(ExperimentEventRow.id))) or 0)


class SqlSampleRepository:
    def __init__(self, session: Session):
        self.session = session

    def add(self, sample: MeasurementSample) -> None:
        if sample.variant not in VARIANTS:
            raise ValidationError(f"variant must be one of {', '.join(VARIANTS)}, got {sample.variant!r}")
        self.session.add(MeasurementSampleRow(**{**sample.__dict__}))

    def add_many(self, samples: Iterable[MeasurementSample]) -> None:
        for s in samples:
            self.add(s)
        self.session.flush()

    def list(self, experiment_id: str, variant: str | None = None, since: datetime | None = None) -> list[MeasurementSample]:
        q = select(MeasurementSampleRow).where(MeasurementSampleRow.experiment_id == experiment_id)
        if variant is not None:
            q = q.where(MeasurementSampleRow.variant == variant)
        if since is not None:
            q = q.where(MeasurementSampleRow.t > since)
        q = q.order_by(MeasurementSampleRow.t, MeasurementSampleRow.variant, MeasurementSampleRow.id)
        cols = [c for c in MeasurementSample.__dataclass_fields__]
        return [MeasurementSample(**{c: getattr(r, c) for c in cols}) for r in self.session.scalars(q)]

    def after(self, experiment_id: str, after_id: int, limit: int = 500) -> list[tuple[int, MeasurementSample]]:
        q = (select(MeasurementSampleRow)
             .where(MeasurementSampleRow.experiment_id == experiment_id, MeasurementSampleRow.id > after_id)
             .order_by(MeasurementSampleRow.id).limit(limit))
        cols = [c for c in MeasurementSample.__dataclass_fields__]
        return [(r.id, MeasurementSample(**{c: getattr(r, c) for c in cols})) for r in self.session.scalars(q)]

    def count(self, experiment_id: str) -> int:
        return int(
            self.session.scalar(
                select(func.count()).select_from(MeasurementSampleRow).where(MeasurementSampleRow.experiment_id == experiment_id)
            )
            or 0
        )

    def prune_finished_before(self, cutoff: datetime) -> int:
        ended = select(ExperimentRow.id).where(
            ExperimentRow.finished_at.is_not(None), ExperimentRow.finished_at < cutoff,
            ExperimentRow.state.in_([s.value for s in TERMINAL_STATES]))
        result = self.session.execute(
            delete(MeasurementSampleRow).where(MeasurementSampleRow.experiment_id.in_(ended)))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


class SqlPipelineRepository:
    """Pipelines and their immutable, numbered versions. There is deliberately no update."""

    def __init__(self, session: Session):
        self.session = session

    def _pipeline(self, name: str) -> PipelineRow | None:
        return self.session.scalar(select(PipelineRow).where(PipelineRow.name == name))

    def ensure_pipeline(self, name: str, description: str = "", builtin: bool = False) -> None:
        if not name or not name.strip():
            raise ValidationError("pipeline name must not be empty")
        if self._pipeline(name) is None:
            self.session.add(PipelineRow(name=name, description=description, builtin=builtin))
            self.session.flush()

    def add_version(
        self,
        name: str,
        graph: dict[str, Any],
        collector_yaml: str = "",
        *,
        message: str = "",
        author: str = "anonymous",
        commit_id: str | None = None,
        computed: dict[str, Any] | None = None,
        description: str = "",
        builtin: bool = False,
    ) -> PipelineVersionRecord:
        """Append version max+1 of ``name`` (creating the pipeline on first save)."""
        self.ensure_pipeline(name, description, builtin)
        p = self._pipeline(name)
        assert p is not None
        last = self.session.scalar(select(func.max(PipelineVersionRow.number)).where(PipelineVersionRow.pipeline_id == p.id))
        row = PipelineVersionRow(
            pipeline_id=p.id,
            number=(last or 0) + 1,
            graph=graph,
            collector_yaml=collector_yaml,
            commit_id=commit_id,
            message=message,
            author=author,
            computed=computed,
            created_at=utcnow(),
        )
        self.session.add(row)
        try:
            self.session.flush()
        except sa_exc.IntegrityError:
            raise ConcurrencyError(f"another version of pipeline {name} was saved at the same time; retry") from None
        return self._record(name, row)

    @staticmethod
    def _record(name: str, row: PipelineVersionRow) -> PipelineVersionRecord:
        return PipelineVersionRecord(
            pipeline=name,
            number=row.number,
            graph=row.graph,
            collector_yaml=row.collector_yaml,
            commit_id=row.commit_id,
            message=row.message,
            author=row.author,
            created_at=row.created_at,
            computed=row.computed,
        )

    def get_version(self, name: str, number: int | None = None) -> PipelineVersionRecord:
        """A version by number, or the latest when ``number`` is None."""
        p = self._pipeline(name)
        if p is None:
            raise NotFoundError(f"no saved pipeline named {name!r}")
        q = select(PipelineVersionRow).where(PipelineVersionRow.pipeline_id == p.id)
        q = q.where(PipelineVersionRow.number == number) if number is not None else q.order_by(PipelineVersionRow.number.desc())
        row = self.session.scalars(q.limit(1)).first()
        if row is None:
            what = f"version {number}" if number is not None else "any version"
            raise NotFoundError(f"pipeline {name!r} has no {what}")
        return self._record(name, row)

    def list_versions(self, name: str) -> list[PipelineVersionRecord]:
        p = self._pipeline(name)
        if p is None:
            raise NotFoundError(f"no saved pipeline named {name!r}")
        rows = self.session.scalars(
            select(PipelineVersionRow).where(PipelineVersionRow.pipeline_id == p.id).order_by(PipelineVersionRow.number)
        )
        return [self._record(name, r) for r in rows]

    def list_pipelines(self) -> list[PipelineRecord]:
        latest = (
            select(PipelineVersionRow.pipeline_id, func.max(PipelineVersionRow.number).label("n"))
            .group_by(PipelineVersionRow.pipeline_id)
            .subquery()
        )
        rows = self.session.execute(
            select(PipelineRow, latest.c.n).outerjoin(latest, latest.c.pipeline_id == PipelineRow.id).order_by(PipelineRow.name)
        )
        return [PipelineRecord(p.name, p.description, p.builtin, p.created_at, n) for p, n in rows]


class SqlAuditRepository:
    def __init__(self, session: Session):
        self.session = session

    """Append and read only (see ``core.store.audit_guard`` for the refusal of anything else)."""

    def add(self, actor: str, action: str, subject: str = "", details: dict[str, Any] | None = None, *,
            source: str = "", before: Any = None, after: Any = None) -> None:
        self.session.add(AuditLogRow(actor=actor, action=action, subject=subject, details=details or {}, at=utcnow(),
                                     source=source, before=before, after=after))

    def list(self, subject: str | None = None, limit: int = 200) -> list[AuditEntry]:
        q = select(AuditLogRow).order_by(AuditLogRow.at.desc(), AuditLogRow.id.desc()).limit(limit)
        if subject is not None:
            q = q.where(AuditLogRow.subject == subject)
        return [AuditEntry(r.actor, r.action, r.subject, r.at, r.details, r.source, r.before, r.after)
                for r in self.session.scalars(q)]

    def page(self, *, subject: str | None = None, actor: str | None = None, before: int | None = None,
             limit: int = 100) -> list[tuple[int, AuditEntry]]:
        q = select(AuditLogRow).order_by(AuditLogRow.id.desc()).limit(limit)
        if subject is not None:
            q = q.where(AuditLogRow.subject == subject)
        if actor is not None:
            q = q.where(AuditLogRow.actor == actor)
        if before is not None:
            q = q.where(AuditLogRow.id < before)
        return [(r.id, AuditEntry(r.actor, r.action, r.subject, r.at, r.details, r.source, r.before, r.after))
                for r in self.session.scalars(q)]


class SqlCollectorProcessRepository:
    def __init__(self, session: Session):
        self.session = session

    def add(self, owner_ref: str, role: str, pid: int, port: int | None = None) -> int:
        row = CollectorProcessRow(owner_ref=owner_ref, role=role, pid=pid, port=port, started_at=utcnow(), status="running")
        self.session.add(row)
        self.session.flush()
        return row.id

    def list(self, owner_ref: str | None = None, status: str | None = None) -> list[CollectorProcess]:
        q = select(CollectorProcessRow).order_by(CollectorProcessRow.id)
        if owner_ref is not None:
            q = q.where(CollectorProcessRow.owner_ref == owner_ref)
        if status is not None:
            q = q.where(CollectorProcessRow.status == status)
        return [
            CollectorProcess(r.id, r.owner_ref, r.role, r.pid, r.port, r.started_at, r.status)
            for r in self.session.scalars(q)
        ]

    def set_status(self, process_id: int, status: str) -> None:
        self.session.execute(update(CollectorProcessRow).where(CollectorProcessRow.id == process_id).values(status=status))

    def forget(self, owner_ref: str) -> None:
        self.session.execute(delete(CollectorProcessRow).where(CollectorProcessRow.owner_ref == owner_ref))


class SqlSettingsRepository:
    """Key → JSON value, for settings edited in the UI (price cards, critical policy)."""

    def __init__(self, session: Session):
        self.session = session

    def get(self, key: str, default: Any = None) -> Any:
        row = self.session.get(AppSettingRow, key)
        return default if row is None else row.value

    def set(self, key: str, value: Any, by: str = "system") -> None:
        row = self.session.get(AppSettingRow, key)
        if row is None:
            self.session.add(AppSettingRow(key=key, value=value, updated_by=by, updated_at=utcnow()))
        else:
            row.value, row.updated_by, row.updated_at = value, by, utcnow()
        self.session.flush()

    def delete(self, key: str) -> None:
        self.session.execute(delete(AppSettingRow).where(AppSettingRow.key == key))

    def all(self) -> dict[str, Any]:
        return {r.key: r.value for r in self.session.scalars(select(AppSettingRow).order_by(AppSettingRow.key))}


def _link(r: ShareLinkRow) -> ShareLinkRecord:
    return ShareLinkRecord(r.id, r.scope_kind, r.scope_ref, r.created_by, r.created_at, r.expires_at,
                           r.revoked_at, r.revoked_by)


class SqlShareLinkRepository:
    def __init__(self, session: Session):
        self.session = session

    def add(self, link: ShareLinkRecord) -> None:
        self.session.add(ShareLinkRow(id=link.id, scope_kind=link.scope_kind, scope_ref=link.scope_ref,
                                      created_by=link.created_by, created_at=link.created_at,
                                      expires_at=link.expires_at, revoked_at=link.revoked_at,
                                      revoked_by=link.revoked_by))
        self.session.flush()

    def get(self, link_id: str) -> ShareLinkRecord:
        row = self.session.get(ShareLinkRow, link_id)
        if row is None:
            raise NotFoundError(f"no share link {link_id[:40]!r}")
        return _link(row)

    def list_for(self, scope_kind: str, scope_ref: str) -> list[ShareLinkRecord]:
        q = (select(ShareLinkRow).where(ShareLinkRow.scope_kind == scope_kind, ShareLinkRow.scope_ref == scope_ref)
             .order_by(ShareLinkRow.created_at.desc(), ShareLinkRow.id))
        return [_link(r) for r in self.session.scalars(q)]

    def revoke(self, link_id: str, by: str, at: datetime) -> ShareLinkRecord:
        row = self.session.get(ShareLinkRow, link_id)
        if row is None:
            raise NotFoundError(f"no share link {link_id[:40]!r}")
        if row.revoked_at is None:  # revoking twice keeps the first revocation
            row.revoked_at, row.revoked_by = at, by
            self.session.flush()
        return _link(row)


_USER_FIELDS = frozenset({"role", "disabled", "password_hash", "failed_logins", "locked_until"})
_TOKEN_FIELDS = frozenset({"revoked_at", "last_used_at"})


def _user(row: UserRow) -> UserRecord:
    return UserRecord(row.name, Role(row.role), row.disabled, row.failed_logins, row.locked_until, row.created_at)


def _token(row: ApiTokenRow) -> TokenRecord:
    return TokenRecord(row.id, row.owner, row.name, Role(row.role), row.created_at, row.expires_at,
                       row.revoked_at, row.last_used_at)


class SqlUserRepository:
    def __init__(self, session: Session):
        self.session = session

    def _row(self, name: str) -> UserRow:
        row = self.session.scalar(select(UserRow).where(UserRow.name == name))
        if row is None:
            raise NotFoundError(f"no user named {name!r}")
        return row

    def add(self, name: str, role: Role, password_hash: str) -> UserRecord:
        if self.session.scalar(select(UserRow.id).where(UserRow.name == name)) is not None:
            raise ValidationError(f"a user named {name!r} already exists")
        row = UserRow(name=name, role=int(role), password_hash=password_hash, disabled=False, failed_logins=0,
                      created_at=utcnow())
        self.session.add(row)
        self.session.flush()
        return _user(row)

    def get(self, name: str) -> UserRecord:
        return _user(self._row(name))

    def find(self, name: str) -> UserRecord | None:
        row = self.session.scalar(select(UserRow).where(UserRow.name == name))
        return None if row is None else _user(row)

    def password_hash(self, name: str) -> str | None:
        return self.session.scalar(select(UserRow.password_hash).where(UserRow.name == name))

    def list(self) -> list[UserRecord]:
        return [_user(r) for r in self.session.scalars(select(UserRow).order_by(UserRow.name))]

    def count(self) -> int:
        return int(self.session.scalar(select(func.count(UserRow.id))) or 0)

    def update(self, name: str, **fields: Any) -> UserRecord:
        unknown = set(fields) - _USER_FIELDS
        if unknown:
            raise ValueError(f"not a user field: {sorted(unknown)}")
        row = self._row(name)
        for key, value in fields.items():
            setattr(row, key, int(value) if key == "role" else value)
        self.session.flush()
        return _user(row)


class SqlTokenRepository:
    def __init__(self, session: Session):
        self.session = session

    def add(self, token: TokenRecord, secret_hash: str) -> None:
        self.session.add(ApiTokenRow(id=token.id, owner=token.owner, name=token.name, secret_hash=secret_hash,
                                     role=int(token.role), created_at=token.created_at, expires_at=token.expires_at))
        self.session.flush()

    def get(self, token_id: str) -> TokenRecord:
        row = self.session.get(ApiTokenRow, token_id)
        if row is None:
            raise NotFoundError(f"no API token with id {token_id!r}")
        return _token(row)

    def by_hash(self, secret_hash: str) -> TokenRecord | None:
        row = self.session.scalar(select(ApiTokenRow).where(ApiTokenRow.secret_hash == secret_hash))
        return None if row is None else _token(row)

    def list(self, owner: str | None = None) -> list[TokenRecord]:
        q = select(ApiTokenRow).order_by(ApiTokenRow.created_at, ApiTokenRow.id)
        if owner is not None:
            q = q.where(ApiTokenRow.owner == owner)
        return [_token(r) for r in self.session.scalars(q)]

    def update(self, token_id: str, **fields: Any) -> TokenRecord:
        unknown = set(fields) - _TOKEN_FIELDS
        if unknown:
            raise ValueError(f"not a token field: {sorted(unknown)}")
        row = self.session.get(ApiTokenRow, token_id)
        if row is None:
            raise NotFoundError(f"no API token with id {token_id!r}")
        for key, value in fields.items():
            setattr(row, key, value)
        self.session.flush()
        return _token(row)


class SqlHeartbeatRepository:
    def __init__(self, session: Session):
        self.session = session

    def beat(self, beat: SchedulerBeat) -> None:
        # merge = select then insert or update: portable across SQLite and PostgreSQL, and
        # only the scheduler itself ever writes its row, so there is no race to lose.
        self.session.merge(SchedulerHeartbeatRow(
            scheduler_id=beat.scheduler_id, host=beat.host[:200], pid=beat.pid,
            started_at=beat.started_at, beat_at=beat.beat_at))
        self.session.flush()

    def newest(self) -> SchedulerBeat | None:
        row = self.session.scalars(
            select(SchedulerHeartbeatRow).order_by(SchedulerHeartbeatRow.beat_at.desc()).limit(1)).first()
        if row is None:
            return None
        return SchedulerBeat(row.scheduler_id, row.host, row.pid, row.started_at, row.beat_at)


_SNAPSHOT_FIELDS = ("id", "scope", "taken_at", "added_at", "added_by", "source", "hosts", "rows", "scrapes",
                    "sha256", "size_bytes")


class SqlSnapshotRepository:
    def __init__(self, session: Session):
        self.session = session

    def add(self, record: SnapshotRecord, data: bytes) -> SnapshotRecord:
        dup = self.session.scalars(select(ProcessSnapshotRow.id).where(
            ProcessSnapshotRow.scope == record.scope, ProcessSnapshotRow.sha256 == record.sha256)).first()
        if dup is not None:
            raise ValidationError(f"this snapshot is already stored in {record.scope!r} (snapshot {dup})")
        row = ProcessSnapshotRow(**{f: getattr(record, f) for f in _SNAPSHOT_FIELDS if f != "id"}, data=data)
        self.session.add(row)
        self.session.flush()
        return _snapshot(row)

    def list(self, scope: str | None = None, limit: int = 100) -> list[SnapshotRecord]:
        cols = [getattr(ProcessSnapshotRow, f) for f in _SNAPSHOT_FIELDS]  # never the data column
        q = select(*cols).order_by(ProcessSnapshotRow.taken_at.desc(), ProcessSnapshotRow.id.desc()).limit(limit)
        if scope is not None:
            q = q.where(ProcessSnapshotRow.scope == scope)
        return [SnapshotRecord(*r) for r in self.session.execute(q)]

    def data(self, snapshot_id: int) -> bytes:
        data = self.session.scalars(select(ProcessSnapshotRow.data).where(ProcessSnapshotRow.id == snapshot_id)).first()
        if data is None:
            raise NotFoundError(f"no stored snapshot {snapshot_id}")
        return bytes(data)

    def prune(self, scope: str, keep: int) -> int:
        keep_ids = [r.id for r in self.list(scope, limit=max(keep, 0))] if keep > 0 else []
        q = delete(ProcessSnapshotRow).where(ProcessSnapshotRow.scope == scope)
        if keep_ids:
            q = q.where(ProcessSnapshotRow.id.not_in(keep_ids))
        return int(self.session.execute(q).rowcount or 0)  # type: ignore[attr-defined]


def _snapshot(row: ProcessSnapshotRow) -> SnapshotRecord:
    return SnapshotRecord(*(getattr(row, f) for f in _SNAPSHOT_FIELDS))
