"""Pipeline graph: typed nodes on a canvas, edges, and the checks a graph must pass.

A pipeline is one ``hostmetrics`` receiver → a linear chain of processors → one or more
exporters (fan-out only at the end). It is stored as JSON (or YAML with the same shape):

    {"name", "description", "nodes": [{"id", "type", "params", "position": {"x", "y"}}],
     "edges": [{"source", "target"}], "critical_policy": [{match, pattern, priority}] | null}

``Pipeline.from_dict`` refuses malformed input with a ``ValidationError`` listing every
problem. This module knows no node types: it holds the graph-shape checks (ids, edges,
cycles, reachability, one chain) given each node's role; ``core.catalog.compiler`` adds
what the node types say (``core.catalog.validate``: params, order, critical guard) and
compiles the result.
Every pipeline *file* (CLI, builder upload, templates) is parsed by ``Pipeline.from_text`` /
``Pipeline.from_file``, i.e. by ``core.domain.documents`` with its size, depth and alias limits.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.domain.critical import DEFAULT_POLICY, CriticalPolicy, policy_from_rules, rule_problems
from core.domain.documents import load_mapping, read_bounded
from core.domain.errors import ValidationError
from core.domain.user_regex import regex_problem, search

MAX_NODES = 100
MAX_EDGES = 400
MAX_DESCRIPTION = 4000
MAX_POSITION = 1e9  # canvas coordinates; beyond this a float() of a YAML integer overflows
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,79}$")
NODE_ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,47}$")


@dataclass
class Node:
    id: str
    type: str
    params: dict[str, Any] = field(default_factory=dict)
    position: dict[str, float] = field(default_factory=lambda: {"x": 0.0, "y": 0.0})

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "params": copy.deepcopy(self.params),
                "position": dict(self.position)}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str

    def to_dict(self) -> dict[str, str]:
        return {"source": self.source, "target": self.target}


@dataclass
class Pipeline:
    name: str
    description: str = ""
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    critical_policy: list[dict[str, str]] | None = None

    # ---- (de)serialisation -------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Any) -> Pipeline:
        problems = _shape_problems(data)
        if problems:
            raise ValidationError(problems)
        nodes = [
            Node(
                id=n["id"], type=n["type"], params=copy.deepcopy(n.get("params") or {}),
                position={"x": float((n.get("position") or {}).get("x", 0)),
                          "y": float((n.get("position") or {}).get("y", 0))},
            )
            for n in data["nodes"]
        ]
        edges = [Edge(e["source"], e["target"]) for e in data.get("edges") or []]
        policy = data.get("critical_policy")
        return cls(name=data["name"], description=data.get("description") or "", nodes=nodes, edges=edges,
                   critical_policy=copy.deepcopy(policy) if policy is not None else None)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "nodes": [n.to_dict() for n in self.nodes],
            "edges": [e.to_dict() for e in self.edges],
        }
        if self.critical_policy is not None:
            out["critical_policy"] = copy.deepcopy(self.critical_policy)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    @classmethod
    def from_text(cls, text: str | bytes, source: str = "pipeline") -> Pipeline:
        """Parse a JSON or YAML pipeline within the document limits (the one pipeline-file parser)."""
        return cls.from_dict(load_mapping(text, source))

    @classmethod
    def from_file(cls, path: str | Path) -> Pipeline:
        """Read and parse a pipeline file; a ValidationError names the file."""
        return cls.from_text(read_bounded(path, what="pipeline file"), source=str(path))

    # ---- queries ------------------------------------------------------------------
    def node(self, node_id: str) -> Node:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    def policy(self) -> CriticalPolicy:
        if self.critical_policy is None:
            return DEFAULT_POLICY
        return policy_from_rules(self.critical_policy, source=f"pipeline {self.name}")

    # The three queries below read roles off the graph's shape, which in a valid pipeline
    # says exactly what the node types would: the receiver is the one node nothing feeds,
    # exporters are the nodes that feed nothing, processors are the rest. Code that knows
    # node types uses core.catalog.compiled instead.
    def receiver(self) -> Node:
        """The receiver (the graph must be valid)."""
        fed = {e.target for e in self.edges}
        return next(n for n in self.nodes if n.id not in fed)

    def chain(self) -> list[Node]:
        """Processors in order from the receiver (the graph must be valid)."""
        return _chain(self, _roles(self))

    def exporters(self) -> list[Node]:
        """Exporters in node order (the graph must be valid)."""
        kinds = _roles(self)
        return [n for n in self.nodes if kinds.get(n.id) == "exporter"]


def _roles(p: Pipeline) -> dict[str, str]:
    """Node id → receiver / processor / exporter, from the graph's shape alone."""
    feeding = {e.source for e in p.edges}
    recv = p.receiver().id
    return {n.id: "receiver" if n.id == recv else "processor" if n.id in feeding else "exporter"
            for n in p.nodes}


