"""The shape every node type follows (like an OpenTelemetry Collector component).

A node type is defined once, in one module under ``core/catalog/``, with four things side
by side: its parameter schema with documented defaults, ``validate()`` with specific
messages, ``emit()`` — the otelcol-contrib configuration it contributes — and
``kernel()`` — what it does to data in the engine. See docs/pipeline-semantics.md.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # annotations only; the frame and its context live in the catalog layer too
    from core.catalog.eval_context import EvalContext
    from core.catalog.frame import ResourceFrame

NodeKind = Literal["receiver", "processor", "exporter"]
ParamType = Literal["int", "float", "str", "bool", "enum", "duration", "list[str]", "rules", "map", "bytes"]


@dataclass(frozen=True)
class Param:
    """One parameter of a node type: what the builder's form and the validator need."""

    name: str
    type: ParamType
    default: Any
    description: str
    unit: str | None = None
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    advanced: bool = False


@dataclass
class Emitted:
    """Collector components one node contributes, keyed by component id (``type[/name]``).

    ``processors`` keeps insertion order: it is the order they appear in the pipeline.
    ``receiver_patch`` lets a node adjust the hostmetrics receiver (e.g. metric toggles).
    """

    receivers: dict[str, dict[str, Any]] = field(default_factory=dict)
    processors: dict[str, dict[str, Any]] = field(default_factory=dict)
    exporters: dict[str, dict[str, Any]] = field(default_factory=dict)
    extensions: dict[str, dict[str, Any]] = field(default_factory=dict)
    receiver_patch: dict[str, Any] = field(default_factory=dict)
    # Human-readable remarks the renderer writes as YAML comments (e.g. "default
    # thresholds: no snapshot computed yet").
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class EmitContext:
    """What emitters may depend on besides their own params."""

    node_id: str
    experiment_id: str | None = None
    variant: str | None = None
    # Metrics the receiver enables after toggles (some nodes need e.g. cpu.utilization).
    enabled_metrics: frozenset[str] = frozenset()
    critical_policy: Any = None


class NodeType(ABC):
    """Base class: subclasses set the class attributes and implement the three methods."""

    type_name: str = ""
    kind: NodeKind = "processor"
    title: str = ""
    description: str = ""
    params: tuple[Param, ...] = ()
    # True for nodes that drop or aggregate processes: they must exempt critical ones.
    reduces_processes: bool = False

    def reduces(self, params: dict[str, Any]) -> bool:
        """Whether this node, with these params, can drop or aggregate processes."""
        return self.reduces_processes

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def with_defaults(self, params: dict[str, Any]) -> dict[str, Any]:
        merged = self.defaults()
        merged.update(params or {})
        return merged

    @abstractmethod
    def validate(self, params: dict[str, Any]) -> list[str]:
        """Specific, human-readable problems with ``params`` (empty list when valid)."""

    @abstractmethod
    def emit(self, params: dict[str, Any], ctx: EmitContext) -> Emitted:
        """The collector components this node contributes."""

    @abstractmethod
    def kernel(self, frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
        """What this node does to data; must match what ``emit`` configures."""
