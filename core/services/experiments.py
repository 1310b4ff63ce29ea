"""Experiment use cases: what the CLI and the pages call (never the store directly).

Each public method is one named action (create, cancel, …) so the coming role guard
(DESIGN §10) can wrap them; each user action lands in the audit log with its actor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.domain.criteria import LoadProfile, PipelineRef, SuccessCriteria, Target, Timing
from core.domain.errors import ConcurrencyError, InvalidTransitionError, NotFoundError, ValidationError
from core.domain.experiment import Experiment, State, utcnow
from core.domain.ports import UnitOfWorkFactory
from core.domain.records import AuditEntry
from core.domain.samples import MeasurementSample

CANCEL_RETRIES = 3
#: Longest owner text kept (names, "Name <email>").
MAX_OWNER = 200


def text_problems(**fields: str | None) -> list[str]:
    """Text a database cannot store or a terminal cannot show: NUL, lone surrogates, control characters.

    ``description`` may hold newlines and tabs; single-line fields may not.
    """
    problems: list[str] = []
    for what, value in fields.items():
        if value is None:
            continue
        label = what.replace("_", " ")
        if not isinstance(value, str):
            problems.append(f"{label} must be text")
            continue
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            problems.append(f"{label} contains characters that are not valid text (lone surrogates)")
            continue
        allowed = "\n\t\r" if what == "description" else ""
        if any((ord(c) < 0x20 and c not in allowed) or 0x7F <= ord(c) < 0xA0 for c in value):
            problems.append(f"{label} must not contain control characters"
                            + ("" if what == "description" else " (it is a single line)"))
    return problems


def ref_problems(uow: Any, what: str, ref: str | PipelineRef) -> list[str]:
    """Why ``ref`` names no pipeline that can run: an unknown name, or a version that was never saved."""
    from core.catalog.templates import TEMPLATE_NAMES, is_template

    try:
        parsed = ref if isinstance(ref, PipelineRef) else PipelineRef.parse(ref, what)
    except ValidationError:
        return []  # Experiment.create reports the malformed ref itself
    if is_template(parsed.name):
        if parsed.version is None:
            return []
        return [f"{what} pipeline {str(parsed)!r}: {parsed.name} is a built-in template and has no saved "
                f"versions; use {parsed.name} without @{parsed.version}"]
    try:
        latest = uow.pipelines.get_version(parsed.name).number
    except NotFoundError:
        return [f"{what} pipeline {str(parsed)!r} does not exist: it is neither a built-in template "
                f"({', '.join(TEMPLATE_NAMES)}) nor a saved pipeline"]
    if parsed.version is not None and not 1 <= parsed.version <= latest:
        return [f"{what} pipeline {str(parsed)!r} does not exist: {parsed.name} has versions 1 to {latest}"
                if latest > 1 else
                f"{what} pipeline {str(parsed)!r} does not exist: {parsed.name} has only version 1"]
    return []


@dataclass(frozen=True)
class ExperimentSummary:
    """One row of an experiment list (no event log, no result body)."""

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

    @classmethod
    def of(cls, e: Experiment) -> ExperimentSummary:
        return cls(
            id=e.id,
            name=e.name,
            state=e.state.value,
            owner=e.owner,
            baseline=str(e.baseline),
            candidate=str(e.candidate),
            created_at=e.created_at,
            started_at=e.started_at,
            finished_at=e.finished_at,
            duration_s=e.timing.duration_s,
            dry_run=e.dry_run,
            verdict=(e.result or {}).get("verdict"),
            error=e.error,
        )


def experiment_to_dict(e: Experiment, promoted: dict[str, Any] | None = None) -> dict[str, Any]:
    """JSON-ready view used by ``--json`` and downloads.

    ``promoted``: the experiment's promotion record (``core.services.promotion``), added
    under ``"promoted"`` when given.
    """

    def ts(d: datetime | None) -> str | None:
        return d.isoformat() if d else None

    return {
        "id": e.id,
        "name": e.name,
        "description": e.description,
        "owner": e.owner,
        "state": e.state.value,
        "dry_run": e.dry_run,
        "baseline": str(e.baseline),
        "candidate": str(e.candidate),
        "target": e.target.to_dict(),
        "load_profile": e.load.to_dict(),
        "duration_s": e.timing.duration_s,
        "interval_s": e.timing.interval_s,
        "criteria": e.criteria.to_dict(),
        "critical_policy": e.critical_rules,
        "result": e.result,
        "error": e.error,
        "runtime_info": e.runtime_info,
        "version": e.version,
        "created_at": ts(e.created_at),
        "started_at": ts(e.started_at),
        "finished_at": ts(e.finished_at),
        "events": [ev.to_dict() for ev in e.events],
        **({"promoted": promoted} if promoted is not None else {}),
    }


class ExperimentService:
    def __init__(self, uow_factory: UnitOfWorkFactory, *, dry_run: bool):
        self.uow_factory = uow_factory
        self.dry_run = dry_run  # the configured runtime starts nothing real

    def create(
        self,
        *,
        name: str,
        baseline: str,
        candidate: str,
        actor: str = "anonymous",
        owner: str | None = None,
        description: str = "",
        duration_s: float = 60.0,
        interval_s: float = 5.0,
        load: LoadProfile | None = None,
        target: Target | None = None,
        criteria: SuccessCriteria | None = None,
        critical_rules: list[dict[str, str]] | None = None,
    ) -> Experiment:
        """Store a new Pending experiment; every problem is refused at once, in one ValidationError.

        Beyond the values themselves, both pipeline refs must name something that can run: a
        built-in template, or a saved pipeline (and, with ``@N``, a version that was saved).
        """
        problems = text_problems(name=name, description=description, owner=owner, actor=actor)
        if owner is not None and isinstance(owner, str) and len(owner.strip()) > MAX_OWNER:
            problems.append(f"owner must be at most {MAX_OWNER} characters")
        exp: Experiment | None = None
        try:
            exp = Experiment.create(
                name=name,
                baseline=baseline,
                candidate=candidate,
                owner=owner or actor,
                description=description,
                timing=Timing(duration_s, interval_s),
                load=load,
                target=target,
                criteria=criteria,
                critical_rules=critical_rules,
                dry_run=self.dry_run,
            )
        except ValidationError as exc:
            problems += exc.problems
        with self.uow_factory() as uow:
            for what, ref in (("baseline", baseline), ("candidate", candidate)):
                problems += ref_problems(uow, what, ref)
            if problems or exp is None:
                raise ValidationError(problems)
            uow.experiments.add(exp)
            uow.audit.add(actor, "experiment.create", exp.id, {"name": exp.name, "baseline": str(exp.baseline),
                                                               "candidate": str(exp.candidate), "dry_run": exp.dry_run})
            uow.commit()
        return exp

    def list(self, states: list[str] | None = None, limit: int = 500) -> list[ExperimentSummary]:
        with self.uow_factory() as uow:
            return [ExperimentSummary.of(e) for e in uow.experiments.list(states=states, limit=limit)]

    def get(self, experiment_id: str) -> Experiment:
        with self.uow_factory() as uow:
            return uow.experiments.get(experiment_id)

    def counts_by_state(self) -> dict[str, int]:
        with self.uow_factory() as uow:
            counts = uow.experiments.counts_by_state()
        return {s.value: counts.get(s.value, 0) for s in State}

    def samples(self, experiment_id: str, since: datetime | None = None) -> list[MeasurementSample]:
        with self.uow_factory() as uow:
            return uow.samples.list(experiment_id, since=since)

    def audit(self, experiment_id: str, limit: int = 200) -> list[AuditEntry]:
        with self.uow_factory() as uow:
            return uow.audit.list(subject=experiment_id, limit=limit)

    def promote(
        self,
        experiment_id: str,
        *,
        actor: str = "anonymous",
        force: bool = False,
        reason: str | None = None,
        is_admin: bool = False,
        gitops: Any = None,
    ) -> dict[str, Any]:
        """Promote the candidate to production (``core.services.promotion.promote``); returns the record.

        ``gitops`` defaults to the repository at ``PHOENIX_GITOPS_REPO``.
        """
        from core.services.promotion import promote

        if gitops is None:
            from core.gitops import GitRepo
            from core.settings import Settings

            gitops = GitRepo(Settings.from_env().gitops_repo)
        record = promote(self.uow_factory, gitops, experiment_id, actor=actor, force=force, reason=reason,
                         is_admin=is_admin)  # fmt: skip
        return record.to_dict(with_graph=False)

    def promotion(self, experiment_id: str) -> dict[str, Any] | None:
        """The experiment's promotion record, or None if it was never promoted."""
        from core.services.promotion import promotion_of

        rec = promotion_of(self.uow_factory, experiment_id)
        return rec.to_dict(with_graph=False) if rec else None

    def cancel(self, experiment_id: str, *, actor: str = "anonymous", reason: str = "") -> Experiment:
        """Cancel now; the scheduler tears the collectors down on its next tick.

        Retries when the scheduler wrote in between (optimistic lock), re-checking that
        cancelling is still allowed in the state it left.
        """
        for attempt in range(CANCEL_RETRIES):
            with self.uow_factory() as uow:
                exp = uow.experiments.get(experiment_id)
                if not exp.can_transition(State.CANCELLED):
                    raise InvalidTransitionError(
                        f"experiment {exp.id} is {exp.state.value} and can no longer be cancelled"
                    )
                exp.cancel(actor=actor, reason=reason or f"cancelled by {actor}", now=utcnow())
                try:
                    uow.experiments.save(exp)
                except ConcurrencyError:
                    if attempt == CANCEL_RETRIES - 1:
                        raise
                    continue
                uow.audit.add(actor, "experiment.cancel", exp.id, {"reason": reason})
                uow.commit()
                return exp
        raise ConcurrencyError(f"experiment {experiment_id} kept changing; try cancelling again")
