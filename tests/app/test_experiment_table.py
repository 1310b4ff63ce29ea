"""Experiments page helpers without Streamlit: table rows, progress and ETA, real vs emulated."""

from __future__ import annotations

from datetime import timedelta

from app.widgets import experiments as ex
from core.domain.criteria import Timing
from core.domain.experiment import Experiment
from core.domain.ports import TABLE_SORTS, ExperimentSummary
from tests.integration.test_store import T0


def _exp(**kw: object) -> Experiment:
    base: dict[str, object] = dict(name="run", baseline="process-baseline-v1", candidate="process-topk-v1",
                                   owner="alice", timing=Timing(120, 10), now=T0)
    base.update(kw)
    return Experiment.create(**base)  # type: ignore[arg-type]


def test_every_sortable_column_has_a_label_and_rows_carry_the_id() -> None:
    assert set(ex.SORT_LABELS) == set(TABLE_SORTS)
    e = _exp()
    e.start("t"), e.mark_running("t"), e.begin_analysis("t")
    e.complete({"verdict": "PROMOTE", "series_reduction_pct": 71.234}, "t")
    (row,) = ex.table_rows([ExperimentSummary.of(e)])
    assert row["id"] == e.id and row["reduction"] == 71.2 and row["verdict"] == "PROMOTE"
    assert row["pipelines"] == "process-baseline-v1 → process-topk-v1" and set(ex.TABLE_COLUMNS) < set(row)


def test_progress_follows_the_run_and_ends_with_it() -> None:
    e = _exp()
    assert ex.progress(e).fraction == 0.0 and "Pending" in ex.progress(e).text
    e.start("t", now=T0)
    assert "starting the collectors" in ex.progress(e).text
    e.mark_running("t", now=T0 + timedelta(seconds=5))
    mid = ex.progress(e, now=T0 + timedelta(seconds=35))
    assert mid.fraction == 0.25 and mid.eta_s == 90.0
    assert mid.text == "Running: 0:30 of 2:00 · ETA 1:30"
    late = ex.progress(e, now=T0 + timedelta(seconds=500))
    assert late.fraction == 1.0 and late.eta_s == 0.0 and "analysis next" in late.text
    e.begin_analysis("t")
    assert ex.progress(e).fraction == 1.0
    e.complete({"verdict": "REJECT"}, "t")
    assert ex.progress(e) is None
    assert ex.clock(3723) == "1:02:03"


def test_collectors_say_real_emulated_kubernetes_or_dry_run() -> None:
    e = _exp()
    e.dry_run = False
    assert ex.collectors(e) == "Collectors: not deployed yet"
    e.runtime_info = {"runtime": "local-otelcol", "collector": {"kind": "real", "binary": "/x/otelcol"}}
    assert ex.collectors(e).startswith("Real collectors: the OpenTelemetry Collector")
    e.runtime_info = {"runtime": "local", "collector": {"kind": "emulator"}}
    assert ex.collectors(e).startswith("Emulated collectors")
    e.runtime_info = {"runtime": "kubernetes", "namespace": "obs", "collector": {"kind": "kubernetes"}}
    assert ex.collectors(e) == "Real collectors on Kubernetes in namespace obs"
    e.runtime_info = {"runtime": "memory", "dry_run": True}
    assert ex.collectors(e).startswith("Dry run")
