"""Differential truth test on this host: ``python bench/differential.py [--json] [--templates A,B]``.

Runs the real Phoenix collector for every built-in template beside the ``realistic`` load
and compares each one's output with the engine's prediction on an aligned psutil snapshot
(``core.differential.run``). Prints the per-template agreement table (or the full
report as JSON with ``--json``); exit 1 when a template disagrees.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.catalog.templates import TEMPLATE_NAMES  # noqa: E402
from core.differential import run as differential_run  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print the whole report as JSON")
    ap.add_argument("--templates", default=",".join(TEMPLATE_NAMES), help="comma-separated template names")
    ap.add_argument("--interval", type=float, default=differential_run.DEFAULT_INTERVAL_S, help="seconds")
    ap.add_argument("--profile", default="realistic", help="load simulator profile")
    args = ap.parse_args(argv)
    names = [n for n in args.templates.split(",") if n]
    report = differential_run.run(names, interval_s=args.interval, profile=args.profile)
    report["table"] = differential_run.table(report)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        m = report["machine"]
        print(f"machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['memory_gb']} GB, load {m['load_avg']}; "
              f"{report['collector']}; interval {report['interval_s']:g}s; {report['seconds']}s")
        print(report["table"])
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
