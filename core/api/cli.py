"""``phoenix api [--host --port]``: serve the REST API with uvicorn.

Registered by ``core.cli`` beside the command modules: it lives here, not in
``core.commands``, because the commands and the API are sibling layers that never import
each other.
"""

from __future__ import annotations

import argparse

DEFAULT_PORT = 8080


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("api", help="serve the REST API (FastAPI, /api/v1)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT})")
    p.set_defaults(handler=_api)


def _api(args: argparse.Namespace) -> int:
    import uvicorn  # the server stack only when serving: `phoenix --help` stays fast

    from core.api.app import create_app
    from core.api.events import end_streams_on_exit
    from core.bootstrap import bootstrap

    services = bootstrap()
    server: uvicorn.Server | None = None
    try:
        app = create_app(services)
        server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, log_level="info",
                                               server_header=False, proxy_headers=False))
        end_streams_on_exit(server, app)  # open event streams end on SIGTERM instead of holding it up
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        services.close()
    return 0 if server is not None and server.started else 3  # as uvicorn.run: 3 when it never started (port taken, …)
