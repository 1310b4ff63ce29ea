"""``phoenix bench``: time every template's evaluation on a simulated fleet; ``phoenix bench api``: the REST API."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from core.domain.errors import ValidationError


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "bench", help="benchmark the engine: seconds, series out and peak memory per template",
        description="Simulate NODES × PROCS processes (two scrapes), evaluate every built-in template on one "
                    "core in its own process, and print the figures plus a scaling table.",
    )
    p.add_argument("--nodes", type=int, default=None, help="hosts (default 1000)")
    p.add_argument("--procs", type=int, default=None, help="processes per host (default 500)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--no-scaling", action="store_true", help="skip the 1%%/10%%/100%% scaling table")
    p.add_argument("--json", action="store_true", help="print JSON (the default output is a table)")
    p.add_argument("what", nargs="?", choices=("engine", "api", "intelligent"), default="engine",
                   help="engine (default); api: the REST API's latency over stored experiments (bench/api.py); "
                        "intelligent: intelligent vs top-K on interesting processes kept per series "
                        "(bench/intelligent.py; --nodes/--procs default 20/300 there)")
    p.add_argument("--seeds", default="1,3,7,11", help="intelligent: the fleets' seeds (default 1,3,7,11)")
    api = p.add_argument_group("api", "options of 'phoenix bench api' (see bench/api.py)")
    api.add_argument("--experiments", type=int, default=10_000, help="experiments stored (default 10000)")
    api.add_argument("--requests", type=int, default=200, help="timed requests per operation (default 200)")
    api.add_argument("--databases", default="sqlite,postgres", help="sqlite and/or postgres (default both)")
    api.add_argument("--pg-url", help="an existing PostgreSQL server; default: a throwaway one")
    p.set_defaults(handler=run)


#: The API benchmark is a script of the source checkout, beside this package.
API_BENCH = Path(__file__).resolve().parents[2] / "bench" / "api.py"
INTELLIGENT_BENCH = API_BENCH.with_name("intelligent.py")


def run_intelligent(args: argparse.Namespace) -> int:
    if not INTELLIGENT_BENCH.exists():
        raise ValidationError(f"the benchmark is part of the source checkout ({INTELLIGENT_BENCH} is not here)")
    argv = ["--nodes", str(args.nodes or 20), "--procs", str(args.procs or 300), "--seeds", args.seeds,
            *(["--json"] if args.json else [])]
    return subprocess.run([sys.executable, str(INTELLIGENT_BENCH), *argv], check=False).returncode


def run_api(args: argparse.Namespace) -> int:
    if not API_BENCH.exists():
        raise ValidationError(f"the API benchmark is part of the source checkout ({API_BENCH} is not here)")
    argv = ["--experiments", str(args.experiments), "--requests", str(args.requests), "--databases", args.databases,
            "--seed", str(args.seed), *(["--pg-url", args.pg_url] if args.pg_url else []),
            *(["--json"] if args.json else [])]
    # its own process: it starts servers and databases, and prints its own report
    return subprocess.run([sys.executable, str(API_BENCH), *argv], check=False).returncode


def run(args: argparse.Namespace) -> int:
    from core.engine.benchmark import run as run_bench

    if args.what == "api":
        return run_api(args)
    if args.what == "intelligent":
        return run_intelligent(args)
    args.nodes = 1000 if args.nodes is None else args.nodes
    args.procs = 500 if args.procs is None else args.procs
    if args.nodes < 1 or args.procs < 1:
        raise ValidationError("--nodes and --procs must be at least 1")
    if args.nodes * args.procs > 5_000_000:
        raise ValidationError("--nodes × --procs above 5,000,000 processes is beyond what the bench supports")
    report = run_bench(args.nodes, args.procs, args.seed, with_scaling=not args.no_scaling)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    out = [f"{report['nodes']} hosts × {report['procs']} processes = {report['series_in']:,} series in "
           f"({report['machine']['cpus']} CPUs, evaluation on 1)"]
    for name, t in report["templates"].items():
        if "error" in t:
            out.append(f"  {name:<28} ERROR {t['error']}")
        else:
            out.append(f"  {name:<28} {t['seconds']:>7.3f} s  {t['series_out']:>10,} series out  "
                       f"{t['peak_rss_mb']:>7.0f} MB peak")
    for row in report.get("scaling", []):
        out.append(f"  scaling {row['series_in']:>10,} series: {row['total_seconds']:.3f} s for all templates "
                   f"({row['seconds_per_million_series']:.3f} s per million series)")
    sys.stdout.write("\n".join(out) + "\n")
    return 0
