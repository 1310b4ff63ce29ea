"""``phoenix --server URL``: the CLI as a client of a real ``phoenix api`` (uvicorn on loopback).

Each command runs twice where it can, once against the server and once on the same database
without it, and must print the same thing. The one allowed difference: parts of an
experiment the server does not send (its answer lacks the key) are left out, never guessed.

The server is a real ``phoenix api`` process; most commands run through ``core.cli.main`` in this
process (``LiveServer.cli``), since a subprocess per command only repeats the interpreter start.
A server that is down, ``db upgrade`` refused with ``--server`` and a local ``fleet generate``
run ``python -m core`` in a subprocess (``LiveServer.phoenix``), so the real entry point is covered
on both paths: against the server and against the database.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.catalog.templates import get_template
from tests.live_phoenix import PASSWORD, LiveServer, free_port, live_server

#: ``experiment show`` lines by the view key they print (the event log is a block).
SHOW_LINE_KEYS = {"  target:": "target", "  criteria:": "criteria", "  critical:": "critical_policy"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("remote")) as live:
        yield live


def _ok(run: Any) -> str:
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    return str(run.stdout)


def _api_experiment(server: LiveServer, experiment_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{server.url}/api/v1/experiments/{experiment_id}",
                       headers={"Authorization": f"Bearer {server.token}"}, timeout=10)
    answer.raise_for_status()
    return dict(answer.json())


def _without_unsent_parts(show: str, sent: dict[str, Any]) -> list[str]:
    """The local ``experiment show`` lines minus the parts the server's answer does not carry."""
    out: list[str] = []
    in_events = False
    for line in show.splitlines():
        if line == "  events:":
            in_events = "events" not in sent
            if in_events:
                continue
        elif in_events and line.startswith("    "):
            continue
        else:
            in_events = False
        key = next((k for prefix, k in SHOW_LINE_KEYS.items() if line.startswith(prefix)), None)
        if key is not None and key not in sent:
            continue
        out.append(line)
    return out


def _same_keys_and_values(remote: dict[str, Any], local: dict[str, Any], sent: dict[str, Any]) -> None:
    """``remote`` shows ``local``'s keys with the same values, except keys the server never sent."""
    assert set(remote) <= set(local)
    assert {k for k in set(local) - set(remote)} <= {k for k in local if k not in sent} - {"samples"}
    assert remote == {k: local[k] for k in remote}


def final_view_subset(remote: dict[str, Any], local: dict[str, Any]) -> bool:
    return set(remote) <= set(local) and remote == {k: local[k] for k in remote}


def _ages_masked(table: str) -> str:
    """The AGE column counts seconds since creation, which moves between two runs."""
    return re.sub(r"(?m)^(exp-\S+ +\S+) +\d+[smhd]  ", r"\1 <age>  ", table)


def test_experiment_commands_print_what_the_local_ones_print(server: LiveServer) -> None:
    created = _ok(server.cli("experiment", "create", "--name", "remote one", "--baseline", "process-baseline-v1",
                                 "--candidate", "process-topk-v1", "--duration", "2m", "--min-samples", "7"))
    assert re.fullmatch(r"created (exp-\S+) 'remote one': process-baseline-v1 vs process-topk-v1, state Pending"
                        r" \(dry run: no collectors are started by this runtime\)\n", created), created
    eid = created.split()[1]
    sent = _api_experiment(server, eid)

    remote_list, local_list = _ok(server.cli("experiment", "list")), _ok(server.cli("experiment", "list",
                                                                                          remote=False))
    assert eid in remote_list
    assert _ages_masked(remote_list) == _ages_masked(local_list)

    remote_rows = json.loads(_ok(server.cli("experiment", "list", "--json")))
    local_rows = json.loads(_ok(server.cli("experiment", "list", "--json", remote=False)))
    assert [r["id"] for r in remote_rows] == [r["id"] for r in local_rows]
    for remote, local in zip(remote_rows, local_rows, strict=True):
        assert remote == {k: local[k] for k in remote} and set(remote) <= set(local)

    remote_show = _ok(server.cli("experiment", "show", eid))
    local_show = _ok(server.cli("experiment", "show", eid, remote=False))
    assert "  timing:     2m every 5s" in remote_show.splitlines()
    assert remote_show.splitlines() == _without_unsent_parts(local_show, sent)

    remote_json = json.loads(_ok(server.cli("experiment", "show", eid, "--json")))
    local_json = json.loads(_ok(server.cli("experiment", "show", eid, "--json", remote=False)))
    assert remote_json["samples"] == local_json["samples"] == 0
    _same_keys_and_values(remote_json, local_json, sent)

    cancelled = _ok(server.cli("experiment", "cancel", eid, "--reason", "from the client test"))
    assert cancelled == f"{eid} cancelled; the scheduler stops its collectors on its next tick\n"
    after = _api_experiment(server, eid)
    assert after["state"] == "Cancelled"

    rerun = _ok(server.cli("experiment", "rerun", eid))
    assert re.fullmatch(rf"created exp-\S+ 'remote one \(re-run\)' re-running {eid}, state Pending \(dry run: .*\)\n", rerun)


