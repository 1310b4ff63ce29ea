"""``phoenix pipeline``: list, render, validate, import, export, history, diff."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.commands import common
from core.domain.accounts import Actor
from core.domain.errors import NotFoundError, PhoenixError, ValidationError

if TYPE_CHECKING:
    from core.services.pipelines import PipelineService
    from core.store.uow import Database as SqlDatabase


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("pipeline", help="pipeline templates, rendering, validation and versions")
    sub = p.add_subparsers(dest="pipeline_command", metavar="SUBCOMMAND")
    sub.required = True

    ls = sub.add_parser("list", help="built-in templates and saved pipelines")
    common.add_identity(ls)
    ls.set_defaults(handler=cmd_list)

    r = sub.add_parser("render", help="write DIR/collector.yaml and DIR/k8s/*.yaml")
    r.add_argument("pipeline", metavar="NAME_OR_FILE", help="template, saved pipeline (name or name@N) or file")
    r.add_argument("--out", required=True, metavar="DIR")
    r.add_argument("--experiment-id", metavar="ID")
    r.add_argument("--variant", choices=("baseline", "candidate"))
    r.add_argument("--snapshot", metavar="FILE.csv",
                   help="compute top-K/adaptive thresholds and learned names from this process snapshot first")
    common.add_identity(r)
    r.set_defaults(handler=cmd_render)

    v = sub.add_parser("validate", help="validate a pipeline graph (JSON/YAML) or a collector YAML")
    v.add_argument("file", metavar="FILE")
    v.set_defaults(handler=cmd_validate)

    i = sub.add_parser("import", help="save a pipeline file as a new version (database + GitOps commit)")
    i.add_argument("file", metavar="FILE")
    i.add_argument("--name", help="save under this name instead of the file's")
    i.add_argument("--message", "-m", default="Imported from file")
    common.add_identity(i)
    i.set_defaults(handler=cmd_import)

    e = sub.add_parser("export", help="print or write a pipeline graph")
    e.add_argument("pipeline", metavar="NAME", help="template or saved pipeline (name or name@N)")
    e.add_argument("--out", metavar="FILE", help="write here (.yaml/.yml → YAML, else JSON)")
    common.add_identity(e)
    e.set_defaults(handler=cmd_export)

    h = sub.add_parser("history", help="GitOps commits of a saved pipeline")
    h.add_argument("name")
    h.set_defaults(handler=cmd_history)

    d = sub.add_parser("diff", help="diff two saved versions (their GitOps commits)")
    d.add_argument("name")
    d.add_argument("old", type=int)
    d.add_argument("new", type=int)
    common.add_identity(d)
    d.set_defaults(handler=cmd_diff)


def _settings() -> Any:
    from core.settings import Settings

    return Settings.from_env()


# The store and the services are imported where used: `phoenix --help` should not load them.
def _database() -> SqlDatabase:
    from core.store.uow import Database as SqlDatabase

    return SqlDatabase(_settings().database_url)


def _gitops() -> Any:
    from core.gitops import GitRepo

    return GitRepo(_settings().gitops_repo)


def _pipelines(db: SqlDatabase) -> PipelineService:
    """The pipeline use cases on ``db``, without migrating it (a read on an old database says so)."""
    from core.services.pipelines import PipelineService

    return PipelineService(db.uow, _gitops())


def _actor(db: SqlDatabase, args: argparse.Namespace | None = None) -> Actor:
    """Who acts on the saved pipelines (``core.commands.common.identity``)."""
    from core.services.accounts import AccountService

    return common.identity(AccountService(db.uow), args)


def _needs_store(ref: str) -> bool:
    from core.catalog.templates import is_template

    return not is_template(ref) and Path(ref).suffix.lower() not in (".json", ".yaml", ".yml") \
        and not Path(ref).is_file()


def load_pipeline_ref(ref: str, args: argparse.Namespace | None = None) -> Any:
    """A template name, a pipeline file, or ``name[@N]`` of a pipeline saved in the database."""
    if _needs_store(ref):
        db = _database()
        try:
            return _pipelines(db).load(_actor(db, args), ref)
        except NotFoundError as exc:
            from core.catalog.templates import TEMPLATE_NAMES

            raise NotFoundError(f"{exc}; {ref!r} is neither a built-in template "
                                f"({', '.join(TEMPLATE_NAMES)}) nor a pipeline file") from None
        except ValidationError:
            raise
        except PhoenixError as exc:  # the database's own one-line reason (not migrated, corrupted, down)
            raise ValidationError(f"{ref!r} is neither a built-in template nor a pipeline file, and saved "
                                  f"pipelines cannot be read: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - one clear line, no traceback
            raise ValidationError(f"{ref!r} is neither a built-in template nor a pipeline file, and saved "
                                  f"pipelines cannot be read ({exc.__class__.__name__}; is the database "
                                  "initialised? run: phoenix db upgrade)") from None
        finally:
            db.dispose()
    from core.store.refs import load_pipeline

    return load_pipeline(ref)  # a template or a file: no database needed


def first_sentence(text: str) -> str:
    s = text.split(". ")[0].strip()
    return s if len(s) <= 90 else s[:87] + "..."


def cmd_list(args: argparse.Namespace) -> int:
    from core.catalog.templates import list_templates

    rows = [(t.name, "template", "-", first_sentence(t.description)) for t in list_templates()]
    note = None
    try:
        db = _database()
        try:
            saved = _pipelines(db).list_pipelines(_actor(db, args))
        finally:
            db.dispose()
        rows += [(p.name, "saved", str(p.latest_version or "-"), first_sentence(p.description)) for p in saved]
    except PhoenixError as exc:  # templates are still useful without a database
        note = f"note: saved pipelines unavailable: {exc}"
    except Exception as exc:  # noqa: BLE001 - templates are still useful without a database
        note = f"note: saved pipelines unavailable ({exc.__class__.__name__}); run 'phoenix db upgrade'"
    print_pipeline_rows(rows)
    if note:
        print(note, file=sys.stderr)
    return 0


def print_pipeline_rows(rows: list[tuple[str, str, str, str]]) -> None:
    """The ``pipeline list`` table: (name, template|saved, latest version or -, first sentence)."""
    width = max(len(r[0]) for r in rows)
    print(f"{'NAME':<{width}}  {'KIND':<8}  {'VER':>3}  DESCRIPTION")
    for name, kind, ver, desc in rows:
        print(f"{name:<{width}}  {kind:<8}  {ver:>3}  {desc}")


def cmd_render(args: argparse.Namespace) -> int:
    from core.outputs import output_dir
    from core.render.bundle import write_bundle
    from core.render.collector import RenderOptions
    from core.services.pipelines import render_checked

    if bool(args.experiment_id) != bool(args.variant) and args.variant:
        raise ValidationError("--variant needs --experiment-id")
    out = output_dir(args.out)
    pipeline = load_pipeline_ref(args.pipeline, args)
    if args.snapshot:
        from core.engine.snapshot import load_snapshot
        from core.engine.tuning import tune

        if not Path(args.snapshot).is_file():
            raise ValidationError(f"snapshot file {args.snapshot} does not exist")
        pipeline = tune(pipeline, load_snapshot(args.snapshot), source=Path(args.snapshot).name)
    bundle = render_checked(pipeline, RenderOptions(experiment_id=args.experiment_id, variant=args.variant))
    for path in write_bundle(bundle, out):
        print(path)
    for note in bundle.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    problems, kind, validators = check_file(args.file)
    if problems:
        for p in problems:
            print(p)
        if validators:
            print(f"validated by: {validators}")
        return 1
    print(f"OK: {args.file} is a valid {kind}" + (f" (validated by: {validators})" if validators else ""))
    return 0


def validate_file(path_str: str) -> tuple[list[str], str]:
    """(problems, what the file is) for a pipeline graph or a collector YAML."""
    problems, kind, _ = check_file(path_str)
    return problems, kind


def check_file(path_str: str) -> tuple[list[str], str, str]:
    """(problems, what the file is, which validators ran) for a pipeline graph or a collector YAML."""
    from core.catalog.compiler import validate_graph
    from core.domain.documents import load_mapping, read_bounded
    from core.domain.pipeline import Pipeline
    from core.otelcol.validate import check_collector_yaml
    from core.render.bundle import render_bundle

    path = Path(path_str)
    if not path.is_file():
        return [f"{path}: no such file"], "file", ""
    try:
        # The one bounded parser pipeline files go through (import and render use it too).
        text = read_bounded(path, what="pipeline file")
        data = load_mapping(text, source=str(path))
    except ValidationError as exc:
        return exc.problems, "file", ""
    if isinstance(data, dict) and "nodes" in data:
        try:
            pipeline = Pipeline.from_dict(data)
        except ValidationError as exc:
            return exc.problems, "pipeline graph", ""
        problems = validate_graph(pipeline)
        if problems:
            return problems, "pipeline graph", "graph rules"
        check = check_collector_yaml(render_bundle(pipeline).collector_yaml)
        for note in check.notes:
            print(f"note: {note}", file=sys.stderr)
        return [f"rendered collector.yaml: {p}" for p in check.problems], "pipeline graph", check.describe()
    if isinstance(data, dict) and ({"receivers", "exporters", "service"} & set(data)):
        check = check_collector_yaml(text if isinstance(text, str) else text.decode("utf-8"))
        for note in check.notes:
            print(f"note: {note}", file=sys.stderr)
        return check.problems, "collector configuration", check.describe()
    return ([f"{path}: neither a pipeline graph (nodes, edges) nor a collector config (receivers, service)"],
            "file", "")


def cmd_import(args: argparse.Namespace) -> int:
    from core.domain.pipeline import Pipeline
    from core.services.requests import SavePipelineVersion

    path = Path(args.file)
    if not path.is_file():
        raise ValidationError(f"{path}: no such file")
    pipeline = Pipeline.from_file(path)
    if args.name:
        data = pipeline.to_dict()
        data["name"] = args.name
        pipeline = Pipeline.from_dict(data)
    db = _database()
    try:
        saved = _pipelines(db).save_version(_actor(db, args),
                                            SavePipelineVersion.of(pipeline=pipeline, message=args.message))
    finally:
        db.dispose()
    print(f"saved {saved.name} v{saved.number} (commit {saved.commit_id[:12]})")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from core.outputs import output_file, write_file

    out = output_file(args.out, create_parents=True) if args.out is not None else None
    pipeline = load_pipeline_ref(args.pipeline, args)
    if out is not None:
        text = pipeline.to_yaml() if out.suffix.lower() in (".yaml", ".yml") else pipeline.to_json()
        write_file(out, text, create_parents=True)
        print(out)
    else:
        sys.stdout.write(pipeline.to_json())
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    commits = _gitops().history(args.name)
    if not commits:
        print(f"no GitOps commits for {args.name}")
        return 1
    for c in commits:
        print(f"{c.commit_id[:12]}  {c.date}  {c.author}  {c.message.splitlines()[0]}")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    db = _database()
    try:
        sys.stdout.write(_pipelines(db).diff(_actor(db, args), args.name, args.old, args.new))
    finally:
        db.dispose()
    return 0
