"""``phoenix demo seed``: fill the database with realistic history for demos and the page benchmark.

Experiments are created through the domain (``Experiment.create`` and its state machine,
so every row has a valid event log) and stored in batches through the unit of work.
They are all terminal, so no scheduler picks them up. Pipeline versions are stored
database-only (no GitOps commit per version: a thousand git commits would dominate the
seeding time and the demo does not need them); their ``message`` says so.
"""

from __future__ import annotations

import argparse
import copy
import random
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from core.domain.experiment import Experiment

if TYPE_CHECKING:
    from core.bootstrap import Services

BATCH = 500


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", help="demo data")
    dsub = p.add_subparsers(dest="demo_command", metavar="ACTION")
    dsub.required = True
    s = dsub.add_parser("seed", help="seed experiments and pipeline versions (for demos and bench/pages.py)")
    s.add_argument("--experiments", type=int, default=10_000)
    s.add_argument("--versions", type=int, default=1_000, help="pipeline versions in total")
    s.add_argument("--pipelines", type=int, default=50, help="saved pipelines the versions spread over")
    s.add_argument("--seed", type=int, default=1)
    s.set_defaults(handler=_seed)


def _result(rng: random.Random, exp: Experiment) -> dict[str, Any]:
    from core.analysis.verdict import analyze_samples
    from core.domain.samples import MeasurementSample

    base = rng.randint(800, 4000)
    keep = rng.uniform(0.1, 0.7)
    t0 = exp.created_at
    n = int(exp.timing.duration_s // exp.timing.interval_s)
    samples = [
        MeasurementSample(exp.id, v, t0 + timedelta(seconds=exp.timing.interval_s * i),
                          series=int(s * rng.uniform(0.98, 1.02)), datapoints=int(s * 6 * rng.uniform(0.98, 1.02)),
                          bytes=s * 90, collector_cpu_pct=rng.uniform(0.5, 3), collector_rss_mb=rng.uniform(30, 80),
                          critical_coverage_pct=100.0 if rng.random() > 0.05 or v == "baseline" else 97.0)
        for i in range(n) for v, s in (("baseline", base), ("candidate", int(base * keep)))
    ]
    return analyze_samples(samples, exp.criteria, interval_s=exp.timing.interval_s,
                           prices={"Grafana Cloud Pro": lambda se, _d, _b: max(0.0, se - 10_000) / 1000 * 6.5})


def seed(services: Services, experiments: int, versions: int, pipelines: int, seed: int = 1) -> dict[str, int]:
    from core.catalog.templates import TEMPLATE_NAMES, get_template
    from core.domain.experiment import utcnow
    from core.render.collector import render_collector

    rng = random.Random(seed)
    names = [f"demo-{TEMPLATE_NAMES[i % len(TEMPLATE_NAMES)].removeprefix('process-').removesuffix('-v1')}-{i:03d}"
             for i in range(max(1, pipelines))]
    rendered = {t: (get_template(t), render_collector(get_template(t))) for t in TEMPLATE_NAMES}
    written_versions = 0
    with services.uow() as uow:
        for v in range(versions):
            name = names[v % len(names)]
            template = TEMPLATE_NAMES[names.index(name) % len(TEMPLATE_NAMES)]
            p, yaml_text = rendered[template]
            graph = {**p.to_dict(), "name": name}
            uow.pipelines.add_version(name, graph, yaml_text, message=f"demo seed version (no git commit) #{v}",
                                      author="demo", description=f"Demo copy of {template}")
            written_versions += 1
            if written_versions % BATCH == 0:
                uow.commit()
        uow.commit()

    now = utcnow()
    refs = list(TEMPLATE_NAMES[1:]) + [f"{n}@1" for n in names[:10]]
    written = 0
    batch: list[Experiment] = []
    # Analysing samples costs ~20 ms; a pool of real analyses reused across experiments
    # keeps seeding 10,000 experiments quick while every result is a genuine one.
    pool: list[dict[str, Any]] = []
    for i in range(experiments):
        created = now - timedelta(minutes=5 * (experiments - i))
        exp = Experiment.create(name=f"demo #{i}: baseline vs {refs[i % len(refs)]}", baseline="process-baseline-v1",
                                candidate=refs[i % len(refs)], owner=rng.choice(["alice", "bob", "sre-team"]),
                                description="Seeded by phoenix demo seed.", now=created)
        exp.timing = type(exp.timing)(duration_s=60.0, interval_s=5.0)
        roll = rng.random()
        exp.start(actor="demo", now=created + timedelta(seconds=1))
        if roll < 0.08:
            exp.fail("demo: collector exited with status 1", actor="demo", now=created + timedelta(seconds=5))
        elif roll < 0.15:
            exp.cancel(actor="demo", reason="demo cancel", now=created + timedelta(seconds=20))
        else:
            exp.mark_running(actor="demo", now=created + timedelta(seconds=3))
            exp.begin_analysis(actor="demo", now=created + timedelta(seconds=63))
            if len(pool) < 40:
                pool.append(_result(rng, exp))
            exp.complete(copy.deepcopy(rng.choice(pool)), actor="demo", now=created + timedelta(seconds=64))
        batch.append(exp)
        if len(batch) >= BATCH or i == experiments - 1:
            with services.uow() as uow:
                for e in batch:
                    uow.experiments.add(e)
                uow.commit()
            written += len(batch)
            batch = []
    return {"experiments": written, "pipeline_versions": written_versions, "pipelines": len(names)}


def _seed(args: argparse.Namespace) -> int:
    import time

    from core.bootstrap import bootstrap
    from core.domain.errors import ValidationError

    if args.experiments < 0 or args.versions < 0 or args.pipelines < 1:
        raise ValidationError("--experiments and --versions must be 0 or more, --pipelines at least 1")
    t = time.perf_counter()
    services = bootstrap()
    try:
        out = seed(services, args.experiments, args.versions, args.pipelines, args.seed)
    finally:
        services.close()
    print(f"seeded {out['experiments']:,} experiments and {out['pipeline_versions']:,} versions of "
          f"{out['pipelines']} pipelines in {time.perf_counter() - t:.1f}s")
    return 0
