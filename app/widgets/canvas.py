"""Pipeline canvas: a ``Pipeline`` graph ↔ streamlit-flow-component state.

The Python ``Pipeline`` (a dict in session_state) is the source of truth; the canvas is a
view the user can edit (drag, connect handles, delete through the node/edge menus).
The component reports its whole graph back as ``{"nodes", "edges", "selectedId",
"timestamp"}`` in ``st.session_state[<key>]``; :func:`merge_flow_value` folds that into
the pipeline (positions, edges, deletions — nodes only ever come from the palette, so a
node the pipeline does not know is ignored).

The component takes Python's graph only when the state's ``timestamp`` is at least its
own latest one, so every Python-side change (palette add, param edit changing a badge,
auto-layout) issues a timestamp newer than anything the component has sent.

The pure functions here are unit-tested without Streamlit; :func:`render_canvas` is the
thin Streamlit part.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.catalog.base import NodeType
from core.catalog.registry import REGISTRY, all_types
from core.domain.pipeline import Edge, Node, Pipeline

KIND_ORDER = ("receiver", "processor", "exporter")
KIND_LABELS = {"receiver": "Receiver", "processor": "Processors", "exporter": "Exporters"}
KIND_COLOURS = {"receiver": "#2563eb", "processor": "#7c3aed", "exporter": "#059669"}
ERROR_COLOUR = "#dc2626"
# Nodes wide enough for a title and a summary line at a readable size.
COLUMN_WIDTH = 300
ROW_HEIGHT = 160
NODE_WIDTH = 250
FONT_SIZE = "14px"
#: Layers per row in auto-layout: two fit the canvas column at a readable zoom.
PER_ROW = 2
#: Characters a user can type into params that the canvas's Markdown would interpret.
_MARKDOWN = re.compile(r"([\\`*_\[\]{}<>#|~$])")

_NODE_REF = re.compile(r"(?:node|exporter) '([A-Za-z][A-Za-z0-9_-]*)'")
_EDGE_REF = re.compile(r"^edge ([A-Za-z][A-Za-z0-9_-]*) → ([A-Za-z][A-Za-z0-9_-]*)")


# ---- palette -------------------------------------------------------------------------
def palette_groups() -> dict[str, list[NodeType]]:
    """Node types grouped receiver / processors / exporters, in catalogue order."""
    groups: dict[str, list[NodeType]] = {k: [] for k in KIND_ORDER}
    for t in all_types():
        groups.setdefault(t.kind, []).append(t)
    return groups


# ---- graph edits (pure: each returns a new Pipeline) ----------------------------------
def _copy(p: Pipeline) -> Pipeline:
    return copy.deepcopy(p)


def new_node_id(p: Pipeline, type_name: str) -> str:
    taken = {n.id for n in p.nodes}
    base = re.sub(r"[^A-Za-z0-9_]", "_", type_name)[:40]
    if base not in taken:
        return base
    i = 2
    while f"{base}_{i}" in taken:
        i += 1
    return f"{base}_{i}"


def add_node(p: Pipeline, type_name: str) -> tuple[Pipeline, str]:
    """Add a node of ``type_name`` with its defaults, placed right of everything else."""
    t = REGISTRY[type_name]
    out = _copy(p)
    node_id = new_node_id(out, type_name)
    x = max((n.position.get("x", 0.0) for n in out.nodes), default=-COLUMN_WIDTH) + COLUMN_WIDTH
    y = 120.0 if t.kind != "exporter" else 120.0 + ROW_HEIGHT * sum(
        1 for n in out.nodes if REGISTRY.get(n.type) and REGISTRY[n.type].kind == "exporter")
    out.nodes.append(Node(id=node_id, type=type_name, params={}, position={"x": float(x), "y": float(y)}))
    return out, node_id


def delete_node(p: Pipeline, node_id: str) -> Pipeline:
    out = _copy(p)
    out.nodes = [n for n in out.nodes if n.id != node_id]
    out.edges = [e for e in out.edges if node_id not in (e.source, e.target)]
    return out


def connect(p: Pipeline, source: str, target: str) -> Pipeline:
    out = _copy(p)
    if (source, target) not in {(e.source, e.target) for e in out.edges}:
        out.edges.append(Edge(source, target))
    return out


def disconnect(p: Pipeline, source: str, target: str) -> Pipeline:
    out = _copy(p)
    out.edges = [e for e in out.edges if (e.source, e.target) != (source, target)]
    return out


def set_params(p: Pipeline, node_id: str, params: dict[str, Any]) -> Pipeline:
    out = _copy(p)
    out.node(node_id).params = copy.deepcopy(params)
    return out


def auto_layout(p: Pipeline, per_row: int | None = None) -> Pipeline:
    """Layers by longest path from the sources, siblings stacked; the layers wrap every
    ``per_row`` columns, reading left to right then down, so a long chain stays readable
    in the canvas beside the form instead of shrinking into one thin line."""
    per_row = per_row or PER_ROW
    out = _copy(p)
    ids = [n.id for n in out.nodes]
    pred: dict[str, list[str]] = {i: [] for i in ids}
    for e in out.edges:
        if e.source in pred and e.target in pred:
            pred[e.target].append(e.source)
    layer: dict[str, int] = {}

    def depth(i: str, trail: frozenset[str]) -> int:
        if i in layer:
            return layer[i]
        if i in trail:  # a cycle: validation reports it; layout just stops descending
            return 0
        d = max((depth(s, trail | {i}) + 1 for s in pred[i]), default=0)
        layer[i] = d
        return d

    for i in ids:
        depth(i, frozenset())
    # Exporters go in one column after everything else, like the rendered pipeline.
    kinds = {n.id: REGISTRY[n.type].kind if n.type in REGISTRY else "processor" for n in out.nodes}
    non_exp = [layer[i] for i in ids if kinds[i] != "exporter"]
    last = max(non_exp, default=-1) + 1
    for i in ids:
        if kinds[i] == "exporter":
            layer[i] = max(layer[i], last)
    # Rows of ``per_row`` layers; a row is as tall as its most stacked layer.
    stacked: dict[int, int] = {}
    for i in ids:
        stacked[layer[i]] = stacked.get(layer[i], 0) + 1
    row_tops: dict[int, float] = {}
    top = 60.0
    for band in range(max(layer.values(), default=0) // per_row + 1):
        row_tops[band] = top
        tallest = max((stacked.get(band * per_row + c, 0) for c in range(per_row)), default=0)
        top += max(1, tallest) * ROW_HEIGHT
    rows: dict[int, int] = {}
    for n in out.nodes:
        col = layer[n.id]
        row = rows.get(col, 0)
        rows[col] = row + 1
        n.position = {"x": float((col % per_row) * COLUMN_WIDTH),
                      "y": float(row_tops[col // per_row] + row * ROW_HEIGHT)}
    return out


def cramped(p: Pipeline) -> bool:
    """Whether nodes overlap at today's node size (pipelines saved with smaller nodes do)."""
    pos = [(n.position.get("x", 0.0), n.position.get("y", 0.0)) for n in p.nodes]
    return any(abs(a[0] - b[0]) < NODE_WIDTH + 10 and abs(a[1] - b[1]) < ROW_HEIGHT - 20
               for i, a in enumerate(pos) for b in pos[i + 1:])


