"""Parse → validate → compile once: the form of a pipeline every consumer reads.

A ``Pipeline`` (core.domain) is the stored graph: ids, types, raw params, edges. Compiling
it (``core.catalog.compiler``) checks everything (graph shape in core.domain, node types
in ``core.catalog.validate``) and, when there is nothing to complain about, resolves it into
a ``CompiledPipeline``: the receiver, the processors in chain order and the exporters,
each a ``CompiledNode`` holding its ``NodeType`` and its params with every default
filled in, plus what several consumers need and used to recompute (the critical policy,
receiver patches, the metrics the receiver really exports).

The renderer, the engine (evaluate, estimate, tuning) and the runtimes take a compiled
pipeline (or compile the ``Pipeline`` they are given, once), so none of them walks the
graph, looks up the registry or merges defaults on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.catalog.base import NodeKind, NodeType
from core.domain.critical import CriticalPolicy
from core.domain.pipeline import Pipeline


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
