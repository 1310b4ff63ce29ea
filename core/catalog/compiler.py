"""Compile a ``Pipeline`` into a ``CompiledPipeline`` (core.catalog.compiled), or say why not.

``check`` runs the graph-shape rules (core.domain.pipeline) and the node-type rules
(core.catalog.validate) in the order a user reads them and builds the compiled form once;
``compile_pipeline`` raises a ``ValidationError`` listing every problem, ``validate_graph``
returns them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from core.catalog.base import EmitContext
from core.catalog.compiled import CompiledNode, CompiledPipeline
from core.catalog.hostmetrics import enabled_metrics
from core.catalog.registry import REGISTRY
from core.catalog.validate import node_problems, role_problems, semantic_problems
from core.domain.critical import rule_problems
from core.domain.errors import ValidationError
from core.domain.pipeline import Pipeline, duplicate_id_problems, edge_problems, topology_problems


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


def _compiled_node(node_id: str, type_name: str, params: Mapping[str, Any]) -> CompiledNode:
    t = REGISTRY[type_name]
    return CompiledNode(node_id, t, MappingProxyType(copy.deepcopy(t.resolve(params))))


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
