"""Experiment page in AppTest: empty state, share link restore, live/analysis panels, actions, reports."""

from __future__ import annotations

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
from tests.actors import ADMIN
from tests.app.conftest import page


@pytest.fixture
def svc(app_env: Path) -> Services:
    s = bootstrap(Settings.from_env())
    yield s
    s.close()


def _app(exp_id: str | None = None) -> AppTest:
    at = AppTest.from_file(page("experiment.py"), default_timeout=60)
    if exp_id:
        at.query_params["id"] = exp_id
    return at


def _completed(svc: Services) -> str:
    exp = svc.experiments.create(ADMIN, name="trial", baseline="process-baseline-v1", candidate="process-topk-v1",
                                 duration_s=30, interval_s=5)
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
    return exp.id


def test_empty_state_creates_a_first_experiment(svc: Services) -> None:
    at = _app().run()
    assert not at.exception
    assert any("No experiments yet" in i.value for i in at.info)
    at.button(key="exp.first").click().run()
    assert not at.exception
    exp_id = at.query_params["id"]
    exp = svc.experiments.get(ADMIN, exp_id)
    assert (str(exp.baseline), str(exp.candidate), exp.state.value) == (
        "process-baseline-v1", "process-topk-v1", "Pending")
    assert at.title[0].value == exp.name


def test_share_link_restores_a_completed_experiment_with_analysis(svc: Services) -> None:
    exp_id = _completed(svc)
    at = _app(exp_id).run()
    assert not at.exception
    assert at.title[0].value == "trial"
    assert any("Verdict: PROMOTE" in s.value for s in at.success)
    assert any(m.label == "Series reduction" and m.value.startswith("84") for m in at.metric)
    assert any(exp_id in c.value and "id=" in c.value for c in at.code)  # the copy-able share link
    assert at.button(key="exp.rerun") is not None
    with pytest.raises(KeyError):
        at.button(key="exp.cancel")  # terminal: nothing to cancel


def test_report_download_and_rerun(svc: Services) -> None:
    exp_id = _completed(svc)
    at = _app(exp_id).run()
    at.radio(key="exp.fmt").set_value("csv")
    at.button(key="exp.prepare").click().run()
    assert not at.exception
    eid, fmt, body = at.session_state["exp.report"]
    assert (eid, fmt) == (exp_id, "csv")
    records = [line.split(",", 1)[0] for line in body.decode().splitlines()[1:]]
    assert records.count("sample") == 12 and records.count("verdict") == 1
    assert records.count("criterion") == len(svc.experiments.get(ADMIN, exp_id).result["criteria"]) > 0
    at.button(key="exp.rerun").click().run()
    new_id = at.query_params["id"]
    assert new_id != exp_id
    assert svc.experiments.get(ADMIN, new_id).name == "trial (re-run)"


def test_cancel_a_pending_experiment(svc: Services) -> None:
    exp = svc.experiments.create(ADMIN, name="to cancel", baseline="process-baseline-v1", candidate="process-topk-v1")
    at = _app(exp.id).run()
    assert any("waiting for the first measurements" in i.value for i in at.info)
    at.button(key="exp.cancel").click().run()
    assert not at.exception
    assert svc.experiments.get(ADMIN, exp.id).state.value == "Cancelled"


def test_unknown_experiment_is_a_warning(svc: Services) -> None:
    at = _app("exp-nope").run()
    assert not at.exception
    assert any("exp-nope" in w.value for w in at.warning)


def test_running_experiment_shows_live_panels_for_both_variants(svc: Services) -> None:
    exp = svc.experiments.create(ADMIN, name="live", baseline="process-baseline-v1", candidate="process-topk-v1",
                                 duration_s=600, interval_s=5)
    t0 = utcnow()
    with svc.uow() as uow:
        e = uow.experiments.get(exp.id)
        e.start(actor="test")
        e.mark_running(actor="test")
        uow.experiments.save(e)
        uow.samples.add_many([MeasurementSample(exp.id, v, t0 + timedelta(seconds=5 * i), series=n, datapoints=n,
                                                bytes=n * 50, collector_cpu_pct=1.0, collector_rss_mb=25.0,
                                                critical_coverage_pct=100.0)
                              for i in range(3) for v, n in (("baseline", 900), ("candidate", 200))])
        uow.commit()
    at = _app(exp.id).run()
    assert not at.exception
    charts = at.get("plotly_chart")
    assert len(charts) == 6
    import json

    fig = json.loads(charts[0].proto.spec)
    assert sorted(t["name"] for t in fig["data"]) == ["baseline", "candidate"]
    assert at.button(key="exp.cancel") is not None


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR, Role.ADMIN], ids=lambda r: r.label)
def test_actions_a_role_may_not_do_are_not_offered(svc: Services, role: Role) -> None:
    from app import guard

    done = _completed(svc)
    pending = svc.experiments.create(ADMIN, name="p", baseline="process-baseline-v1", candidate="process-topk-v1")
    keys = set()
    for exp_id in (done, pending.id):
        at = _app(exp_id)
        at.session_state[guard.SESSION_KEY] = Actor(f"{role.label}-user", role, "ui")
        at.run()
        assert not at.exception
        keys |= {b.key for b in at.button}
    assert "exp.prepare" in keys  # every role downloads reports
    assert ("exp.cancel" in keys, "exp.rerun" in keys) == ((role >= Role.OPERATOR,) * 2)
    assert ("exp.promote" in keys) == (role is Role.ADMIN)


