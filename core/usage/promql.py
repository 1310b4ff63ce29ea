"""What one PromQL expression reads of the process metrics, found by walking its AST.

``promql-parser`` (Prometheus' own grammar, in Rust) parses; this module walks the tree and,
for every vector selector on a process metric (``process_cpu_time_seconds_total`` …, the names
the collector's prometheus exporter writes: ``core.engine.encoding``), records its label
matchers and whether the expression only ever *sums* it per host (then a rollup of the
unreferenced processes keeps the answer). Selectors on other metrics are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import promql_parser as pp

from core.catalog.process_metrics import PROCESS_METRICS, RESOURCE_ATTRIBUTE_COLUMNS
from core.domain.errors import ValidationError
from core.domain.user_regex import search
from core.engine.encoding import prometheus_label_name, prometheus_metric_name

#: Label → snapshot column, for the labels that identify a process (``process_pid`` …).
PROCESS_LABELS: dict[str, str] = {prometheus_label_name(k): c for k, c in RESOURCE_ATTRIBUTE_COLUMNS.items()}
#: The host label resourcedetection's ``host.name`` becomes; a matcher on it narrows, never identifies.
HOST_LABEL = "host_name"
#: Labels a per-host rollup keeps as they are: grouping by these (or nothing) survives a rollup.
HOST_LEVEL_LABELS = frozenset({HOST_LABEL, "os_type", "state", "direction", "type", "job", "instance",
                               "otel_scope_name", "otel_scope_version"})
#: Functions linear in their input series (with the same sample times): the sum of their
#: results over processes equals their result on the sum, so a rollup keeps ``sum(f(x))``.
LINEAR_FUNCTIONS = frozenset({"rate", "irate", "increase", "delta", "idelta", "sum_over_time", "avg_over_time",
                              "last_over_time"})
#: Longer expressions are refused before parsing: the Rust parser recurses per nesting level, and
#: a hostile expression (16,000 nested unary minuses) overflows its stack and kills the process.
#: 4,096 characters parse safely at any nesting, in a thread too; real rules are far shorter.
MAX_EXPR_CHARS = 4096
_OPS = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}  # promql_parser.MatchOp names


@cache
def process_metric_names() -> frozenset[str]:
    """Prometheus names of every hostmetrics ``process.*`` metric (enabled by default or not)."""
    return frozenset(prometheus_metric_name(m.name, m.unit, m.is_monotonic_sum, is_gauge=m.kind == "gauge")
                     for m in PROCESS_METRICS)


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str  # one of = != =~ !~
    value: str

    def __str__(self) -> str:
        return f'{self.label}{self.op}"{self.value}"'


@dataclass(frozen=True)
class Selector:
    """One vector selector on a process metric, as written in the expression."""

    metrics: tuple[str, ...]  # process metrics its name (or __name__ matchers) select
    matchers: tuple[Matcher, ...]  # every matcher except the metric name
    summed_per_host: bool  # every path up to the root sums it with host-level grouping only
    text: str

    @property
    def process_matchers(self) -> tuple[Matcher, ...]:
        return tuple(m for m in self.matchers if m.label in PROCESS_LABELS)


@dataclass
class Usage:
    selectors: list[Selector] = field(default_factory=list)
    grouping: set[str] = field(default_factory=set)  # labels named in by/on/group_left/… clauses


def parse(expr: str) -> pp.Expr:
    """The AST; ValueError (one line) when promql-parser refuses the text."""
    if len(expr) > MAX_EXPR_CHARS:
        raise ValueError(f"the expression is longer than {MAX_EXPR_CHARS:,} characters ({len(expr):,})")
    try:
        return pp.parse(expr)
    except Exception as exc:  # the binding raises a plain Exception subclass per parse error
        first = str(exc).strip().splitlines()
        raise ValueError(first[0] if first else "not valid PromQL") from None


def usage(expr: str) -> Usage:
    """Every process-metric selector of ``expr`` and the labels its grouping clauses name."""
    out = Usage()
    try:
        _walk(parse(expr), [], out)
    except ValidationError as exc:  # a __name__ regex RE2 refuses
        raise ValueError(str(exc)) from None
    return out


def _walk(root: object, above: list[object], out: Usage) -> None:
    """Depth-first over the AST with an explicit stack (a long ``a + a + …`` chain is as deep as
    it is long: recursion would hit Python's limit)."""
    stack: list[tuple[object, list[object]]] = [(root, above)]
    while stack:
        node, path = stack.pop()
        here = [*path, node]
        if isinstance(node, pp.VectorSelector):
            out.selectors += _selectors(node, path)
        elif isinstance(node, pp.MatrixSelector):
            stack.append((node.vector_selector, here))
        elif isinstance(node, pp.AggregateExpr):
            if node.modifier is not None:
                out.grouping.update(node.modifier.labels)
            stack += [(child, here) for child in (node.param, node.expr) if child is not None]
        elif isinstance(node, pp.BinaryExpr):
            if node.modifier is not None:
                if node.modifier.matching is not None:
                    out.grouping.update(node.modifier.matching.labels)
                out.grouping.update(node.modifier.group_labels or [])
            stack += [(node.rhs, here), (node.lhs, here)]
        elif isinstance(node, pp.Call):
            stack += [(arg, here) for arg in reversed(node.args)]
        elif isinstance(node, pp.ParenExpr | pp.UnaryExpr | pp.SubqueryExpr):
            stack.append((node.expr, here))


def _selectors(node: pp.VectorSelector, above: list[object]) -> list[Selector]:
    """One Selector per alternative: ``{a="1" or b="2"}`` (Prometheus 3) selects the union."""
    ors = [g for g in (getattr(node.matchers, "or_matchers", None) or []) if g]
    names = process_metric_names()
    summed = _summed_per_host(above)
    out = []
    for group in ors or [node.matchers.matchers]:
        picked = set(names) if node.name is None else ({node.name} & names)
        matchers: list[Matcher] = []
        for m in group:
            op = _op(m.op)
            if m.name == "__name__":
                picked = {n for n in picked if _name_matches(op, m.value, n)}
            else:
                matchers.append(Matcher(m.name, op, m.value))
        if picked:
            out.append(Selector(tuple(sorted(picked)), tuple(dict.fromkeys(matchers)), summed, _text(node)))
    return out


def _text(node: pp.VectorSelector) -> str:
    """The selector as shown in reasons (``name`` rather than ``name{}``)."""
    text = str(node)
    return text[:-2] if text.endswith("{}") else text


def _op(op: object) -> str:
    name = _OPS.get(str(op).rsplit(".", 1)[-1])
    if name is None:
        raise ValueError(f"unknown matcher operator {op}")
    return name


def _name_matches(op: str, value: str, name: str) -> bool:
    """A ``__name__`` matcher on one metric name (anchored RE2, as Prometheus)."""
    hit = name == value if op in ("=", "!=") else search(f"^(?:{value})$", name, where="__name__ matcher")
    return hit != (op in ("!=", "!~"))


def _summed_per_host(above: list[object]) -> bool:
    """True when the innermost operations over this selector are linear functions ending in a
    ``sum`` (by host-level labels only): what a sum-preserving rollup leaves unchanged."""
    for node in reversed(above):
        if isinstance(node, pp.MatrixSelector | pp.ParenExpr):
            continue
        if isinstance(node, pp.Call) and node.func.name in LINEAR_FUNCTIONS:
            continue
        if isinstance(node, pp.AggregateExpr) and str(node.op) == "sum":
            mod = node.modifier
            if mod is None:
                return True
            kind = str(mod.type)
            return kind.endswith("By") and set(mod.labels) <= HOST_LEVEL_LABELS
        return False
    return False
