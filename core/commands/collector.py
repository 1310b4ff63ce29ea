"""``phoenix collector --experiment ID``: the local collector emulator for one experiment.

Normally started by the local deployer (a supervised child whose PID and ports are in
the database); runnable by hand for debugging. SIGTERM/SIGINT stop it cleanly (load
simulator children included).
"""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from core.domain.errors import ValidationError


def register(sub: Any) -> None:
    p = sub.add_parser("collector", help="run the local collector emulator of an experiment")
    p.add_argument("--experiment", required=True, help="experiment id")
    p.add_argument("--baseline-port", type=int, default=0, help="port of the baseline /metrics (0 = any)")
    p.add_argument("--candidate-port", type=int, default=0, help="port of the candidate /metrics (0 = any)")
    p.add_argument("--max-intervals", type=int, default=None, help="stop after this many intervals")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
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
        )  # fmt: skip
    finally:
        db.dispose()
