"""``phoenix experiment create|list|show|samples|watch|cancel|rerun|render``.

Pipeline refs are ``NAME`` or ``NAME@VERSION``. Durations accept ``60s``, ``5m``, ``1h``.
``--json`` prints machine-readable output (stable keys, see ``experiment_to_dict``).
The printers live in ``core.commands.experiment_views``: ``--server`` prints through them too.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from core.commands import common, experiment_run, report
from core.commands import experiment_views as views
from core.domain.criteria import LoadProfile, SuccessCriteria
from core.domain.durations import parse_duration
from core.domain.errors import ValidationError
from core.domain.experiment import State
from core.domain.views import experiment_to_dict
from core.services.requests import CancelExperiment, CreateExperiment, RerunExperiment


def _one_experiment(esub: argparse._SubParsersAction, name: str,  # type: ignore[type-arg]
                    handler: Callable[[argparse.Namespace], int], about: str) -> argparse.ArgumentParser:
    """A subcommand on one experiment: its id, ``--json`` and the identity options."""
    p = esub.add_parser(name, help=about)
    p.add_argument("id")
    p.add_argument("--json", action="store_true")
    common.add_identity(p)
    p.set_defaults(handler=handler)
    return p


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("experiment", help="create, list, show and cancel A/B experiments")
    esub = p.add_subparsers(dest="experiment_command", metavar="ACTION")
    esub.required = True

    c = esub.add_parser("create", help="create an experiment in Pending; the scheduler runs it")
    c.add_argument("--name", required=True)
    c.add_argument("--baseline", required=True, help="baseline pipeline NAME[@VERSION]")
    c.add_argument("--candidate", required=True, help="candidate pipeline NAME[@VERSION]")
    c.add_argument("--duration", default="60s", help="how long both variants run (default 60s)")
    c.add_argument("--interval", default="5s", help="measurement interval (default 5s)")
    c.add_argument("--load", default="realistic", help="load profile: realistic, high-cardinality, process-churn, none")
    c.add_argument("--owner", default=None, help="owner shown on the experiment (default: the acting account)")
    c.add_argument("--description", default="")
    c.add_argument("--critical-file", default=None, help="critical policy YAML: rules: [{match, pattern, priority}]")
    common.add_target(c)
    c.add_argument("--min-series-reduction", type=float, default=None, help="percent, default 50")
    c.add_argument("--min-cost-reduction", type=float, default=None, help="percent")
    c.add_argument("--max-cpu-overhead", type=float, default=None, help="percent")
    c.add_argument("--max-memory-overhead", type=float, default=None, help="MB")
    c.add_argument("--min-samples", type=int, default=None, help="default 5")
    c.add_argument("--json", action="store_true")
    common.add_identity(c)
    c.set_defaults(handler=_create)

    ls = esub.add_parser("list", help="list experiments, newest first")
    ls.add_argument("--state", action="append", default=None, choices=[s.value for s in State])
    ls.add_argument("--limit", type=int, default=100)
    ls.add_argument("--json", action="store_true")
    common.add_identity(ls)
    ls.set_defaults(handler=_list)

    sh = esub.add_parser("show", help="details, result and event log of one experiment")
    sh.add_argument("id")
    sh.add_argument("--json", action="store_true")
    common.add_identity(sh)
    sh.set_defaults(handler=_show)

    _one_experiment(esub, "samples", _samples, "the measurement samples of one experiment, oldest first")

    _one_experiment(esub, "watch", _watch, "follow an experiment until it ends: state changes on stderr, the "
                                           "verdict on stdout; exit 0 when Completed, 1 when Failed or Cancelled")

    _one_experiment(esub, "cancel", _cancel, "cancel a pending, initializing or running experiment"
                    ).add_argument("--reason", default="")

    _one_experiment(esub, "rerun", _rerun, "run a finished experiment again: a new Pending experiment with "
                                           "the same pipelines, target, load, timing, criteria and critical policy")

    rd = esub.add_parser("render", help="write the experiment's custom resources (tap, baseline and candidate "
                                        "PhoenixProcessPipelines, load, scrape config) to DIR/k8s/ and the "
                                        "three collector configs to DIR/")
    rd.add_argument("id")
    rd.add_argument("--out", required=True, metavar="DIR")
    common.add_identity(rd)
    rd.set_defaults(handler=_render)

    report.register(esub)  # phoenix experiment report ID --format csv|html|pdf --out FILE

    experiment_run.register(esub)  # phoenix experiment run ... --wait --json; phoenix experiment promote ID


def create_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The ``CreateExperiment`` fields of ``experiment create``'s arguments (``owner`` as given, maybe None).

    Every problem at once, as one ``ValidationError``; ``--server`` sends the same fields.
    """
    problems: list[str] = []
    duration = interval = 0.0
    try:
        duration = parse_duration(args.duration, "--duration")
    except ValidationError as exc:
        problems.extend(exc.problems)
    try:
        interval = parse_duration(args.interval, "--interval")
    except ValidationError as exc:
        problems.extend(exc.problems)
    critical_rules = common.critical_rules_from(args.critical_file, problems)
    crit_kw: dict[str, Any] = {}
    for arg, name in (
        ("min_series_reduction", "min_series_reduction_pct"),
        ("min_cost_reduction", "min_cost_reduction_pct"),
        ("max_cpu_overhead", "max_cpu_overhead_pct"),
        ("max_memory_overhead", "max_memory_overhead_mb"),
        ("min_samples", "min_samples"),
    ):
        if getattr(args, arg) is not None:
            crit_kw[name] = getattr(args, arg)
    if problems:
        raise ValidationError(problems)
    return {
        "name": args.name,
        "baseline": args.baseline,
        "candidate": args.candidate,
        "owner": args.owner,
        "description": args.description,
        "duration_s": duration,
        "interval_s": interval,
        "load": LoadProfile(name=args.load),
        "target": common.target_from(args),
        "criteria": SuccessCriteria(**crit_kw),
        "critical_rules": critical_rules,
    }


