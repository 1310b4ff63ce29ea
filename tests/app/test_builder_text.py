"""Builder text and canvas figures without Streamlit: real diffs, computed thresholds in the
YAML after an estimate, node summaries and series badges."""

from __future__ import annotations

import copy

from app.widgets import canvas, pipeline_tools
from core.catalog.registry import REGISTRY
from core.catalog.templates import get_template
from core.render.collector import render_collector


def test_defaults_written_out_or_nodes_moved_are_not_changes() -> None:
    loaded = get_template("process-topk-v1")
    edited = copy.deepcopy(loaded)
    for n in edited.nodes:  # what a form does: every param written out (or all omitted)
        n.params = REGISTRY[n.type].with_defaults(n.params)
        n.position = {"x": n.position["x"] + 33, "y": 5.0}
    assert pipeline_tools.pipeline_diff(loaded, edited) == ""
    stripped = copy.deepcopy(loaded)
    for n in stripped.nodes:
        defaults = REGISTRY[n.type].defaults()
        n.params = {k: v for k, v in n.params.items() if defaults.get(k) != v}
    assert pipeline_tools.pipeline_diff(loaded, stripped) == ""


def test_a_real_change_shows_as_one_line_out_and_one_in() -> None:
    loaded = get_template("process-topk-v1")
    edited = copy.deepcopy(loaded)
    edited.node("topk").params = {**edited.node("topk").params, "k": 25}
    d = pipeline_tools.pipeline_diff(loaded, edited)
    removed = [x for x in d.splitlines() if x.startswith("-") and not x.startswith("---")]
    added = [x for x in d.splitlines() if x.startswith("+") and not x.startswith("+++")]
    assert len(removed) == 1 and removed[0].strip().endswith("k: 10")
    assert len(added) == 1 and added[0].strip().endswith("k: 25")


def test_the_estimate_writes_its_thresholds_into_the_yaml() -> None:
    p = get_template("process-topk-v1")
    assert pipeline_tools.untuned_nodes(p) == ["topk"]
    assert "DEFAULT thresholds" in render_collector(p)
    report = pipeline_tools.run_estimate(p, pipeline_tools.fleet_snapshot(3, 40), source="simulated fleet")
    tuned, filled = pipeline_tools.apply_tuned(p, report)
    assert filled == ["topk"] and pipeline_tools.untuned_nodes(tuned) == []
    text = render_collector(tuned)
    mem = report["tuned_params"]["topk"]["memory_bytes"]
    assert "DEFAULT thresholds" not in text and "computed by Phoenix from simulated fleet" in text
    assert str(mem) in text  # the threshold the estimate measured with is the one in the config
    again, filled_again = pipeline_tools.apply_tuned(tuned, report)
    assert filled_again == [] and again.to_dict() == tuned.to_dict()


def test_changing_k_drops_thresholds_computed_for_the_old_k() -> None:
    old = {"k": 10, "computed": {"memory_bytes": 123, "k": 10}}
    assert "computed" not in pipeline_tools.drop_stale_tuning("topk", old, {**old, "k": 20})
    assert pipeline_tools.drop_stale_tuning("topk", old, dict(old)) == old
    edited = {**old, "computed": {"memory_bytes": 456}}
    assert pipeline_tools.drop_stale_tuning("topk", old, edited) == edited
    assert pipeline_tools.drop_stale_tuning("batch", {}, {"timeout": "2s"}) == {"timeout": "2s"}


def test_nodes_show_summary_and_series_badges_after_an_estimate() -> None:
    p = get_template("process-topk-v1")
    report = pipeline_tools.run_estimate(p, pipeline_tools.fleet_snapshot(2, 30), source="simulated fleet")
    figures = pipeline_tools.node_figures(report, p)
    assert set(figures) == {n.id for n in p.nodes}
    assert figures["prometheus"] == (report["series_out"], report["series_out"])
    assert figures["receiver"][0] == report["series_in"]
    nodes, _ = canvas.flow_nodes_edges(p, {}, figures=figures)
    topk = next(n for n in nodes if n["id"] == "topk")["data"]["content"]
    assert "Top-K per host" in topk and "10 by memory" in topk
    fin, fout = figures["topk"]
    assert f"{fin:,} → {fout:,} series" in topk
    bare, _ = canvas.flow_nodes_edges(p, {})
    assert all("series" not in n["data"]["content"] for n in bare)


def test_user_text_in_a_summary_stays_plain_text_on_the_canvas() -> None:
    p = get_template("process-topk-v1")
    p.node("prometheus").params = {"endpoint": "[x](javascript:alert) *b*:9"}
    nodes, _ = canvas.flow_nodes_edges(p, {})
    label = next(n for n in nodes if n["id"] == "prometheus")["data"]["content"]
    assert "\\[x\\]" in label and "\\*b\\*" in label
