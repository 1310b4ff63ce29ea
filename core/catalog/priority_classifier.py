"""Priority classifier: sets ``phoenix.priority`` from the pipeline's critical policy.

Rules come from the pipeline's critical policy (DESIGN §5; default list in
``core.domain.critical``), first match wins. ``keep_priorities`` marks those classes
``phoenix.keep`` so later reducing nodes leave them individual; ``drop_priorities``
drops whole classes (never ``critical``) with a negated filter condition.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from core.catalog._common import NOT_CRITICAL, attr, check_params, component_id, ottl_str
from core.catalog.base import EmitContext, Emitted, NodeType, Param
from core.domain.critical import DEFAULT_POLICY, FIELD_ATTRIBUTE, CriticalPolicy

if TYPE_CHECKING:
    from core.engine.context import EvalContext
    from core.engine.frame import ResourceFrame

NON_CRITICAL = ("high", "medium", "low")


class PriorityClassifier(NodeType):
    type_name = "priority_classifier"
    title = "Priority classifier"
    description = "Tags each process critical/high/medium/low from ordered regex rules (first match wins)."
    classifies = True
    params = (
        Param("default_priority", "enum", "low", "Priority of processes no rule matches.", choices=NON_CRITICAL),
        Param("keep_priorities", "list[str]", [], "Classes kept individual by later reducing nodes.",
              choices=NON_CRITICAL),
        Param("drop_priorities", "list[str]", [], "Classes dropped entirely (critical can never be dropped).",
              choices=NON_CRITICAL),
    )

    def validate(self, params: dict[str, Any]) -> list[str]:
        problems = check_params(self.params, params)
        if problems:
            return problems
        p = self.with_defaults(params)
        both = sorted(set(p["keep_priorities"]) & set(p["drop_priorities"]))
        if both:
            problems.append(f"{', '.join(both)} cannot be both kept and dropped")
        return problems

    def reduces(self, params: Mapping[str, Any]) -> bool:
        return bool((params or {}).get("drop_priorities"))

    def marks_keep(self, params: Mapping[str, Any]) -> bool:
        return bool(self.with_defaults(params)["keep_priorities"])

    def emit(self, params: dict[str, Any], ctx: EmitContext) -> Emitted:
        p = self.with_defaults(params)
        policy: CriticalPolicy = ctx.critical_policy or DEFAULT_POLICY
        prio = attr("phoenix.priority")
        statements = [
            f"set({prio}, {ottl_str(r.priority)}) where {prio} == nil and "
            f"IsMatch({attr(FIELD_ATTRIBUTE[r.match])}, {ottl_str(r.pattern)})"
            for r in policy.rules
        ]
        statements.append(f"set({prio}, {ottl_str(p['default_priority'])}) where {prio} == nil")
        statements += [
            f'set({attr("phoenix.keep")}, "true") where {prio} == {ottl_str(k)}' for k in p["keep_priorities"]
        ]
        out = Emitted()
        out.processors[component_id("transform", ctx.node_id)] = {
            "error_mode": "ignore",
            "metric_statements": [{"context": "resource", "statements": statements}],
        }
        if p["drop_priorities"]:
            # Drop-list written as the filter wants it: match what goes, exempt critical.
            out.processors[component_id("filter", ctx.node_id)] = {
                "error_mode": "ignore",
                "metrics": {
                    "metric": [f"{prio} == {ottl_str(d)} and {NOT_CRITICAL}" for d in p["drop_priorities"]]
                },
            }
        return out

    def kernel(self, frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
        from core.engine import ops

        return ops.priority_classifier(frame, params, ctx)


NODE = PriorityClassifier()
