"""Experiment use cases: what the CLI and the pages call (never the store directly).

Each public method takes the acting ``Actor`` and is declared a query or a mutation
(``core.services.authz``): the role is checked before anything happens, and each mutation
leaves exactly one audit entry, written in the unit of work of its change.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.cache.memory import MemoryCache
from core.catalog.templates import TEMPLATE_NAMES, is_template
from core.domain.accounts import Actor
from core.domain.budget import HostBudget, from_retunes
from core.domain.criteria import PipelineRef, Timing
from core.domain.errors import ConcurrencyError, InvalidTransitionError, NotFoundError, ValidationError
from core.domain.experiment import Experiment, State, utcnow
from core.domain.ports import (
    TABLE_SORTS,
    Cache,
    EventBus,
    ExperimentKey,
    ExperimentSummary,
    Notice,
    Subscription,
    TableQuery,
    UnitOfWork,
    UnitOfWorkFactory,
)
from core.domain.records import AuditEntry
from core.domain.samples import MeasurementSample
from core.events.memory import MemoryEventBus
from core.observability.context import correlation_id
from core.observability.tracing import traced_service
from core.services import listing_cache
from core.services.authz import mutation, query, record
from core.services.live import PAGE, Cursor, FeedItem, LiveBatch, batch_since, feed_items
from core.services.requests import CancelExperiment, CreateExperiment, ExperimentTable, RerunExperiment
from core.services.settings import SettingsService

log = logging.getLogger(__name__)

CANCEL_RETRIES = 3
#: The largest page a listing serves.
MAX_PAGE = 500
#: Longest owner text kept (names, "Name <email>").
MAX_OWNER = 200


def text_problems(**fields: object) -> list[str]:
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


def ref_problems(uow: UnitOfWork, what: str, ref: str | PipelineRef) -> list[str]:
    """Why ``ref`` names no pipeline that can run: an unknown name, or a version that was never saved."""
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
class SummaryPage:
    """One page of a listing and where the next one starts (None on the last page)."""

    items: list[ExperimentSummary]
    next_after: ExperimentKey | None


@dataclass
class TablePage:
    """One page of the experiment table (``ExperimentService.table``)."""

    items: list[ExperimentSummary]
    page: int
    has_next: bool


@dataclass(frozen=True)
class ExperimentAnalysis:
    """What the analysis of a finished experiment concluded, and against which criteria."""

    experiment_id: str
    state: str
    verdict: str | None
    result: dict[str, Any]
    criteria: dict[str, Any]
    finished_at: datetime | None


class StaleVersion(ConcurrencyError):
    """The caller named a version (If-Match) and the experiment is no longer at it."""


def parse_states(states: Iterable[str] | None) -> list[State] | None:
    """State names as given in a filter; one ValidationError naming every unknown one."""
    if states is None:
        return None
    known = {s.value.lower(): s for s in State}
    unknown = [s for s in states if s.lower() not in known]
    if unknown:
        raise ValidationError(f"state: unknown {', '.join(map(repr, unknown))}; one of "
                              f"{', '.join(s.value for s in State)}")
    return [known[s.lower()] for s in states]


@traced_service
class ExperimentService:
    def __init__(self, uow_factory: UnitOfWorkFactory, *, dry_run: bool,
                 configuration: SettingsService | None = None, events: EventBus | None = None,
                 cache: Cache | None = None):
        self.uow_factory = uow_factory
        # the listing's cache (core.services.listing_cache); Redis when bootstrap has one
        self.cache: Cache = cache if cache is not None else MemoryCache()
        # where "experiment X has news" goes after a commit (core.events); readers wait on it
        self.events: EventBus = events if events is not None else MemoryEventBus()
        self.dry_run = dry_run  # the configured runtime starts nothing real
        # where a new experiment without a policy of its own gets the default one
        self.configuration = configuration or SettingsService(uow_factory)

    @mutation("experiment.create")
    def create(self, actor: Actor, request: CreateExperiment | None = None, /, **fields: object) -> Experiment:
        """Store a new Pending experiment; every problem is refused at once, in one ValidationError.

        Pass a ``CreateExperiment``, or its fields as keywords (checked by the same model).
        Beyond the values themselves, both pipeline refs must name something that can run: a
        built-in template, or a saved pipeline (and, with ``@N``, a version that was saved).
        """
        req = request if request is not None else CreateExperiment.of(**fields)
        owner = req.owner
        problems = text_problems(name=req.name, description=req.description, owner=owner)
        if owner is not None and len(owner.strip()) > MAX_OWNER:
            problems.append(f"owner must be at most {MAX_OWNER} characters")
        exp: Experiment | None = None
        try:
            critical_rules = req.critical_rules
            if critical_rules is None:  # no policy of its own: the default saved in Settings
                critical_rules = self.configuration.default_critical_rules()
            exp = Experiment.create(
                name=req.name,
                baseline=req.baseline,
                candidate=req.candidate,
                owner=owner or actor.name,
                description=req.description,
                timing=Timing(req.duration_s, req.interval_s),
                load=req.load,
                target=req.target,
                criteria=req.criteria,
                critical_rules=critical_rules,
                dry_run=self.dry_run,
            )
        except ValidationError as exc:
            problems += exc.problems
        with self.uow_factory() as uow:
            for what, ref in (("baseline", req.baseline), ("candidate", req.candidate)):
                problems += ref_problems(uow, what, ref)
            if problems or exp is None:
                raise ValidationError(problems)
            exp.correlation_id = correlation_id()  # the scheduler logs its steps under the creating request's id
            uow.experiments.add(exp)
            record(uow, exp.id, after={"name": exp.name, "state": exp.state.value, "baseline": str(exp.baseline),
                                       "candidate": str(exp.candidate), "dry_run": exp.dry_run})
            uow.commit()
        log.info("experiment %s created by %s: %s vs %s", exp.id, actor.name, exp.baseline, exp.candidate,
                 extra={"experiment_id": exp.id})
        self.events.publish(Notice(exp.id, "state"))
        return exp

    @mutation("experiment.rerun")
    def rerun(self, actor: Actor, request: RerunExperiment) -> Experiment:
        """A new Pending experiment with the settings of a finished one (name suffixed "(re-run)").

        Only a terminal experiment can be re-run: one still going has no result to compare with.
        """
        old = self.get(actor, request.experiment_id)
        if not old.is_terminal:
            raise InvalidTransitionError(
                f"experiment {old.id} is {old.state.value}; only a finished experiment can be re-run"
            )
        # create's audit entry is this re-run's one (a mutation inside a mutation records once)
        return self.create(actor, CreateExperiment(
            name=f"{old.name} (re-run)"[:120], baseline=str(old.baseline), candidate=str(old.candidate),
            owner=old.owner, description=old.description, duration_s=old.timing.duration_s,
            interval_s=old.timing.interval_s, load=old.load, target=old.target, criteria=old.criteria,
            critical_rules=old.critical_rules,
        ))  # fmt: skip

    @query("experiment.read")
    def list(self, actor: Actor, states: list[str] | None = None, limit: int = 500) -> list[ExperimentSummary]:
        """Newest first. Cached under the experiments' data version (``core.services.listing_cache``):
        read first, so a listing is never older than the version it is stored under."""
        states = None if states is None else list(states)
        with self.uow_factory() as uow:
            version = listing_cache.data_version(uow)
        key = listing_cache.listing_key(version, states, limit)
        found = listing_cache.decode(self.cache.get(listing_cache.CACHE_NAME, key))
        if found is not None:
            return found
        with self.uow_factory() as uow:
            items = [ExperimentSummary.of(e) for e in uow.experiments.list(states=states, limit=limit)]
        self.cache.set(listing_cache.CACHE_NAME, key, listing_cache.encode(items), listing_cache.TTL_S)
        return items

    @query("experiment.read")
    def page(self, actor: Actor, *, states: Iterable[str] | None = None, owner: str | None = None,
             pipeline: str | None = None, after: ExperimentKey | None = None, limit: int = 50) -> SummaryPage:
        """A keyset page, newest first: reads ``limit + 1`` summary rows to know whether more follow."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationError(f"limit must be between 1 and {MAX_PAGE}")
        wanted = parse_states(states)
        with self.uow_factory() as uow:
            rows = uow.experiments.page(states=wanted, owner=owner, pipeline=pipeline, after=after, limit=limit + 1)
        items = rows[:limit]
        return SummaryPage(items, items[-1].key if len(rows) > limit else None)

    @query("experiment.read")
    def table(self, actor: Actor, request: ExperimentTable) -> TablePage:
        """A page of the experiment table, filtered and sorted by the store (one query of
        ``page_size + 1`` summary rows, so the page knows whether another follows)."""
        if request.sort not in TABLE_SORTS:
            raise ValidationError(f"sort: unknown column {request.sort!r}; one of {', '.join(TABLE_SORTS)}")
        wanted = parse_states(request.states)
        q = TableQuery(states=None if wanted is None else tuple(wanted), owner=request.owner or None,
                       pipeline=request.pipeline or None, verdict=request.verdict or None, sort=request.sort,
                       descending=request.descending, offset=request.page * request.page_size,
                       limit=request.page_size + 1)
        with self.uow_factory() as uow:
            rows = uow.experiments.table(q)
        return TablePage(rows[: request.page_size], request.page, len(rows) > request.page_size)

    @query("experiment.read")
    def analysis(self, actor: Actor, experiment_id: str) -> ExperimentAnalysis:
        """The stored analysis; InvalidTransitionError while the experiment has none (not finished)."""
        exp = self.get(actor, experiment_id)
        if exp.result is None:
            raise InvalidTransitionError(f"experiment {exp.id} is {exp.state.value} and has no analysis "
                                         "yet; it has one once it completes")
        return ExperimentAnalysis(exp.id, exp.state.value, exp.result.get("verdict"), exp.result,
                                  exp.criteria.to_dict(), exp.finished_at)

    @query("experiment.read")
    def completed(self, actor: Actor, limit: int = 100) -> list[Experiment]:
        """The newest completed experiments with their results, in one query."""
        with self.uow_factory() as uow:
            return list(uow.experiments.list(states=[State.COMPLETED.value], limit=limit))

    @query("experiment.read")
    def get(self, actor: Actor, experiment_id: str) -> Experiment:
        with self.uow_factory() as uow:
            return uow.experiments.get(experiment_id)

    @query("experiment.read")
    def counts_by_state(self, actor: Actor) -> dict[str, int]:
        with self.uow_factory() as uow:
            counts = uow.experiments.counts_by_state()
        return {s.value: counts.get(s.value, 0) for s in State}

    @query("experiment.read")
    def samples(self, actor: Actor, experiment_id: str, since: datetime | None = None,
                *, known: bool = False) -> list[MeasurementSample]:
        """Samples, oldest first. ``known``: NotFoundError for an unknown experiment (not an empty list)."""
        with self.uow_factory() as uow:
            if known:
                uow.experiments.get(experiment_id)
            return uow.samples.list(experiment_id, since=since)

    @query("experiment.read")
    def audit(self, actor: Actor, experiment_id: str, limit: int = 200) -> list[AuditEntry]:
        with self.uow_factory() as uow:
            return uow.audit.list(subject=experiment_id, limit=limit)

    @query("experiment.read")
    def closed_loop(self, actor: Actor, experiment_id: str, limit: int = 2000) -> list[HostBudget]:
        """Adaptive's closed loop, interval by interval (oldest first): per host the baseline
        series, budget, achieved and deviation % recorded with each re-tune."""
        with self.uow_factory() as uow:
            entries = uow.audit.list(subject=experiment_id, limit=limit)
        records = [e.details for e in reversed(entries) if e.action == "experiment.retune" and e.details]
        return from_retunes(records)

    @query("experiment.read")
    def events_since(self, actor: Actor, experiment_id: str, cursor: Cursor | None = None) -> LiveBatch:
        """What happened to one experiment after ``cursor`` (transitions, samples, verdict, end),
        in order, each with the cursor to resume after it. One read; NotFoundError if unknown."""
        start = cursor or Cursor()
        with self.uow_factory() as uow:
            exp = uow.experiments.get(experiment_id)
            samples = uow.samples.after(experiment_id, start.sample_id, PAGE)
        return batch_since(exp, samples, start, full_page=len(samples) >= PAGE)

    @query("experiment.read")
    def feed_head(self, actor: Actor) -> int:
        """The newest position of the all-experiments feed (a live-only reader starts there)."""
        with self.uow_factory() as uow:
            return uow.experiments.last_event_id()

    @query("experiment.read")
    def feed_since(self, actor: Actor, after_event_id: int) -> list[FeedItem]:
        """Every experiment's transitions (and verdicts) after ``after_event_id``, oldest first."""
        with self.uow_factory() as uow:
            events = uow.experiments.events_after(after_event_id, PAGE)
            results = {}
            for _, ev in events:
                if ev.to_state == State.COMPLETED.value and ev.experiment_id not in results:
                    results[ev.experiment_id] = uow.experiments.get(ev.experiment_id).result or {}
        return feed_items(events, results)

    @query("experiment.read")
    def watch(self, actor: Actor, experiment_id: str | None = None) -> Subscription:
        """A subscription to "has news" notices of one experiment (or all); close it when done.

        Notices only wake a reader early: read with ``events_since``/``feed_since`` after each
        ``wait``, and also every second or so without one (another process without Redis)."""
        return self.events.subscribe(experiment_id)

    @mutation("experiment.cancel")
    def cancel(self, actor: Actor, request: CancelExperiment) -> Experiment:
        """Cancel now; the scheduler tears the collectors down on its next tick.

        Retries when the scheduler wrote in between (optimistic lock), re-checking that
        cancelling is still allowed in the state it left. With ``expected_version`` (an
        If-Match), the version is compared in the same unit of work that saves, before the
        state: any change since that version (another cancel, a scheduler step) is a
        ``StaleVersion``, and the optimistic lock catches one that lands after the read.
        """
        experiment_id, reason = request.experiment_id, request.reason
        for attempt in range(CANCEL_RETRIES):
            with self.uow_factory() as uow:
                exp = uow.experiments.get(experiment_id)
                if request.expected_version is not None and exp.version != request.expected_version:
                    raise StaleVersion(f"experiment {exp.id} is at version {exp.version}, not "
                                       f"{request.expected_version}; GET it again and decide")
                if not exp.can_transition(State.CANCELLED):
                    raise InvalidTransitionError(
                        f"experiment {exp.id} is {exp.state.value} and can no longer be cancelled"
                    )
                before = exp.state.value
                exp.cancel(actor=actor.name, reason=reason or f"cancelled by {actor.name}", now=utcnow())
                try:
                    uow.experiments.save(exp)
                except ConcurrencyError:
                    if attempt == CANCEL_RETRIES - 1:
                        raise
                    continue
                record(uow, exp.id, before={"state": before}, after={"state": exp.state.value},
                       details={"reason": reason})
                uow.commit()
                self.events.publish(Notice(exp.id, "state"))
                return exp
        raise ConcurrencyError(f"experiment {experiment_id} kept changing; try cancelling again")
