"""The Experiment aggregate and its state machine.

Seven states and exactly these transitions (docs/architecture.md §3 follows an experiment through them)::

    Pending      → Initializing | Cancelled
    Initializing → Running | Failed | Cancelled
    Running      → Analyzing | Failed | Cancelled
    Analyzing    → Completed | Failed
    Completed, Failed, Cancelled: terminal

Plain Python, no I/O. Every transition appends a ``TransitionEvent`` to ``events`` (the
full history) and to ``pending_events`` (what the repository still has to write). An
invalid transition raises ``InvalidTransitionError`` and changes nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from core.domain.criteria import LoadProfile, PipelineRef, SuccessCriteria, Target, Timing, ensure_valid
from core.domain.errors import InvalidTransitionError, ValidationError
from core.domain.events import TransitionEvent


class State(StrEnum):
    PENDING = "Pending"
    INITIALIZING = "Initializing"
    RUNNING = "Running"
    ANALYZING = "Analyzing"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


TRANSITIONS: dict[State, frozenset[State]] = {
    State.PENDING: frozenset({State.INITIALIZING, State.CANCELLED}),
    State.INITIALIZING: frozenset({State.RUNNING, State.FAILED, State.CANCELLED}),
    State.RUNNING: frozenset({State.ANALYZING, State.FAILED, State.CANCELLED}),
    State.ANALYZING: frozenset({State.COMPLETED, State.FAILED}),
    State.COMPLETED: frozenset(),
    State.FAILED: frozenset(),
    State.CANCELLED: frozenset(),
}
TERMINAL_STATES: frozenset[State] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
ACTIVE_STATES: frozenset[State] = frozenset(State) - TERMINAL_STATES
# States in which an experiment's collectors keep measuring. Not Analyzing: the verdict is
# computed from a closed set of samples, so measuring stops when analysis begins.
MEASURING_STATES: frozenset[State] = frozenset({State.PENDING, State.INITIALIZING, State.RUNNING})

MAX_NAME = 120
MAX_DESCRIPTION = 2000


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_experiment_id() -> str:
    return f"exp-{secrets.token_hex(4)}"


@dataclass
class Experiment:
    id: str
    name: str
    baseline: PipelineRef
    candidate: PipelineRef
    owner: str = "anonymous"
    description: str = ""
    state: State = State.PENDING
    target: Target = field(default_factory=Target)
    load: LoadProfile = field(default_factory=LoadProfile)
    timing: Timing = field(default_factory=Timing)
    criteria: SuccessCriteria = field(default_factory=SuccessCriteria)
    # Critical policy rules as [{match, pattern, priority}]; None = the default policy.
    critical_rules: list[dict[str, str]] | None = None
    dry_run: bool = False
    # The id of the request that created it (core.observability.context): the scheduler logs
    # its steps under it, so one grep finds a request and everything it set going.
    correlation_id: str | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    runtime_info: dict[str, Any] = field(default_factory=dict)
    version: int = 0  # optimistic lock; 0 = not stored yet
    created_at: datetime = field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    events: list[TransitionEvent] = field(default_factory=list)
    pending_events: list[TransitionEvent] = field(default_factory=list, repr=False)

    # ------------------------------------------------------------ creation

    @classmethod
    def create(
        cls,
        *,
        name: str,
        baseline: PipelineRef | str,
        candidate: PipelineRef | str,
        owner: str = "anonymous",
        description: str = "",
        target: Target | None = None,
        load: LoadProfile | None = None,
        timing: Timing | None = None,
        criteria: SuccessCriteria | None = None,
        critical_rules: list[dict[str, str]] | None = None,
        dry_run: bool = False,
        now: datetime | None = None,
        id: str | None = None,
    ) -> Experiment:
        problems: list[str] = []
        refs: list[PipelineRef] = []
        for what, ref in (("baseline", baseline), ("candidate", candidate)):
            try:
                refs.append(ref if isinstance(ref, PipelineRef) else PipelineRef.parse(ref, what))
            except ValidationError as exc:
                problems.extend(exc.problems)
        name = (name or "").strip()
        if not name:
            problems.append("name must not be empty")
        elif len(name) > MAX_NAME:
            problems.append(f"name must be at most {MAX_NAME} characters")
        if len(description or "") > MAX_DESCRIPTION:
            problems.append(f"description must be at most {MAX_DESCRIPTION} characters")
        owner = (owner or "").strip() or "anonymous"
        target, load = target or Target(), load or LoadProfile()
        timing, criteria = timing or Timing(), criteria or SuccessCriteria()
        for obj in (target, load, timing, criteria):
            problems.extend(obj.validate())
        if not problems and criteria.min_samples > timing.expected_samples():
            problems.append(
                f"min samples ({criteria.min_samples}) is more than the run can collect "
                f"({timing.expected_samples()} = duration / interval)"
            )
        if critical_rules is not None:
            from core.domain.critical import rule_problems

            problems.extend(rule_problems(critical_rules, "critical policy"))
        if problems:
            raise ValidationError(problems)
        ensure_valid(target, load, timing, criteria)
        return cls(
            id=id or new_experiment_id(),
            name=name,
            baseline=refs[0],
            candidate=refs[1],
            owner=owner,
            description=description or "",
            target=target,
            load=load,
            timing=timing,
            criteria=criteria,
            critical_rules=[dict(r) for r in critical_rules] if critical_rules is not None else None,
            dry_run=dry_run,
            created_at=now or utcnow(),
        )

    # ------------------------------------------------------------ state machine

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    def can_transition(self, to: State | str) -> bool:
        return State(to) in TRANSITIONS[self.state]

    def transition(self, to: State | str, *, actor: str, reason: str = "", now: datetime | None = None) -> TransitionEvent:
        """The one way state changes. Raises InvalidTransitionError and changes nothing if not allowed."""
        try:
            target = State(to)
        except ValueError:
            raise InvalidTransitionError(f"{to!r} is not an experiment state") from None
        if target not in TRANSITIONS[self.state]:
            allowed = ", ".join(sorted(TRANSITIONS[self.state])) or "none (terminal)"
            raise InvalidTransitionError(
                f"experiment {self.id} cannot go from {self.state.value} to {target.value}; allowed: {allowed}"
            )
        at = now or utcnow()
        event = TransitionEvent(self.id, self.state.value, target.value, actor, reason, at)
        self.state = target
        if target is State.RUNNING:
            self.started_at = at
        if target in TERMINAL_STATES:
            self.finished_at = at
        self.events.append(event)
        self.pending_events.append(event)
        return event

    # Named commands read better at call sites and are what the UI guard will wrap.
    def start(self, actor: str, now: datetime | None = None) -> TransitionEvent:
        return self.transition(State.INITIALIZING, actor=actor, reason="picked up by scheduler", now=now)

    def mark_running(self, actor: str, now: datetime | None = None) -> TransitionEvent:
        return self.transition(State.RUNNING, actor=actor, reason="both variants ready", now=now)

    def begin_analysis(self, actor: str, now: datetime | None = None) -> TransitionEvent:
        return self.transition(State.ANALYZING, actor=actor, reason="duration elapsed", now=now)

    def complete(self, result: dict[str, Any], actor: str, now: datetime | None = None) -> TransitionEvent:
        verdict = result.get("verdict", "?") if isinstance(result, dict) else "?"
        event = self.transition(State.COMPLETED, actor=actor, reason=f"verdict {verdict}", now=now)
        self.result = dict(result)
        return event

    def fail(self, reason: str, actor: str, now: datetime | None = None) -> TransitionEvent:
        event = self.transition(State.FAILED, actor=actor, reason=reason, now=now)
        self.error = reason
        return event

    def cancel(self, actor: str, reason: str = "", now: datetime | None = None) -> TransitionEvent:
        return self.transition(State.CANCELLED, actor=actor, reason=reason or "cancelled by user", now=now)

    # ------------------------------------------------------------ runtime helpers

    def duration_elapsed(self, now: datetime) -> bool:
        return self.started_at is not None and (now - self.started_at).total_seconds() >= self.timing.duration_s

    @property
    def deployed(self) -> bool:
        return bool(self.runtime_info) and not self.runtime_info.get("torn_down")

    @property
    def needs_teardown(self) -> bool:
        """Terminal but collectors may still be up: the scheduler tears them down."""
        return self.is_terminal and self.deployed

    def age_seconds(self, now: datetime | None = None) -> float:
        return ((now or utcnow()) - self.created_at).total_seconds()
