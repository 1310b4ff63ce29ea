"""``phoenix experiment run`` (end to end in one command) and ``phoenix experiment promote``.

``run --wait`` creates the experiment and drives it with a scheduler embedded in this
process (``Scheduler.run_once`` every scheduler interval) until it is terminal and its
collectors are torn down. Progress (state transitions, samples recorded) goes to stderr;
the final experiment goes to stdout (JSON with ``--json``). Exit 0 when Completed, 1
when Failed or Cancelled. SIGINT/SIGTERM cancel the experiment and tear it down before
exiting (130/143), so no collector or load process outlives the command.

The embedded scheduler drives only the experiment this command created (it claims
nothing else: other Running experiments belong to the app's or another scheduler), and
the processes it starts are tied to this process: should it be killed outright
(SIGKILL, OOM), the kernel stops its collectors, which stop their load workers
(``LocalDeployer.tie_children``, ``core.runtime.procs.popen_tied``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING, Any

from core.commands import common
from core.commands.experiment_views import progress_line, transition_text
from core.domain.accounts import Actor
from core.domain.criteria import LoadProfile, SuccessCriteria
from core.domain.durations import format_duration, parse_duration
from core.domain.errors import PhoenixError, ValidationError
from core.domain.experiment import Experiment, State
from core.domain.views import experiment_to_dict
from core.services.requests import CancelExperiment, CreateExperiment, Promote

if TYPE_CHECKING:
    from core.bootstrap import Services
    from core.scheduler import Scheduler

#: After this long without reaching a terminal state the command gives up (and cancels).
GRACE_S = 180.0
TEARDOWN_WAIT_S = 30.0
#: How often ``experiment watch`` re-reads the store.
WATCH_POLL_S = 1.0


def register(esub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    r = esub.add_parser("run", help="create an experiment and run it to its verdict in this process")
    r.add_argument("--baseline", required=True, help="baseline pipeline NAME[@VERSION]")
    r.add_argument("--candidate", required=True, help="candidate pipeline NAME[@VERSION]")
    r.add_argument("--duration", default="60s", help="how long both variants run (default 60s)")
    r.add_argument("--interval", default="5s", help="measurement interval (default 5s)")
    r.add_argument("--load", default="realistic", help="load profile: realistic, high-cardinality, process-churn, none")
    r.add_argument("--critical-file", default=None, help="critical policy YAML: rules: [{match, pattern, priority}]")
    r.add_argument("--name", default=None, help="default: BASELINE vs CANDIDATE")
    r.add_argument("--owner", default=None, help="owner shown on the experiment (default: the acting account)")
    r.add_argument("--min-series-reduction", type=float, default=None, help="percent, default 50")
    r.add_argument("--min-samples", type=int, default=None, help="default 5")
    common.add_target(r)
    r.add_argument("--wait", action="store_true", help="run it here until it finishes (else: create and exit)")
    r.add_argument("--json", action="store_true")
    common.add_identity(r)
    r.set_defaults(handler=_run)

    p = esub.add_parser("promote", help="make a completed experiment's candidate the production pipeline")
    p.add_argument("id")
    p.add_argument("--force", action="store_true", help="promote without a PROMOTE verdict (admin, needs --reason)")
    p.add_argument("--reason", default=None,
                   help="why (at most 500 characters; kept in the record, the commit and the audit; needed with --force)")
    p.add_argument("--json", action="store_true")
    common.add_identity(p)
    p.set_defaults(handler=_promote)


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The ``CreateExperiment`` fields of ``experiment run``'s arguments (``owner`` as given, maybe None)."""
    problems: list[str] = []
    duration = interval = 0.0
    for attr, flag in (("duration", "--duration"), ("interval", "--interval")):
        try:
            val = parse_duration(getattr(args, attr), flag)
        except ValidationError as exc:
            problems.extend(exc.problems)
            continue
        if attr == "duration":
            duration = val
        else:
            interval = val
    critical_rules = common.critical_rules_from(args.critical_file, problems)
    try:
        target = common.target_from(args)
    except ValidationError as exc:
        problems.extend(exc.problems)
    crit: dict[str, Any] = {}
    if args.min_series_reduction is not None:
        crit["min_series_reduction_pct"] = args.min_series_reduction
    if args.min_samples is not None:
        crit["min_samples"] = args.min_samples
    if problems:
        raise ValidationError(problems)
    name = args.name or f"{args.baseline} vs {args.candidate}"[:120]
    return {"name": name, "baseline": args.baseline, "candidate": args.candidate, "owner": args.owner,
            "duration_s": duration, "interval_s": interval, "load": LoadProfile(name=args.load),
            "criteria": SuccessCriteria(**crit), "critical_rules": critical_rules, "target": target}


def check_runtime(runtime: str, target_kind: str) -> None:
    """Refuse before creating anything when the configured runtime cannot run the target."""
    if target_kind == "kubernetes" and runtime == "local":
        raise ValidationError("--target kubernetes needs the Kubernetes runtime: set PHOENIX_RUNTIME=kubernetes "
                              "(and PHOENIX_KUBECONFIG unless Phoenix runs in the cluster); docs/kubernetes.md")
    if target_kind == "local" and runtime == "kubernetes":
        raise ValidationError("PHOENIX_RUNTIME=kubernetes runs experiments in a cluster: pass --target kubernetes "
                              "--namespace NS")


