"""Intelligent vs top-K on "interesting processes kept per series" (docs/pipelines.md).

    .venv/bin/python bench/intelligent.py [--nodes 20 --procs 300 --seeds 1,3,7,11] [--json]
    phoenix bench intelligent [--nodes 20 --procs 300 --seeds 1,3,7,11]

For each seed: a generated fleet (12 scrapes a minute apart) with CPU spikes, memory leaks and
crash loops injected into quiet processes (3 of each), both templates tuned on that history,
and the metric, recall, series out and the heavy processes each keeps.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.engine.anomalies import compare  # noqa: E402
from core.machine import describe  # noqa: E402


def render(report: dict) -> str:
    out = [f"{report['nodes']} hosts × {report['procs']} processes × {report['scrapes']} scrapes, "
           f"{report['anomalies_per_kind']} each of {', '.join(report['kinds'])} ({describe()})",
           f"{'seed':>5}  {'pipeline':<12} {'kept/inj':>8} {'series out':>10} {'per 1k series':>13} "
           f"{'heavy kept':>10} {'tune s':>7}"]
    for row in report["seeds"]:
        for key in ("topk", "intelligent"):
            m = row[key]
            out.append(f"{row['seed']:>5}  {key:<12} {m['kept']:>3}/{m['interesting']:<4} {m['series_out']:>10,} "
                       f"{m['per_1000_series']:>13.3f} {m['heavy_kept']:>4}/{m['heavy']:<5} "
                       f"{row[f'{key}_tune_seconds']:>7.2f}")
    wins = sum(r["intelligent_wins"] for r in report["seeds"])
    out.append(f"intelligent beats top-K on {wins} of {len(report['seeds'])} seeds")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nodes", type=int, default=20)
    p.add_argument("--procs", type=int, default=300)
    p.add_argument("--seeds", default="1,3,7,11")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        report = compare(args.nodes, args.procs, seeds)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
