"""The experiment page's Promote button goes through ExperimentService.promote (real git, SQLite)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from core.bootstrap import Services, bootstrap
from core.settings import Settings
from tests.actors import ADMIN
from tests.app.test_experiment_page import _app, _completed


@pytest.fixture
def svc(app_env: Path) -> Services:
    s = bootstrap(Settings.from_env())
    yield s
    s.close()


def test_promote_button_commits_and_records(svc: Services, app_env: Path) -> None:
    exp_id = _completed(svc)
    at = _app(exp_id).run()
    assert not at.exception
    at.button(key="exp.promote").click().run()
    assert not at.exception
    assert any("In production since" in s.value and "process-topk-v1" in s.value for s in at.success)
    assert not [b for b in at.button if b.key == "exp.promote"]  # the record replaced the button
    rec = svc.promotion.current(ADMIN)
    assert rec is not None and rec.experiment_id == exp_id
    head = subprocess.run(["git", "-C", str(app_env / "gitops"), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert head == rec.commit_id
    assert svc.promotion.of(ADMIN, exp_id).commit_id == rec.commit_id