def _chain(p: Pipeline, kinds: Mapping[str, str]) -> list[Node]:
    succ = _successors(p)
    out: list[Node] = []
    current = next(n.id for n in p.nodes if kinds.get(n.id) == "receiver")
    seen = {current}
    while True:
        nxt = [t for t in succ.get(current, []) if kinds.get(t) == "processor"]
        if len(nxt) != 1 or nxt[0] in seen:
            return out
        current = nxt[0]
        seen.add(current)
        out.append(p.node(current))


def _successors(p: Pipeline) -> dict[str, list[str]]:
    succ: dict[str, list[str]] = {}
    for e in p.edges:
        succ.setdefault(e.source, []).append(e.target)
    return succ


def _shape_problems(data: Any) -> list[str]:
    """Structural problems (types, required keys, sizes) without raising KeyError."""
    if not isinstance(data, dict):
        return ["a pipeline must be a mapping with name, nodes and edges"]
    problems: list[str] = []
    extra = sorted(str(k) for k in set(data) - {"name", "description", "nodes", "edges", "critical_policy"})
    if extra:
        problems.append(f"unknown top-level key(s): {', '.join(extra)}")
    name = data.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        problems.append(f"name must be 1-80 characters of a-z, 0-9, '.', '_' or '-' "
                        f"(starting with a letter or digit), got {name!r}")
    desc = data.get("description", "")
    if desc is not None and not isinstance(desc, str):
        problems.append("description must be a string")
    elif isinstance(desc, str) and len(desc) > MAX_DESCRIPTION:
        problems.append(f"description is longer than {MAX_DESCRIPTION} characters")
    nodes = data.get("nodes")
    if not isinstance(nodes, list):
        problems.append("nodes must be a list")
        nodes = []
    elif len(nodes) > MAX_NODES:
        problems.append(f"too many nodes: {len(nodes)} (at most {MAX_NODES})")
    seen: set[str] = set()
    for i, n in enumerate(nodes):
        at = f"nodes[{i}]"
        if not isinstance(n, dict):
            problems.append(f"{at} must be a mapping with id, type, params and position")
            continue
        extra = sorted(str(k) for k in set(n) - {"id", "type", "params", "position"})
        if extra:
            problems.append(f"{at} has unknown key(s): {', '.join(extra)}")
        nid = n.get("id")
        if not isinstance(nid, str) or not NODE_ID_RE.match(nid):
            problems.append(f"{at}.id must be 1-48 characters of letters, digits, '_' or '-' starting with a "
                            f"letter, got {nid!r}")
        elif nid in seen:
            problems.append(f"duplicate node id {nid!r}")
        else:
            seen.add(nid)
            at = f"node {nid!r}"
        if not isinstance(n.get("type"), str) or not n.get("type"):
            problems.append(f"{at}.type must be a node type name")
        if n.get("params") is not None and not isinstance(n.get("params"), dict):
            problems.append(f"{at}.params must be a mapping")
        pos = n.get("position")
        if pos is not None and (not isinstance(pos, dict) or not all(_coordinate(pos.get(k, 0)) for k in ("x", "y"))):
            problems.append(f"{at}.position must be {{x: number, y: number}} within ±{MAX_POSITION:g}")
    edges = data.get("edges", [])
    if not isinstance(edges, list):
        problems.append("edges must be a list")
    else:
        if len(edges) > MAX_EDGES:
            problems.append(f"too many edges: {len(edges)} (at most {MAX_EDGES})")
        for i, e in enumerate(edges):
            if (not isinstance(e, dict) or not isinstance(e.get("source"), str)
                    or not isinstance(e.get("target"), str) or set(e) - {"source", "target", "id"}):
                problems.append(f"edges[{i}] must be {{source: node id, target: node id}}")
    policy = data.get("critical_policy")
    if policy is not None:
        problems.extend(rule_problems(policy, "critical_policy"))
    return problems


def _coordinate(v: Any) -> bool:
    # abs() first: NaN and ±inf fail it, and a huge int compares without converting to float.
    return isinstance(v, int | float) and not isinstance(v, bool) and abs(v) <= MAX_POSITION


def duplicate_id_problems(p: Pipeline) -> list[str]:
    ids = [n.id for n in p.nodes]
    if len(set(ids)) == len(ids):
        return []
    dup = sorted({i for i in ids if ids.count(i) > 1})
    return [f"duplicate node id(s): {', '.join(dup)}"]


def edge_problems(p: Pipeline, kinds: Mapping[str, str]) -> tuple[list[str], list[Edge]]:
    """Problems with single edges, and the edges that have none.

    ``kinds`` maps node id → receiver / processor / exporter for nodes of a known type
    (the catalog knows types; the graph only needs their roles).
    """
    problems: list[str] = []
    node_ids = {n.id for n in p.nodes}
    edges_ok: list[Edge] = []
    seen_edges: set[tuple[str, str]] = set()
    for e in p.edges:
        missing = [x for x in (e.source, e.target) if x not in node_ids]
        if missing:
            problems.append(f"edge {e.source} → {e.target} points to unknown node(s): {', '.join(missing)}")
            continue
        if e.source == e.target:
            problems.append(f"edge {e.source} → {e.target} connects a node to itself")
            continue
        if (e.source, e.target) in seen_edges:
            problems.append(f"edge {e.source} → {e.target} appears twice")
            continue
        seen_edges.add((e.source, e.target))
        if kinds.get(e.target) == "receiver":
            problems.append(f"edge {e.source} → {e.target}: nothing can feed the receiver")
            continue
        if kinds.get(e.source) == "exporter":
            problems.append(f"edge {e.source} → {e.target}: an exporter is an end point and cannot feed a node")
            continue
        edges_ok.append(e)
    return problems, edges_ok


