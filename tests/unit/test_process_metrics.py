"""The one table of process-metric facts agrees with upstream, the docs and its consumers."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.catalog import process_metrics as pm
from core.catalog.hostmetrics import NODE as HOSTMETRICS
from core.catalog.hostmetrics import enabled_metrics
from core.catalog.metric_selection import METRICS
from core.engine.encoding import DATAPOINT_KEYS, metric_meta, prometheus_metric_name
from core.engine.evaluate import evaluate
from tests.unit.engine_data import frame, pipeline, proc

ROOT = Path(__file__).resolve().parents[2]
METADATA = ROOT / "core" / "render" / "schemas" / "metadata"


def _upstream(scraper: str) -> dict[str, Any]:
    return yaml.safe_load((METADATA / f"hostmetrics.{scraper}.metadata.yaml").read_text(encoding="utf-8"))


def _facts(meta: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    """name → (unit, kind, monotonic, value type, default, description, attribute key, values)."""
    out = {}
    for name, m in meta["metrics"].items():
        kind = "sum" if "sum" in m else "gauge"
        attrs = [meta["attributes"][a] | {"id": a} for a in m.get("attributes", [])]
        assert len(attrs) <= 1, f"{name}: the table models at most one data-point attribute"
        key = (attrs[0].get("name_override") or attrs[0]["id"]) if attrs else None
        values = frozenset(attrs[0]["enum"]) if attrs else frozenset()
        out[name] = (m["unit"], kind, bool(m[kind].get("monotonic", False)), m[kind]["value_type"], m["enabled"],
                     " ".join(m["description"].split()), key, values)
    return out


def _ours(rows: tuple[pm.ProcessMetric, ...]) -> dict[str, tuple[Any, ...]]:
    return {m.name: (m.unit, m.kind, m.monotonic, m.value_type, m.default_enabled, m.description, m.attribute,
                     frozenset(m.attribute_values)) for m in rows}


@pytest.mark.parametrize(("scraper", "rows"), [("process", pm.PROCESS_METRICS), ("processes", pm.PROCESSES_METRICS)])
def test_every_metric_fact_is_upstreams(scraper: str, rows: tuple[pm.ProcessMetric, ...]) -> None:
    assert _ours(rows) == _facts(_upstream(scraper))
    assert {m.scraper for m in rows} == {scraper}


def test_resource_attributes_are_upstreams() -> None:
    upstream = {name: (a["type"], a["enabled"], " ".join(a["description"].split()))
                for name, a in _upstream("process")["resource_attributes"].items()}
    assert {a.name: (a.value_type, a.default_enabled, a.description) for a in pm.RESOURCE_ATTRIBUTES} == upstream


def test_frame_columns_are_one_per_attribute_value_and_unique() -> None:
    for m in pm.PROCESS_METRICS:
        if m.columns:
            assert len(m.columns) == max(1, len(m.attribute_values)), m.name
    assert len(set(pm.ALL_VALUE_COLUMNS)) == len(pm.ALL_VALUE_COLUMNS)
    # Metrics no snapshot carries are exactly the two that Linux snapshots cannot have.
    assert {m.name for m in pm.PROCESS_METRICS if not m.columns} == {"process.handles", "process.uptime"}
    assert {a.name for a in pm.RESOURCE_ATTRIBUTES if a.column is None} == {"process.cgroup"}


def test_catalog_engine_and_encoders_read_the_same_table() -> None:
    assert tuple(m.name for m in pm.PROCESS_METRICS) == METRICS  # the metric_selection choices
    assert enabled_metrics({}) == pm.DEFAULT_METRICS == {
        "process.cpu.time", "process.memory.usage", "process.memory.virtual", "process.disk.io"}
    assert "7 series per process" in HOSTMETRICS.description
    assert set(DATAPOINT_KEYS) == {"state", "direction", "type", "status"}
    for m in (*pm.PROCESS_METRICS, *pm.PROCESSES_METRICS):
        assert metric_meta(m.name) is m
    names = {m.name: prometheus_metric_name(m.name, m.unit, m.is_monotonic_sum, is_gauge=m.kind == "gauge")
             for m in pm.PROCESS_METRICS}
    assert names["process.cpu.time"] == "process_cpu_time_seconds_total"
    assert names["process.memory.usage"] == "process_memory_usage_bytes"
    assert names["process.cpu.utilization"] == "process_cpu_utilization_ratio"
    assert names["process.context_switches"] == "process_context_switches_total"


def test_toggles_and_patches_apply_in_order() -> None:
    on = enabled_metrics({"metrics": {"process.threads": True, "process.disk.io": False}},
                         [{"process.threads": False}, {"process.uptime": True}])
    assert on == {"process.cpu.time", "process.memory.usage", "process.memory.virtual", "process.uptime"}


def test_an_unknown_metric_toggle_is_refused_by_name() -> None:
    problems = HOSTMETRICS.validate({"metrics": {"process.cpu.seconds": True, "process.uptime": "yes"}})
    assert problems == ["metrics: unknown process metric 'process.cpu.seconds'",
                        "metrics: process.uptime must be true or false"]


def test_the_doc_is_generated_from_the_table() -> None:
    spec = importlib.util.spec_from_file_location("process_metrics_doc", ROOT / "scripts" / "process_metrics_doc.py")
    assert spec is not None and spec.loader is not None
    doc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(doc)
    text = (ROOT / "docs" / "process-metrics.md").read_text(encoding="utf-8")
    assert text == doc.render(), "docs/process-metrics.md is stale: run python scripts/process_metrics_doc.py"
    for m in pm.PROCESS_METRICS:
        assert f"| `{m.name}` | `{m.unit}` |" in text


def test_a_metric_no_snapshot_carries_is_counted_as_nothing_and_said_so() -> None:
    r = evaluate(pipeline(receiver={"metrics": {"process.uptime": True}}), frame([proc("h1", 7, "bash")]))
    assert "process.uptime" in r.ctx.enabled_metrics
    assert r.series_out() == 7  # the default seven; no uptime series invented
    assert "process.uptime is enabled but the snapshot has no values for it; its series are not counted" in r.ctx.warnings
