"""The experiment page's Promote button: a confirmation with the diff and a required reason, then
PromotionService.promote (real git, SQLite)."""

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
    # the confirmation: nothing in production yet, the candidate's whole config as the diff
    assert any("Nothing in production yet" in i.value for i in at.info)
    assert any("+++ candidate process-topk-v1" in c.value for c in at.code)
    at.button(key="exp.promote.confirm").click().run()
    assert any("needs a reason" in e.value for e in at.error)
    assert svc.promotion.current(ADMIN) is None
    at.text_area(key="exp.promote.reason").input("cheaper, no alert lost").run()
    at.button(key="exp.promote.confirm").click().run()
    assert not at.exception
    assert any("In production since" in s.value and "process-topk-v1" in s.value for s in at.success)
    assert not [b for b in at.button if b.key == "exp.promote"]  # the record replaced the button
    rec = svc.promotion.current(ADMIN)
    assert rec is not None and rec.experiment_id == exp_id
    head = subprocess.run(["git", "-C", str(app_env / "gitops"), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert head == rec.commit_id
    assert svc.promotion.of(ADMIN, exp_id).commit_id == rec.commit_id
    assert rec.reason == "cheaper, no alert lost"
    body = subprocess.run(["git", "-C", str(app_env / "gitops"), "log", "-1", "--format=%B"], capture_output=True,
                          text=True, check=True).stdout
    assert "Reason: cheaper, no alert lost" in body
