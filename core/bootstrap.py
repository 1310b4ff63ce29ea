"""Composition root: settings → database → runtime (deployer + analyzer) → services.

Both the app (once per process, cached in ``app/services.py``) and the CLI call
``bootstrap()``. Tests pass their own deployer/analyzer/database.

Runtimes are a plain mapping, so a new one is one entry. ``local`` (the default) runs
real collectors on this host; ``kubernetes`` asks the cluster's Phoenix operator for them
(docs/kubernetes.md); ``memory`` records calls only, and experiments created with it are
labelled "dry run".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.analysis.analyzer import ExperimentAnalyzer
from core.cache import cache_for
from core.domain.accounts import SYSTEM_SCHEDULER
from core.domain.errors import ConcurrencyError, PhoenixError, ValidationError
from core.domain.ports import Analyzer, Cache, Database, Deployer, EventBus, UnitOfWork
from core.events.memory import MemoryEventBus
from core.gitops import GitOps, GitRepo
from core.observability.logs import add_secret_urls
from core.runtime.kubernetes import KubernetesDeployer, placement_from
from core.runtime.memory import InMemoryAnalyzer, InMemoryDeployer
from core.scheduler import Scheduler
from core.services.accounts import AccountService
from core.services.estimate import Estimates
from core.services.experiments import ExperimentService
from core.services.learning import LearningService
from core.services.metrics import install as install_database_metrics
from core.services.pipelines import PipelineService
from core.services.promotion import PromotionService
from core.services.recommend import RecommendService
from core.services.reports import ReportService
from core.services.requests import RetrainPipeline
from core.services.secret import server_secret
from core.services.sessions import SessionService
from core.services.settings import SettingsService, price_functions
from core.services.shares import ShareService
from core.services.system import SystemService
from core.settings import Settings
from core.store.migrate import is_up_to_date, missing_tables, upgrade
from core.store.uow import Database as SqlDatabase

log = logging.getLogger(__name__)

RuntimeFactory = Callable[[Settings], tuple[Deployer, Analyzer]]


def _memory_runtime(settings: Settings) -> tuple[Deployer, Analyzer]:
    return InMemoryDeployer(), InMemoryAnalyzer()


def _local_runtime(settings: Settings) -> tuple[Deployer, Analyzer]:
    from core.runtime.local import local_runtime

    return local_runtime(settings)


def _kubernetes_runtime(settings: Settings) -> tuple[Deployer, Analyzer]:
    from core.runtime.kubernetes import kubernetes_runtime

    return kubernetes_runtime(settings)


#: name → factory.
RUNTIMES: dict[str, RuntimeFactory] = {"memory": _memory_runtime, "local": _local_runtime,
                                       "kubernetes": _kubernetes_runtime}
#: Used when the configured runtime is a planned one that is not built yet: its experiments
#: are labelled "dry run" (nothing is deployed), which the pages and the CLI show.
DEFAULT_RUNTIME = "memory"
PLANNED_RUNTIMES: frozenset[str] = frozenset()


def resolve_runtime(name: str) -> tuple[str, RuntimeFactory]:
    if name in RUNTIMES:
        return name, RUNTIMES[name]
    if name in PLANNED_RUNTIMES:
        log.info("runtime %r is not available in this build; using %r (dry run)", name, DEFAULT_RUNTIME)
        return DEFAULT_RUNTIME, RUNTIMES[DEFAULT_RUNTIME]
    known = ", ".join(sorted(set(RUNTIMES) | PLANNED_RUNTIMES))
    raise ValidationError(f"PHOENIX_RUNTIME must be one of {known}, got {name!r}")


@dataclass
class Services:
    """Every use case, wired once: pages, the CLI and the coming API call these, never the store."""

    settings: Settings
    database: Database  # core.store.uow.Database or core.store.memory.MemoryDatabase
    deployer: Deployer
    analyzer: Analyzer
    runtime: str
    gitops: GitOps
    experiments: ExperimentService
    pipelines: PipelineService
    promotion: PromotionService
    reports: ReportService
    system: SystemService
    configuration: SettingsService  # the settings users edit (critical policy, price cards, …)
    shares: ShareService
    learning: LearningService  # stored snapshots, retraining intelligent pipelines
    accounts: AccountService
    sessions: SessionService
    events: EventBus
    cache: Cache  # Redis when PHOENIX_REDIS_URL is set (falls back in-process), else in-process
    estimates: Estimates  # estimate reports through the cache
    scheduler: Scheduler | None = None

    @property
    def recommendations(self) -> RecommendService:
        """Recommendations from usage (stateless: built on the settings service in use)."""
        return RecommendService(self.configuration)

    @property
    def dry_run(self) -> bool:
        return bool(getattr(self.deployer, "dry_run", False))

    def uow(self) -> UnitOfWork:
        return self.database.uow()

    def new_scheduler(self, **overrides: Any) -> Scheduler:
        kw: dict[str, Any] = {
            "interval_s": self.settings.scheduler_interval_s,
            "lease_s": self.settings.scheduler_lease_s,
            "notify": self.events.publish,
        }
        kw.update(overrides)
        return Scheduler(self.uow, self.deployer, self.analyzer, **kw)

    def prune(self, now: Any = None) -> None:
        """The long-running schedulers' housekeeping: measurements past the retention go."""
        result = self.system.prune(SYSTEM_SCHEDULER, now)
        if result.samples_deleted:
            log.info("retention: deleted %d samples of experiments that ended before %s (%d days)",
                     result.samples_deleted, result.cutoff.isoformat(), result.retention_days)

    def retrain(self, now: Any = None) -> None:
        """The long-running schedulers' retraining: each saved intelligent pipeline learns again
        from its stored snapshots (a new version only when the learned set changes)."""
        actor = SYSTEM_SCHEDULER
        if not self.learning.retrain_due(actor, now or datetime.now(UTC)):
            return
        for name in self.learning.retrainable(actor):
            try:
                result = self.learning.retrain(actor, RetrainPipeline(pipeline=name))
            except ValidationError as exc:  # this pipeline cannot learn (yet): the others still do
                log.warning("retrain %s: %s", name, exc)
                continue
            except ConcurrencyError as exc:  # another scheduler saved it first: its version stands
                log.info("retrain %s: %s", name, exc)
                continue
            log.info("retrain %s: %s", name, f"version {result.version}" if result.changed else "unchanged")

    def start_scheduler(self, **overrides: Any) -> Scheduler:
        """Start the background scheduler once (later calls return the running one)."""
        if self.scheduler is None:
            overrides.setdefault("production_port", self.settings.collector_port_base)
            overrides.setdefault("housekeeping", self.prune)
            overrides.setdefault("retrain", self.retrain)
            self.scheduler = self.new_scheduler(**overrides)
        self.scheduler.start()
        return self.scheduler

    def close(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=True)
            self.scheduler = None
        self.events.close()
        self.cache.close()
        self.database.dispose()


