"""``phoenix operator``: the Kubernetes operator for PhoenixProcessPipeline and LoadSimulationJob.

Runs in the foreground until SIGTERM/SIGINT. JSON log lines on stderr (process ``operator``),
Phoenix's metrics (``phoenix_operator_*`` among them) on ``--metrics-port`` /
``PHOENIX_METRICS_PORT``. No credentials or an unreachable API server is one line, exit 1.
"""

from __future__ import annotations

import argparse
import os

IMAGE_ENV = "PHOENIX_LOADSIM_IMAGE"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("operator", help="run the Kubernetes operator for Phoenix's custom resources")
    p.add_argument("--namespace", "-n", action="append", default=None, metavar="NS",
                   help="watch this namespace (repeatable; default: all namespaces)")
    p.add_argument("--all-namespaces", "-A", action="store_true", help="watch every namespace (the default)")
    p.add_argument("--kubeconfig", default=None, metavar="PATH",
                   help="kubeconfig to use (default: the pod's service account, then $KUBECONFIG or ~/.kube/config)")
    p.add_argument("--loadsim-image", default=None, metavar="IMAGE",
                   help=f"Phoenix image the load Jobs run when a LoadSimulationJob names none (${IMAGE_ENV}; "
                        "default phoenix:<this version>)")
    p.add_argument("--metrics-port", type=int, default=None,
                   help="serve Phoenix's metrics on this port at /metrics (PHOENIX_METRICS_PORT; default: not served)")
    p.add_argument("--metrics-host", default="127.0.0.1",
                   help="address the metrics port listens on (default 127.0.0.1; 0.0.0.0 in a pod)")
    p.add_argument("--health-port", type=int, default=None,
                   help="serve kopf's liveness probe at http://HOST:PORT/healthz (default: not served)")
    p.set_defaults(handler=_run)


def _default_image() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"phoenix:{version('phoenix')}"
    except PackageNotFoundError:
        return "phoenix:dev"


def _run(args: argparse.Namespace) -> int:
    from core.commands.scheduler import metrics_port, serve_metrics
    from core.domain.errors import ValidationError
    from core.observability.metrics import mark_process
    from core.operator.runner import Options, namespaces_from, run

    namespaces = namespaces_from(args.namespace, args.all_namespaces)
    port = metrics_port(args.metrics_port, os.environ)
    if args.health_port is not None and not 1 <= args.health_port <= 65535:
        raise ValidationError("--health-port must be a port number from 1 to 65535")
    image = args.loadsim_image or os.environ.get(IMAGE_ENV, "").strip() or _default_image()
    liveness = f"http://{args.metrics_host}:{args.health_port}/healthz" if args.health_port else None
    mark_process("operator")
    if port is not None:
        serve_metrics(port, args.metrics_host)
    run(Options(namespaces=namespaces, kubeconfig=args.kubeconfig, loadsim_image=image, liveness_endpoint=liveness))
    return 0
