"""``phoenix collector --experiment ID``: the local collector emulator for one experiment.

Normally started by the local deployer (a supervised child whose PID and ports are in
the database); runnable by hand for debugging. SIGTERM/SIGINT stop it cleanly (load
simulator children included).
"""

from __future__ import annotations

import argparse
import signal
import threading

from core.domain.errors import ValidationError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("collector", help="run the local collector emulator of an experiment")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--experiment", help="experiment id")
    # The host's standing collector with the promoted pipeline (core.runtime.production).
    which.add_argument("--production", action="store_true", help="run the promoted pipeline until SIGTERM")
    p.add_argument("--port", type=int, default=0, help="--production: port of /metrics (0 = any)")
    p.add_argument("--interval", default=None, help="--production: scrape interval (default: the experiment's)")
    p.add_argument("--baseline-port", type=int, default=0, help="port of the baseline /metrics (0 = any)")
    p.add_argument("--candidate-port", type=int, default=0, help="port of the candidate /metrics (0 = any)")
    p.add_argument("--measure-otelcol", action="store_true",
                   help="measure the experiment's two real collectors (PHOENIX_OTELCOL_BIN) instead of emulating")
    p.add_argument("--max-intervals", type=int, default=None, help="stop after this many intervals")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    if args.production:
        return _run_production(args)
    from core.runtime.local import run_collector
    from core.settings import Settings
    from core.store.uow import Database

    for name in ("baseline_port", "candidate_port"):
        port = getattr(args, name)
        if not 0 <= port <= 65535:
            raise ValidationError(f"--{name.replace('_', '-')} must be between 0 and 65535, got {port}")
    settings = Settings.from_env()
    db = Database(settings.database_url)
    stop = threading.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_: stop.set())
    try:
        return run_collector(
            args.experiment, db.uow,
            ports={"baseline": args.baseline_port, "candidate": args.candidate_port},
            data_dir=settings.data_dir, stop=stop, max_ticks=args.max_intervals,
            measure_otelcol=args.measure_otelcol,
        )  # fmt: skip
    finally:
        db.dispose()


def _run_production(args: argparse.Namespace) -> int:
    import sys

    from core.domain.durations import parse_duration
    from core.runtime.production import run_production
    from core.settings import Settings
    from core.store.uow import Database

    if not 0 <= args.port <= 65535:
        raise ValidationError(f"--port must be between 0 and 65535, got {args.port}")
    interval = parse_duration(args.interval, "--interval") if args.interval else None
    if interval is not None and interval <= 0:
        raise ValidationError(f"--interval must be positive, got {args.interval!r}")
    settings = Settings.from_env()
    db = Database(settings.database_url)
    stop = threading.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_: stop.set())

    def ready(port: int) -> None:
        print(f"production collector serving http://127.0.0.1:{port}/metrics", file=sys.stderr, flush=True)

    try:
        return run_production(db.uow, port=args.port, interval_s=interval, stop=stop,
                              max_ticks=args.max_intervals, on_ready=ready)  # fmt: skip
    finally:
        db.dispose()