def event_bus(settings: Settings) -> EventBus:
    """Redis pub/sub when ``PHOENIX_REDIS_URL`` is set (every process sees the notices), else in-process."""
    if settings.redis_url:
        from core.events.redis import RedisEventBus

        return RedisEventBus(settings.redis_url)
    return MemoryEventBus()


def _read_settings(configuration: SettingsService, analyzer: Analyzer, settings: Settings,
                   deployer: Deployer | None = None) -> None:
    """The analysis prices with, and reads Prometheus at, what Settings holds at analysis time
    (so does a runtime that collects from Prometheus, the kubernetes one)."""
    for note in configuration.adopt_legacy_files(settings.data_dir):
        log.warning("%s", note)
    if isinstance(analyzer, ExperimentAnalyzer):
        analyzer.prices = lambda: price_functions(configuration.price_cards())
        analyzer.prometheus_url = configuration.prometheus_url
    if isinstance(deployer, KubernetesDeployer):
        deployer.prometheus_url = configuration.prometheus_url


def bootstrap(
    settings: Settings | None = None,
    deployer: Deployer | None = None,
    analyzer: Analyzer | None = None,
    *,
    database: Database | None = None,
    gitops: GitOps | None = None,
    migrate: bool = True,
    start_scheduler: bool = False,
) -> Services:
    settings = settings or Settings.from_env()
    add_secret_urls(settings.database_url, settings.redis_url, settings.prometheus_url)  # never in a log line
    runtime, factory = resolve_runtime(settings.runtime)
    if deployer is None or analyzer is None:
        default_deployer, default_analyzer = factory(settings)
        deployer = deployer or default_deployer
        analyzer = analyzer or default_analyzer
    if database is None:
        database = SqlDatabase(settings.database_url)
        if migrate and not is_up_to_date(settings.database_url):
            upgrade(settings.database_url)
    dry_run = bool(getattr(deployer, "dry_run", False))
    # GitRepo does no I/O until it commits: building it here costs nothing.
    gitops = gitops if gitops is not None else GitRepo(settings.gitops_repo)
    configuration = SettingsService(database.uow)
    events = event_bus(settings)
    cache = cache_for(settings.redis_url)
    estimates = Estimates(configuration, cache)
    experiments = ExperimentService(database.uow, dry_run=dry_run, configuration=configuration, events=events,
                                    cache=cache)
    pipelines = PipelineService(database.uow, gitops, configuration, estimates)
    services = Services(
        settings=settings,
        database=database,
        deployer=deployer,
        analyzer=analyzer,
        runtime=runtime,
        gitops=gitops,
        experiments=experiments,
        pipelines=pipelines,
        promotion=PromotionService(database.uow, gitops,
                                   k8s_placement=lambda target: placement_from(settings, target.node_selector)),
        reports=ReportService(experiments, pipelines),
        system=SystemService(database.uow, configuration, events=events, cache=cache,
                             redis_configured=bool(settings.redis_url),
                             scheduler_interval_s=settings.scheduler_interval_s,
                             require_scheduler=settings.readyz_require_scheduler),
        configuration=configuration,
        shares=ShareService(database.uow, lambda: server_secret(settings), configuration.public_url),
        learning=LearningService(database.uow, pipelines, history_keep=settings.snapshot_history,
                                 retrain_interval_s=settings.retrain_interval_s),
        accounts=AccountService(database.uow),
        sessions=SessionService(database.uow, lambda: server_secret(settings)),
        events=events,
        cache=cache,
        estimates=estimates,
    )
    _read_settings(services.configuration, analyzer, settings, deployer)
    install_database_metrics(database)  # idempotent: re-points the one scrape-time collector here
    if start_scheduler:
        services.start_scheduler()
    return services


@contextmanager
def open_configuration(database_url: str) -> Iterator[SettingsService]:
    """The settings service on ``database_url`` for one CLI command, disposed afterwards.

    A SQLite file that does not exist yet, or a database without the settings table (never
    migrated), means nothing was ever saved: no database layer (and no empty file created
    as a side effect of reading). A database that cannot be reached is a clear error.
    """
    if database_url.startswith("sqlite:///") and not Path(database_url.removeprefix("sqlite:///")).is_file():
        yield SettingsService(None)
        return
    try:
        unsaved = "app_settings" in missing_tables(database_url)
    except PhoenixError as exc:
        raise ValidationError(f"database settings could not be read: {exc}") from None
    if unsaved:
        yield SettingsService(None)
        return
    db = SqlDatabase(database_url)
    try:
        yield SettingsService(db.uow)
    finally:
        db.dispose()
