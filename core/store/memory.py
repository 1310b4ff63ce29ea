"""In-memory unit of work for unit tests of services and the scheduler (no I/O).

Behaves like the SQL one where it matters: copies in and out (no shared mutable
objects), optimistic version checks, lease claims, and rollback unless committed.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from core.domain.accounts import Role, TokenRecord, UserRecord
from core.domain.errors import ConcurrencyError, NotFoundError, ValidationError
from core.domain.events import TransitionEvent
from core.domain.experiment import ACTIVE_STATES, Experiment, State, utcnow
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
from core.store.claims import Claimed, count_committed


@dataclass
class MemoryStore:
    experiments: dict[str, Experiment] = field(default_factory=dict)
    claims: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    samples: list[MeasurementSample] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)
    pipelines: dict[str, list[PipelineVersionRecord]] = field(default_factory=dict)
    processes: list[CollectorProcess] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    share_links: dict[str, ShareLinkRecord] = field(default_factory=dict)
    users: dict[str, tuple[UserRecord, str]] = field(default_factory=dict)  # name → (record, hash)
    tokens: dict[str, tuple[TokenRecord, str]] = field(default_factory=dict)  # id → (record, hash)
    # ids as the SQL tables give them: sample_ids runs beside samples; the event log is every
    # experiment's transitions in the order they were written (id = position + 1)
    sample_ids: list[int] = field(default_factory=list)
    next_sample_id: int = 1
    event_log: list[TransitionEvent] = field(default_factory=list)
    heartbeats: dict[str, SchedulerBeat] = field(default_factory=dict)
    snapshots: dict[int, tuple[SnapshotRecord, bytes]] = field(default_factory=dict)
    next_snapshot_id: int = 1


def _name(ref: str) -> str:
    """The pipeline name of a reference written ``name`` or ``name@version``."""
    return ref.partition("@")[0]


def _out(exp: Experiment) -> Experiment:
    e = copy.deepcopy(exp)
    e.pending_events = []
    return e


class _Repo:
    def __init__(self, store: MemoryStore, uow: MemoryUnitOfWork | None = None):
        self.store = store
        self._uow = uow

    def _wrote(self) -> None:
        if self._uow is not None:
            self._uow.dirty = True


class MemoryExperimentRepository(_Repo):

    def _record(self, exp: Experiment) -> None:
        """Log the pending events; the unit counts them as transitions once it commits."""
        self.store.event_log.extend(exp.pending_events)
        if self._uow is not None:
            self._uow.written.extend(exp.pending_events)
        exp.pending_events.clear()

    def get(self, experiment_id: str) -> Experiment:
        if experiment_id not in self.store.experiments:
            raise NotFoundError(f"no experiment with id {experiment_id!r}")
        return _out(self.store.experiments[experiment_id])

    def list(self, states: Iterable[State | str] | None = None, limit: int = 500) -> list[Experiment]:
        wanted = None if states is None else {State(s) for s in states}
        rows = [e for e in self.store.experiments.values() if wanted is None or e.state in wanted]
        rows.sort(key=lambda e: (e.created_at, e.id), reverse=True)
        return [_out(e) for e in rows[:limit]]

    def page(self, *, states: Collection[State] | None = None, owner: str | None = None,
             pipeline: str | None = None, after: ExperimentKey | None = None,
             limit: int = 50) -> list[ExperimentSummary]:
        wanted = None if states is None else {State(s) for s in states}
        rows = [ExperimentSummary.of(e) for e in self.store.experiments.values()
                if (wanted is None or e.state in wanted) and (owner is None or e.owner == owner)
                and (pipeline is None or pipeline in (e.baseline.name, e.candidate.name))]
        rows = [r for r in rows if after is None or r.key < after]
        rows.sort(key=lambda r: r.key, reverse=True)
        return rows[:limit]

    def table(self, query: TableQuery) -> list[ExperimentSummary]:
        if query.sort not in TABLE_SORTS:
            raise ValidationError(f"sort: unknown column {query.sort!r}; one of {', '.join(TABLE_SORTS)}")
        wanted = None if query.states is None else {State(s).value for s in query.states}
        rows = [ExperimentSummary.of(e) for e in self.store.experiments.values()]
        rows = [r for r in rows if (wanted is None or r.state in wanted)
                and (query.owner is None or r.owner == query.owner)
                and (query.pipeline is None or query.pipeline in (_name(r.baseline), _name(r.candidate)))
                and (query.verdict is None or r.verdict == query.verdict)]

        def value(r: ExperimentSummary) -> tuple[Any, ...]:
            return {"created": (r.created_at,), "name": (r.name,), "state": (r.state,), "owner": (r.owner,),
                    "pipelines": (_name(r.candidate), _name(r.baseline)), "reduction": (r.reduction_pct,),
                    "verdict": (r.verdict,)}[query.sort]

        # As the SQL store: rows without a value last in both directions, the id breaks ties.
        present = sorted((r for r in rows if None not in value(r)), key=lambda r: (value(r), r.id),
                         reverse=query.descending)
        missing = sorted((r for r in rows if None in value(r)), key=lambda r: r.id, reverse=query.descending)
        return (present + missing)[query.offset: query.offset + query.limit]

    def counts_by_state(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for e in self.store.experiments.values():
            out[e.state.value] = out.get(e.state.value, 0) + 1
        return out

    def add(self, exp: Experiment) -> None:
        if exp.id in self.store.experiments:
            raise ConcurrencyError(f"an experiment with id {exp.id} already exists")
        self._wrote()
        exp.version = 1
        self._record(exp)
        self.store.experiments[exp.id] = _out(exp)

    def save(self, exp: Experiment) -> None:
        current = self.store.experiments.get(exp.id)
        if current is None:
            raise NotFoundError(f"no experiment with id {exp.id!r}")
        if current.version != exp.version:
            raise ConcurrencyError(
                f"experiment {exp.id} was changed by someone else (now {current.state.value}, version "
                f"{current.version}; you had version {exp.version}); reload and try again"
            )
        self._wrote()
        exp.version += 1
        self._record(exp)
        self.store.experiments[exp.id] = _out(exp)

    def _needs_work(self, e: Experiment) -> bool:
        return e.state in ACTIVE_STATES or e.needs_teardown

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
        self._wrote()
        out: list[str] = []
        taken_over: list[str] = []
        for e in sorted(self.store.experiments.values(), key=lambda e: (e.created_at, e.id)):
            if len(out) >= limit:
                break
            if not self._needs_work(e):
                continue
            if experiment_ids is not None and e.id not in experiment_ids:
                continue
            if dry_run is not None and e.dry_run != dry_run:
                continue
            holder = self.store.claims.get(e.id)
            if holder is None or holder[0] == owner or holder[1] < now:
                if holder is not None and holder[0] != owner:
                    taken_over.append(e.id)
                self.store.claims[e.id] = (owner, now + timedelta(seconds=lease_s))
                out.append(e.id)
        return Claimed(out, taken_over)

    def holds_claim(self, experiment_id: str, owner: str, now: datetime) -> bool:
        holder = self.store.claims.get(experiment_id)
        return holder is not None and holder[0] == owner and holder[1] > now

    def release(self, experiment_id: str, owner: str) -> None:
        self._wrote()
        holder = self.store.claims.get(experiment_id)
        if holder is not None and holder[0] == owner:
            del self.store.claims[experiment_id]

    def release_all(self, owner: str) -> None:
        self._wrote()
        for eid in [k for k, (who, _) in self.store.claims.items() if who == owner]:
            del self.store.claims[eid]

    def events_after(self, after_id: int, limit: int = 500) -> list[tuple[int, TransitionEvent]]:
        log = self.store.event_log
        return [(i + 1, log[i]) for i in range(max(after_id, 0), min(len(log), max(after_id, 0) + limit))]

    def last_event_id(self) -> int:
        return len(self.store.event_log)

    def claims(self) -> dict[str, str | None]:
        return {eid: (self.store.claims[eid][0] if eid in self.store.claims else None) for eid in self.store.experiments}


class MemorySampleRepository(_Repo):

    def add(self, sample: MeasurementSample) -> None:
        if sample.variant not in VARIANTS:  # as the SQL repository refuses it
            raise ValidationError(f"variant must be one of {', '.join(VARIANTS)}, got {sample.variant!r}")
        self._wrote()
        self.store.samples.append(sample)
        self.store.sample_ids.append(self.store.next_sample_id)
        self.store.next_sample_id += 1

    def add_many(self, samples: Iterable[MeasurementSample]) -> None:
        for s in samples:
            self.add(s)

    def list(self, experiment_id: str, variant: str | None = None, since: datetime | None = None) -> list[MeasurementSample]:
        rows = [
            s
            for s in self.store.samples
            if s.experiment_id == experiment_id
            and (variant is None or s.variant == variant)
            and (since is None or s.t > since)
        ]
        return sorted(rows, key=lambda s: (s.t, s.variant))

    def after(self, experiment_id: str, after_id: int, limit: int = 500) -> list[tuple[int, MeasurementSample]]:
        rows = [(i, s) for i, s in zip(self.store.sample_ids, self.store.samples, strict=True)
                if s.experiment_id == experiment_id and i > after_id]
        return rows[:limit]

    def count(self, experiment_id: str) -> int:
        return sum(1 for s in self.store.samples if s.experiment_id == experiment_id)

    def prune_finished_before(self, cutoff: datetime) -> int:
        ended = {e.id for e in self.store.experiments.values()
                 if e.is_terminal and e.finished_at is not None and e.finished_at < cutoff}
        kept = [(i, s) for i, s in zip(self.store.sample_ids, self.store.samples, strict=True)
                if s.experiment_id not in ended]
        pruned = len(self.store.samples) - len(kept)
        if pruned:
            self._wrote()
            self.store.sample_ids[:] = [i for i, _ in kept]
            self.store.samples[:] = [s for _, s in kept]
        return pruned


class MemoryPipelineRepository(_Repo):

    def ensure_pipeline(self, name: str, description: str = "", builtin: bool = False) -> None:
        if not name or not name.strip():
            raise ValidationError("pipeline name must not be empty")
        self._wrote()
        self.store.pipelines.setdefault(name, [])

    def add_version(self, name: str, graph: dict[str, Any], collector_yaml: str = "", **kw: Any) -> PipelineVersionRecord:
        self.ensure_pipeline(name)
        versions = self.store.pipelines.setdefault(name, [])
        rec = PipelineVersionRecord(
            pipeline=name,
            number=len(versions) + 1,
            graph=copy.deepcopy(graph),
            collector_yaml=collector_yaml,
            commit_id=kw.get("commit_id"),
            message=kw.get("message", ""),
            author=kw.get("author", "anonymous"),
            created_at=utcnow(),
            computed=kw.get("computed"),
        )
        versions.append(rec)
        return rec

    def get_version(self, name: str, number: int | None = None) -> PipelineVersionRecord:
        versions = self.store.pipelines.get(name)
        if versions is None:
            raise NotFoundError(f"no saved pipeline named {name!r}")
        if not versions or (number is not None and not 1 <= number <= len(versions)):
            raise NotFoundError(f"pipeline {name!r} has no {'version ' + str(number) if number else 'any version'}")
        return versions[-1] if number is None else versions[number - 1]

    def list_versions(self, name: str) -> list[PipelineVersionRecord]:
        if name not in self.store.pipelines:
            raise NotFoundError(f"no saved pipeline named {name!r}")
        return list(self.store.pipelines[name])

    def list_pipelines(self) -> list[PipelineRecord]:
        return [
            PipelineRecord(n, "", False, v[0].created_at if v else utcnow(), len(v) or None)
            for n, v in sorted(self.store.pipelines.items())
        ]


class MemoryAuditRepository(_Repo):
    """Append and read only, like the SQL one: entries are frozen and there is no update or delete."""

    def add(self, actor: str, action: str, subject: str = "", details: dict[str, Any] | None = None, *,
            source: str = "", before: Any = None, after: Any = None) -> None:
        self._wrote()
        self.store.audit.append(AuditEntry(actor, action, subject, utcnow(), dict(details or {}), source,
                                           copy.deepcopy(before), copy.deepcopy(after)))

    def list(self, subject: str | None = None, limit: int = 200) -> list[AuditEntry]:
        rows = [a for a in reversed(self.store.audit) if subject is None or a.subject == subject]
        return rows[:limit]

    def page(self, *, subject: str | None = None, actor: str | None = None, before: int | None = None,
             limit: int = 100) -> list[tuple[int, AuditEntry]]:
        # ids as the SQL table numbers them: 1, 2, … in the order entries were added
        rows = [(i, a) for i, a in enumerate(self.store.audit, start=1)
                if (subject is None or a.subject == subject) and (actor is None or a.actor == actor)
                and (before is None or i < before)]
        return rows[::-1][:limit]


class MemoryCollectorProcessRepository(_Repo):

    def add(self, owner_ref: str, role: str, pid: int, port: int | None = None) -> int:
        self._wrote()
        pid_id = len(self.store.processes) + 1
        self.store.processes.append(CollectorProcess(pid_id, owner_ref, role, pid, port, utcnow(), "running"))
        return pid_id

    def list(self, owner_ref: str | None = None, status: str | None = None) -> list[CollectorProcess]:
        return [
            p
            for p in self.store.processes
            if (owner_ref is None or p.owner_ref == owner_ref) and (status is None or p.status == status)
        ]

    def set_status(self, process_id: int, status: str) -> None:
        self._wrote()
        self.store.processes = [replace(p, status=status) if p.id == process_id else p for p in self.store.processes]

    def forget(self, owner_ref: str) -> None:
        self._wrote()
        self.store.processes = [p for p in self.store.processes if p.owner_ref != owner_ref]


class MemorySettingsRepository(_Repo):

    def get(self, key: str, default: Any = None) -> Any:
        return copy.deepcopy(self.store.settings.get(key, default))

    def set(self, key: str, value: Any, by: str = "system") -> None:
        self._wrote()
        self.store.settings[key] = copy.deepcopy(value)

    def delete(self, key: str) -> None:
        self._wrote()
        self.store.settings.pop(key, None)

    def all(self) -> dict[str, Any]:
        return copy.deepcopy(dict(sorted(self.store.settings.items())))


class MemoryShareLinkRepository(_Repo):

    def add(self, link: ShareLinkRecord) -> None:
        if link.id in self.store.share_links:
            raise ValidationError(f"share link {link.id} already exists")
        self._wrote()
        self.store.share_links[link.id] = link

    def get(self, link_id: str) -> ShareLinkRecord:
        try:
            return self.store.share_links[link_id]
        except KeyError:
            raise NotFoundError(f"no share link {link_id[:40]!r}") from None

    def list_for(self, scope_kind: str, scope_ref: str) -> list[ShareLinkRecord]:
        rows = [s for s in self.store.share_links.values() if s.scope_kind == scope_kind and s.scope_ref == scope_ref]
        return sorted(rows, key=lambda s: (-s.created_at.timestamp(), s.id))

    def revoke(self, link_id: str, by: str, at: datetime) -> ShareLinkRecord:
        link = self.get(link_id)
        if link.revoked_at is None:  # revoking twice keeps the first revocation
            self._wrote()
            link = replace(link, revoked_at=at, revoked_by=by)
            self.store.share_links[link_id] = link
        return link


class MemoryUserRepository(_Repo):
    _FIELDS = frozenset({"role", "disabled", "password_hash", "failed_logins", "locked_until"})

    def add(self, name: str, role: Role, password_hash: str) -> UserRecord:
        if name in self.store.users:
            raise ValidationError(f"a user named {name!r} already exists")
        self._wrote()
        rec = UserRecord(name, Role(role), False, 0, None, utcnow())
        self.store.users[name] = (rec, password_hash)
        return rec

    def get(self, name: str) -> UserRecord:
        rec = self.find(name)
        if rec is None:
            raise NotFoundError(f"no user named {name!r}")
        return rec

    def find(self, name: str) -> UserRecord | None:
        entry = self.store.users.get(name)
        return None if entry is None else entry[0]

    def password_hash(self, name: str) -> str | None:
        entry = self.store.users.get(name)
        return None if entry is None else entry[1]

    def list(self) -> list[UserRecord]:
        return [rec for _, (rec, _h) in sorted(self.store.users.items())]

    def count(self) -> int:
        return len(self.store.users)

    def update(self, name: str, **fields: Any) -> UserRecord:
        unknown = set(fields) - self._FIELDS
        if unknown:
            raise ValueError(f"not a user field: {sorted(unknown)}")
        rec, pw = self.store.users.get(name) or (None, "")
        if rec is None:
            raise NotFoundError(f"no user named {name!r}")
        self._wrote()
        pw = fields.pop("password_hash", pw)
        if "role" in fields:
            fields["role"] = Role(fields["role"])
        rec = replace(rec, **fields)
        self.store.users[name] = (rec, pw)
        return rec


class MemoryTokenRepository(_Repo):
    _FIELDS = frozenset({"revoked_at", "last_used_at"})

    def add(self, token: TokenRecord, secret_hash: str) -> None:
        if token.owner not in self.store.users:
            raise NotFoundError(f"no user named {token.owner!r}")
        self._wrote()
        self.store.tokens[token.id] = (token, secret_hash)

    def get(self, token_id: str) -> TokenRecord:
        entry = self.store.tokens.get(token_id)
        if entry is None:
            raise NotFoundError(f"no API token with id {token_id!r}")
        return entry[0]

    def by_hash(self, secret_hash: str) -> TokenRecord | None:
        return next((rec for rec, h in self.store.tokens.values() if h == secret_hash), None)

    def list(self, owner: str | None = None) -> list[TokenRecord]:
        rows = [rec for rec, _h in self.store.tokens.values() if owner is None or rec.owner == owner]
        return sorted(rows, key=lambda t: (t.created_at, t.id))

    def update(self, token_id: str, **fields: Any) -> TokenRecord:
        unknown = set(fields) - self._FIELDS
        if unknown:
            raise ValueError(f"not a token field: {sorted(unknown)}")
        rec, h = self.store.tokens.get(token_id) or (None, "")
        if rec is None:
            raise NotFoundError(f"no API token with id {token_id!r}")
        self._wrote()
        rec = replace(rec, **fields)
        self.store.tokens[token_id] = (rec, h)
        return rec


class MemoryHeartbeatRepository(_Repo):

    def beat(self, beat: SchedulerBeat) -> None:
        self._wrote()
        self.store.heartbeats[beat.scheduler_id] = beat

    def newest(self) -> SchedulerBeat | None:
        return max(self.store.heartbeats.values(), key=lambda b: b.beat_at, default=None)


class MemorySnapshotRepository(_Repo):

    def add(self, record: SnapshotRecord, data: bytes) -> SnapshotRecord:
        for rec, _ in self.store.snapshots.values():
            if rec.scope == record.scope and rec.sha256 == record.sha256:
                raise ValidationError(f"this snapshot is already stored in {record.scope!r} (snapshot {rec.id})")
        self._wrote()
        rec = replace(record, id=self.store.next_snapshot_id)
        self.store.next_snapshot_id += 1
        self.store.snapshots[rec.id] = (rec, bytes(data))
        return rec

    def list(self, scope: str | None = None, limit: int = 100) -> list[SnapshotRecord]:
        recs = [r for r, _ in self.store.snapshots.values() if scope is None or r.scope == scope]
        return sorted(recs, key=lambda r: (r.taken_at, r.id), reverse=True)[:limit]

    def data(self, snapshot_id: int) -> bytes:
        if snapshot_id not in self.store.snapshots:
            raise NotFoundError(f"no stored snapshot {snapshot_id}")
        return self.store.snapshots[snapshot_id][1]

    def prune(self, scope: str, keep: int) -> int:
        keep_ids = {r.id for r in self.list(scope, limit=keep)} if keep > 0 else set()
        gone = [i for i, (r, _) in self.store.snapshots.items() if r.scope == scope and i not in keep_ids]
        if gone:
            self._wrote()
        for i in gone:
            del self.store.snapshots[i]
        return len(gone)


class MemoryUnitOfWork:
    """Snapshot on enter; commit keeps changes; uncommitted writes are rolled back on exit."""

    def __init__(self, store: MemoryStore | None = None):
        self.store = store if store is not None else MemoryStore()
        self.commits = 0

    def __enter__(self) -> MemoryUnitOfWork:
        self._snapshot = copy.deepcopy(self.store.__dict__)
        self.dirty = False
        self.written: list[TransitionEvent] = []  # counted on commit, as the SQL unit does
        self.experiments = MemoryExperimentRepository(self.store, self)
        self.samples = MemorySampleRepository(self.store, self)
        self.pipelines = MemoryPipelineRepository(self.store, self)
        self.audit = MemoryAuditRepository(self.store, self)
        self.processes = MemoryCollectorProcessRepository(self.store, self)
        self.settings = MemorySettingsRepository(self.store, self)
        self.share_links = MemoryShareLinkRepository(self.store, self)
        self.users = MemoryUserRepository(self.store, self)
        self.tokens = MemoryTokenRepository(self.store, self)
        self.heartbeats = MemoryHeartbeatRepository(self.store, self)
        self.snapshots = MemorySnapshotRepository(self.store, self)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.rollback()  # back to the last commit (or to the state on enter)

    def commit(self) -> None:
        self.commits += 1
        self.dirty = False
        self._snapshot = copy.deepcopy(self.store.__dict__)
        count_committed(self.written)

    def rollback(self) -> None:
        self.written.clear()
        # Only undo what this unit wrote: a unit that wrote nothing must not clobber
        # what another unit committed meanwhile (interleaved units in one test).
        if self.dirty:
            self.store.__dict__.update(copy.deepcopy(self._snapshot))
            self.dirty = False


class MemoryDatabase:
    """Same shape as ``core.store.uow.Database`` for wiring services in unit tests."""

    url = "memory://"

    def __init__(self) -> None:
        self.store = MemoryStore()

    def uow(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self.store)

    def ping(self) -> None:
        return None

    def dispose(self) -> None:
        return None