def test_live_panel_redraws_from_the_event_log_news(svc: Services) -> None:
    import json

    exp = svc.experiments.create(ADMIN, name="news", baseline="process-baseline-v1", candidate="process-topk-v1",
                                 duration_s=600, interval_s=5)
    t0 = utcnow()

    def add(i: int) -> None:
        with svc.uow() as uow:
            uow.samples.add_many([MeasurementSample(exp.id, v, t0 + timedelta(seconds=5 * i), series=n, datapoints=n,
                                                    bytes=n * 50) for v, n in (("baseline", 900), ("candidate", 200))])
            uow.commit()

    with svc.uow() as uow:
        e = uow.experiments.get(exp.id)
        e.start(actor="test")
        e.mark_running(actor="test")
        uow.experiments.save(e)
        uow.commit()
    for i in range(2):
        add(i)
    at = _app(exp.id).run()

    def points() -> int:
        fig = json.loads(at.get("plotly_chart")[0].proto.spec)
        return len(fig["data"][0]["x"])

    assert points() == 2
    at.run()  # nothing new in the log: the same charts, from what the session already holds
    assert not at.exception and len(at.get("plotly_chart")) == 6 and points() == 2
    add(2)
    at.run()
    assert points() == 3
    assert at.session_state[f"exp.live.{exp.id}"]["cursor"].sample_id > 0


def test_adaptive_closed_loop_shows_achieved_vs_budget_per_host(svc: Services) -> None:
    exp_id = _completed(svc)
    with svc.uow() as uow:  # what the real closed loop records each interval
        for interval, achieved in ((1, 84.0), (2, 280.0)):
            uow.audit.add(f"collector:{exp_id}", "experiment.retune", exp_id, {
                "variant": "candidate", "interval": interval, "restart": interval == 1,
                "nodes": {"adaptive": {"vm": {"baseline_series": 1237.0, "budget": 267.25, "achieved": achieved,
                                              "deviation_pct": round(100 * (achieved / 267.25 - 1), 3), "k": 35}}}})
        uow.commit()
    at = _app(exp_id).run()
    assert not at.exception
    assert any(s.value == "Series budget per host" for s in at.subheader)
    now = at.dataframe[[i for i, d in enumerate(at.dataframe) if "deviation" in d.value.columns][0]].value
    assert now.to_dict("records") == [{"node": "adaptive", "host": "vm", "baseline series": "1,237",
                                       "budget": "267", "achieved": "280", "deviation": "+4.8%", "limit": ""}]


def test_a_host_held_at_the_rankings_ceiling_says_why(svc: Services) -> None:
    exp_id = _completed(svc)
    why = "ceiling: only 4 processes rank above 0 by memory"
    with svc.uow() as uow:
        uow.audit.add(f"collector:{exp_id}", "experiment.retune", exp_id, {
            "variant": "candidate", "interval": 1, "restart": False,
            "nodes": {"adaptive": {"vm": {"baseline_series": 537.0, "budget": 120.25, "achieved": 89.0,
                                          "deviation_pct": -25.988, "k": 4, "rankable": 4, "limit": why}}}})
        uow.commit()
    at = _app(exp_id).run()
    assert not at.exception
    now = at.dataframe[[i for i, d in enumerate(at.dataframe) if "deviation" in d.value.columns][0]].value
    assert now.to_dict("records")[0]["limit"] == why


def test_an_unreadable_closed_loop_is_a_warning_and_the_page_still_renders(svc: Services,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from core.domain.errors import TemporaryError
    from core.services.experiments import ExperimentService

    def refuse(*_a: object, **_k: object) -> None:
        raise TemporaryError("the database is not reachable")

    exp_id = _completed(svc)
    monkeypatch.setattr(ExperimentService, "closed_loop", refuse)
    at = _app(exp_id).run()
    assert not at.exception
    assert any("Series budget per host unavailable: the database is not reachable" in w.value for w in at.warning)
    assert any(s.value == "Measurements" for s in at.subheader)  # the rest of the page is there
