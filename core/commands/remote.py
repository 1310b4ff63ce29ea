"""``phoenix --server URL …``: the commands that have REST routes, run against a Phoenix server.

``core.cli`` asks ``handler_for(args)`` which handler runs a parsed command line when a
server is given (``--server`` or ``PHOENIX_SERVER``):

- the commands below call ``/api/v1`` (``core.commands.rest_client``) and print through the
  same printers as the local commands, so a script reads the same lines (and the same
  ``--json`` keys, as far as the server sends them) wherever the command ran;
- command groups that never touch the database (``fleet``, ``bench``, ``otelcol``,
  ``loadsim``) run here as always;
- everything else needs the server host's database or processes and exits 2 with
  "not available with --server".

Who signs in: ``--as NAME`` (password from ``PHOENIX_PASSWORD`` or a prompt), else
``PHOENIX_TOKEN`` (a ``phx_`` API token), else ``PHOENIX_USER`` with a password. A token
wins over ``PHOENIX_USER`` here because a name alone proves nothing to a server.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.commands import experiment, experiment_run, pipeline
from core.commands import experiment_views as views
from core.commands.rest_client import RestClient
from core.domain.durations import format_duration
from core.domain.errors import AuthenticationError, ConcurrencyError, ValidationError

SERVER_ENV = "PHOENIX_SERVER"
TOKEN_ENV = "PHOENIX_TOKEN"
USER_ENV = "PHOENIX_USER"
PASSWORD_ENV = "PHOENIX_PASSWORD"
#: Exit status of a command that cannot run against a server (argparse's usage-error status).
NOT_AVAILABLE = 2
#: Command groups that never read the database: with --server they still run on this host.
LOCAL_GROUPS = frozenset({"fleet", "bench", "otelcol", "loadsim"})
TERMINAL_STATES = frozenset({"Completed", "Failed", "Cancelled"})
#: The keys of ``experiment_to_dict`` in its order: a remote view shows the same keys (those the server sends).
VIEW_KEYS = ("id", "name", "description", "owner", "state", "dry_run", "baseline", "candidate", "target",
             "load_profile", "duration_s", "interval_s", "criteria", "critical_policy", "result", "error",
             "runtime_info", "version", "created_at", "started_at", "finished_at", "events", "promoted")
#: The keys of an ``experiment list --json`` row (``ExperimentSummary``).
ROW_KEYS = ("id", "name", "state", "owner", "baseline", "candidate", "created_at", "started_at", "finished_at",
            "duration_s", "dry_run", "verdict", "error")
TIMESTAMPS = ("created_at", "started_at", "finished_at")
HOW_TO_SIGN_IN = (f"with --server, set {TOKEN_ENV} to an API token ('phoenix token create' on the server host) "
                  f"or pass --as NAME (the password from {PASSWORD_ENV} or a prompt)")
MAX_PAGE = 500
CANCEL_ATTEMPTS = 3

Handler = Callable[[argparse.Namespace], int]


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ dispatch

def handler_for(args: argparse.Namespace) -> Handler:
    """What runs this command line when a server is given (see the module doc)."""
    group = args.command
    action = getattr(args, f"{group}_command", None)
    remote = HANDLERS.get((group, action))
    if remote is not None:
        return remote
    if group in LOCAL_GROUPS:
        return args.handler  # type: ignore[no-any-return]
    return _not_available


def _not_available(args: argparse.Namespace) -> int:
    action = getattr(args, f"{args.command}_command", None)
    what = " ".join(str(p) for p in ("phoenix", args.command, action) if p)
    from_env = "" if getattr(args, "server_from_flag", True) else f" (unset {SERVER_ENV} to run it here)"
    _err(f"error: '{what}' is not available with --server: run it on the server host{from_env}")
    return NOT_AVAILABLE


# ------------------------------------------------------------------ signing in

def _password(name: str, where: str) -> str:
    password = os.environ.get(PASSWORD_ENV)
    if password:
        return password
    if not sys.stdin.isatty():
        raise AuthenticationError(f"--as {name}: no password; set {PASSWORD_ENV} or run it in a terminal "
                                  f"to be asked, or set {TOKEN_ENV}")
    return getpass.getpass(f"password for {name} on {where}: ")


def connect(args: argparse.Namespace) -> RestClient:
    """A client of ``args.server`` signed in as the command line says (see the module doc)."""
    client = RestClient(args.server)
    try:
        name = (getattr(args, "as_user", None) or "").strip()
        token = os.environ.get(TOKEN_ENV, "").strip()
        if not name and not token:
            name = os.environ.get(USER_ENV, "").strip()
        if name:
            client.sign_in(name, _password(name, client.shown_url))
        elif token:
            client.use_token(token)
        else:
            raise AuthenticationError(f"who is acting? {HOW_TO_SIGN_IN}")
    except BaseException:
        client.close()
        raise
    return client


# ------------------------------------------------------------------ shaping the answers

def _normalised(d: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """``d`` with the local view's keys, in its order, and its one spelling of timestamps."""
    out = {k: d[k] for k in keys if k in d}
    for k in TIMESTAMPS:
        if k in out:
            out[k] = views.iso(out[k])
    if isinstance(out.get("events"), list):
        out["events"] = [{**ev, "at": views.iso(ev.get("at"))} for ev in out["events"]]
    return out


