"""What a role may not do is hidden: the Promote button and the Settings page, per role."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.analysis.verdict import analyze_samples
from core.bootstrap import Services, bootstrap
from core.domain.accounts import Actor, Role
from core.domain.experiment import utcnow
from core.domain.samples import MeasurementSample
from core.settings import Settings
from tests.app.conftest import page

SAVES = {"settings.save_cards", "settings.save_policy", "settings.save_services"}


@pytest.fixture
def svc(app_env: Path) -> Iterator[Services]:
    s = bootstrap(Settings.from_env())
    yield s
    s.close()


def _completed(svc: Services) -> str:
    """A completed experiment whose verdict is PROMOTE (so an admin gets the Promote button)."""
    exp = svc.experiments.create(Actor("olly", Role.OPERATOR, "ui"), name="trial", baseline="process-baseline-v1",
                                 candidate="process-topk-v1", duration_s=30, interval_s=5)
    t0 = utcnow()
    samples = [MeasurementSample(exp.id, v, t0 + timedelta(seconds=5 * i), series=n + i, datapoints=(n + i) * 6,
                                 bytes=n * 80, collector_cpu_pct=1.0, collector_rss_mb=30.0, critical_coverage_pct=100.0)
               for i in range(6) for v, n in (("baseline", 1400), ("candidate", 220))]
    with svc.uow() as uow:
        e = uow.experiments.get(exp.id)
        uow.samples.add_many(samples)
        e.start(actor="test")
        e.mark_running(actor="test")
        e.begin_analysis(actor="test")
        e.complete(analyze_samples(samples, e.criteria, interval_s=5.0,
                                   prices={"Grafana Cloud": lambda s, d, b: s * 0.0065}), actor="test")
        uow.experiments.save(e)
        uow.commit()
    assert e.result["verdict"] == "PROMOTE"
    return exp.id


def _as(at: AppTest, role: Role) -> AppTest:
    at.session_state["phoenix_actor"] = Actor(role.label, role, "ui")
    return at


@pytest.mark.parametrize(("role", "promote", "rerun"), [(Role.VIEWER, False, False), (Role.OPERATOR, False, True),
                                                        (Role.ADMIN, True, True)])
def test_promote_and_rerun_buttons_follow_the_role(svc: Services, role: Role, promote: bool, rerun: bool) -> None:
    exp_id = _completed(svc)
    at = _as(AppTest.from_file(page("experiment.py"), default_timeout=60), role)
    at.query_params["id"] = exp_id
    at.run()
    assert not at.exception
    keys = {b.key for b in at.button}
    assert ("exp.promote" in keys) is promote
    assert ("exp.rerun" in keys) is rerun
    assert "exp.prepare" in keys  # every role downloads reports


@pytest.mark.parametrize(("role", "edits"), [(Role.VIEWER, False), (Role.OPERATOR, False), (Role.ADMIN, True)])
def test_settings_are_read_only_below_admin(svc: Services, role: Role, edits: bool) -> None:
    at = _as(AppTest.from_file(page("settings.py"), default_timeout=60), role).run()
    assert not at.exception
    shown = {b.key for b in at.button} & SAVES
    assert shown == (SAVES if edits else set())
    assert any("Read-only" in i.value for i in at.info) is not edits


@pytest.mark.parametrize("file", ["audit.py", "users.py"])
@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR])
def test_admin_pages_refuse_other_roles(svc: Services, file: str, role: Role) -> None:
    at = _as(AppTest.from_file(page(file), default_timeout=60), role).run()
    assert not at.exception
    assert any("may not open" in e.value for e in at.error)
    assert not at.dataframe
