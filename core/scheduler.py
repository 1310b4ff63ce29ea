"""The experiment scheduler: each tick moves every claimed experiment one idempotent step.

Reconcile steps (kopf style: look at the stored state, do one thing, store the result)::

    Pending       → Initializing
    Initializing  deploy both variants (store runtime info) … then, once ready → Running
                  (not ready within ``ready_timeout_s`` → Failed)
    Running       store new samples (deployers with ``collect``); collector died → Failed;
                  duration elapsed → tear down → Analyzing
    Analyzing     analyzer(samples) → Completed with the result (error → Failed)
    terminal      collectors still up (failed / cancelled by a user) → tear down, release

Claims: a scheduler only works on experiments it has leased (``claim``). On PostgreSQL the
claim query uses ``FOR UPDATE SKIP LOCKED``; on both backends the claim is a conditional
UPDATE of ``claimed_by``/``lease_until``, and every write is also guarded by the
optimistic version, so two schedulers never record the same transition twice. A
crashed scheduler's leases expire and another (or a restarted one) resumes its work.

What a scheduler may claim:
- its runtime's kind of experiment: one whose deployer starts real processes never takes
  a dry run (created while the runtime started nothing), ``dry_run=`` narrows either way;
- with ``experiment_ids`` (``phoenix experiment run --wait``) only those: such a scheduler
  is the experiment's *exclusive driver* (id ``run@…``, recorded as the actor of the start)
  and its processes die with it. Should it die, another scheduler that later gets the
  lease does not resume the experiment — its collectors are gone with their command — but
  fails it ("abandoned") and tears down whatever is left.

``TemporaryError`` from a deployer/analyzer means "try again next tick"; any other
exception fails the experiment with its message.

Metrics (``core.observability.metrics``, docs/observability.md): each tick's duration,
outcome and lag, the experiments it claimed and the leases it took over from another
scheduler; transitions are counted by the unit of work when it commits them.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from core.domain.accounts import SYSTEM_SCHEDULER
from core.domain.errors import ConcurrencyError, NotFoundError, PhoenixError, TemporaryError
from core.domain.experiment import Experiment, State, utcnow
from core.domain.ports import Analyzer, Deployer, Notice, SchedulerBeat, UnitOfWork, UnitOfWorkFactory
from core.domain.samples import MeasurementSample
from core.observability.context import bind, scope
from core.observability.metrics import (
    CLAIMED,
    LAST_TICK,
    LEASE_TAKEOVERS,
    TICK_LAG_SECONDS,
    TICK_SECONDS,
    TICKS,
)
from core.observability.tracing import annotate, span, traced

log = logging.getLogger(__name__)

DEFAULT_READY_TIMEOUT_S = 120.0


#: Id prefix of a scheduler that drives only given experiments (``experiment run --wait``).
EXCLUSIVE_PREFIX = "run@"


#: How often a long-running scheduler prunes measurements past the retention.
HOUSEKEEPING_INTERVAL_S = 3600.0
#: How often a long-running scheduler asks whether intelligent pipelines are due for retraining.
RETRAIN_CHECK_S = 300.0


def new_scheduler_id(exclusive: bool = False) -> str:
    return f"{EXCLUSIVE_PREFIX if exclusive else ''}{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(2)}"


def exclusive_driver(exp: Experiment) -> str | None:
    """The actor of the exclusive scheduler that started ``exp``, if one did."""
    for ev in exp.events:
        if ev.to_state == State.INITIALIZING.value:
            return ev.actor if ev.actor.startswith(f"scheduler:{EXCLUSIVE_PREFIX}") else None
    return None


def _changes(exp: Experiment) -> tuple[Any, ...]:
    """What a reconcile step may change; equal before and after = nothing to write."""
    return exp.state, len(exp.events), exp.error, exp.result, dict(exp.runtime_info)


@dataclass
class TickReport:
    claimed: list[str] = field(default_factory=list)
    transitions: list[tuple[str, str, str]] = field(default_factory=list)  # (id, from, to)
    actions: list[tuple[str, str]] = field(default_factory=list)  # (id, what happened)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (id, message)


class Scheduler:
    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        deployer: Deployer,
        analyzer: Analyzer,
        *,
        scheduler_id: str | None = None,
        interval_s: float = 2.0,
        lease_s: float = 30.0,
        batch_size: int = 50,
        ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S,
        clock: Callable[[], datetime] = utcnow,
        production_port: int | None = None,
        experiment_ids: Iterable[str] | None = None,
        dry_run: bool | None = None,
        housekeeping: Callable[[datetime], object] | None = None,
        housekeeping_interval_s: float = HOUSEKEEPING_INTERVAL_S,
        notify: Callable[[Notice], object] | None = None,
        retrain: Callable[[datetime], object] | None = None,
        retrain_check_s: float = RETRAIN_CHECK_S,
        timer: Callable[[], float] = time.monotonic,
    ):
        if lease_s <= 0 or interval_s <= 0:
            raise ValueError("scheduler interval and lease must be positive")
        self.uow_factory = uow_factory
        self.deployer = deployer
        self.analyzer = analyzer
        #: Only these experiments (None: any); see the module docstring.
        self.experiment_ids = None if experiment_ids is None else frozenset(experiment_ids)
        # Which kind of experiment: False = real ones only, True = dry runs only, None = any.
        # A deployer that starts real processes must never run a dry run; the in-memory one
        # also stands in for every runtime in tests, so it takes any unless told.
        if dry_run is None and getattr(deployer, "dry_run", None) is False:
            dry_run = False
        self.dry_run = dry_run
        self.id = scheduler_id or new_scheduler_id(exclusive=self.experiment_ids is not None)
        self.actor = f"scheduler:{self.id}"
        self.interval_s = interval_s
        self.lease_s = lease_s
        self.batch_size = batch_size
        self.ready_timeout_s = ready_timeout_s
        self.clock = clock
        # Long-running schedulers (the app's, ``phoenix scheduler``) also keep the host's
        # standing collector in line with the promoted pipeline; one-off runs do not.
        self.production_port = production_port
        self._bg: Any = None
        self._tick_lock = threading.Lock()
        # Samples a runtime handed over (it never hands them over again) that could not be
        # stored yet, e.g. while the database restarts: stored on a later step.
        self._unsaved: dict[str, list[MeasurementSample]] = {}
        # Inside run_once: samples collected this tick, stored in one unit at its end.
        self._tick_samples: dict[str, list[MeasurementSample]] | None = None
        # Long-running schedulers also apply the retention setting (``SystemService.prune``),
        # at most once per interval; the first tick does it at once.
        self.housekeeping = housekeeping
        self.housekeeping_interval_s = housekeeping_interval_s
        self._housekept_at: datetime | None = None
        # Long-running schedulers also retrain saved intelligent pipelines from stored
        # snapshots; ``retrain`` itself decides whether it is due (PHOENIX_RETRAIN_INTERVAL,
        # across schedulers), this only bounds how often it is asked.
        self.retrain = retrain
        self.retrain_check_s = retrain_check_s
        self._retrain_checked_at: datetime | None = None
        # Told after each commit of a transition or of samples (the event bus: live pages and
        # API streams wake up at once instead of at their next poll). Must not raise.
        self.notify = notify
        self.started_at = clock()
        # Tick timing for the metrics (real elapsed time, whatever ``clock`` says in tests).
        self.timer = timer
        self._last_tick_start: float | None = None

    # ------------------------------------------------------------ one tick

    @traced("scheduler.tick")
    def run_once(self) -> TickReport:
        """Claim work and advance each claimed experiment by one step. Never raises for one bad experiment.

        Metrics: the tick's duration, its outcome (``error`` when the report holds any
        error), how late it started, what it claimed and which claims were takeovers.
        """
        with self._tick_lock:
            started = self.timer()
            if self._last_tick_start is not None:
                due = self._last_tick_start + self.interval_s
                TICK_LAG_SECONDS.set(max(0.0, started - due))
            self._last_tick_start = started
            report = TickReport()
            try:
                self._tick(report)
            except BaseException:
                TICKS.labels("error").inc()
                raise
            finally:
                TICK_SECONDS.observe(self.timer() - started)
                LAST_TICK.set(time.time())
            TICKS.labels("error" if report.errors else "ok").inc()
        return report

    def _tick(self, report: TickReport) -> None:
        """The body of one tick (the caller holds the tick lock and times it)."""
        self._beat()
        try:
            with self.uow_factory() as uow:
                claimed = uow.experiments.claim(self.id, self.clock(), self.lease_s, self.batch_size,
                                                experiment_ids=self.experiment_ids, dry_run=self.dry_run)  # fmt: skip
                uow.commit()
        except PhoenixError as exc:
            log.warning("scheduler %s could not claim work: %s", self.id, exc)
            report.errors.append(("*", str(exc)))
            CLAIMED.set(0)
            return
        report.claimed = list(claimed)
        CLAIMED.set(len(claimed))
        # Claims of another scheduler's expired lease (``core.store.claims.Claimed``).
        taken_over = getattr(claimed, "taken_over", ())
        if taken_over:
            LEASE_TAKEOVERS.inc(len(taken_over))
            log.info("scheduler %s took over %d expired lease(s): %s", self.id, len(taken_over),
                     ", ".join(sorted(taken_over)))
        self._tick_samples = {}
        try:
            for eid in report.claimed:
                # its lines and spans carry its id (and, once step reads it, its creator's correlation id)
                with scope(experiment=eid), span("scheduler.step", **{"phoenix.scheduler_id": self.id}):
                    try:
                        self.step(eid, report)
                    except ConcurrencyError as exc:
                        # Someone (a user cancelling, usually) wrote first; next tick sees their state.
                        log.info("scheduler %s: %s", self.id, exc)
                        report.actions.append((eid, "lost a concurrent write; will retry"))
                    except TemporaryError as exc:
                        log.warning("scheduler %s: %s: %s", self.id, eid, exc)
                        report.errors.append((eid, str(exc)))
                    except Exception as exc:  # noqa: BLE001 - one broken experiment must not stop the others
                        log.exception("scheduler %s: unexpected error on %s", self.id, eid)
                        report.errors.append((eid, f"{type(exc).__name__}: {exc}"))
        finally:
            self._store_tick_samples(report)
        self._reconcile_production(report)
        self._housekeep(report)
        self._retrain(report)

    def _beat(self) -> None:
        """Record that this scheduler is alive (readiness reads the newest beat)."""
        try:
            with self.uow_factory() as uow:
                uow.heartbeats.beat(SchedulerBeat(self.id, socket.gethostname(), os.getpid(),
                                                  self.started_at, self.clock()))
                uow.commit()
        except Exception as exc:  # noqa: BLE001 - the database is away: the claim below reports it too
            log.warning("scheduler %s could not record its heartbeat: %s", self.id, exc)

    def _tell(self, experiment_id: str, kind: str) -> None:
        if self.notify is None:
            return
        try:
            self.notify(Notice(experiment_id, kind))
        except Exception:  # noqa: BLE001 - a bus problem must never undo or stop a committed step
            log.warning("scheduler %s: could not publish %s of %s", self.id, kind, experiment_id, exc_info=True)

    def _housekeep(self, report: TickReport) -> None:
        now = self.clock()
        if self.housekeeping is None or (
                self._housekept_at is not None
                and (now - self._housekept_at).total_seconds() < self.housekeeping_interval_s):
            return
        try:
            self.housekeeping(now)
            self._housekept_at = now
        except PhoenixError as exc:  # the database is away: try again next tick
            log.warning("scheduler %s: housekeeping: %s", self.id, exc)
            report.errors.append(("housekeeping", str(exc)))

    def _retrain(self, report: TickReport) -> None:
        now = self.clock()
        if self.retrain is None or (
                self._retrain_checked_at is not None
                and (now - self._retrain_checked_at).total_seconds() < self.retrain_check_s):
            return
        self._retrain_checked_at = now  # a failure waits for the next check, it does not retry every tick
        try:
            self.retrain(now)
        except Exception as exc:  # noqa: BLE001 - learning must never stop experiments
            log.warning("scheduler %s: retraining: %s", self.id, exc)
            report.errors.append(("retrain", f"{type(exc).__name__}: {exc}"))

    def _reconcile_production(self, report: TickReport) -> None:
        reconcile = getattr(self.deployer, "reconcile_production", None)
        if self.production_port is None or reconcile is None:
            return
        try:
            what = reconcile(self.production_port)
        except Exception as exc:  # noqa: BLE001 - retried next tick; experiments are unaffected
            log.warning("scheduler %s: production collector: %s", self.id, exc)
            report.errors.append(("production", f"{type(exc).__name__}: {exc}"))
            return
        if what in ("started", "restarted"):
            report.actions.append(("production", f"standing collector {what}"))

    def step(self, experiment_id: str, report: TickReport | None = None) -> None:
        report = report if report is not None else TickReport()
        with self.uow_factory() as uow:
            now = self.clock()
            if not uow.experiments.holds_claim(experiment_id, self.id, now):
                report.actions.append((experiment_id, "claim lost"))
                return
            try:
                exp = uow.experiments.get(experiment_id)
            except NotFoundError:
                return
            # the request that created it: run_once's scope undoes this binding after the step
            bind(correlation_id=exp.correlation_id, experiment_id=exp.id)
            annotate(**{"phoenix.correlation_id": exp.correlation_id})
            if experiment_id in self._unsaved:
                self._store_samples(experiment_id, [])
            before, n_events = exp.state, len(exp.events)
            unchanged = _changes(exp)
            what = self._reconcile(exp, now, uow)
            # A step that changed nothing (running, waiting for readiness) writes nothing:
            # no version bump for a concurrent cancel to lose against, no row rewrite per tick.
            if _changes(exp) != unchanged:
                uow.experiments.save(exp)
            for ev in exp.events[n_events:]:
                uow.audit.add(
                    ev.actor, "experiment.transition", exp.id, {"from": ev.from_state, "to": ev.to_state, "reason": ev.reason},
                    source=SYSTEM_SCHEDULER.source, before={"state": ev.from_state}, after={"state": ev.to_state},
                )
            if exp.is_terminal and not exp.needs_teardown:
                uow.experiments.release(exp.id, self.id)
            uow.commit()
        if len(exp.events) > n_events:
            self._tell(experiment_id, "state")
        if what:
            report.actions.append((experiment_id, what))
        if exp.state != before:
            log.info("experiment %s: %s -> %s (%s)", experiment_id, before.value, exp.state.value, what)
            report.transitions.append((experiment_id, before.value, exp.state.value))

    # ------------------------------------------------------------ the reconcile logic

    def _reconcile(self, exp: Experiment, now: datetime, uow: UnitOfWork) -> str:
        driver = exclusive_driver(exp)
        if driver is not None and driver != self.actor and exp.state in (State.INITIALIZING, State.RUNNING):
            # Its `experiment run --wait` died (we only got the lease because it expired),
            # and its processes with it: resuming would start collectors nobody waits for.
            # (Analysing needs no process, so anyone may finish that.)
            exp.fail(f"abandoned: the `phoenix experiment run` process driving it ({driver}) stopped",
                     self.actor, now)  # fmt: skip
            return "abandoned by its run"
        if exp.state is State.PENDING:
            exp.start(self.actor, now)
            return "started"
        if exp.state is State.INITIALIZING:
            return self._initializing(exp, now)
        if exp.state is State.RUNNING:
            return self._running(exp, now)
        if exp.state is State.ANALYZING:
            return self._analyzing(exp, now, uow)
        if exp.needs_teardown:
            return self._teardown(exp, now)
        return ""

    def _initializing(self, exp: Experiment, now: datetime) -> str:
        if not exp.deployed:
            try:
                info = self.deployer.deploy(exp)
            except TemporaryError as exc:
                return f"deploy will be retried: {exc}"
            except Exception as exc:  # noqa: BLE001 - any deploy error is the experiment's failure reason
                exp.fail(f"deploy failed: {exc}", self.actor, now)
                return "deploy failed"
            exp.runtime_info = {**(info or {}), "deployed_at": now.isoformat(), "deployed_by": self.id}
            return "deployed"
        try:
            ready = self.deployer.is_ready(exp)
        except TemporaryError:
            ready = False
        except Exception as exc:  # noqa: BLE001
            exp.fail(f"readiness check failed: {exc}", self.actor, now)
            return "readiness check failed"
        if ready:
            exp.mark_running(self.actor, now)
            return "running"
        since = exp.events[-1].at if exp.events else exp.created_at
        if (now - since).total_seconds() > self.ready_timeout_s:
            exp.fail(f"collectors were not ready within {self.ready_timeout_s:g}s", self.actor, now)
            return "not ready in time"
        return "waiting for readiness"

    def _collect(self, exp: Experiment) -> int:
        collect = getattr(self.deployer, "collect", None)
        if not callable(collect):
            return 0
        try:
            samples = list(collect(exp))
        except Exception as exc:  # noqa: BLE001 - a missed collection is retried next tick, not fatal
            log.warning("scheduler %s: collecting samples of %s failed: %s", self.id, exp.id, exc)
            return 0
        if samples and self._tick_samples is not None:
            # Stored with the whole tick's in one unit (_store_tick_samples), also when
            # this step's state write loses a race.
            self._tick_samples.setdefault(exp.id, []).extend(samples)
        elif samples:
            self._store_samples(exp.id, samples)
        return len(samples)

    def _store_tick_samples(self, report: TickReport) -> None:
        """Store every sample collected this tick in one unit; if that fails, each experiment's next step retries."""
        batch, self._tick_samples = self._tick_samples or {}, None
        if not batch:
            return
        try:
            with self.uow_factory() as uow:
                uow.samples.add_many([x for xs in batch.values() for x in xs])
                uow.commit()
        except Exception as exc:  # noqa: BLE001 - kept, not lost: see _unsaved
            for eid, xs in batch.items():
                self._unsaved.setdefault(eid, []).extend(xs)
            log.warning("scheduler %s: storing samples failed (kept for the next step): %s", self.id, exc)
            report.errors.append(("samples", str(exc) if isinstance(exc, PhoenixError) else f"{type(exc).__name__}: {exc}"))
            return
        for eid in batch:
            self._tell(eid, "sample")

    def _store_samples(self, experiment_id: str, samples: list[MeasurementSample]) -> None:
        """Store handed-over samples; if that fails, keep them (with older unsaved ones) for the next step.

        A kept batch is retried without the samples that are already stored, in case the
        failed commit did reach the database.
        """
        retry = self._unsaved.pop(experiment_id, [])
        try:
            with self.uow_factory() as uow:
                if retry:
                    since = min(x.t for x in retry) - timedelta(microseconds=1)
                    stored = {(x.variant, x.t) for x in uow.samples.list(experiment_id, since=since)}
                    retry = [x for x in retry if (x.variant, x.t) not in stored]
                if retry or samples:
                    uow.samples.add_many(retry + samples)
                uow.commit()
        except BaseException:
            self._unsaved[experiment_id] = retry + samples
            raise
        if retry or samples:
            self._tell(experiment_id, "sample")

    def _running(self, exp: Experiment, now: datetime) -> str:
        self._collect(exp)
        try:
            healthy = self.deployer.healthy(exp)
        except TemporaryError:
            healthy = True  # cannot tell right now; look again next tick
        except Exception as exc:  # noqa: BLE001
            exp.fail(f"health check failed: {exc}", self.actor, now)
            return "health check failed"
        if not healthy:
            exp.fail("a collector stopped unexpectedly while running", self.actor, now)
            return "unhealthy"
        if not exp.duration_elapsed(now):
            return "running"
        # The last samples are stored before the state moves on: the analysis must see them.
        if self._tick_samples and exp.id in self._tick_samples:
            self._store_samples(exp.id, self._tick_samples.pop(exp.id))
        # Measurement is over: stop the collectors before analysing, so nothing keeps running.
        try:
            self.deployer.teardown(exp)
        except TemporaryError as exc:
            return f"teardown will be retried: {exc}"
        except Exception as exc:  # noqa: BLE001
            exp.fail(f"teardown failed: {exc}", self.actor, now)
            return "teardown failed"
        exp.runtime_info = {**exp.runtime_info, "torn_down": True, "torn_down_at": now.isoformat()}
        exp.begin_analysis(self.actor, now)
        return "analysing"

    def _analyzing(self, exp: Experiment, now: datetime, uow: UnitOfWork) -> str:
        samples = uow.samples.list(exp.id)
        try:
            result = self.analyzer.analyze(exp, samples)
        except TemporaryError as exc:
            return f"analysis will be retried: {exc}"
        except Exception as exc:  # noqa: BLE001
            exp.fail(f"analysis failed: {exc}", self.actor, now)
            return "analysis failed"
        if not isinstance(result, dict) or "verdict" not in result:
            exp.fail("analysis returned no verdict", self.actor, now)
            return "analysis failed"
        exp.complete(result, self.actor, now)
        return "completed"

    def _teardown(self, exp: Experiment, now: datetime) -> str:
        try:
            self.deployer.teardown(exp)
        except TemporaryError as exc:
            return f"teardown will be retried: {exc}"
        except Exception as exc:  # noqa: BLE001 - keep trying; record why for the UI
            exp.runtime_info = {**exp.runtime_info, "teardown_error": str(exc)}
            return f"teardown failed: {exc}"
        exp.runtime_info = {**exp.runtime_info, "torn_down": True, "torn_down_at": now.isoformat()}
        return "torn down"

    # ------------------------------------------------------------ background running

    def start(self) -> None:
        """Run ``run_once`` every ``interval_s`` in an APScheduler background thread (idempotent)."""
        if self._bg is not None:
            return
        from apscheduler.schedulers.background import BackgroundScheduler

        bg = BackgroundScheduler(daemon=True, timezone="UTC")
        bg.add_job(
            self.run_once,
            "interval",
            seconds=self.interval_s,
            id="phoenix-reconcile",
            max_instances=1,
            coalesce=True,
            next_run_time=utcnow(),
            misfire_grace_time=None,
        )
        bg.start()
        self._bg = bg
        log.info("scheduler %s started (every %ss, lease %ss)", self.id, self.interval_s, self.lease_s)

    @property
    def running(self) -> bool:
        return self._bg is not None and bool(self._bg.running)

    def shutdown(self, wait: bool = True) -> None:
        """Stop ticking and hand back this scheduler's leases so another one can continue at once."""
        if self._bg is not None:
            self._bg.shutdown(wait=wait)
            self._bg = None
        try:
            with self.uow_factory() as uow:
                uow.experiments.release_all(self.id)
                uow.commit()
        except PhoenixError as exc:
            log.warning("scheduler %s could not release its leases: %s", self.id, exc)