def _create(args: argparse.Namespace, services: Services, actor: Actor) -> Experiment:
    fields = run_fields(args)
    check_runtime(services.runtime, fields["target"].kind)
    return services.experiments.create(actor, CreateExperiment.of(**{**fields, "owner": args.owner or actor.name}))


def final_view(services: Services, actor: Actor, exp: Experiment) -> dict[str, Any]:
    """The experiment as JSON, with the paths outside checks read guaranteed present.

    ``result.samples`` is per variant, ``result.reasons`` one line per criterion (both
    come from the analyzer); ``samples_recorded`` counts the stored rows per variant.
    """
    promoted = services.promotion.of(actor, exp.id)
    d = experiment_to_dict(exp, promoted=promoted.to_dict(with_graph=False) if promoted else None)
    return complete_final_view(d, [s.variant for s in services.experiments.samples(actor, exp.id)])


def complete_final_view(d: dict[str, Any], sample_variants: list[str]) -> dict[str, Any]:
    """``final_view``'s guaranteed paths on an experiment view (also for ``--server``, from the API's answers)."""
    d["samples_recorded"] = {v: sum(1 for s in sample_variants if s == v) for v in ("baseline", "candidate")}
    if isinstance(d.get("result"), dict):
        res = d["result"]
        for key in ("verdict", "series_reduction_pct", "critical_coverage_pct"):
            res.setdefault(key, None)
        res.setdefault("samples", d["samples_recorded"])
        res.setdefault("reasons", [c.get("reason") for c in res.get("criteria", []) if isinstance(c, dict)])
    return d