def topology_problems(p: Pipeline, kinds: Mapping[str, str], edges: list[Edge]) -> list[str]:
    """Cycles, reachability and the one-chain shape, for a graph with well-formed nodes and
    ``edges`` (those ``edge_problems`` accepted), exactly one receiver and every kind known."""
    succ: dict[str, list[str]] = {}
    pred: dict[str, list[str]] = {}
    for e in edges:
        succ.setdefault(e.source, []).append(e.target)
        pred.setdefault(e.target, []).append(e.source)
    cycle = _find_cycle([n.id for n in p.nodes], succ)
    if cycle:
        return ["the graph has a cycle: " + " → ".join(cycle)]

    problems: list[str] = []
    recv = next(n.id for n in p.nodes if kinds[n.id] == "receiver")
    reach = _reach(recv, succ)
    for n in p.nodes:
        if n.id != recv and n.id not in reach:
            problems.append(f"node {n.id!r} ({n.type}) is not reachable from the receiver {recv!r}")
    exp_ids = {n.id for n in p.nodes if kinds[n.id] == "exporter"}
    for n in p.nodes:
        if kinds[n.id] != "exporter" and not (_reach(n.id, succ) & exp_ids):
            problems.append(f"node {n.id!r} ({n.type}) does not lead to any exporter")
    if problems:
        return problems

    # Linear chain: the collector runs one processor sequence per pipeline; fan-out
    # only to exporters, all after the last processor.
    for n in p.nodes:
        proc_next = [t for t in succ.get(n.id, []) if kinds[t] == "processor"]
        if len(proc_next) > 1:
            problems.append(f"node {n.id!r} branches into several processors ({', '.join(proc_next)}): "
                            "processors must form one chain; only exporters may fan out at the end")
        if kinds[n.id] == "processor" and len(pred.get(n.id, [])) > 1:
            problems.append(f"node {n.id!r} has several inputs ({', '.join(pred[n.id])}): processors must "
                            "form one chain")
    if problems:
        return problems
    chain = _chain(p, kinds)
    last = chain[-1].id if chain else recv
    for n in p.nodes:
        if kinds[n.id] != "exporter":
            continue
        sources = pred.get(n.id, [])
        if sources != [last]:
            problems.append(f"exporter {n.id!r} must be fed only by the last processor {last!r} "
                            f"(fed by {', '.join(sources)}): every exporter gets the same processed stream")
    return problems


_LITERAL_ALTS = re.compile(r"^\^\(\?:([A-Za-z0-9_.|-]+)\)\$$")


def critical_literal_names(policy: CriticalPolicy) -> list[str]:
    """Executable names a critical rule lists literally (``^(?:a|b)$`` or ``^a$``)."""
    out: list[str] = []
    for r in policy.critical_rules:
        if r.match != "executable_name":
            continue
        m = _LITERAL_ALTS.match(r.pattern) or re.match(r"^\^([A-Za-z0-9_.-]+)\$$", r.pattern)
        if m:
            out += [a for a in m.group(1).split("|") if a]
    return out


def name_scraped(name: str, include: list[str], exclude: list[str], match_type: str) -> bool:
    """Whether an include/exclude name filter (strict or RE2 regexp) lets ``name`` through."""
    def hit(patterns: list[str]) -> bool:
        if match_type == "strict":
            return name in patterns
        return any(_safe_search(pat, name) for pat in patterns)

    return (not include or hit(include)) and not (exclude and hit(exclude))


def _safe_search(pattern: str, text: str) -> bool:
    # RE2, like the collector's include/exclude filter; a refused pattern is reported elsewhere.
    return regex_problem(pattern) is None and search(pattern, text)


def _reach(start: str, succ: dict[str, list[str]]) -> set[str]:
    seen = {start}
    stack = [start]
    while stack:
        for t in succ.get(stack.pop(), []):
            if t not in seen:
                seen.add(t)
                stack.append(t)
    return seen


def _find_cycle(ids: list[str], succ: dict[str, list[str]]) -> list[str] | None:
    color = dict.fromkeys(ids, 0)
    parent: dict[str, str] = {}
    for root in ids:
        if color[root]:
            continue
        stack = [(root, iter(succ.get(root, [])))]
        color[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                color[node] = 2
                stack.pop()
            elif color.get(nxt, 0) == 0:
                color[nxt] = 1
                parent[nxt] = node
                stack.append((nxt, iter(succ.get(nxt, []))))
            elif color.get(nxt) == 1:
                cycle = [nxt]
                cur = node
                while cur != nxt:
                    cycle.append(cur)
                    cur = parent[cur]
                cycle.append(nxt)
                return list(reversed(cycle))
    return None
