"""Phoenix's own metrics: one process-wide registry and every instrument, named in one place.

Each Phoenix process (UI, API, scheduler, operator) exposes these. The API serves them on
its ``/metrics``; the scheduler, the UI and the operator on ``PHOENIX_METRICS_PORT``
(:func:`serve`). The dashboards under ``dashboards/`` and the alert rules in
``k8s/prometheus/`` use exactly these names, and tests check that every name a panel or
a rule uses is one of them (``docs/observability.md`` lists their meaning).

Instruments live in prometheus_client's default registry, so its process and platform
collectors (``process_resident_memory_bytes``, ``python_gc_*``) come along. Label values
are bounded: route templates (never raw paths), states, variants, and experiment ids only
on the result gauges and restarts, which a collector drops once the experiment is old.

Gauges that reflect the database (experiments by state, results, pool use) are not set
here: the services layer registers collectors that read them at scrape time
(``core.services.metrics``), so every replica reports the same truth.
"""

from __future__ import annotations

import threading
from typing import Final

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, start_http_server

METRICS_PORT_ENV: Final = "PHOENIX_METRICS_PORT"
# The address the UI's metrics port listens on (default loopback; 0.0.0.0 in a pod, for Prometheus).
METRICS_HOST_ENV: Final = "PHOENIX_METRICS_HOST"

#: What kind of Phoenix process this is: set once by each entry point (``mark_process``).
BUILD_INFO = Gauge("phoenix_build_info", "1 for each running Phoenix process, by role and version",
                   ["process", "version"])

# ---------------------------------------------------------------- experiments
TRANSITIONS = Counter("phoenix_experiment_transitions", "Experiment state transitions committed by this process",
                      ["from_state", "to_state"])
PROMOTIONS = Counter("phoenix_promotions", "Pipeline promotions finished by this process",
                     ["outcome"])  # outcome: promoted | unchanged | denied | failed

# ---------------------------------------------------------------- scheduler
TICK_SECONDS = Histogram("phoenix_scheduler_tick_seconds", "Duration of one scheduler tick (claim, steps, store)",
                         buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
TICKS = Counter("phoenix_scheduler_ticks", "Scheduler ticks, by outcome", ["outcome"])  # ok | error
TICK_LAG_SECONDS = Gauge("phoenix_scheduler_lag_seconds",
                         "How late the latest tick started after it was due (interval since the previous one)")
LAST_TICK = Gauge("phoenix_scheduler_last_tick_timestamp_seconds", "Unix time the latest tick finished")
LEASE_TAKEOVERS = Counter("phoenix_scheduler_lease_takeovers",
                          "Experiments this scheduler claimed whose lease another scheduler held and let expire")
CLAIMED = Gauge("phoenix_scheduler_claimed_experiments", "Experiments claimed by the latest tick")

# ---------------------------------------------------------------- runtime
COLLECTOR_RESTARTS = Counter("phoenix_collector_restarts",
                             "Collector processes the local runtime restarted after they exited",
                             ["phoenix_experiment_id", "phoenix_variant"])
COLLECTORS_RUNNING = Gauge("phoenix_collectors_running", "Collector processes this runtime supervises",
                           ["runtime"])

# ---------------------------------------------------------------- API
API_REQUESTS = Counter("phoenix_api_requests", "REST API requests answered, by route template and status",
                       ["method", "route", "status"])
API_LATENCY = Histogram("phoenix_api_request_seconds", "REST API request latency by route template",
                        ["method", "route"],
                        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
GRPC_REQUESTS = Counter("phoenix_grpc_requests", "gRPC calls answered, by method and status code", ["method", "code"])
GRPC_LATENCY = Histogram("phoenix_grpc_request_seconds", "gRPC call latency by method", ["method"],
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))

# ---------------------------------------------------------------- UI
UI_PAGE_RUNS = Counter("phoenix_ui_page_runs", "Streamlit page runs, by page", ["page"])
UI_ERRORS = Counter("phoenix_ui_errors", "Errors the UI's error boundary showed, by page and kind",
                    ["page", "kind"])  # kind: user | bug

# ---------------------------------------------------------------- cache (Redis or in-process)
# The Kubernetes operator (``phoenix operator``).
OPERATOR_RECONCILES = Counter("phoenix_operator_reconciles",
                              "Operator reconciles of a custom resource, by kind and outcome",
                              ["kind", "outcome"])  # ok | retry | invalid | error
OPERATOR_STATUS_UPDATES = Counter("phoenix_operator_status_updates",
                                  "Custom resource statuses the operator rewrote after a child changed, by kind",
                                  ["kind"])

CACHE_REQUESTS = Counter("phoenix_cache_requests", "Cache lookups, by cache and result",
                         ["cache", "result"])  # result: hit | miss | error
CACHE_BACKEND_UP = Gauge("phoenix_cache_backend_up", "1 while the shared cache backend (Redis) answers, 0 while degraded",
                         ["backend"])

# ---------------------------------------------------------------- estimates
ESTIMATE_SECONDS = Histogram("phoenix_estimate_seconds", "Duration of a pipeline estimate (cache misses only)",
                             buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))

#: Metric names the database-reading collectors of ``core.services.metrics`` export (so the
#: dashboards and rules can be checked against one list without a database).
SCRAPE_TIME_METRICS: Final = (
    "phoenix_experiments",                                      # {state}
    "phoenix_experiment_series_reduction_ratio",                # {phoenix_experiment_id, phoenix_variant}
    "phoenix_experiment_projected_monthly_savings_dollars",     # {phoenix_experiment_id, phoenix_variant}
    "phoenix_experiment_critical_coverage_ratio",               # {phoenix_experiment_id, phoenix_variant}
    "phoenix_database_up",
    "phoenix_db_pool_connections",                              # {state: checked_out | idle | overflow}
    "phoenix_db_pool_size",
)

_served: dict[int, object] = {}
_serve_lock = threading.Lock()


def mark_process(process: str, version: str = "") -> None:
    """Label this process in ``phoenix_build_info`` (api, ui, scheduler, operator, cli)."""
    if not version:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as dist_version

        try:
            version = dist_version("phoenix")
        except PackageNotFoundError:
            version = "dev"
    BUILD_INFO.labels(process, version).set(1)


def serve(port: int, addr: str = "127.0.0.1", registry: CollectorRegistry = REGISTRY) -> bool:
    """Serve ``/metrics`` on ``addr:port`` in a daemon thread, once per port per process.

    Returns False when this process already serves that port (a Streamlit rerun calls it
    again). A port taken by another process raises ``OSError`` for the caller to report.
    """
    with _serve_lock:
        if port in _served:
            return False
        _served[port] = start_http_server(port, addr=addr, registry=registry)
        return True
