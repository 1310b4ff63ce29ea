"""Pure canvas conversions: pipeline ↔ flow state, palette, badges, layout (no Streamlit run)."""

from __future__ import annotations

from app.widgets import canvas
from core.catalog.compiler import validate_graph
from core.catalog.templates import get_template
from core.domain.pipeline import Pipeline


def _blank() -> Pipeline:
    return Pipeline(name="draft")


def test_palette_groups_every_type_by_kind() -> None:
    groups = canvas.palette_groups()
    assert [t.type_name for t in groups["receiver"]] == ["hostmetrics"]
    assert {"prometheus", "otlphttp", "debug", "prometheusremotewrite"} == {t.type_name for t in groups["exporter"]}
    assert "rollup" in {t.type_name for t in groups["processor"]}
    assert sum(len(v) for v in groups.values()) == 18


def test_add_connect_and_validate_builds_a_valid_pipeline() -> None:
    p, recv = canvas.add_node(_blank(), "hostmetrics")
    p, exp = canvas.add_node(p, "prometheus")
    assert validate_graph(p)  # unconnected: the exporter is unreachable
    p = canvas.connect(p, recv, exp)
    assert validate_graph(p) == []
    assert p.node(exp).position["x"] > p.node(recv).position["x"]


def test_new_ids_are_unique_per_type() -> None:
    p, a = canvas.add_node(_blank(), "debug")
    p, b = canvas.add_node(p, "debug")
    assert (a, b) == ("debug", "debug_2")


def test_round_trip_through_flow_state_keeps_graph() -> None:
    p = get_template("process-topk-v1")
    nodes, edges = canvas.flow_nodes_edges(p, {})
    value = {"nodes": nodes, "edges": edges, "selectedId": None, "timestamp": 1}
    merged, sel = canvas.merge_flow_value(p, value)
    assert merged.to_dict() == p.to_dict()
    assert sel is None


def test_merge_takes_positions_new_edges_and_deletions_from_the_canvas() -> None:
    p = get_template("process-baseline-v1")
    nodes, edges = canvas.flow_nodes_edges(p, {})
    moved = nodes[0]["id"]
    nodes[0]["position"] = {"x": 999.0, "y": 5.0}
    removed = nodes[-1]["id"]
    nodes = nodes[:-1]
    edges.append({"id": "x", "source": nodes[0]["id"], "target": nodes[1]["id"]})
    edges.append({"id": "ghost", "source": nodes[0]["id"], "target": "not-a-node"})
    merged, sel = canvas.merge_flow_value(p, {"nodes": nodes, "edges": edges, "selectedId": moved, "timestamp": 2})
    assert merged.node(moved).position == {"x": 999.0, "y": 5.0}
    assert removed not in {n.id for n in merged.nodes}
    assert all(removed not in (e.source, e.target) for e in merged.edges)
    assert all(e.target != "not-a-node" for e in merged.edges)
    assert sel == moved


def test_unknown_nodes_from_canvas_are_ignored() -> None:
    p = get_template("process-baseline-v1")
    nodes, edges = canvas.flow_nodes_edges(p, {})
    nodes.append({"id": "intruder", "position": {"x": 0, "y": 0}, "data": {}})
    merged, _ = canvas.merge_flow_value(p, {"nodes": nodes, "edges": edges, "selectedId": "intruder"})
    assert "intruder" not in {n.id for n in merged.nodes}


def test_problems_are_split_per_node_and_graph() -> None:
    p, recv = canvas.add_node(_blank(), "hostmetrics")
    p, topk = canvas.add_node(p, "topk")
    p = canvas.set_params(p, topk, {"k": -1})
    per, graph = canvas.problems_by_node(p, validate_graph(p))
    assert topk in per and any("k" in m for m in per[topk])
    assert any("exporter" in m for m in graph)


def test_badge_and_style_show_errors() -> None:
    p, recv = canvas.add_node(_blank(), "hostmetrics")
    nodes, _ = canvas.flow_nodes_edges(p, {recv: ["node 'hostmetrics': boom"]})
    assert "1 problem" in nodes[0]["data"]["content"]
    assert canvas.ERROR_COLOUR in nodes[0]["style"]["border"]
    clean, _ = canvas.flow_nodes_edges(p, {})
    assert canvas.signature(nodes, []) != canvas.signature(clean, [])


def test_auto_layout_orders_columns_along_the_chain() -> None:
    p = get_template("process-aggregated-v1")
    for n in p.nodes:
        n.position = {"x": 0.0, "y": 0.0}
    laid = canvas.auto_layout(p)
    # Reading order (rows top to bottom, then left to right) follows the chain, rows wrap
    # every PER_ROW layers, and no two nodes overlap.
    at = {n.id: (n.position["y"], n.position["x"]) for n in laid.nodes}
    for e in laid.edges:
        assert at[e.source] < at[e.target]
    assert len({x for _, x in at.values()}) == canvas.PER_ROW
    assert not canvas.cramped(laid) and canvas.cramped(p)


def test_delete_node_and_edge() -> None:
    p = get_template("process-baseline-v1")
    e = p.edges[0]
    q = canvas.disconnect(p, e.source, e.target)
    assert len(q.edges) == len(p.edges) - 1
    r = canvas.delete_node(p, e.target)
    assert e.target not in {n.id for n in r.nodes}
    assert len(p.nodes) == len(r.nodes) + 1  # the original is untouched
