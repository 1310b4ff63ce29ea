"""The UI process observing itself: JSON logs, traces, metrics, and one correlation id per script run.

``app/main.py`` (the router) calls :func:`start_run` at the top of every script run and wraps
the page in :func:`page_run`. Both are cheap on a rerun: logging, tracing and the metrics
server are set up once per process (``core.observability`` keeps them idempotent).

Each run binds a fresh correlation id. Everything that run does carries it: its log lines,
the services' spans, an experiment it creates (so the scheduler's lines do too), and the
"reference" the error boundary shows (``app.widgets.boundary``), so grepping the log for a
reference a user reads out finds the traceback and the rest of that run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from app.widgets import boundary
from core.observability import metrics
from core.observability.context import bind, new_id
from core.observability.logs import ConfigurationError, configure_logging
from core.observability.tracing import configure_tracing, span

log = logging.getLogger("phoenix.app")


def setup_process() -> None:
    """Logging, tracing and the metrics port of the UI process (``app.serve`` calls it at start;
    every page run again, as a no-op)."""
    try:
        configure_logging("ui", keep_existing=True)
    except ConfigurationError as exc:  # a typo in PHOENIX_LOG_*: the page still works; log in the defaults, say why
        configure_logging("ui", keep_existing=True, env={})
        log.warning("%s; logging JSON at INFO instead", exc)
    configure_tracing("phoenix-ui")
    metrics.mark_process("ui")
    port = os.environ.get(metrics.METRICS_PORT_ENV, "").strip()
    if not port:
        return
    try:
        host = os.environ.get(metrics.METRICS_HOST_ENV, "").strip() or "127.0.0.1"
        metrics.serve(int(port), addr=host)  # once per port per process: False on every rerun
    except ValueError:
        log.warning("%s=%r is not a port number; the UI's metrics are not served", metrics.METRICS_PORT_ENV, port)
    except OSError as exc:
        log.warning("cannot serve the UI's metrics on port %s: %s", port, exc)


def start_run() -> str:
    """Set up the process (first run only) and bind a new correlation id for this script run."""
    setup_process()
    cid = new_id()
    bind(correlation_id=cid)
    return cid


@contextmanager
def page_run(page: str) -> Iterator[None]:
    """Count the run of ``page`` (``phoenix_ui_page_runs``), name it for the error boundary, trace it."""
    metrics.UI_PAGE_RUNS.labels(page).inc()
    token = boundary.CURRENT_PAGE.set(page)
    try:
        with span(f"ui {page}", **{"phoenix.ui.page": page}):
            yield
    finally:
        boundary.CURRENT_PAGE.reset(token)
