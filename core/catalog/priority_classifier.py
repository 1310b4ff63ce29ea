"""Priority classifier: sets ``phoenix.priority`` from the pipeline's critical policy.

Rules come from the pipeline's critical policy (docs/pipeline-semantics.md "Markers and the critical guard"; default list in
``core.domain.critical``), first match wins. ``keep_priorities`` marks those classes
``phoenix.keep`` so later reducing nodes leave them individual; ``drop_priorities``
drops whole classes (never ``critical``) with a negated filter condition.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from core.catalog._common import NOT_CRITICAL, attr, check_params, component_id, ottl_str
from core.catalog.base import EmitContext, Emitted, NodeType, Param, short_value
from core.catalog.frame import KEEP, PRIORITIES, PRIORITY
from core.catalog.kernel_ops import keep_rows, last_scrape_rows, regex_hits, set_marker
from core.domain.critical import DEFAULT_POLICY, FIELD_ATTRIBUTE, CriticalPolicy

if TYPE_CHECKING:
    from core.catalog.eval_context import EvalContext
    from core.catalog.frame import ResourceFrame

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

    def describe(self, p: dict[str, Any]) -> str:
        parts = [f"default {p['default_priority']}"]
        if p["keep_priorities"]:
            parts.append(f"keep {short_value(p['keep_priorities'])}")
        if p["drop_priorities"]:
            parts.append(f"drop {short_value(p['drop_priorities'])}")
        return " · ".join(parts)

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
        """collector: one ``set(phoenix.priority, …) where phoenix.priority == nil and IsMatch(…)``
        per policy rule, then the default, then ``phoenix.keep`` for ``keep_priorities``."""
        p = self.with_defaults(params)
        policy = ctx.critical_policy or DEFAULT_POLICY
        df = frame.df.copy(deep=False)
        codes = df[PRIORITY].cat.codes.to_numpy().astype(np.int8).copy()
        for rule in policy.rules:
            unset = codes < 0
            if not unset.any():
                break
            hit = regex_hits(df[FIELD_ATTRIBUTE[rule.match]], rule.pattern)
            codes[unset & hit] = PRIORITIES.index(rule.priority)
        default = p.get("default_priority") or getattr(policy, "default_priority", "low")
        codes[codes < 0] = PRIORITIES.index(default)
        df[PRIORITY] = pd.Categorical.from_codes(codes, dtype=df[PRIORITY].dtype)
        keep_codes = [PRIORITIES.index(k) for k in p.get("keep_priorities") or []]
        if keep_codes:
            set_marker(df, KEEP, np.isin(codes, keep_codes))
        last = last_scrape_rows(df)
        ctx.report(priorities={k: int(((codes == i) & last).sum()) for i, k in enumerate(PRIORITIES)})
        out = frame.replace(df)
        drop_codes = [PRIORITIES.index(d) for d in p.get("drop_priorities") or [] if d != "critical"]
        if drop_codes:
            # collector: filter drops `priority == d and priority != "critical"` (keep ignored).
            out = keep_rows(out, ~np.isin(codes, drop_codes))
        return out


NODE = PriorityClassifier()
