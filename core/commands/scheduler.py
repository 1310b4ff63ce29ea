"""``phoenix scheduler``: run the experiment scheduler standalone until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Mapping
from dataclasses import replace

from core.observability.tracing import configure_tracing
from core.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("scheduler", help="run the experiment scheduler (standalone)")
    p.add_argument("--interval", type=float, default=None, help="seconds between ticks (PHOENIX_SCHEDULER_INTERVAL)")
    p.add_argument("--lease", type=float, default=None, help="seconds a claim lasts (PHOENIX_SCHEDULER_LEASE)")
    p.add_argument("--once", action="store_true", help="run a single tick and exit")
    p.add_argument("--metrics-port", type=int, default=None,
                   help="serve Phoenix's metrics on this port at /metrics (PHOENIX_METRICS_PORT; default: not served)")
    p.add_argument("--metrics-host", default="127.0.0.1",
                   help="address the metrics port listens on (default 127.0.0.1; 0.0.0.0 for a remote Prometheus)")
    p.set_defaults(handler=_run)


def metrics_port(flag: int | None, env: Mapping[str, str]) -> int | None:
    """The port to serve metrics on: ``--metrics-port``, else ``PHOENIX_METRICS_PORT``, else none."""
    from core.domain.errors import ValidationError
    from core.observability.metrics import METRICS_PORT_ENV

    if flag is not None:
        raw, source = str(flag), "--metrics-port"
    else:
        raw, source = env.get(METRICS_PORT_ENV, "").strip(), METRICS_PORT_ENV
        if not raw:
            return None
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise ValidationError(f"{source} must be a port number from 1 to 65535, got {raw[:20]!r}")
    return int(raw)


def serve_metrics(port: int, host: str) -> None:
    """Serve ``/metrics`` on ``host:port``; a taken port is one clear line, not a traceback."""
    from core.domain.errors import PermanentError
    from core.observability.metrics import serve

    try:
        serve(port, addr=host)
    except OSError as exc:
        raise PermanentError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc} "
                             f"(choose another --metrics-port / PHOENIX_METRICS_PORT)") from None
    print(f"metrics on http://{host}:{port}/metrics", flush=True)


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
    port = metrics_port(args.metrics_port, os.environ)
    from core.observability.metrics import mark_process

    mark_process("scheduler")
    if port is not None and not args.once:  # before the database work: a taken port fails fast
        serve_metrics(port, args.metrics_host)
    configure_tracing("phoenix-scheduler")  # spans only when OTEL_EXPORTER_OTLP_ENDPOINT is set
    services = bootstrap(settings)
    # A standing scheduler also runs the promoted pipeline as this host's collector.
    scheduler = services.new_scheduler(production_port=None if args.once else settings.collector_port_base,
                                       housekeeping=None if args.once else services.prune,
                                       retrain=None if args.once else services.retrain)
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
