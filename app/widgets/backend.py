"""The pages' one door into core services: named read queries and guarded actions.

Pages never touch the store; they call these functions, which call the use cases of the
cached bootstrap (``app.services``) — the same services the CLI calls. No unit of work or
repository appears in ``app/`` or ``pages/`` (``tests/unit/test_layers.py`` checks it).
Every call passes the signed-in ``Actor`` (``app.guard.current_user``); the services check
its role and audit each change. State-changing functions are also named ``guard.action``s,
so a page can hide what a role may not do.
"""

from __future__ import annotations

from typing import Any

from app import guard
from core.bootstrap import Services
from core.catalog.compiler import validate_graph
from core.cost import PriceCard
from core.domain.errors import PhoenixError, ValidationError
from core.domain.experiment import Experiment
from core.domain.pipeline import Pipeline
from core.domain.records import PipelineRecord, PipelineVersionRecord
from core.services.estimate import Estimates
from core.services.pipelines import SavedVersion
from core.services.requests import SavePipelineVersion
from core.services.settings import DEFAULT_PUBLIC_URL, SettingsService


def services() -> Services:
    from app.services import get_services

    return get_services()


# ---- pipelines -------------------------------------------------------------------------
def list_pipeline_names() -> list[str]:
    try:
        return services().pipelines.names(guard.current_user())
    except (ImportError, PhoenixError):
        return []


def list_pipelines() -> list[PipelineRecord]:
    return services().pipelines.list_pipelines(guard.current_user())


def list_versions(name: str) -> list[PipelineVersionRecord]:
    return services().pipelines.list_versions(guard.current_user(), name)


def load_pipeline_version(name: str, number: int | None) -> tuple[Pipeline, PipelineVersionRecord]:
    """A saved version (the latest when ``number`` is None) as a Pipeline, with its record."""
    rec = services().pipelines.version(guard.current_user(), name, number)
    return Pipeline.from_dict(rec.graph), rec


@guard.action("pipeline.save")
def save_pipeline_version(pipeline: Pipeline, message: str, expected_version: int | None = None) -> SavedVersion:
    """Save ``pipeline`` as a new immutable version (+ git commit); ``expected_version``: only
    if that is still the latest (ConcurrencyError when someone saved in between)."""
    problems = validate_graph(pipeline)
    if problems:
        raise ValidationError(problems)
    request = SavePipelineVersion.of(pipeline=pipeline, message=message, expected_version=expected_version)
    return services().pipelines.save_version(guard.current_user(), request)


def latest_version_number(name: str) -> int | None:
    """The saved pipeline's latest version number (None: not saved)."""
    try:
        return services().pipelines.version(guard.current_user(), name).number
    except PhoenixError:
        return None


def resolve_pipeline(ref: str) -> Pipeline:
    """``name`` (template or latest saved) or ``name@N`` as a Pipeline."""
    return services().pipelines.resolve(guard.current_user(), ref)


def settings() -> Any:
    """The settings in use; read from the environment when services cannot start (a broken database)."""
    try:
        return services().settings
    except (ImportError, PhoenixError):
        from core.settings import Settings

        return Settings.from_env()


def configuration() -> SettingsService:
    """The settings service (critical policy, price cards, URLs, retention) the pages read and edit.

    Without services (a broken database) the Settings page still shows the environment and
    the defaults, with the database's own one-line reason; whatever needs a value says so.
    """
    try:
        svc = services()
    except PhoenixError as exc:
        failure = exc

        def unreadable() -> Any:
            raise failure

        return SettingsService(unreadable)
    return svc.configuration


def estimates() -> Estimates:
    """Estimate reports through this process's cache (shared through Redis when configured);
    without services (a broken database), uncached beside the unreadable settings."""
    try:
        return services().estimates
    except PhoenixError:
        return Estimates(configuration())


def price_cards() -> list[PriceCard]:
    """The price cards in use (ValidationError naming the source when they are broken)."""
    return configuration().price_cards()


def public_url() -> str:
    """Where share links point: the public URL in use; the default while it cannot be read or is
    invalid (a link is no place for an error; the Settings page reports it)."""
    try:
        return configuration().public_url()
    except PhoenixError:
        return DEFAULT_PUBLIC_URL


def db_probe() -> Any:
    """A callable that touches the database (None when no services are wired)."""
    try:
        svc = services()
    except ImportError:
        return None
    except PhoenixError as exc:  # the database refused at start-up: that is its status
        failure = exc

        def failed() -> None:
            raise failure

        return failed

    actor = guard.current_user()
    return lambda: svc.system.ping(actor)


def completed_experiments(limit: int = 100) -> list[Experiment]:
    """The newest completed experiments with their results, in one query."""
    return services().experiments.completed(guard.current_user(), limit=limit)


# ---- recommendations from usage ------------------------------------------------------------
def recommend(snapshot: bytes, rule_files: list[tuple[str, bytes]], dashboards: list[tuple[str, bytes]],
              settings_prometheus: bool) -> dict[str, Any]:
    """``phoenix recommend`` on uploaded files (docs/recommend.md)."""
    from core.services.requests import Recommend, UsageFile

    def files(items: list[tuple[str, bytes]]) -> list[UsageFile]:
        return [UsageFile(name=n, text=raw.decode("utf-8", errors="replace")) for n, raw in items]

    request = Recommend.of(rule_files=files(rule_files), dashboards=files(dashboards),
                           settings_prometheus=settings_prometheus)
    return services().recommendations.recommend(guard.current_user(), request, snapshot)


def closed_loop(experiment_id: str) -> list[Any]:
    """Adaptive's closed-loop rows of an experiment (core.domain.budget.HostBudget), oldest first.
    A refusal or a database error propagates: the page says it rather than showing no loop."""
    return services().experiments.closed_loop(guard.current_user(), experiment_id)
