"""The shape every node type follows (like an OpenTelemetry Collector component).

A node type is defined once, in one module under ``core/catalog/``, with four things side
by side: its parameter schema with documented defaults, ``validate()`` with specific
messages, ``emit()`` — the otelcol-contrib configuration it contributes — and
``kernel()`` — what it does to data in the engine. See docs/pipeline-semantics.md.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import urlsplit

if TYPE_CHECKING:  # annotations only; the frame and its context live in the catalog layer too
    from core.catalog.eval_context import EvalContext
    from core.catalog.frame import ResourceFrame

NodeKind = Literal["receiver", "processor", "exporter"]
# Where a processor must sit in the chain (the collector's own advice: memory_limiter
# first so it can refuse data early, batch last so it batches what is exported).
ChainPosition = Literal["first", "last"]
# How the engine fills a tunable node's data-driven params (core.engine.tuning):
# thresholds for K per host, thresholds for K derived from a series budget, or names.
Tuning = Literal["k_thresholds", "budget_thresholds", "learned_names"]
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


class ChainNode(Protocol):
    """A node of a compiled chain as node types see it (``core.catalog.compiled.CompiledNode``)."""

    @property
    def id(self) -> str: ...

    @property
    def node_type(self) -> NodeType: ...

    @property
    def params(self) -> Mapping[str, Any]: ...


#: The canvas has room for about this much under a node's title.
SUMMARY_MAX = 60


def short_value(value: Any) -> str:
    """A param value as a few characters: lists and maps by size, floats without noise."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value)) if len(value) <= 2 else f"{len(value)} items"
    if isinstance(value, Mapping):
        return f"{len(value)} set" if value else "none"
    return str(value)


def short_bytes(n: float) -> str:
    """Bytes in binary units (268435456 → "256 MiB")."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" or value == int(value) else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:g} TiB"  # pragma: no cover - the loop returns


def short_endpoint(text: Any) -> str:
    """Where an endpoint points, host and port only: never credentials, paths or queries."""
    raw = str(text or "")
    netloc = urlsplit(raw).netloc if "://" in raw else raw.split("/")[0]
    return netloc.rpartition("@")[2] or "?"


def generic_summary(params: tuple[Param, ...], p: Mapping[str, Any]) -> str:
    basic = [q for q in params if not q.advanced][:2]
    return " · ".join(f"{q.name.replace('_', ' ')} {short_value(p.get(q.name))}" for q in basic)


class NodeType(ABC):
    """Base class: subclasses set the class attributes and implement the three methods.

    The capability attributes below are what validation, rendering, the engine, tuning
    and the runtimes ask of a node; none of them names a type, so a new node type is its
    module plus one line in the registry.
    """

    type_name: str = ""
    kind: NodeKind = "processor"
    title: str = ""
    description: str = ""
    params: tuple[Param, ...] = ()
    # True for nodes that drop or aggregate processes: they must exempt critical ones.
    reduces_processes: bool = False
    # True for nodes that set phoenix.keep (processes that stay individual, skip rollups).
    keeps_processes: bool = False
    # True for nodes that set phoenix.rollup (resources that stand for a group).
    rolls_up: bool = False
    # True for the node that sets phoenix.priority (what the critical guard needs first).
    classifies: bool = False
    # Order constraint within the processor chain, if any.
    position: ChainPosition | None = None
    # Name of an enum param choosing cpu / memory / combined thresholds: those metrics
    # must be scraped for the node to match anything.
    ranked_by: str | None = None
    # Set for nodes whose params Phoenix computes from data (see ``Tuning``).
    tuning: Tuning | None = None
    # Exporters: the wire format core.engine.encoding measures bytes in (None: sends nothing).
    wire_encoding: str | None = None

    @property
    def tunable(self) -> bool:
        return self.tuning is not None

    @property
    def tuned_param(self) -> str:
        """The param tuning writes: ``learned`` names or ``computed`` thresholds."""
        return "learned" if self.tuning == "learned_names" else "computed"

    def is_tuned(self, params: Mapping[str, Any]) -> bool:
        """Whether tuning has filled this node's data-driven param."""
        value = params.get(self.tuned_param) or {}
        return bool(value.get("names")) if self.tuning == "learned_names" else bool(value)

    def reduces(self, params: Mapping[str, Any]) -> bool:
        """Whether this node, with these params, can drop or aggregate processes."""
        return self.reduces_processes

    def marks_keep(self, params: Mapping[str, Any]) -> bool:
        """Whether this node, with these params, sets phoenix.keep on some processes."""
        return self.keeps_processes

    def uses_markers(self, params: Mapping[str, Any]) -> bool:
        """Whether the rendered config sets Phoenix's internal markers (cleaned up before export)."""
        return self.marks_keep(params) or self.rolls_up

    def needs_classifier(self, params: Mapping[str, Any]) -> bool:
        """Whether a priority classifier must run before this node (the critical guard)."""
        return not self.classifies and (self.reduces(params) or self.marks_keep(params))

    def listen_port(self, params: Mapping[str, Any]) -> str | None:
        """The local port this node listens on, if any (ports must not clash)."""
        return None

    def chain_problems(self, node: ChainNode, chain: Sequence[ChainNode]) -> list[str]:
        """Problems that depend on the rest of the chain (``node`` is one of ``chain``)."""
        return []

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def summary(self, params: Mapping[str, Any]) -> str:
        """One short line of what this node does with these params, for the canvas
        ("10 by memory"). Types override :meth:`describe`; params that are not valid yet
        (a form half filled in) fall back to the generic line rather than failing."""
        p = self.with_defaults(params)
        try:
            text = self.describe(p)
        except (TypeError, ValueError, KeyError, AttributeError, ArithmeticError):
            text = generic_summary(self.params, p)
        text = " ".join(str(text).split())
        return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1] + "…"

    def describe(self, p: dict[str, Any]) -> str:
        """The summary of ``p`` (defaults filled in). The default names the first two
        basic params with their values; a type overrides it to say what matters."""
        return generic_summary(self.params, p)

    def with_defaults(self, params: Mapping[str, Any]) -> dict[str, Any]:
        merged = self.defaults()
        merged.update(params or {})
        return merged

    def resolve(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Valid ``params`` as consumers read them: defaults filled in, float params as floats
        (a YAML ``1`` for a ratio is the number 1.0, not an integer)."""
        out = self.with_defaults(params)
        for p in self.params:
            v = out[p.name]
            if p.type == "float" and isinstance(v, int) and not isinstance(v, bool):
                out[p.name] = float(v)
        return out

    @abstractmethod
    def validate(self, params: dict[str, Any]) -> list[str]:
        """Specific, human-readable problems with ``params`` (empty list when valid)."""

    @abstractmethod
    def emit(self, params: dict[str, Any], ctx: EmitContext) -> Emitted:
        """The collector components this node contributes."""

    @abstractmethod
    def kernel(self, frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
        """What this node does to data; must match what ``emit`` configures."""
