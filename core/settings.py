"""Phoenix configuration, read once from ``PHOENIX_*`` environment variables.

Every knob has a default that makes ``make run`` work on a bare machine: a SQLite file
under ``./data/``, the local runtime on this host and the embedded scheduler.
Secrets (API keys) are never settings: collector YAML refers to them as ``${env:NAME}``.

These are the process's wiring (where the database is, which runtime). The settings users
edit in the app (critical policy, price cards, Prometheus URL, retention, public URL) are
owned by ``core.services.settings``, which reads their ``PHOENIX_*`` overrides itself;
``docs/configuration.md`` lists them all with their precedence.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from core.domain.errors import ValidationError

DEFAULT_DATA_DIR = Path("./data")
#: core.render.collector.COLLECTOR_IMAGE (settings is an adapter and may not import render:
#: tests/unit/test_runtime_kubernetes.py checks the two agree).
COLLECTOR_IMAGE_DEFAULT = "otel/opentelemetry-collector-contrib:0.159.0"


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        # A PhoenixError: the CLI and the app show this one line instead of a traceback.
        raise ValidationError(f"environment variable {name} must be a number, got {raw[:40]!r}")
    return value


def _env_int(name: str, default: int) -> int:
    value = _env_float(name, float(default))
    if not value.is_integer():
        raise ValidationError(f"environment variable {name} must be a whole number, got {os.environ.get(name)!r}")
    return int(value)


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str = f"sqlite:///{DEFAULT_DATA_DIR}/phoenix.db"
    gitops_repo: Path = DEFAULT_DATA_DIR / "gitops"
    runtime: str = "local"  # local | kubernetes | memory (dry run, tests only)
    embedded_scheduler: bool = True
    scheduler_interval_s: float = 2.0
    scheduler_lease_s: float = 30.0
    # The deployed PHOENIX_PROMETHEUS_URL; what analysis uses is the settings service's value
    # (this one, or the one saved in Settings when the variable is unset).
    prometheus_url: str | None = None
    otelcol_bin: str | None = None
    # real | emulator | auto (real when the Phoenix collector is built): which collectors run experiments
    collector: str = "auto"
    kube_context: str | None = None
    # The Kubernetes runtime (PHOENIX_RUNTIME=kubernetes, core.runtime.kubernetes; docs/kubernetes.md).
    # Kubeconfig file (None: in-cluster when running in a pod, else $KUBECONFIG or ~/.kube/config).
    kubeconfig: str | None = None
    # Namespace of an experiment whose kubernetes target names none.
    k8s_namespace: str = "phoenix-experiments"
    # Collector image the operator runs; pinned (a ``:latest`` or untagged image is refused).
    k8s_collector_image: str = COLLECTOR_IMAGE_DEFAULT
    # Requests/limits of each collector pod, "cpu=100m,memory=128Mi".
    k8s_requests: str = "cpu=100m,memory=128Mi"
    k8s_limits: str = "cpu=500m,memory=512Mi"
    # Tolerations for every experiment's collectors, "key=value:Effect" or "key:Effect", comma-separated.
    k8s_tolerations: str = ""
    # How long a Degraded variant still counts as healthy, and how long teardown waits
    # for the operator's finalizer before the scheduler retries.
    k8s_degraded_grace_s: float = 120.0
    k8s_teardown_wait_s: float = 20.0
    collector_port_base: int = 19000
    # Intelligent learning (core.services.learning, docs/configuration.md): how often long-running
    # schedulers retrain saved intelligent pipelines from stored snapshots (0: never), and how
    # many snapshots each scope keeps.
    retrain_interval_s: float = 86_400.0
    snapshot_history: int = 48
    log_level: str = "INFO"
    # Redis for live events (core.events.redis), the shared cache (core.cache.redis) and the API's
    # idempotency keys across processes; None: each of them in-process
    redis_url: str | None = None
    # /readyz fails when no scheduler beat recently (off: the API serves reads without one)
    readyz_require_scheduler: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = Path(_env("PHOENIX_DATA_DIR", str(DEFAULT_DATA_DIR)))
        return cls(
            data_dir=data_dir,
            database_url=_env("PHOENIX_DATABASE_URL", f"sqlite:///{data_dir}/phoenix.db"),
            gitops_repo=Path(_env("PHOENIX_GITOPS_REPO", str(data_dir / "gitops"))),
            runtime=_env("PHOENIX_RUNTIME", "local"),
            embedded_scheduler=_env_bool("PHOENIX_EMBEDDED_SCHEDULER", True),
            scheduler_interval_s=_env_float("PHOENIX_SCHEDULER_INTERVAL", 2.0),
            scheduler_lease_s=_env_float("PHOENIX_SCHEDULER_LEASE", 30.0),
            prometheus_url=os.environ.get("PHOENIX_PROMETHEUS_URL") or None,
            otelcol_bin=os.environ.get("PHOENIX_OTELCOL_BIN") or None,
            collector=_env("PHOENIX_COLLECTOR", "auto").strip().lower(),
            kube_context=os.environ.get("PHOENIX_KUBE_CONTEXT") or None,
            kubeconfig=os.environ.get("PHOENIX_KUBECONFIG") or None,
            k8s_namespace=_env("PHOENIX_K8S_NAMESPACE", "phoenix-experiments"),
            k8s_collector_image=_env("PHOENIX_K8S_COLLECTOR_IMAGE", COLLECTOR_IMAGE_DEFAULT),
            k8s_requests=_env("PHOENIX_K8S_REQUESTS", "cpu=100m,memory=128Mi"),
            k8s_limits=_env("PHOENIX_K8S_LIMITS", "cpu=500m,memory=512Mi"),
            k8s_tolerations=_env("PHOENIX_K8S_TOLERATIONS", ""),
            k8s_degraded_grace_s=_env_float("PHOENIX_K8S_DEGRADED_GRACE", 120.0),
            k8s_teardown_wait_s=_env_float("PHOENIX_K8S_TEARDOWN_WAIT", 20.0),
            collector_port_base=_env_int("PHOENIX_COLLECTOR_PORT_BASE", 19000),
            retrain_interval_s=_env_float("PHOENIX_RETRAIN_INTERVAL", 86_400.0),
            snapshot_history=_env_int("PHOENIX_SNAPSHOT_HISTORY", 48),
            log_level=_env("PHOENIX_LOG_LEVEL", "INFO"),
            redis_url=os.environ.get("PHOENIX_REDIS_URL") or None,
            readyz_require_scheduler=_env_bool("PHOENIX_READYZ_REQUIRE_SCHEDULER", False),
        )

    def collector_binary(self) -> str | None:
        """The real collector experiments run (None: the emulator), per ``PHOENIX_COLLECTOR``.

        ``auto`` (the default) means the Phoenix distribution when it is built, else the
        emulator; ``real`` insists on it (a clear error naming the build command when absent);
        ``PHOENIX_OTELCOL_BIN`` names another binary explicitly.
        """
        from core.domain.errors import PermanentError
        from core.otelcol.distribution import built_binary, require_binary

        if self.collector not in ("auto", "real", "emulator"):
            raise PermanentError(f"PHOENIX_COLLECTOR must be real, emulator or auto, got {self.collector!r}")
        if self.collector == "emulator":
            return None
        if self.otelcol_bin:
            return self.otelcol_bin
        if self.collector == "real":
            return str(require_binary())
        found = built_binary()
        return str(found) if found else None

    def masked_database_url(self) -> str:
        """The database URL with any password replaced, safe to show and log."""
        from core.redact import mask_url

        return mask_url(self.database_url)

    def masked_redis_url(self) -> str | None:
        """The Redis URL with any password replaced, safe to show and log."""
        from core.redact import mask_url

        return mask_url(self.redis_url) if self.redis_url else None

    def masked_prometheus_url(self) -> str | None:
        """The Prometheus URL with any password or token replaced, safe to show and log."""
        from core.redact import mask_url

        return mask_url(self.prometheus_url) if self.prometheus_url else None
