"""The pages' one door into core services: named read queries and guarded actions.

Pages never touch the store; they call these functions, which go through the cached
bootstrap (``app.services``) and its unit of work. Every state-changing function is a
named action wrapped by ``app.guard.action`` (DESIGN §10), so roles and audit hook in
here once accounts exist.
"""

from __future__ import annotations

from typing import Any

from app import guard
from core.catalog.compiler import validate_graph
from core.cost import PriceCard
from core.domain.errors import NotFoundError, PhoenixError
from core.domain.pipeline import Pipeline
from core.services.settings import DEFAULT_PUBLIC_URL, SettingsService


def services() -> Any:
    from app.services import get_services

    return get_services()


def gitops(svc: Any) -> Any:
    """The GitOps repository: the one services carry, else the configured directory."""
    repo = getattr(svc, "gitops", None)
    if repo is None:
        from core.gitops import GitRepo

        repo = GitRepo(svc.settings.gitops_repo)
    return repo


# ---- pipelines -------------------------------------------------------------------------
def list_pipeline_names() -> list[str]:
    try:
        with services().uow() as uow:
            return [p.name for p in uow.pipelines.list_pipelines() if p.latest_version]
    except (ImportError, PhoenixError):
        return []


def list_pipelines() -> list[Any]:
    with services().uow() as uow:
        return list(uow.pipelines.list_pipelines())


def list_versions(name: str) -> list[Any]:
    with services().uow() as uow:
        return list(uow.pipelines.list_versions(name))


def load_pipeline_version(name: str, number: int | None) -> tuple[Pipeline, dict[str, Any]]:
    """A saved version as a Pipeline plus {version, commit, yaml, message}."""
    with services().uow() as uow:
        rec = uow.pipelines.get_version(name, number)
    p = Pipeline.from_dict(rec.graph)
    return p, {"name": name, "version": rec.number, "commit": rec.commit_id, "message": rec.message,
               "yaml": p.to_yaml(), "collector_yaml": rec.collector_yaml}


@guard.action("pipeline.save")
def save_pipeline_version(pipeline: Pipeline, message: str) -> dict[str, Any]:
    """Save ``pipeline`` as a new immutable version (+ git commit). Returns name/version/commit."""
    problems = validate_graph(pipeline)
    if problems:
        from core.domain.errors import ValidationError

        raise ValidationError(problems)
    from core.pipelines_service import save_version

    svc = services()
    number, commit = save_version(svc.uow(), gitops(svc), pipeline, message, guard.current_user().name)
    return {"name": pipeline.name, "version": number, "commit": commit}


def resolve_pipeline(ref: str) -> Pipeline:
    """``name`` (template or latest saved) or ``name@N`` as a Pipeline."""
    from core.catalog.templates import get_template, is_template

    name, _, ver = ref.partition("@")
    if not ver and is_template(name):
        return get_template(name)
    try:
        p, _ = load_pipeline_version(name, int(ver) if ver else None)
    except ValueError:
        raise NotFoundError(f"bad pipeline version in {ref!r}") from None
    return p


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
    except ImportError:
        return SettingsService(None)
    except PhoenixError as exc:
        failure = exc

        def unreadable() -> Any:
            raise failure

        return SettingsService(unreadable)
    return svc.configuration or SettingsService(svc.uow)


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

    def probe() -> None:
        with svc.uow() as uow:
            uow.settings.all()

    return probe


def completed_experiments(limit: int = 100) -> list[Any]:
    """The newest completed experiments with their results, in one query."""
    with services().uow() as uow:
        return list(uow.experiments.list(states=["Completed"], limit=limit))
