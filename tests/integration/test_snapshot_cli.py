"""``phoenix snapshot add|list|retrain`` end to end against a real database (SQLite and
PostgreSQL): stored history, a retrain that saves a version, one that changes nothing, and
bad input as one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.catalog.templates import get_template
from core.cli import main
from core.engine.anomalies import inject_anomalies
from core.engine.fleet import generate_fleet
from core.engine.snapshot import write_snapshot
from tests.actors import cli_account


@pytest.fixture
def env(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("PHOENIX_DATABASE_URL", db_url)
    cli_account(db_url, monkeypatch)
    monkeypatch.setenv("PHOENIX_RUNTIME", "memory")
    monkeypatch.setenv("PHOENIX_DATA_DIR", str(tmp_path))
    fleet = inject_anomalies(generate_fleet(5, 100, seed=8, scrapes=12, interval_s=60.0), per_kind=1, seed=8).frame
    write_snapshot(fleet[fleet["scrape"] < 6], tmp_path / "monday.csv")
    write_snapshot(fleet[fleet["scrape"] >= 6], tmp_path / "tuesday.csv")
    smart = get_template("process-intelligent-v1").to_dict()
    (tmp_path / "smart.json").write_text(json.dumps({**smart, "name": "smart"}))
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_add_list_retrain(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "pipeline", "import", str(env / "smart.json"), "-m", "first")[0] == 0
    code, out, err = run(capsys, "snapshot", "retrain", "smart")
    assert code != 0 and "no snapshots stored in scope 'default'" in err and "Traceback" not in err
    for day in ("monday", "tuesday"):
        code, out, err = run(capsys, "snapshot", "add", str(env / f"{day}.csv"))
        assert code == 0, err
        assert "5 hosts" in out and "6 scrapes per host" in out
    code, out, _ = run(capsys, "snapshot", "list", "--json")
    assert [r["source"] for r in json.loads(out)] == ["tuesday.csv", "monday.csv"]

    code, out, err = run(capsys, "snapshot", "retrain", "smart")
    assert code == 0, err
    assert "learned from 2 snapshot(s): saved version 2" in out and "kept: " in out
    code, out, _ = run(capsys, "snapshot", "retrain", "smart", "--json")
    assert json.loads(out)["changed"] is False and json.loads(out)["version"] == 2


def test_bad_input_is_one_line(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (env / "bad.csv").write_text("timestamp,host_name\n1,h\n")
    for argv in (("snapshot", "add", str(env / "missing.csv")), ("snapshot", "add", str(env / "bad.csv")),
                 ("snapshot", "add", str(env / "monday.csv"), "--scope", "a${b}")):
        code, out, err = run(capsys, *argv)
        assert code != 0 and err.strip() and "Traceback" not in err, argv
        assert len(err.strip().splitlines()) == 1, err
