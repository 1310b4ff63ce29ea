"""The node-type registry: one instance per type, looked up by ``type_name``.

Like the collector's factory map: the builder's palette, graph validation, the renderer
and the engine all go through here, so a type exists exactly once.
"""

from __future__ import annotations

from core.catalog import (
    adaptive,
    attribute_reduction,
    batch,
    cumulativetodelta,
    debug,
    hostmetrics,
    intelligent,
    interval,
    memory_limiter,
    metric_selection,
    otlphttp,
    priority_classifier,
    prometheus,
    prometheusremotewrite,
    resource_filter,
    resourcedetection,
    rollup,
    topk,
)
from core.catalog.base import NodeType
from core.domain.errors import NotFoundError

_MODULES = (
    hostmetrics, priority_classifier, resource_filter, topk, adaptive, intelligent, rollup,
    attribute_reduction, metric_selection, interval, memory_limiter, batch, resourcedetection,
    cumulativetodelta, prometheus, prometheusremotewrite, otlphttp, debug,
)

REGISTRY: dict[str, NodeType] = {m.NODE.type_name: m.NODE for m in _MODULES}


def get(type_name: str) -> NodeType:
    try:
        return REGISTRY[type_name]
    except KeyError:
        raise NotFoundError(
            f"unknown node type {type_name!r}; known: {', '.join(sorted(REGISTRY))}"
        ) from None


def all_types() -> list[NodeType]:
    return list(REGISTRY.values())


def by_kind(kind: str) -> list[NodeType]:
    return [t for t in REGISTRY.values() if t.kind == kind]
