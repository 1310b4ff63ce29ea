"""Attribute reduction: delete resource attributes to shrink label sets.

Dropping identity without aggregating makes distinct processes collide (corrupt data),
so graph validation refuses deleting ``process.pid`` unless a rollup follows, and
never lets ``apply_to: all`` strip a critical process's pid.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from core.catalog._common import NOT_CRITICAL, check_params, component_id, ottl_str
from core.catalog.base import ChainNode, EmitContext, Emitted, NodeType, Param
from core.catalog.kernel_ops import set_na
from core.catalog.process_metrics import RESOURCE_ATTRIBUTE_DEFAULTS

if TYPE_CHECKING:
    from core.catalog.eval_context import EvalContext
    from core.catalog.frame import ResourceFrame

KEYS = tuple(RESOURCE_ATTRIBUTE_DEFAULTS)


class AttributeReduction(NodeType):
    type_name = "attribute_reduction"
    title = "Attribute reduction"
    description = "Deletes resource attributes (e.g. command_line) from non-critical processes."
    reduces_processes = True
    params = (
        Param("delete_keys", "list[str]", ["process.command_line", "process.command"], "Attributes to delete.",
              choices=KEYS),
        Param("apply_to", "enum", "non_critical", "non_critical exempts critical processes.",
              choices=("non_critical", "all")),
    )

    def describe(self, p: dict[str, Any]) -> str:
        n = len(p["delete_keys"])
        return f"delete {n} attribute{'s' if n != 1 else ''} · {p['apply_to'].replace('_', '-')}"

    def validate(self, params: dict[str, Any]) -> list[str]:
        problems = check_params(self.params, params)
        if problems:
            return problems
        p = self.with_defaults(params)
        if not p["delete_keys"]:
            problems.append("delete_keys is empty: this node would do nothing")
        if p["apply_to"] == "all" and "process.pid" in p["delete_keys"]:
            problems.append("deleting process.pid with apply_to all would strip critical processes' identity; "
                            "use apply_to non_critical")
        return problems

    def chain_problems(self, node: ChainNode, chain: Sequence[ChainNode]) -> list[str]:
        # Dropping pid without aggregating makes distinct processes one series (corrupt data).
        if "process.pid" not in node.params["delete_keys"]:
            return []
        later = chain[chain.index(node) + 1:]
        if not any(m.node_type.rolls_up for m in later):
            return [f"node {node.id!r} (attribute_reduction) deletes process.pid without a rollup "
                    "after it: distinct processes would collide into one series"]
        markers = [m.id for m in chain if m.node_type.marks_keep(m.params)]
        if markers:
            return [f"node {node.id!r} (attribute_reduction) deletes process.pid, but processes "
                    f"kept individual by {', '.join(markers)} are not rolled up and would collide"]
        return []

    def emit(self, params: dict[str, Any], ctx: EmitContext) -> Emitted:
        p = self.with_defaults(params)
        cond = f" where {NOT_CRITICAL}" if p["apply_to"] == "non_critical" else ""
        statements = [f"delete_key(resource.attributes, {ottl_str(k)}){cond}" for k in p["delete_keys"]]
        out = Emitted()
        out.processors[component_id("transform", ctx.node_id)] = {
            "error_mode": "ignore",
            "metric_statements": [{"context": "resource", "statements": statements}],
        }
        return out

    def kernel(self, frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
        """collector: ``delete_key`` per key (or ``keep_keys``) in resource context, conditioned
        on not-critical unless ``apply_to: all``. Phoenix markers are never deleted here."""
        p = self.with_defaults(params)
        df = frame.df.copy(deep=False)
        mask = None if p.get("apply_to") == "all" else ~frame.critical_mask()
        delete = list(p.get("delete_keys") or [])
        set_na(df, delete, mask)
        ctx.report(deleted_keys=sorted(set(delete)))
        return frame.replace(df)


NODE = AttributeReduction()
