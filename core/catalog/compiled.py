"""Parse → validate → compile once: the form of a pipeline every consumer reads.

A ``Pipeline`` (core.domain) is the stored graph: ids, types, raw params, edges. Compiling
it checks everything (graph shape in core.domain, node types here and in
``core.catalog.validate``) and, when there is nothing to complain about, resolves it into
a ``CompiledPipeline``: the receiver, the processors in chain order and the exporters,
each a ``CompiledNode`` holding its ``NodeType`` and its params with every default
filled in, plus what several consumers need and used to recompute (the critical policy,
receiver patches, the metrics the receiver really exports).

The renderer, the engine (evaluate, estimate, tuning) and the runtimes take a compiled
pipeline (or compile the ``Pipeline`` they are given, once), so none of them walks the
graph, looks up the registry or merges defaults on its own.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from core.catalog.base import EmitContext, NodeKind, NodeType
from core.catalog.hostmetrics import enabled_metrics
from core.catalog.registry import REGISTRY
from core.catalog.validate import node_problems, role_problems, semantic_problems
from core.domain.critical import CriticalPolicy, rule_problems
from core.domain.errors import ValidationError
from core.domain.pipeline import Pipeline, duplicate_id_problems, edge_problems, topology_problems


@dataclass(frozen=True)
class CompiledNode:
    """One node, resolved: its type and its params with every default filled in.

    ``params`` is a read-only view of a private copy: changing the source ``Pipeline``
    afterwards does not change a compiled one (tuning compiles again).
    """

    id: str
    node_type: NodeType
    params: Mapping[str, Any]

    @property
    def type(self) -> str:
        return self.node_type.type_name

    @property
    def kind(self) -> NodeKind:
        return self.node_type.kind


@dataclass(frozen=True)
class CompiledPipeline:
    pipeline: Pipeline  # a private copy of the source, for names, persistence and tuning
    policy: CriticalPolicy
    receiver: CompiledNode
    chain: tuple[CompiledNode, ...]  # processors, in order
    exporters: tuple[CompiledNode, ...]
    # ``receiver_patch`` of every processor that has one, in chain order.
    receiver_patches: tuple[Mapping[str, Any], ...]
    # Metrics the receiver exports after its toggles and those patches.
    enabled_metrics: frozenset[str]

    @property
    def name(self) -> str:
        return self.pipeline.name

    @property
    def nodes(self) -> tuple[CompiledNode, ...]:
        """Receiver, processors, exporters: the order data flows in."""
        return (self.receiver, *self.chain, *self.exporters)

    def node(self, node_id: str) -> CompiledNode:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    def tunable(self) -> tuple[CompiledNode, ...]:
        """Processors whose params Phoenix computes from data, in chain order."""
        return tuple(n for n in self.chain if n.node_type.tunable)


def check(p: Pipeline) -> tuple[list[str], CompiledPipeline | None]:
    """Every problem with ``p`` and, when there are none, its compiled form."""
    problems = duplicate_id_problems(p)
    problems += node_problems(p)
    if p.critical_policy is not None:
        problems += rule_problems(p.critical_policy, "critical_policy")
    kinds: dict[str, str] = {n.id: REGISTRY[n.type].kind for n in p.nodes if n.type in REGISTRY}
    problems += role_problems(p, kinds)
    bad_edges, edges = edge_problems(p, kinds)
    problems += bad_edges
    if problems:
        return problems, None  # the rest assumes well-formed nodes and edges
    problems = topology_problems(p, kinds, edges)
    if problems:
        return problems, None
    try:
        compiled = _build(p)
    except ValidationError as exc:  # a critical policy rule_problems let through
        return exc.problems, None
    problems = semantic_problems(compiled)
    return problems, None if problems else compiled


def validate_graph(p: Pipeline) -> list[str]:
    """Every problem with the pipeline, each a sentence naming the node it is about."""
    return check(p)[0]


def compile_pipeline(p: Pipeline) -> CompiledPipeline:
    """The compiled pipeline; ``ValidationError`` lists every problem."""
    problems, compiled = check(p)
    if compiled is None:
        raise ValidationError(problems)
    return compiled


def ensure_valid(p: Pipeline) -> Pipeline:
    compile_pipeline(p)
    return p


def as_compiled(p: Pipeline | CompiledPipeline) -> CompiledPipeline:
    return p if isinstance(p, CompiledPipeline) else compile_pipeline(p)


def _compiled_node(node_id: str, type_name: str, params: Mapping[str, Any]) -> CompiledNode:
    t = REGISTRY[type_name]
    return CompiledNode(node_id, t, MappingProxyType(copy.deepcopy(t.with_defaults(params))))


def _build(p: Pipeline) -> CompiledPipeline:
    """The compiled form of a pipeline whose graph shape is valid."""
    source = copy.deepcopy(p)
    policy = source.policy()
    receiver = _compiled_node(source.receiver().id, source.receiver().type, source.receiver().params)
    chain = tuple(_compiled_node(n.id, n.type, n.params) for n in source.chain())
    exporters = tuple(_compiled_node(n.id, n.type, n.params) for n in source.exporters())
    # Receiver patches first: later nodes see the enabled-metric set the earlier ones left.
    receiver_params = dict(receiver.params)
    enabled = enabled_metrics(receiver_params)
    patches: list[Mapping[str, Any]] = []
    for n in chain:
        emitted = n.node_type.emit(dict(n.params), EmitContext(node_id=n.id, enabled_metrics=enabled,
                                                               critical_policy=policy))
        if emitted.receiver_patch:
            patches.append(MappingProxyType(emitted.receiver_patch))
            enabled = enabled_metrics(receiver_params, [dict(q.get("metrics", {})) for q in patches])
    return CompiledPipeline(pipeline=source, policy=policy, receiver=receiver, chain=chain, exporters=exporters,
                            receiver_patches=tuple(patches), enabled_metrics=enabled)
