"""``phoenix db|experiment|scheduler`` end to end against a real database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import main
from tests.actors import cli_account


@pytest.fixture
def env(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    monkeypatch.setenv("PHOENIX_DATABASE_URL", db_url)
    cli_account(db_url, monkeypatch)  # the CLI acts as a stored account
    monkeypatch.setenv("PHOENIX_RUNTIME", "memory")
    monkeypatch.setenv("PHOENIX_DATA_DIR", str(tmp_path))
    return db_url


def _saved_pipeline_yaml(name: str) -> str:
    from core.catalog.templates import get_template
    from core.domain.pipeline import Pipeline

    return Pipeline.from_dict({**get_template("process-topk-v1").to_dict(), "name": name}).to_yaml()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_create_list_show_cancel(env: str, capsys, tmp_path: Path) -> None:
    assert run(capsys, "db", "upgrade")[0] == 0
    crit = tmp_path / "critical.yaml"
    crit.write_text("rules:\n  - {match: executable_name, pattern: '^nginx$', priority: critical}\n")
    saved = tmp_path / "my-topk.yaml"  # a saved pipeline with two versions: the candidate is my-topk@2
    saved.write_text(_saved_pipeline_yaml("my-topk"))
    for message in ("first cut", "second cut"):
        assert run(capsys, "pipeline", "import", str(saved), "-m", message)[0] == 0
    code, out, _ = run(capsys, "experiment", "create", "--name", "demo", "--baseline", "process-baseline-v1",
                       "--candidate", "my-topk@2", "--duration", "2m", "--interval", "10s", "--load", "process-churn",
                       "--owner", "alice", "--description", "first try", "--critical-file", str(crit),
                       "--min-series-reduction", "60", "--max-cpu-overhead", "5", "--json")
    assert code == 0
    created = json.loads(out)
    eid = created["id"]
    assert created["state"] == "Pending" and created["dry_run"] is True
    assert (created["duration_s"], created["interval_s"], created["candidate"]) == (120.0, 10.0, "my-topk@2")
    assert created["critical_policy"] == [{"match": "executable_name", "pattern": "^nginx$", "priority": "critical"}]
    assert created["criteria"]["min_series_reduction_pct"] == 60 and created["owner"] == "alice"

    code, out, _ = run(capsys, "experiment", "list", "--json")
    assert code == 0 and [r["id"] for r in json.loads(out)] == [eid]
    code, out, _ = run(capsys, "experiment", "list")
    assert eid in out and "process-baseline-v1 -> my-topk@2" in out and "[dry run]" in out

    code, out, _ = run(capsys, "experiment", "cancel", eid, "--reason", "wrong load")
    assert code == 0 and "cancelled" in out
    code, out, _ = run(capsys, "experiment", "show", eid)
    assert code == 0
    assert "state:      Cancelled" in out and "1 custom rules" in out
    assert "Pending ->" in out and "Cancelled" in out and "wrong load" in out
    code, out, _ = run(capsys, "experiment", "show", eid, "--json")
    shown = json.loads(out)
    assert [(e["from"], e["to"], e["reason"]) for e in shown["events"]] == [("Pending", "Cancelled", "wrong load")]
    assert shown["samples"] == 0

    code, _, err = run(capsys, "experiment", "cancel", eid)
    assert code == 1 and err.strip() == f"error: experiment {eid} is Cancelled and can no longer be cancelled"

    # Re-run: a new Pending experiment with every setting of the cancelled one.
    code, out, _ = run(capsys, "experiment", "rerun", eid, "--json")
    assert code == 0
    again = json.loads(out)
    assert again["id"] != eid and again["state"] == "Pending" and again["name"] == "demo (re-run)"
    same = ("baseline", "candidate", "duration_s", "interval_s", "load_profile", "target", "criteria",
            "critical_policy", "owner", "description")
    assert {k: again[k] for k in same} == {k: created[k] for k in same}
    code, out, err = run(capsys, "experiment", "rerun", again["id"])
    assert code == 1 and out == "" and "is Pending; only a finished experiment can be re-run" in err and "Traceback" not in err
    code, _, err = run(capsys, "experiment", "rerun", "exp-nope")
    assert code == 1 and "no experiment with id 'exp-nope'" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--duration=-5s"], "--duration must be positive"),
        (["--interval", "2x"], "--interval must be a duration like 60s"),
        (["--duration", "5s", "--interval", "10s"], "interval (10s) must be shorter than the duration (5s)"),
        (["--load", "chaos"], "unknown load profile 'chaos'"),
        (["--min-series-reduction", "150"], "min series reduction must be between 0 and 100"),
        (["--critical-file", "/nonexistent/c.yaml"], "cannot read critical file /nonexistent/c.yaml"),
        (["--target", "kubernetes"], "a kubernetes target needs a namespace"),
        (["--node-selector", "novalue"], "--node-selector must be KEY=VALUE"),
    ],
)
def test_create_rejects_bad_input(env: str, capsys, argv: list[str], message: str) -> None:
    code, out, err = run(capsys, "experiment", "create", "--name", "x", "--baseline", "process-baseline-v1",
                         "--candidate", "process-topk-v1", *argv)
    assert code == 1 and out == ""
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err
    assert run(capsys, "experiment", "list", "--json")[1].strip() == "[]"


@pytest.mark.parametrize(("runtime", "argv", "message"), [
    ("local", ["--target", "kubernetes", "--namespace", "obs"], "--target kubernetes needs the Kubernetes runtime"),
    ("kubernetes", [], "pass --target kubernetes --namespace NS"),
])  # fmt: skip
def test_a_target_the_runtime_cannot_run_is_refused(env: str, capsys, monkeypatch, runtime: str, argv: list[str],
                                                    message: str) -> None:
    monkeypatch.setenv("PHOENIX_RUNTIME", runtime)
    for command in (["create", "--name", "x"], ["run"]):
        code, out, err = run(capsys, "experiment", *command, "--baseline", "process-baseline-v1",
                             "--candidate", "process-topk-v1", *argv)
        assert (code, out) == (1, "") and message in err and "Traceback" not in err
    assert run(capsys, "experiment", "list", "--json")[1].strip() == "[]"  # nothing was created


def test_empty_name_and_refs(env: str, capsys) -> None:
    code, _, err = run(capsys, "experiment", "create", "--name", " ", "--baseline", "", "--candidate", "b@x")
    assert code == 1
    assert "name must not be empty" in err and "baseline must be a pipeline name" in err
    assert "candidate version in 'b@x' must be a positive whole number" in err


def test_show_unknown_id(env: str, capsys) -> None:
    code, _, err = run(capsys, "experiment", "show", "exp-00000000")
    assert code == 1 and err.strip() == "error: no experiment with id 'exp-00000000'"


def test_list_empty_says_how_to_start(env: str, capsys) -> None:
    code, out, _ = run(capsys, "experiment", "list")
    assert code == 0 and "no experiments yet" in out


def test_database_down_is_one_clear_line(monkeypatch, capsys) -> None:
    monkeypatch.setenv("PHOENIX_DATABASE_URL", "postgresql+psycopg://postgres:pw@127.0.0.1:9/phoenix")
    monkeypatch.setenv("PHOENIX_RUNTIME", "memory")
    for argv in (["db", "upgrade"], ["experiment", "list"]):
        code, _, err = run(capsys, *argv)
        assert code == 1
        assert err.startswith("error: database postgresql+psycopg://postgres:***@127.0.0.1:9/phoenix is unavailable")
        assert "Traceback" not in err and "pw@" not in err


def test_scheduler_once_drives_a_step_and_db_current(env: str, capsys) -> None:
    run(capsys, "db", "upgrade")
    code, out, _ = run(capsys, "db", "current")
    assert code == 0 and "up to date" in out
    _, out, _ = run(capsys, "experiment", "create", "--name", "x", "--baseline", "process-baseline-v1",
                    "--candidate", "process-topk-v1", "--json")
    eid = json.loads(out)["id"]
    code, out, _ = run(capsys, "scheduler", "--once")
    assert code == 0 and f"{eid}: Pending -> Initializing" in out
    code, _, err = run(capsys, "scheduler", "--interval", "0")
    assert code == 1 and "--interval must be a positive number" in err


def test_console_script_entry_point(tmp_path: Path) -> None:
    # `python -m core.cli` is exercised by the crash-recovery test; this is the installed script.
    script = Path(sys.executable).parent / "phoenix"
    env = {"PATH": "/usr/bin:/bin", "PHOENIX_DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}", "PHOENIX_RUNTIME": "memory"}
    res = subprocess.run([str(script), "db", "upgrade"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "is at revision" in res.stdout
