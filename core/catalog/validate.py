"""What the node types say about a pipeline: params, roles, order, critical guard, metrics.

The graph-shape rules (ids, edges, cycles, reachability, one chain) live in
``core.domain.pipeline``; ``core.catalog.compiler.check`` runs both, in the order a user
reads them (``core.catalog.compiler``). Every rule here asks a node type's capability attributes (``position``,
``needs_classifier``, ``ranked_by``, ``listen_port``, ``chain_problems``) rather than
naming a type, so a new node type brings its rules along in its own module.
"""

from __future__ import annotations

from collections.abc import Mapping

from core.catalog.compiled import CompiledPipeline
from core.catalog.registry import REGISTRY, by_kind
from core.domain.pipeline import Pipeline, critical_literal_names, name_scraped

# Ports the rendered config always uses besides the exporters' (core.render.collector).
_RESERVED_PORTS = {"8888": "the collector's self-telemetry", "13133": "the health_check extension"}


def node_problems(p: Pipeline) -> list[str]:
    """Unknown node types and each node's own param problems."""
    problems: list[str] = []
    for n in p.nodes:
        t = REGISTRY.get(n.type)
        if t is None:
            problems.append(f"node {n.id!r}: unknown node type {n.type!r} (known: {', '.join(sorted(REGISTRY))})")
            continue
        problems.extend(f"node {n.id!r} ({n.type}): {msg}" for msg in t.validate(n.params))
    return problems


def _one_of(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def role_problems(p: Pipeline, kinds: Mapping[str, str]) -> list[str]:
    """Exactly one receiver and at least one exporter."""
    problems: list[str] = []
    receivers = [n for n in p.nodes if kinds.get(n.id) == "receiver"]
    if len(receivers) != 1:
        problems.append(f"a pipeline needs exactly one {_one_of([t.type_name for t in by_kind('receiver')])} "
                        f"receiver, found {len(receivers)}")
    if not any(kinds.get(n.id) == "exporter" for n in p.nodes):
        problems.append(f"a pipeline needs at least one exporter "
                        f"({_one_of([t.type_name for t in by_kind('exporter')])})")
    return problems


def semantic_problems(cp: CompiledPipeline) -> list[str]:
    """Rules across nodes of a pipeline whose graph shape is valid."""
    problems: list[str] = []
    chain = cp.chain

    # Listeners: each exporter that listens needs its own port, apart from self-telemetry and health.
    used = dict(_RESERVED_PORTS)
    for n in cp.exporters:
        port = n.node_type.listen_port(n.params)
        if port is None:
            continue
        if port in used:
            problems.append(f"exporter {n.id!r} ({n.type}) listens on port {port}, already used by {used[port]}")
        else:
            used[port] = f"exporter {n.id!r}"

    # Order rules.
    for i, n in enumerate(chain):
        position = n.node_type.position
        if (position == "first" and i != 0) or (position == "last" and i != len(chain) - 1):
            problems.append(f"node {n.id!r} ({n.type}) must be the {position} processor")

    # Critical guard: everything that can drop, aggregate or keep needs the priority marks.
    classified = False
    for n in chain:
        if n.node_type.classifies:
            classified = True
            continue
        if n.node_type.needs_classifier(n.params) and not classified:
            problems.append(f"node {n.id!r} ({n.type}) needs a priority_classifier before it, so critical "
                            "processes are known and exempted")
        problems.extend(n.node_type.chain_problems(n, chain))

    # Without pid every process of one executable becomes the same resource: critical ones too.
    recv = cp.receiver
    if (recv.params.get("resource_attributes") or {}).get("process.pid") is False:
        problems.append(f"node {recv.id!r} ({recv.type}): disabling the process.pid resource attribute makes "
                        "processes collide and critical processes lose their identity")

    # Metrics the thresholds read must be scraped (what the rendered receiver really exports).
    enabled = cp.enabled_metrics
    for n in chain:
        if n.node_type.ranked_by is None:
            continue
        by = n.params[n.node_type.ranked_by]
        if by in ("cpu", "combined") and "process.cpu.utilization" not in enabled:
            problems.append(f"node {n.id!r} ({n.type}) ranks by {by} but the receiver does not enable "
                            "process.cpu.utilization; enable it in the hostmetrics metrics toggles")
        if by in ("memory", "combined") and "process.memory.usage" not in enabled:
            problems.append(f"node {n.id!r} ({n.type}) ranks by {by} but process.memory.usage is disabled")
    if not enabled:
        problems.append("the receiver enables no process metrics")

    # A scrape include/exclude list that leaves out a critical executable would lose it.
    include, exclude = recv.params.get("include_names") or [], recv.params.get("exclude_names") or []
    if include or exclude:
        for name in critical_literal_names(cp.policy):
            if not name_scraped(name, include, exclude, recv.params["match_type"]):
                problems.append(f"node {recv.id!r} ({recv.type}): include/exclude names would never scrape "
                                f"{name!r}, which the critical policy marks critical")
    return problems
