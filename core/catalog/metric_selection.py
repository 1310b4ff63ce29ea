"""Metric selection: which process metrics are exported.

``mode: receiver`` changes the receiver's metric toggles (applies to every process,
including critical ones: their expected series shrink with the enabled set; emits no
processor). ``mode: filter`` drops metrics with a ``filter`` processor for non-critical
processes only; a keep-list is written as negated drop conditions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from core.catalog._common import NOT_CRITICAL, check_params, component_id, ottl_str
from core.catalog.base import EmitContext, Emitted, NodeType, Param
from core.catalog.kernel_ops import metric_available
from core.catalog.process_metrics import METRICS_BY_NAME

if TYPE_CHECKING:
    from core.catalog.eval_context import EvalContext
    from core.catalog.frame import ResourceFrame

METRICS = tuple(METRICS_BY_NAME)


class MetricSelection(NodeType):
    type_name = "metric_selection"
    title = "Metric selection"
    description = "Keeps or drops process metrics (receiver toggles or a filter exempting critical processes)."
    params = (
        Param("mode", "enum", "filter", "receiver: scraper toggles for all processes; filter: non-critical only.",
              choices=("receiver", "filter")),
        Param("keep_metrics", "list[str]", [], "Only these metrics (set this or drop_metrics).", choices=METRICS),
        Param("drop_metrics", "list[str]", [], "Drop these metrics.", choices=METRICS),
    )

    def reduces(self, params: Mapping[str, Any]) -> bool:
        return self.with_defaults(params)["mode"] == "filter"

    def describe(self, p: dict[str, Any]) -> str:
        if p["keep_metrics"]:
            return f"keep {len(p['keep_metrics'])} metrics · {p['mode']}"
        if p["drop_metrics"]:
            return f"drop {len(p['drop_metrics'])} metrics · {p['mode']}"
        return f"all metrics · {p['mode']}"

    def validate(self, params: dict[str, Any]) -> list[str]:
        problems = check_params(self.params, params)
        if problems:
            return problems
        p = self.with_defaults(params)
        if bool(p["keep_metrics"]) == bool(p["drop_metrics"]):
            problems.append("set exactly one of keep_metrics or drop_metrics")
        return problems

    def toggles(self, params: dict[str, Any], enabled: frozenset[str]) -> dict[str, bool]:
        """Receiver toggles this node implies (receiver mode)."""
        p = self.with_defaults(params)
        if p["keep_metrics"]:
            keep = set(p["keep_metrics"])
            return {m: (m in keep) for m in sorted(enabled | keep)}
        return {m: False for m in p["drop_metrics"]}

    def emit(self, params: dict[str, Any], ctx: EmitContext) -> Emitted:
        p = self.with_defaults(params)
        out = Emitted()
        if p["mode"] == "receiver":
            out.receiver_patch = {"metrics": self.toggles(params, ctx.enabled_metrics)}
            return out
        if p["keep_metrics"]:
            # A keep-list for the filter (which drops matches) is one negated condition.
            names = " and ".join(f"metric.name != {ottl_str(m)}" for m in p["keep_metrics"])
            conditions = [f"{names} and {NOT_CRITICAL}"]
        else:
            conditions = [f"metric.name == {ottl_str(m)} and {NOT_CRITICAL}" for m in p["drop_metrics"]]
        out.processors[component_id("filter", ctx.node_id)] = {
            "error_mode": "ignore",
            "metrics": {"metric": conditions},
        }
        return out

    def kernel(self, frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
        """Receiver mode: scraper toggles for everyone (already applied by ``hostmetrics`` via
        ``ctx.receiver_patches``). Filter mode: ``metric.name == m and priority != "critical"``
        (or the negated keep-list) drops the metric's points of non-critical processes."""
        p = self.with_defaults(params)
        if p.get("mode") == "receiver":
            ctx.report(mode="receiver", enabled_metrics=sorted(ctx.enabled_metrics))
            return frame
        keep = set(p.get("keep_metrics") or [])
        dropped = {m for m in METRICS if m not in keep} if keep else set(p.get("drop_metrics") or [])
        df = frame.df.copy(deep=False)
        non_critical = ~frame.critical_mask()
        for m in sorted(dropped):
            for col in metric_available(df, ctx, m):
                v = df[col].to_numpy(dtype=np.float64).copy()
                v[non_critical] = np.nan
                df[col] = v
        ctx.report(mode="filter", dropped_metrics=sorted(dropped & ctx.enabled_metrics))
        return frame.replace(df)


NODE = MetricSelection()