# ---- validation badges ----------------------------------------------------------------
def problems_by_node(p: Pipeline, problems: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """Split validation messages into per-node lists and graph-level ones.

    ``validate_graph`` names the node a message is about (``node 'x' (type): …``); an
    edge message counts for both ends. Anything else is a graph error.
    """
    ids = {n.id for n in p.nodes}
    per: dict[str, list[str]] = {}
    graph: list[str] = []
    for msg in problems:
        m = _NODE_REF.search(msg)
        e = _EDGE_REF.match(msg)
        if m and m.group(1) in ids and msg.startswith(("node ", "exporter ")):
            per.setdefault(m.group(1), []).append(msg)
        elif e:
            hit = False
            for nid in e.groups():
                if nid in ids:
                    per.setdefault(nid, []).append(msg)
                    hit = True
            if not hit:
                graph.append(msg)
        else:
            graph.append(msg)
    return per, graph


# ---- pipeline ↔ flow state ------------------------------------------------------------
def plain(text: str) -> str:
    """User text shown as itself in the node's Markdown (no links, emphasis or HTML)."""
    return _MARKDOWN.sub(r"\\\1", text)


def node_label(node: Node, problems: list[str], figures: tuple[int, int] | None = None) -> str:
    """Title, the type's one-line summary of its params, the id, then badges: problems,
    and after an estimate the series going in → out of this node."""
    t = REGISTRY.get(node.type)
    title = t.title if t else node.type
    text = f"**{title}**"
    if t is not None:
        text += f"\n\n{plain(t.summary(node.params))}"
    text += f"\n\n`{node.id}`"
    if figures is not None:
        text += f"\n\n{figures[0]:,} → {figures[1]:,} series"
    if problems:
        text += f"\n\n⚠ {len(problems)} problem{'s' if len(problems) != 1 else ''}"
    return text


def flow_nodes_edges(p: Pipeline, node_problems: dict[str, list[str]], selected_id: str | None = None,
                     figures: dict[str, tuple[int, int]] | None = None,
                     ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The component's node and edge dicts (``StreamlitFlowNode.asdict`` shape).
    ``figures``: series in → out per node id from the last estimate of this very graph."""
    nodes: list[dict[str, Any]] = []
    for n in p.nodes:
        t = REGISTRY.get(n.type)
        kind = t.kind if t else "processor"
        probs = node_problems.get(n.id, [])
        colour = ERROR_COLOUR if probs else KIND_COLOURS.get(kind, "#64748b")
        nodes.append({
            "id": n.id,
            "position": {"x": float(n.position.get("x", 0.0)), "y": float(n.position.get("y", 0.0))},
            "data": {"content": node_label(n, probs, (figures or {}).get(n.id)), "phoenix_type": n.type},
            "type": {"receiver": "input", "exporter": "output"}.get(kind, "default"),
            "sourcePosition": "right", "targetPosition": "left",
            "hidden": False, "selected": n.id == selected_id, "dragging": False, "draggable": True,
            "selectable": True, "connectable": True, "resizing": False, "deletable": kind != "receiver",
            "zIndex": 0, "focusable": True,
            "style": {"width": f"{NODE_WIDTH}px", "height": "auto",
                      "border": f"{3 if probs else 2}px solid {colour}", "borderRadius": "8px",
                      "fontSize": FONT_SIZE, "textAlign": "left", "padding": "8px 10px"},
        })
    edges = [{
        "id": edge_id(e.source, e.target), "source": e.source, "target": e.target, "type": "smoothstep",
        "markerStart": {}, "markerEnd": {"type": "arrowclosed"}, "hidden": False, "animated": False,
        "selected": False, "deletable": True, "focusable": True, "zIndex": 0, "label": "",
        "labelStyle": {}, "labelShowBg": False, "labelBgStyle": {}, "style": {},
    } for e in p.edges]
    return nodes, edges


def edge_id(source: str, target: str) -> str:
    # The component names edges it creates the same way; keeping one scheme means an
    # edge survives a round trip with the same id.
    return f"st-flow-edge_{source}-{target}"


def merge_flow_value(p: Pipeline, value: dict[str, Any] | None) -> tuple[Pipeline, str | None]:
    """Fold the component's reported graph into ``p``: positions, edges, deletions.

    Returns the new pipeline and the selected node id (None when an edge, nothing or an
    unknown id is selected).
    """
    if not isinstance(value, dict):
        return p, None
    reported = {n.get("id"): n for n in value.get("nodes") or [] if isinstance(n, dict)}
    out = _copy(p)
    kept: list[Node] = []
    for n in out.nodes:
        r = reported.get(n.id)
        if r is None:
            continue  # deleted on the canvas (node menu)
        pos = r.get("position") or {}
        with contextlib.suppress(TypeError, ValueError):
            n.position = {"x": float(pos.get("x", n.position["x"])), "y": float(pos.get("y", n.position["y"]))}
        kept.append(n)
    out.nodes = kept
    ids = {n.id for n in kept}
    edges: list[Edge] = []
    seen: set[tuple[str, str]] = set()
    for e in value.get("edges") or []:
        if not isinstance(e, dict):
            continue
        pair = (str(e.get("source", "")), str(e.get("target", "")))
        if pair[0] in ids and pair[1] in ids and pair not in seen:
            seen.add(pair)
            edges.append(Edge(*pair))
    out.edges = edges
    sel = value.get("selectedId")
    return out, sel if sel in ids else None


def signature(nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> str:
    """What the canvas shows apart from positions (positions come from the user)."""
    body = json.dumps([[(n["id"], n["data"], n["style"]) for n in nodes],
                       sorted((e["source"], e["target"]) for e in edges)], sort_keys=True, default=str)
    return hashlib.sha1(body.encode()).hexdigest()


@dataclass
class CanvasResult:
    pipeline: Pipeline
    selected_id: str | None
    changed: bool  # the user changed the graph on the canvas during this run


def _now_ms() -> int:
    return int(time.time() * 1000)


def render_canvas(key: str, pipeline: Pipeline, problems_of: Callable[[Pipeline], dict[str, list[str]]],
                  selected_id: str | None = None, height: int = 520, force: bool = False,
                  figures: dict[str, tuple[int, int]] | None = None) -> CanvasResult:
    """Draw the canvas and return the pipeline with the user's canvas edits merged in.

    ``problems_of`` gives the per-node problems of the (merged) pipeline for the badges.
    ``force``: Python changed the graph (palette, form, layout); the canvas must take it.
    """
    import streamlit as st
    from streamlit_flow import streamlit_flow
    from streamlit_flow.elements import StreamlitFlowEdge, StreamlitFlowNode
    from streamlit_flow.state import StreamlitFlowState

    seen_key, ts_key, sig_key = f"{key}__seen_ts", f"{key}__py_ts", f"{key}__sig"
    value = st.session_state.get(key)
    changed = False
    sel = selected_id
    py_ts = int(st.session_state.get(ts_key, 0))
    if (isinstance(value, dict) and not force and int(value.get("timestamp") or 0) > py_ts
            and value.get("timestamp") != st.session_state.get(seen_key)):
        merged, sel_reported = merge_flow_value(pipeline, value)
        st.session_state[seen_key] = value.get("timestamp")
        changed = merged.to_dict() != pipeline.to_dict()
        pipeline = merged
        sel = sel_reported if value.get("selectedId") is not None else sel
        if sel is not None and sel not in {n.id for n in pipeline.nodes}:
            sel = None

    nodes, edges = flow_nodes_edges(pipeline, problems_of(pipeline), sel, figures)
    sig = signature(nodes, edges)
    if force or changed or sig != st.session_state.get(sig_key) or py_ts == 0:
        last_seen = int(st.session_state.get(seen_key) or 0)
        py_ts = max(_now_ms(), last_seen + 1, py_ts + 1)
        st.session_state[ts_key] = py_ts
        st.session_state[sig_key] = sig
    state = StreamlitFlowState(
        nodes=[StreamlitFlowNode.from_dict(n) for n in nodes],
        edges=[StreamlitFlowEdge.from_dict(e) for e in edges],
        selected_id=sel, timestamp=py_ts,
    )
    streamlit_flow(key, state, height=height, fit_view=True, show_controls=True, allow_new_edges=True,
                   get_node_on_click=True, get_edge_on_click=False, enable_node_menu=True,
                   enable_edge_menu=True, hide_watermark=True, min_zoom=0.2)
    return CanvasResult(pipeline=pipeline, selected_id=sel, changed=changed)
