"""The ``phoenix`` command line.

This module only builds the parser and dispatches. Each command group lives in its own
module under ``core/commands/`` and exposes ``register(subparsers)``; a handler returns
the process exit code. Errors that users can cause (bad files, bad parameters) are
raised as ``core.domain.errors.PhoenixError`` and printed as one clear line, exit 1.
With ``--server URL`` (or ``PHOENIX_SERVER``) the commands that have REST routes run
against that server instead (``core.commands.remote``).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from core.observability.context import bind, bind_from_env, new_id, scope
from core.observability.logs import ConfigurationError, configure_logging

# Command groups, in help order. Each module has register(subparsers).
COMMAND_MODULES = (
    "core.commands.db",
    "core.commands.accounts",
    "core.commands.experiment",
    "core.commands.scheduler",
    "core.commands.operator",
    "core.commands.pipeline",
    "core.commands.share",
    "core.commands.snapshot",
    "core.commands.fleet",
    "core.commands.estimate",
    "core.commands.recommend",
    "core.commands.bench",
    "core.commands.collector",
    "core.commands.otelcol",
    "core.commands.loadsim",
    "core.commands.demo",
    "core.commands.ui",
    "core.api.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="phoenix", description="Cut the cost of process metrics.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--as", dest="as_user", metavar="NAME", default=None,
                        help="act as this Phoenix account (default: $PHOENIX_USER, $PHOENIX_TOKEN, then your login name)")
    parser.add_argument("--server", metavar="URL", default=None,
                        help="run the command against this Phoenix server's REST API instead of the local "
                             "database (default: $PHOENIX_SERVER); sign in with $PHOENIX_TOKEN or --as NAME")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


#: Commands that run as one of Phoenix's long-lived or child processes: JSON log lines at INFO
#: by default. Every other command is a person at a terminal: readable warnings only.
PROCESS_OF_COMMAND = {"api": "api", "scheduler": "scheduler", "ui": "ui", "collector": "collector",
                      "loadsim": "loadsim", "operator": "operator"}


def _configure_logging(args: argparse.Namespace) -> None:
    """Logs to stderr (commands print their output to stdout), under this invocation's correlation id.

    A child the runtime started inherits its parent's id (PHOENIX_CORRELATION_ID). A command a
    person runs gets a new one, so an experiment created from the CLI is traced to it as well.
    A server binds none for itself: each request (or scheduler step) binds its own.
    """
    process = PROCESS_OF_COMMAND.get(args.command, "cli")
    # ``scheduler --once`` is one tick a person runs: it prints the tick's errors itself, so its
    # log stays quiet below ERROR (no second copy of each error as a warning line).
    once = bool(getattr(args, "once", False))
    server = process != "cli" and not once
    quiet = logging.ERROR if once else logging.WARNING
    level: int | None = logging.DEBUG if args.verbose else (None if server else quiet)
    configure_logging(process, level=level, fmt="json" if server else "text")
    if bind_from_env(os.environ) is None and not server:
        bind(correlation_id=new_id())


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Called in-process (tests, a wrapper script), it leaves the logging
    set-up and the bound ids as it found them: the next call starts clean."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        with scope():
            return _main(argv)
    finally:
        for h in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(h)
        for h in handlers:
            if h not in root.handlers:
                root.addHandler(h)
        root.setLevel(level)


def _main(argv: Sequence[str] | None) -> int:
    from core.domain.errors import PhoenixError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _configure_logging(args)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    handler = args.handler
    args.server_from_flag = args.server is not None
    args.server = args.server or os.environ.get("PHOENIX_SERVER", "").strip() or None
    if args.server:
        from core.commands.remote import handler_for

        handler = handler_for(args)
    try:
        return int(handler(args) or 0)
    except PhoenixError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
