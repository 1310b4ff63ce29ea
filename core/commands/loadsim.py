"""``phoenix loadsim run``: run the load simulator in the foreground.

Progress goes to stderr (one line per second), the final status to stdout (``--json``
for machine use). SIGTERM/SIGINT cancel the run; every child is killed either way.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from core.domain.criteria import LOAD_PROFILES, LoadProfile
from core.domain.durations import parse_duration
from core.domain.errors import ValidationError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("loadsim", help="simulate process load on this host")
    lsub = p.add_subparsers(dest="loadsim_command", metavar="SUBCOMMAND")
    lsub.required = True
    r = lsub.add_parser("run", help="start realistic processes for a while, then clean up")
    r.add_argument("--profile", default="realistic", help=f"one of {', '.join(LOAD_PROFILES)}")
    r.add_argument("--duration", default="60s", help="how long, e.g. 30s, 5m (default 60s)")
    r.add_argument("--max-processes", type=int, default=300, help="upper bound on live processes (default 300)")
    r.add_argument("--cpu-cap", type=float, default=50.0, help="summed CPU duty cycle cap, %% of one core")
    r.add_argument("--memory-cap", type=float, default=512.0, help="summed memory cap, MB")
    r.add_argument("--scale", type=float, default=None, help="multiply built-in profile counts")
    r.add_argument("--patterns", type=Path, default=None, help="JSON/YAML file with the custom patterns list")
    r.add_argument("--patterns-json", default=None,
                   help="the custom patterns list as inline JSON (the operator's Jobs pass it so)")
    r.add_argument("--churn-rate", type=float, default=None,
                   help="share of each pattern's processes replaced per minute, on top of the profile's own churn")
    r.add_argument("--status-file", type=Path, default=None, help="write live status JSON here")
    r.add_argument("--json", action="store_true", help="print the final status as JSON")
    r.set_defaults(handler=_run)
    c = lsub.add_parser("cleanup", help="kill processes a crashed run left behind")
    c.add_argument("--status-file", type=Path, required=True)
    c.set_defaults(handler=_cleanup)


def _load_patterns(path: Path) -> list[dict[str, Any]]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ValidationError(f"cannot read patterns file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ValidationError(f"patterns file {path} is not valid JSON/YAML: {exc}") from exc
    if isinstance(data, dict):
        data = data.get("patterns")
    if not isinstance(data, list):
        raise ValidationError(f"patterns file {path} must hold a list of patterns (or {{patterns: [...]}})")
    return data


def _inline_patterns(text: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except ValueError:
        raise ValidationError("--patterns-json is not valid JSON") from None
    if not isinstance(data, list):
        raise ValidationError("--patterns-json must be a JSON list of patterns")
    return data


def _run(args: argparse.Namespace) -> int:
    from core.runtime.loadsim import LoadLimits, LoadSimulator, patterns_for, with_churn

    duration = parse_duration(args.duration, "--duration")
    params: dict[str, Any] = {}
    if args.scale is not None:
        params["scale"] = args.scale
    if args.patterns is not None and args.patterns_json is not None:
        raise ValidationError("give --patterns FILE or --patterns-json, not both")
    if args.profile == "custom":
        if args.patterns is None and args.patterns_json is None:
            raise ValidationError("--profile custom needs --patterns FILE or --patterns-json LIST")
        params["patterns"] = (_load_patterns(args.patterns) if args.patterns is not None
                              else _inline_patterns(args.patterns_json))
    elif args.patterns is not None or args.patterns_json is not None:
        raise ValidationError("--patterns/--patterns-json only apply to --profile custom")
    if args.churn_rate is not None and not 0 <= args.churn_rate <= 1:
        raise ValidationError(f"--churn-rate must be between 0 and 1, got {args.churn_rate:g}")
    profile = LoadProfile(name=args.profile, params=params, max_processes=args.max_processes)
    limits = LoadLimits(max_processes=args.max_processes, cpu_cap_pct=args.cpu_cap, memory_cap_mb=args.memory_cap)
    last = [0.0]

    def progress(st: Any) -> None:
        now = time.monotonic()
        if now - last[0] >= 1.0 or st.state != "running":
            last[0] = now
            print(f"loadsim {st.state} {st.progress:6.1%} live={st.live}/{st.target} spawned={st.spawned_total}",
                  file=sys.stderr)  # fmt: skip

    patterns = patterns_for(profile)
    if args.churn_rate:
        patterns = with_churn(patterns, args.churn_rate)
    sim = LoadSimulator(
        patterns, duration_s=duration, limits=limits, status_path=args.status_file, on_progress=progress
    )
    stop = threading.Event()
    old = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for note in sim.plan.notes:
            print(f"loadsim: {note}", file=sys.stderr)
        status = sim.run(stop)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if args.json:
        print(json.dumps(status.to_dict(), indent=2))
    else:
        print(f"{status.state}: spawned {status.spawned_total} processes over {status.elapsed_s:.1f}s")
    return 0 if status.state in {"completed", "cancelled"} else 1


def _cleanup(args: argparse.Namespace) -> int:
    from core.runtime.loadsim import cleanup_leftovers

    n = cleanup_leftovers(args.status_file, force=True)
    print(f"killed {n} leftover process(es)")
    return 0
