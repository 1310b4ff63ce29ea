"""``phoenix api [--host --port --grpc-port]``: serve the REST API with uvicorn and, beside it in the
same process over the same services, the gRPC API.

Registered by ``core.cli`` beside the command modules: it lives here, not in
``core.commands``, because the commands and the API are sibling layers that never import
each other.
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

DEFAULT_PORT = 8080
DEFAULT_GRPC_PORT = 50051  # core.api.grpc_server.DEFAULT_GRPC_PORT, kept here so --help stays light


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("api", help="serve the REST API (FastAPI, /api/v1) and the gRPC API")
    p.add_argument("--host", default="127.0.0.1", help="address to bind, both APIs (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"REST port (default: {DEFAULT_PORT})")
    p.add_argument("--grpc-port", type=int, default=DEFAULT_GRPC_PORT,
                   help=f"gRPC port (default: {DEFAULT_GRPC_PORT}; 0: no gRPC)")
    p.add_argument("--embedded-scheduler", action="store_true",
                   help="also run the scheduler in this process when PHOENIX_EMBEDDED_SCHEDULER is on (its "
                        "default); `make run` does, and starts the UI without one, so exactly one runs")
    p.set_defaults(handler=_api)


class _Terminated(Exception):
    """SIGTERM arrived: unwind so both servers and the services close, then die of it."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


def _grpc_serve() -> Callable[..., Any]:
    """``core.api.grpc_server.serve``; a clear error when the build did not generate the stubs."""
    try:
        from core.api.grpc_server import serve
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("core.api.grpc_gen"):
            raise
        from core.domain.errors import PermanentError

        raise PermanentError("the gRPC stubs are not generated: run 'make grpc' (or 'python core/api/grpc_build.py' "
                             "in the checkout), or serve without gRPC with --grpc-port 0") from None
    return serve


def _api(args: argparse.Namespace) -> int:
    import uvicorn  # the server stack only when serving: `phoenix --help` stays fast

    from core.api.app import create_app
    from core.api.events import end_streams_on_exit
    from core.bootstrap import bootstrap
    from core.observability.metrics import mark_process

    mark_process("api")  # its own metrics are on this server's /metrics
    # uvicorn handles SIGTERM while it serves, then re-raises it once it has shut down; with the
    # default action that would kill the process before the gRPC server and the services close
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main else None
    terminated = False
    services = grpc_api = None
    server: uvicorn.Server | None = None
    try:
        services = bootstrap()
        if args.embedded_scheduler and services.settings.embedded_scheduler:
            # at start, not on a first request: API clients' experiments move with nobody watching
            print(f"embedded scheduler {services.start_scheduler().id} started", flush=True)
        if args.grpc_port:
            grpc_api = _grpc_serve()(services, args.host, args.grpc_port)
            print(f"gRPC API on {args.host}:{grpc_api.port}", flush=True)
        app = create_app(services)
        server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, log_level="info",
                                               server_header=False, proxy_headers=False))
        end_streams_on_exit(server, app)  # open event streams end on SIGTERM instead of holding it up
        server.run()
    except _Terminated:
        terminated = True
    except KeyboardInterrupt:
        pass
    finally:
        if grpc_api is not None:
            grpc_api.stop()
        if services is not None:
            services.close()
        if main:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
    if terminated:  # the exit status says why it stopped, as uvicorn alone would
        signal.raise_signal(signal.SIGTERM)
    return 0 if server is not None and server.started else 3  # as uvicorn.run: 3 when it never started (port taken, …)