class _Stop:
    """SIGINT/SIGTERM → a flag the loop checks (no exception in the middle of a tick)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _Stop:
        for s in (signal.SIGINT, signal.SIGTERM):
            self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.signum = signum
        self.event.set()

    def __exit__(self, *exc: object) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)


def drive(services: Services, actor: Actor, experiment_id: str, stop: threading.Event, *, progress: bool = True) -> Experiment:
    """Tick an embedded scheduler until the experiment is terminal and torn down (or ``stop`` is set).

    The scheduler claims only ``experiment_id``; every process it starts dies with this
    one. All spawning happens in this (the main) thread through ``run_once``; the death
    signal is bound to the spawning thread, and ``popen_tied`` routes any other thread's
    spawns through one that lives as long as the process.
    """
    if hasattr(services.deployer, "tie_children"):
        services.deployer.tie_children = True
    sched = services.new_scheduler(experiment_ids=[experiment_id])
    def get(eid: str) -> Experiment:
        return services.experiments.get(actor, eid)

    exp = get(experiment_id)
    budget = exp.timing.duration_s + sched.ready_timeout_s + GRACE_S
    deadline = time.monotonic() + budget
    last_samples = -1
    seen_events = len(exp.events)
    try:
        while not stop.is_set():
            report = sched.run_once()
            exp = get(experiment_id)
            if progress:
                # From the stored event log, so transitions made by another scheduler show too.
                for ev in exp.events[seen_events:]:
                    _err(progress_line(experiment_id, transition_text(ev.from_state, ev.to_state, ev.reason)))
                seen_events = len(exp.events)
                for eid, msg in report.errors:
                    if eid in (experiment_id, "*"):
                        _err(progress_line(experiment_id, msg))
                if exp.state is State.RUNNING:
                    n = len(services.experiments.samples(actor, experiment_id))
                    if n != last_samples:
                        last_samples = n
                        _err(progress_line(experiment_id, f"running, {n} samples recorded"))
            if exp.is_terminal and not exp.needs_teardown:
                return exp
            if time.monotonic() > deadline:
                _err(f"{experiment_id}: no verdict after {format_duration(budget)}; cancelling")
                break
            stop.wait(sched.interval_s)
        return _abort(services, actor, sched, experiment_id)
    except BaseException:
        # Whatever broke this loop, the collectors it started must not outlive the command.
        with contextlib.suppress(Exception):
            _abort(services, actor, sched, experiment_id)
        raise
    finally:
        sched.shutdown(wait=True)


def _abort(services: Services, actor: Actor, sched: Scheduler, experiment_id: str) -> Experiment:
    """Cancel (when still cancellable) and tear the collectors down before returning."""
    exp = services.experiments.get(actor, experiment_id)
    if exp.can_transition(State.CANCELLED):
        try:
            exp = services.experiments.cancel(
                actor, CancelExperiment(experiment_id=experiment_id, reason="experiment run interrupted"))
            _err(f"{experiment_id}: cancelled")
        except PhoenixError as exc:
            _err(f"{experiment_id}: could not cancel: {exc}")
    end = time.monotonic() + TEARDOWN_WAIT_S
    while time.monotonic() < end:
        exp = services.experiments.get(actor, experiment_id)
        if (exp.is_terminal or exp.state is State.ANALYZING) and not exp.deployed:
            break
        if exp.is_terminal and not exp.needs_teardown:
            break
        sched.run_once()
        time.sleep(0.2)
    exp = services.experiments.get(actor, experiment_id)
    if exp.deployed:  # the scheduler could not: stop them directly (idempotent)
        try:
            services.deployer.teardown(exp)
        except Exception as exc:  # noqa: BLE001 - report, never leave silently
            _err(f"{experiment_id}: teardown failed: {exc}")
    return exp


def _run(args: argparse.Namespace) -> int:
    services = common.services()
    try:
        actor = common.identity(services.accounts, args)
        if not args.wait:
            exp = _create(args, services, actor)
            label = " (dry run: the configured runtime starts no collectors)" if exp.dry_run else ""
            if args.json:
                print(json.dumps(final_view(services, actor, exp), indent=2))
            else:
                print(exp.id)
            _err(f"created {exp.id}{label}; a running scheduler (the app or `phoenix scheduler`) will run it")
            return 0
        # Signals are caught from before the experiment exists: one that arrives while it is
        # being created cancels it at once instead of leaving it Pending for someone else.
        with _Stop() as stop:
            exp = _create(args, services, actor)
            label = " (dry run: the configured runtime starts no collectors)" if exp.dry_run else ""
            _err(f"{exp.id}: {exp.baseline} vs {exp.candidate}, {format_duration(exp.timing.duration_s)} every "
                 f"{format_duration(exp.timing.interval_s)}, load {exp.load.name}, runtime {services.runtime}{label}")  # fmt: skip
            exp = drive(services, actor, exp.id, stop.event)
        d = final_view(services, actor, exp)
        if args.json:
            print(json.dumps(d, indent=2))
        else:
            print_summary(d)
        if stop.signum is not None:
            return 128 + stop.signum
        return exit_code(d)
    finally:
        services.close()


def exit_code(d: dict[str, Any]) -> int:
    """0 when the experiment Completed (whatever its verdict), 1 when it Failed or was Cancelled."""
    if d["state"] == State.COMPLETED.value:
        return 0
    _err(f"error: experiment {d['id']} {d['state']}: {d.get('error') or 'cancelled'}")
    return 1


def watch(services: Services, actor: Actor, experiment_id: str, *, as_json: bool,
          poll_s: float = WATCH_POLL_S) -> int:
    """Follow an experiment in the store until it ends (another process's scheduler moves it).

    State changes and sample counts go to stderr as ``run --wait`` prints them; the final
    view to stdout; the exit code is ``run --wait``'s.
    """
    exp = services.experiments.get(actor, experiment_id)
    seen_events, last_samples = 0, -1
    while True:
        for ev in exp.events[seen_events:]:
            _err(progress_line(experiment_id, transition_text(ev.from_state, ev.to_state, ev.reason)))
        seen_events = len(exp.events)
        if exp.state is State.RUNNING:
            n = len(services.experiments.samples(actor, experiment_id))
            if n != last_samples:
                last_samples = n
                _err(progress_line(experiment_id, f"running, {n} samples recorded"))
        if exp.is_terminal:
            break
        time.sleep(poll_s)
        exp = services.experiments.get(actor, experiment_id)
    d = final_view(services, actor, exp)
    if as_json:
        print(json.dumps(d, indent=2))
    else:
        print_summary(d)
    return exit_code(d)


def print_summary(d: dict[str, Any]) -> None:
    print(f"{d['id']}  {d['state']}")
    res = d.get("result") or {}
    if res:
        print(f"  verdict:            {res.get('verdict')}")
        print(f"  series reduction:   {res.get('series_reduction_pct')}%")
        print(f"  critical coverage:  {res.get('critical_coverage_pct')}%")
        print(f"  samples:            {res.get('samples')}")
        for reason in res.get("reasons") or []:
            print(f"    - {reason}")
    if d.get("error"):
        print(f"  error: {d['error']}")


def _promote(args: argparse.Namespace) -> int:
    request = promote_request(args)
    services = common.services()
    try:
        # promoting needs an admin account; forcing also needs a reason, recorded in the audit
        rec = services.promotion.promote(common.identity(services.accounts, args), request)
    finally:
        services.close()
    print_promoted(rec.to_dict(with_graph=False), as_json=args.json)
    return 0


def promote_request(args: argparse.Namespace) -> Promote:
    if args.reason is not None and not args.force:
        raise ValidationError("--reason only applies with --force")
    return Promote.of(experiment_id=args.id, force=args.force, reason=args.reason)


def print_promoted(rec: dict[str, Any], *, as_json: bool) -> None:
    """A promotion record (``ProductionRecord.to_dict`` without the graph)."""
    if as_json:
        print(json.dumps(rec, indent=2))
        return
    forced = f" (forced: {rec['reason']})" if rec.get("forced") else ""
    print(f"{rec['ref']} is production for {rec['target']} (experiment {rec['experiment_id']}, "
          f"commit {(rec.get('commit_id') or '')[:12]}){forced}")  # fmt: skip
    print("run it on this host with: phoenix collector --production")
