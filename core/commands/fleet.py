"""``phoenix fleet``: generate simulated fleets and snapshot this host (CSV columns: docs/pipeline-semantics.md)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from core.domain.errors import ValidationError


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("fleet", help="simulated fleets and host snapshots (process snapshot CSVs)")
    sub = p.add_subparsers(dest="fleet_command", metavar="SUBCOMMAND")
    sub.required = True

    from core.engine.fleet import PROFILES

    g = sub.add_parser("generate", help="write a realistic, reproducible simulated fleet snapshot")
    g.add_argument("--nodes", type=int, required=True, metavar="N", help="hosts")
    g.add_argument("--procs", type=int, required=True, metavar="M", help="processes per host per scrape")
    g.add_argument("--seed", type=int, default=0, metavar="S", help="same seed → identical file (default 0)")
    g.add_argument("--scrapes", type=int, default=2, metavar="K", help="scrapes per host (default 2)")
    g.add_argument(
        "--profile", choices=sorted(PROFILES), default="realistic",
        help="; ".join(f"{name}: {prof.description}" for name, prof in PROFILES.items()),
    )
    g.add_argument("--interval", default="10s", metavar="DURATION", help="time between scrapes (default 10s)")
    g.add_argument("--out", required=True, metavar="FILE.csv")
    g.add_argument("--json", action="store_true", help="print a JSON summary instead of a line")
    g.set_defaults(handler=cmd_generate)

    s = sub.add_parser("snapshot", help="scrape this host's processes with psutil and write a snapshot CSV")
    s.add_argument("--scrapes", type=int, default=2, metavar="K")
    s.add_argument("--interval", default="1s", metavar="DURATION")
    s.add_argument("--out", required=True, metavar="FILE.csv")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=cmd_snapshot)


def parse_interval(text: str) -> float:
    """Seconds from ``10s`` / ``1m30s`` / ``2.5``; a clear error otherwise."""
    from core.domain.durations import parse_duration

    seconds = parse_duration(text, "--interval")
    if seconds <= 0:
        raise ValidationError(f"--interval must be positive, got {text!r}")
    return seconds


def _writable(path: str) -> Path:
    from core.outputs import output_file

    return output_file(path)


def _write(frame: Any, out: Path) -> None:
    """The snapshot CSV, all or nothing (``core.outputs.replacing``)."""
    from core.engine.snapshot import write_snapshot
    from core.outputs import replacing

    with replacing(out) as tmp:
        write_snapshot(frame, tmp)


def _summary(frame: Any, out: Path, seconds: float) -> dict[str, Any]:
    from core.engine.fleet import critical_share

    return {
        "out": str(out),
        "rows": int(len(frame)),
        "hosts": int(frame["host_name"].nunique()),
        "scrapes": int(frame["scrape"].max() + 1) if len(frame) else 0,
        "processes_last_scrape": int((frame["scrape"] == frame["scrape"].max()).sum()) if len(frame) else 0,
        "critical_share_hint": round(critical_share(frame), 4) if len(frame) else 0.0,
        "seconds": round(seconds, 3),
    }


def _report(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"wrote {summary['out']}: {summary['rows']:,} rows, {summary['hosts']} host(s), "
            f"{summary['scrapes']} scrape(s) in {summary['seconds']} s",
            file=sys.stdout,
        )


def cmd_generate(args: argparse.Namespace) -> int:
    from core.engine.fleet import generate_fleet

    out = _writable(args.out)
    interval = parse_interval(args.interval)
    start = time.perf_counter()
    frame = generate_fleet(
        args.nodes, args.procs, seed=args.seed, scrapes=args.scrapes, profile=args.profile, interval_s=interval
    )
    _write(frame, out)
    _report(_summary(frame, out, time.perf_counter() - start), args.json)
    return 0


def cmd_snapshot(args: argparse.Namespace) -> int:
    from core.engine.hostsnapshot import snapshot_this_host

    out = _writable(args.out)
    interval = parse_interval(args.interval)
    start = time.perf_counter()
    frame = snapshot_this_host(scrapes=args.scrapes, interval_s=interval)
    _write(frame, out)
    _report(_summary(frame, out, time.perf_counter() - start), args.json)
    return 0
