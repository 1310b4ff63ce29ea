"""Overview additions: measured-result KPIs, collectors-down alert, first-experiment button."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import streamlit as st
from streamlit.testing.v1 import AppTest

from core.analysis.verdict import analyze_samples
from core.bootstrap import bootstrap
from core.domain.experiment import utcnow
from core.domain.samples import MeasurementSample
from core.numbers import money
from core.services.requests import Promote
from core.settings import Settings
from tests.actors import ADMIN, admin
from tests.app.conftest import page


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_first_experiment_button_on_an_empty_database(app_env: Path) -> None:
    at = AppTest.from_file(page("overview.py"), default_timeout=60).run()
    assert _metrics(at)["Best measured reduction"] == "—"
    at.button(key="overview.first").click().run()
    assert not at.exception
    svc = bootstrap(Settings.from_env())
    rows = svc.experiments.list(ADMIN)
    svc.close()
    assert [(r.baseline, r.candidate, r.state) for r in rows] == [
        ("process-baseline-v1", "process-topk-v1", "Pending")]


def test_best_reduction_savings_and_collector_alert(app_env: Path) -> None:
    svc = bootstrap(Settings.from_env())
    exp = svc.experiments.create(ADMIN, name="measured", baseline="process-baseline-v1", candidate="process-topk-v1",
                                 duration_s=20, interval_s=2)
    t0 = utcnow()
    samples = [MeasurementSample(exp.id, v, t0 + timedelta(seconds=2 * i), series=n + i, datapoints=(n + i) * 3,
                                 bytes=n, critical_coverage_pct=100.0)
               for i in range(8) for v, n in (("baseline", 1000), ("candidate", 250))]
    with svc.uow() as uow:
        e = uow.experiments.get(exp.id)
        for step in (e.start, e.mark_running, e.begin_analysis):
            step(actor="test")
        e.complete(analyze_samples(samples, e.criteria, interval_s=2.0,
                                   prices={"Grafana Cloud Pro": lambda s, d, b: s * 0.0065}), actor="test")
        uow.experiments.save(e)
        uow.processes.add(exp.id, "candidate", 2**22 + 12345)  # a pid that does not exist
        uow.commit()
    expected = e.result["series_reduction_pct"]
    saving = e.result["cost"]["Grafana Cloud Pro"]
    at = AppTest.from_file(page("overview.py"), default_timeout=60).run()
    assert not at.exception
    m = _metrics(at)
    assert m["Best measured reduction"] == f"{expected:.1f}%"
    assert m["Projected savings of promoted pipelines"] == "—"  # nothing in production yet
    svc.promotion.promote(admin("test"), Promote(experiment_id=exp.id))  # the configured repository
    svc.close()
    st.cache_data.clear()
    at = AppTest.from_file(page("overview.py"), default_timeout=60).run()
    m = _metrics(at)
    saved = round(saving["baseline_usd"] - saving["candidate_usd"], 2)
    assert m["Projected savings of promoted pipelines"] == f"{money(saved, compact=True)}/month"
    (metric,) = [x for x in at.metric if x.label == "Projected savings of promoted pipelines"]
    assert metric.help == f"Exactly {money(saved)}/month"  # the exact amount behind the compact one
    assert any("is down" in e.value and "candidate" in e.value for e in at.error)
