"""Intelligent: keep the processes Phoenix learns to matter, roll up the rest.

Phoenix learns executable names from observed data (share of host CPU or memory at or
above ``resource_share_pct``, or the top ``anomaly_top`` by CPU variance) and compiles
them into one anchored regex. The learned set is stored in ``learned`` with its source
and time so a version says exactly what it keeps.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np

from core.catalog._common import MAX_LIST_ITEMS, attr, check_params, component_id, ottl_str
from core.catalog.base import EmitContext, Emitted, NodeType, Param
from core.catalog.frame import KEEP
from core.catalog.kernel_ops import equal_hits, per_host_counts, set_marker, spread

if TYPE_CHECKING:
    from core.catalog.eval_context import EvalContext
    from core.catalog.frame import ResourceFrame


class Intelligent(NodeType):
    type_name = "intelligent"
    title = "Intelligent (learned)"
    description = "Keeps processes Phoenix learned to matter (resource share, variance/anomaly) individual."
    reduces_processes = True
    keeps_processes = True
    tuning = "learned_names"
    params = (
        Param("resource_share_pct", "float", 5.0, "Keep names using at least this % of host CPU or memory.", "%",
              minimum=0, maximum=100),
        Param("anomaly_top", "int", 3, "Also keep this many names per host with the most variable CPU.",
              minimum=0, maximum=1000),
        Param("max_names", "int", 50, "Upper bound on learned names.", minimum=0, maximum=MAX_LIST_ITEMS),
        Param("learned", "map", {}, "names, source, computed_at (filled by the engine).", advanced=True),
    )

    def describe(self, p: dict[str, Any]) -> str:
        names = (p["learned"] or {}).get("names") or []
        learned = f" · {len(names)} learned" if names else ""
        return f"share ≥ {float(p['resource_share_pct']):g}% + top {int(p['anomaly_top'])} variable{learned}"

    def validate(self, params: dict[str, Any]) -> list[str]:
        problems = check_params(self.params, params)
        if problems:
            return problems
        learned = self.with_defaults(params)["learned"]
        names = learned.get("names", [])
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            problems.append("learned.names must be a list of executable names")
        elif len(names) > MAX_LIST_ITEMS:
            problems.append(f"learned.names has more than {MAX_LIST_ITEMS} names")
        return problems

    def emit(self, params: dict[str, Any], ctx: EmitContext) -> Emitted:
        p = self.with_defaults(params)
        learned = p["learned"] or {}
        names = sorted(set(learned.get("names") or []))
        out = Emitted()
        if not names:
            if learned.get("source"):
                out.notes.append(f"{ctx.node_id}: no executable qualified when learning from {learned['source']} "
                                 f"at {learned.get('computed_at', 'unknown time')}; only critical processes stay "
                                 "individual")
            else:
                out.notes.append(f"{ctx.node_id}: nothing learned yet; only critical processes stay individual "
                                 "until Phoenix evaluates a snapshot")
            return out
        pattern = "^(?:" + "|".join(re.escape(n) for n in names) + ")$"
        out.processors[component_id("transform", ctx.node_id)] = {
            "error_mode": "ignore",
            "metric_statements": [{
                "context": "resource",
                "statements": [
                    f'set({attr("phoenix.keep")}, "true") where '
                    f'IsMatch({attr("process.executable.name")}, {ottl_str(pattern)})'
                ],
            }],
        }
        out.notes.append(f"{ctx.node_id}: {len(names)} names learned from {learned.get('source', 'a snapshot')} "
                         f"at {learned.get('computed_at', 'unknown time')}")
        return out

    def kernel(self, frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
        """collector: ``set(phoenix.keep, "true") where IsMatch(executable.name, "^(?:n1|n2…)$")``."""
        p = self.with_defaults(params)
        names = learned_names(p)
        df = frame.df.copy(deep=False)
        mark = equal_hits(df["process.executable.name"], names) if names else np.zeros(len(df), dtype=bool)
        newly = mark & ~frame.keep_mask() & ~frame.critical_mask()
        set_marker(df, KEEP, mark)
        ctx.report(learned_names=len(names), achieved_k=spread(per_host_counts(df, newly)), marked=int(newly.sum()))
        return frame.replace(df)



def learned_names(params: dict[str, Any]) -> list[str]:
    """The names the engine learned, whether ``learned`` is ``{names: [...]}`` or a bare list."""
    learned = params.get("learned") or {}
    names = learned.get("names") if isinstance(learned, dict) else learned
    return [str(n) for n in (names or [])]


NODE = Intelligent()