def test_a_validation_error_reads_as_it_does_locally(server: LiveServer) -> None:
    argv = ("experiment", "create", "--name", "bad", "--baseline", "no-such-pipeline", "--candidate",
            "process-topk-v1")
    remote, local = server.cli(*argv), server.cli(*argv, remote=False)
    assert remote.returncode == local.returncode == 1
    assert remote.stderr == local.stderr
    assert remote.stderr.startswith("error: baseline pipeline 'no-such-pipeline' does not exist")
    # bad arguments are refused before any request, with every problem at once, as locally
    argv = ("experiment", "create", "--name", "bad", "--baseline", "process-baseline-v1", "--candidate",
            "process-topk-v1", "--duration", "soon", "--interval", "often")
    remote, local = server.cli(*argv), server.cli(*argv, remote=False)
    assert remote.returncode == local.returncode == 1 and remote.stderr == local.stderr
    assert "--duration" in remote.stderr and "--interval" in remote.stderr


def test_pipeline_import_list_export_and_validate(server: LiveServer, tmp_path: Path) -> None:
    graph = get_template("process-minimal-v1").to_dict()
    graph["name"] = "minimal-remote"
    saved_file = tmp_path / "minimal.json"
    saved_file.write_text(json.dumps(graph))
    saved = _ok(server.cli("pipeline", "import", str(saved_file), "-m", "from the client test"))
    assert re.fullmatch(r"saved minimal-remote v1 \(commit [0-9a-f]{12}\)\n", saved), saved

    remote_list = _ok(server.cli("pipeline", "list"))
    assert remote_list == _ok(server.cli("pipeline", "list", remote=False))
    assert re.search(r"(?m)^minimal-remote\s+saved\s+1\s", remote_list)

    exported = _ok(server.cli("pipeline", "export", "minimal-remote@1"))
    assert exported == _ok(server.cli("pipeline", "export", "minimal-remote@1", remote=False))
    assert json.loads(exported)["name"] == "minimal-remote"

    broken = get_template("process-topk-v1").to_dict()
    broken["nodes"] = [n for n in broken["nodes"] if n["id"] != "memory_limiter"]
    broken_file = tmp_path / "broken.json"
    broken_file.write_text(json.dumps(broken))
    remote, local = (server.cli("pipeline", "validate", str(broken_file)),
                     server.cli("pipeline", "validate", str(broken_file), remote=False))
    assert remote.returncode == local.returncode == 1
    assert remote.stdout == local.stdout
    assert "points to unknown node(s): memory_limiter" in remote.stdout

    # the server refuses it with a 422: its sentences are printed as the local command prints them
    not_a_graph = tmp_path / "not-a-graph.json"
    not_a_graph.write_text(json.dumps({"name": "x", "nodes": "bad"}))
    remote = server.cli("pipeline", "validate", str(not_a_graph))
    assert remote.returncode == 1 and remote.stdout == "nodes must be a list\n", remote


