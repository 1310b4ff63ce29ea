"""``phoenix scheduler``: run the experiment scheduler standalone until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from dataclasses import replace

from core.observability.tracing import configure_tracing
from core.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("scheduler", help="run the experiment scheduler (standalone)")
    p.add_argument("--interval", type=float, default=None, help="seconds between ticks (PHOENIX_SCHEDULER_INTERVAL)")
    p.add_argument("--lease", type=float, default=None, help="seconds a claim lasts (PHOENIX_SCHEDULER_LEASE)")
    p.add_argument("--once", action="store_true", help="run a single tick and exit")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from core.bootstrap import bootstrap
    from core.domain.errors import ValidationError

    settings = Settings.from_env()
    if args.interval is not None:
        if args.interval <= 0:
            raise ValidationError("--interval must be a positive number of seconds")
        settings = replace(settings, scheduler_interval_s=args.interval)
    if args.lease is not None:
        if args.lease <= 0:
            raise ValidationError("--lease must be a positive number of seconds")
        settings = replace(settings, scheduler_lease_s=args.lease)
    configure_tracing("phoenix-scheduler")  # spans only when OTEL_EXPORTER_OTLP_ENDPOINT is set
    services = bootstrap(settings)
    # A standing scheduler also runs the promoted pipeline as this host's collector.
    scheduler = services.new_scheduler(production_port=None if args.once else settings.collector_port_base,
                                       housekeeping=None if args.once else services.prune)
    if args.once:
        report = scheduler.run_once()
        for eid, frm, to in report.transitions:
            print(f"{eid}: {frm} -> {to}")
        for eid, msg in report.errors:
            print(f"{eid}: error: {msg}", file=sys.stderr)
        scheduler.shutdown()
        services.close()
        return 1 if report.errors else 0

    stop = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(
        f"scheduler {scheduler.id} running (runtime {services.runtime}"
        f"{', dry run' if services.dry_run else ''}, every {settings.scheduler_interval_s:g}s); Ctrl-C to stop",
        flush=True,
    )
    scheduler.start()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        scheduler.shutdown(wait=True)
        services.close()
    print("scheduler stopped", flush=True)
    return 0
