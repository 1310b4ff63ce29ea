"""``phoenix demo seed`` writes terminal experiments with valid event logs and pipeline versions."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.bootstrap import bootstrap
from core.cli import main
from core.settings import Settings
from tests.actors import ADMIN, cli_account


def test_seed_small(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PHOENIX_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PHOENIX_DATABASE_URL", f"sqlite:///{tmp_path}/phoenix.db")
    cli_account(f"sqlite:///{tmp_path}/phoenix.db", monkeypatch)  # the CLI acts as a stored account
    monkeypatch.setenv("PHOENIX_RUNTIME", "memory")
    assert main(["demo", "seed", "--experiments", "60", "--versions", "24", "--pipelines", "6"]) == 0
    assert "seeded 60 experiments and 24 versions of 6 pipelines" in capsys.readouterr().out
    svc = bootstrap(Settings.from_env())
    try:
        counts = svc.experiments.counts_by_state(ADMIN)
        assert sum(counts.values()) == 60
        assert set(k for k, v in counts.items() if v) <= {"Completed", "Failed", "Cancelled"}
        done = svc.experiments.list(ADMIN, states=["Completed"], limit=1)[0]
        exp = svc.experiments.get(ADMIN, done.id)
        assert [e.to_state for e in exp.events] == ["Initializing", "Running", "Analyzing", "Completed"]
        assert exp.result["verdict"] in ("PROMOTE", "REJECT", "INCONCLUSIVE") and exp.result["criteria"]
        with svc.uow() as uow:
            pipelines = [p for p in uow.pipelines.list_pipelines() if p.latest_version]
        assert len(pipelines) == 6 and all(p.latest_version == 4 for p in pipelines)
    finally:
        svc.close()
    assert main(["demo", "seed", "--experiments", "-1"]) == 1