def experiment_view(answer: dict[str, Any]) -> dict[str, Any]:
    """An API experiment as ``experiment_to_dict`` shows it locally."""
    return _normalised(answer, VIEW_KEYS)


def _create_body(fields: dict[str, Any]) -> dict[str, Any]:
    """``CreateExperiment`` fields as JSON (the domain objects as their ``to_dict``)."""
    body = {k: (v.to_dict() if hasattr(v, "to_dict") else v) for k, v in fields.items()}
    return {k: v for k, v in body.items() if v is not None}


def _final_view(api: RestClient, experiment_id: str) -> dict[str, Any]:
    d = experiment_view(api.get(f"/experiments/{experiment_id}"))
    samples = api.get(f"/experiments/{experiment_id}/samples")
    return experiment_run.complete_final_view(d, [s["variant"] for s in samples])


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2))


# ------------------------------------------------------------------ experiments

def experiment_list(args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = []
    with connect(args) as api:
        cursor: str | None = None
        while len(rows) < args.limit:
            params: dict[str, Any] = {"limit": min(MAX_PAGE, args.limit - len(rows))}
            if args.state:
                params["state"] = args.state
            if cursor:
                params["cursor"] = cursor
            page = api.get("/experiments", **params)
            rows += [_normalised(r, ROW_KEYS) for r in page["items"]]
            cursor = page.get("next_cursor")
            if not cursor:
                break
    if args.json:
        _print_json(rows)
    else:
        views.print_rows(rows)
    return 0


def experiment_show(args: argparse.Namespace) -> int:
    with connect(args) as api:
        d = experiment_view(api.get(f"/experiments/{args.id}"))
        if args.json:
            d["samples"] = len(api.get(f"/experiments/{args.id}/samples"))
    if args.json:
        _print_json(d)
    else:
        views.print_experiment(d)
    return 0


def experiment_create(args: argparse.Namespace) -> int:
    body = _create_body(experiment.create_fields(args))  # bad arguments fail here, before any request
    with connect(args) as api:
        d = experiment_view(api.post("/experiments", body))
    if args.json:
        _print_json(d)
    else:
        views.print_created(d)
    return 0


def _cancel(api: RestClient, experiment_id: str, reason: str) -> dict[str, Any]:
    """Cancel with the ``If-Match`` the route needs; a change in between is read again and retried."""
    attempt = 1
    while True:
        etag = api.request("GET", f"/experiments/{experiment_id}").headers.get("ETag", "")
        try:
            return api.post(f"/experiments/{experiment_id}/cancel", {"reason": reason}, headers={"If-Match": etag})
        except ConcurrencyError:
            if attempt >= CANCEL_ATTEMPTS:
                raise
            attempt += 1


def experiment_cancel(args: argparse.Namespace) -> int:
    with connect(args) as api:
        d = experiment_view(_cancel(api, args.id, args.reason))
    if args.json:
        _print_json(d)
    else:
        views.print_cancelled(d)
    return 0


def experiment_rerun(args: argparse.Namespace) -> int:
    with connect(args) as api:
        d = experiment_view(api.post(f"/experiments/{args.id}/rerun"))
    if args.json:
        _print_json(d)
    else:
        views.print_rerun(d, args.id)
    return 0


def experiment_promote(args: argparse.Namespace) -> int:
    request = experiment_run.promote_request(args)
    with connect(args) as api:
        rec = api.post(f"/experiments/{args.id}/promote", {"force": request.force, "reason": request.reason})
    experiment_run.print_promoted(rec, as_json=args.json)
    return 0


def experiment_samples(args: argparse.Namespace) -> int:
    with connect(args) as api:
        rows = [views.sample_view(s) for s in api.get(f"/experiments/{args.id}/samples")]
    if args.json:
        _print_json(rows)
    else:
        views.print_samples(rows)
    return 0


def follow(api: RestClient, experiment_id: str, *, as_json: bool) -> int:
    """Follow the experiment's event stream to its end, then print it as ``run --wait`` does.

    State changes and sample counts go to stderr, the final view to stdout; 0 when it
    Completed, 1 when it Failed or was Cancelled.
    """
    current = api.get(f"/experiments/{experiment_id}")  # an unknown id: a 404 before any stream
    if current["state"] not in TERMINAL_STATES:
        samples = 0
        for event in api.events(f"/experiments/{experiment_id}/events"):
            data = event.data if isinstance(event.data, dict) else {}
            if event.name == "state":
                _err(views.progress_line(experiment_id, views.transition_text(
                    str(data.get("from")), str(data.get("to")), data.get("reason"))))
            elif event.name == "sample":
                samples += 1
                _err(views.progress_line(experiment_id, f"running, {samples} samples recorded"))
            elif event.name == "verdict":
                _err(views.progress_line(experiment_id, f"verdict {data.get('verdict')}"))
            elif event.name == "end":
                break
    d = _final_view(api, experiment_id)
    if as_json:
        _print_json(d)
    else:
        experiment_run.print_summary(d)
    return experiment_run.exit_code(d)


def experiment_watch(args: argparse.Namespace) -> int:
    with connect(args) as api:
        return follow(api, args.id, as_json=args.json)


def experiment_run_remote(args: argparse.Namespace) -> int:
    """``experiment run``: create it on the server; with ``--wait``, follow it there to its verdict.

    The server's scheduler runs it. Ctrl-C while waiting cancels it, as the local ``--wait`` does.
    """
    body = _create_body(experiment_run.run_fields(args))
    with connect(args) as api:
        d = experiment_view(api.post("/experiments", body))
        label = " (dry run: the configured runtime starts no collectors)" if d.get("dry_run") else ""
        if not args.wait:
            if args.json:
                _print_json(experiment_run.complete_final_view(d, []))
            else:
                print(d["id"])
            _err(f"created {d['id']}{label}; the server's scheduler will run it")
            return 0
        _err(f"{d['id']}: {d['baseline']} vs {d['candidate']}, {format_duration(d['duration_s'])} every "
             f"{format_duration(d['interval_s'])}, server {api.shown_url}{label}")
        try:
            return follow(api, d["id"], as_json=args.json)
        except KeyboardInterrupt:
            _cancel(api, d["id"], "experiment run interrupted")
            _err(f"{d['id']}: cancelled")
            return 130


# ------------------------------------------------------------------ pipelines

def pipeline_list(args: argparse.Namespace) -> int:
    with connect(args) as api:
        names = api.get("/templates")
        rows = [(n, "template", "-", pipeline.first_sentence(api.get(f"/templates/{n}").get("description", "")))
                for n in names]
        rows += [(p["name"], "saved", str(p.get("latest_version") or "-"), pipeline.first_sentence(p["description"]))
                 for p in api.get("/pipelines")]
    pipeline.print_pipeline_rows(rows)
    return 0


def pipeline_validate(args: argparse.Namespace) -> int:
    """A pipeline graph is checked by the server's graph rules; a collector YAML needs no server."""
    from core.domain.documents import load_mapping, read_bounded

    path = Path(args.file)
    if not path.is_file():
        print(f"{path}: no such file")
        return 1
    try:
        data = load_mapping(read_bounded(path, what="pipeline file"), source=str(path))
    except ValidationError as exc:
        for p in exc.problems:
            print(p)
        return 1
    if not (isinstance(data, dict) and "nodes" in data):
        return pipeline.cmd_validate(args)  # a collector config: validated on this host, as without --server
    with connect(args) as api:
        try:
            answer = api.post("/pipelines/validate", data)
        except ValidationError as exc:  # not a pipeline graph at all: the same sentences as locally
            for p in exc.problems:
                print(p)
            return 1
    if answer["problems"]:
        for p in answer["problems"]:
            print(p)
        print("validated by: graph rules")
        return 1
    print(f"OK: {args.file} is a valid pipeline graph (validated by: graph rules on {api.shown_url})")
    return 0


def _graph_of(api: RestClient, ref: str) -> dict[str, Any]:
    """A template, ``name@N`` or the latest version of a saved pipeline, from the server."""
    name, sep, number = ref.partition("@")
    if sep:
        if not number.isdigit():
            raise ValidationError(f"{ref!r}: the version after @ must be a number")
        return api.get(f"/pipelines/{name}/versions/{number}")["graph"]  # type: ignore[no-any-return]
    if name in api.get("/templates"):
        return api.get(f"/templates/{name}")  # type: ignore[no-any-return]
    saved = {p["name"]: p for p in api.get("/pipelines")}
    latest = saved.get(name, {}).get("latest_version")
    if not latest:
        raise ValidationError(f"{ref!r} is neither a built-in template nor a pipeline saved on {api.shown_url}")
    return api.get(f"/pipelines/{name}/versions/{latest}")["graph"]  # type: ignore[no-any-return]


def pipeline_export(args: argparse.Namespace) -> int:
    from core.domain.pipeline import Pipeline
    from core.outputs import output_file, write_file

    if Path(args.pipeline).is_file():
        return pipeline.cmd_export(args)  # a file needs no server
    out = output_file(args.out, create_parents=True) if args.out is not None else None
    with connect(args) as api:
        graph = Pipeline.from_dict(_graph_of(api, args.pipeline))
    if out is not None:
        write_file(out, graph.to_yaml() if out.suffix.lower() in (".yaml", ".yml") else graph.to_json(),
                   create_parents=True)
        print(out)
    else:
        sys.stdout.write(graph.to_json())
    return 0


def pipeline_import(args: argparse.Namespace) -> int:
    from core.domain.pipeline import Pipeline

    path = Path(args.file)
    if not path.is_file():
        raise ValidationError(f"{path}: no such file")
    data = Pipeline.from_file(path).to_dict()
    if args.name:
        data["name"] = args.name
    with connect(args) as api:
        saved = api.post(f"/pipelines/{data['name']}/versions", {"pipeline": data, "message": args.message})
    print(f"saved {saved['name']} v{saved['number']} (commit {(saved.get('commit_id') or '')[:12]})")
    return 0


HANDLERS: dict[tuple[str, str | None], Handler] = {
    ("experiment", "list"): experiment_list,
    ("experiment", "show"): experiment_show,
    ("experiment", "create"): experiment_create,
    ("experiment", "run"): experiment_run_remote,
    ("experiment", "cancel"): experiment_cancel,
    ("experiment", "rerun"): experiment_rerun,
    ("experiment", "promote"): experiment_promote,
    ("experiment", "samples"): experiment_samples,
    ("experiment", "watch"): experiment_watch,
    ("pipeline", "list"): pipeline_list,
    ("pipeline", "validate"): pipeline_validate,
    ("pipeline", "export"): pipeline_export,
    ("pipeline", "import"): pipeline_import,
}