def _create(args: argparse.Namespace) -> int:
    fields = create_fields(args)
    services = common.services()
    experiment_run.check_runtime(services.runtime, fields["target"].kind)
    actor = common.identity(services.accounts, args)
    exp = services.experiments.create(actor, CreateExperiment.of(**{**fields, "owner": args.owner or actor.name}))
    if args.json:
        print(json.dumps(experiment_to_dict(exp), indent=2))
    else:
        views.print_created(experiment_to_dict(exp))
    return 0


def _list(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    services = common.services()
    rows = services.experiments.list(common.identity(services.accounts, args), states=args.state, limit=args.limit)
    out = []
    for r in rows:
        d = asdict(r)
        for k in ("created_at", "started_at", "finished_at"):
            d[k] = d[k].isoformat() if d[k] else None
        out.append(d)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        views.print_rows(out)
    return 0


def _show(args: argparse.Namespace) -> int:
    services = common.services()
    actor = common.identity(services.accounts, args)
    exp = services.experiments.get(actor, args.id)
    if args.json:
        promoted = services.promotion.of(actor, exp.id)
        d = experiment_to_dict(exp, promoted=promoted.to_dict(with_graph=False) if promoted else None)
        d["samples"] = len(services.experiments.samples(actor, exp.id))
        print(json.dumps(d, indent=2))
        return 0
    views.print_experiment(experiment_to_dict(exp))
    return 0


def _samples(args: argparse.Namespace) -> int:
    with common.acting(args) as (services, actor):
        services.experiments.get(actor, args.id)  # an unknown id is an error, not an empty table
        rows = [views.sample_view(s.to_dict()) for s in services.experiments.samples(actor, args.id)]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        views.print_samples(rows)
    return 0


def _watch(args: argparse.Namespace) -> int:
    with common.acting(args) as (services, actor):
        return experiment_run.watch(services, actor, args.id, as_json=args.json)


def _render(args: argparse.Namespace) -> int:
    """DIR/{tap,baseline,candidate}.yaml and DIR/k8s/*.yaml: the custom resources the Kubernetes
    runtime applies (core.render.k8s_experiment), every manifest strictly validated and every
    config checked by the real collector."""
    import sys

    from core.otelcol.validate import check_experiment_bundle
    from core.outputs import output_dir
    from core.render.k8s_experiment import render_experiment_manifests, write_experiment_bundle

    out = output_dir(args.out)
    services = common.services()
    actor = common.identity(services.accounts, args)
    exp = services.experiments.get(actor, args.id)
    pipelines = {v: services.pipelines.load(actor, str(getattr(exp, v))) for v in ("baseline", "candidate")}
    bundle = render_experiment_manifests(exp, pipelines)
    problems = check_experiment_bundle(bundle)
    if problems:  # an emitter bug: say exactly what, never write a broken render
        raise ValidationError(problems)
    for path in write_experiment_bundle(bundle, out):
        print(path)
    for note in bundle.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def _cancel(args: argparse.Namespace) -> int:
    services = common.services()
    exp = services.experiments.cancel(common.identity(services.accounts, args),
                                      CancelExperiment.of(experiment_id=args.id, reason=args.reason))
    if args.json:
        print(json.dumps(experiment_to_dict(exp), indent=2))
    else:
        views.print_cancelled(experiment_to_dict(exp))
    return 0


def _rerun(args: argparse.Namespace) -> int:
    services = common.services()
    exp = services.experiments.rerun(common.identity(services.accounts, args), RerunExperiment.of(experiment_id=args.id))
    if args.json:
        print(json.dumps(experiment_to_dict(exp), indent=2))
    else:
        views.print_rerun(experiment_to_dict(exp), args.id)
    return 0