def test_signing_in_with_a_name_and_password(server: LiveServer) -> None:
    run = server.cli("--as", "ops", "experiment", "list", "--json",
                         extra_env={"PHOENIX_TOKEN": "", "PHOENIX_PASSWORD": PASSWORD})
    assert isinstance(json.loads(_ok(run)), list)
    wrong = server.cli("--as", "ops", "experiment", "list",
                           extra_env={"PHOENIX_TOKEN": "", "PHOENIX_PASSWORD": "not the password"})
    assert wrong.returncode == 1 and wrong.stderr.startswith("error: ") and len(wrong.stderr.splitlines()) == 1
    assert "not the password" not in wrong.stderr
    nobody = server.cli("--as", "ops", "experiment", "list", extra_env={"PHOENIX_TOKEN": ""})
    assert nobody.returncode == 1 and "PHOENIX_PASSWORD" in nobody.stderr


def test_a_bad_token_is_one_clear_line(server: LiveServer) -> None:
    run = server.cli("experiment", "list", extra_env={"PHOENIX_TOKEN": "phx_not-a-real-token"})
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr.startswith("error: ") and len(run.stderr.splitlines()) == 1
    assert "phx_not-a-real-token" not in run.stderr


def test_no_credentials_says_how_to_sign_in(server: LiveServer) -> None:
    run = server.cli("experiment", "list", extra_env={"PHOENIX_TOKEN": ""})
    assert run.returncode == 1 and "PHOENIX_TOKEN" in run.stderr and "--as NAME" in run.stderr


def test_a_server_that_is_down_is_named(server: LiveServer) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    run = server.phoenix("--server", down, "experiment", "list", remote=False,
                         extra_env={"PHOENIX_TOKEN": server.token})
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr == f"error: cannot reach the Phoenix server at {down}: connection refused\n"


def test_a_server_url_that_is_not_one(server: LiveServer) -> None:
    run = server.cli("--server", "ftp://example.invalid", "experiment", "list", remote=False,
                         extra_env={"PHOENIX_TOKEN": server.token})
    assert run.returncode == 1 and "is not a server URL" in run.stderr


def test_commands_without_a_route_refuse_and_local_ones_still_run(server: LiveServer, tmp_path: Path) -> None:
    run = server.phoenix("db", "upgrade")
    assert run.returncode == 2
    assert run.stderr == "error: 'phoenix db upgrade' is not available with --server: run it on the server host\n"
    from_env = server.cli("user", "list", remote=False,
                              extra_env={"PHOENIX_SERVER": server.url, "PHOENIX_TOKEN": server.token})
    assert from_env.returncode == 2 and "unset PHOENIX_SERVER" in from_env.stderr
    fleet = server.phoenix("fleet", "generate", "--nodes", "2", "--procs", "5", "--out", str(tmp_path / "f.csv"))
    assert fleet.returncode == 0 and (tmp_path / "f.csv").is_file(), fleet.stderr


def test_watching_an_ended_experiment_prints_it_and_exits_1_unless_completed(server: LiveServer) -> None:
    """An experiment that has ended needs no event stream: its summary, and run --wait's exit code."""
    created = server.cli("experiment", "create", "--name", "to cancel", "--baseline", "process-baseline-v1",
                             "--candidate", "process-topk-v1", "--duration", "10m", "--json")
    assert created.returncode == 0, created.stderr
    eid = json.loads(created.stdout)["id"]
    cancel = server.cli("experiment", "cancel", eid)
    assert cancel.returncode == 0, cancel.stderr
    watched = server.cli("experiment", "watch", eid, "--json")
    local = server.cli("experiment", "watch", eid, "--json", remote=False)
    local_view = json.loads(local.stdout)
    assert local.returncode == 1 and final_view_subset(json.loads(watched.stdout), local_view)
    assert watched.returncode == 1
    final = json.loads(watched.stdout)
    assert final["state"] == "Cancelled" and final["samples_recorded"] == {"baseline": 0, "candidate": 0}
    assert watched.stderr.strip() == f"error: experiment {eid} Cancelled: cancelled"

    remote_samples, local_samples = (server.cli("experiment", "samples", eid),
                                     server.cli("experiment", "samples", eid, remote=False))
    assert _ok(remote_samples) == _ok(local_samples) == "no samples yet: the scheduler records them while the " \
        "experiment runs\n"
