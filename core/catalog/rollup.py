"""Rollup aggregation: non-critical, non-kept processes summed per group per host.

Recipe (contrib has no single "aggregate resources" processor):
1. ``transform`` (resource): compute the group into a transient ``phoenix.group``,
   rename ``process.executable.name`` to it, mark ``phoenix.rollup``, delete the
   per-process identity (pid, ppid, command, command_line, path, owner, priority);
2. ``groupbyattrs`` without keys compacts the now-identical resources into one;
3. ``transform`` (metric): ``aggregate_on_attributes("sum", [dp keys])`` on rollup
   resources, keeping each metric's data-point attributes (state, direction, …).
   The real collector merges only points with equal timestamps, and the scraper stamps
   every process at its own read time: step 1 sets the rolled points' ``time_unix_nano``
   to 0, step 3 sets ``time`` to ``Now()`` after the sum (found by the differential test).
Sum-preserving; summed cumulative counters dip when a member exits (documented reset).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from core.catalog._common import (
    GUARD,
    NOT_ROLLUP,
    attr,
    check_params,
    component_id,
    ottl_str,
    quote_pattern,
    regex_problem,
)
from core.catalog.base import EmitContext, Emitted, NodeType, Param
from core.catalog.frame import ROLLUP
from core.catalog.kernel_ops import categorise, compact, rename_rows, set_marker, set_na, strip_after
from core.catalog.process_metrics import PROCESS_METRICS

if TYPE_CHECKING:
    from core.catalog.eval_context import EvalContext
    from core.catalog.frame import ResourceFrame

OTHER = "other"
IDENTITY_KEYS = (
    "process.pid",
    "process.parent_pid",
    "process.command",
    "process.command_line",
    "process.executable.path",
    "process.owner",
    "phoenix.priority",
)


class Rollup(NodeType):
    type_name = "rollup"
    title = "Rollup aggregation"
    description = "Sums non-critical, non-kept processes per host into one series set per group (sum-preserving)."
    reduces_processes = True
    rolls_up = True
    params = (
        Param("group_by", "enum", "other", "other: one group per host; executable_name: one per name; "
              "category: by the categories regex map.", choices=("other", "executable_name", "category")),
        Param("categories", "map", {}, "Category name → regex on executable name (first match wins).",
              advanced=True),
        Param("default_category", "str", "other", "Group of processes no category matches."),
        Param("strip_after", "str", "", "With group_by executable_name: cut each name at the first occurrence "
              "of this text, e.g. '/' groups kernel threads kworker/0:1-events, kworker/3:2 as kworker.",
              advanced=True),
    )

    def describe(self, p: dict[str, Any]) -> str:
        cats = len(p["categories"] or {})
        return f"group by {p['group_by']}" + (f" · {cats} categor{'ies' if cats != 1 else 'y'}" if cats else "")

    def validate(self, params: dict[str, Any]) -> list[str]:
        problems = check_params(self.params, params)
        if problems:
            return problems
        p = self.with_defaults(params)
        if p["group_by"] == "category" and not p["categories"]:
            problems.append("group_by category needs at least one entry in categories")
        for name, rx in p["categories"].items():
            if not name:
                problems.append("categories: a category name is empty")
            why = regex_problem(rx)
            if why:
                problems.append(f"categories[{name!r}] {quote_pattern(rx)} {why}")
        if len(p["strip_after"]) > 16:
            problems.append("strip_after must be at most 16 characters")
        if not p["default_category"]:
            problems.append("default_category must not be empty")
        return problems

    def emit(self, params: dict[str, Any], ctx: EmitContext) -> Emitted:
        p = self.with_defaults(params)
        group, name = attr("phoenix.group"), attr("process.executable.name")
        eligible = f"{GUARD} and {NOT_ROLLUP}"
        st: list[str] = []
        if p["group_by"] == "category":
            st += [
                f"set({group}, {ottl_str(cat)}) where {eligible} and {group} == nil and "
                f"IsMatch({name}, {ottl_str(rx)})"
                for cat, rx in p["categories"].items()
            ]
        fallback = "name" if p["group_by"] == "executable_name" else p["default_category"]
        st.append(f"set({group}, {ottl_str(fallback)}) where {eligible} and {group} == nil")
        if p["group_by"] != "executable_name":
            st.append(f"set({name}, {group}) where {group} != nil")
        elif p["strip_after"]:
            cut = re.escape(p["strip_after"]) + ".*$"
            st.append(f'replace_pattern({name}, {ottl_str(cut)}, "") where {group} != nil')
        st.append(f'set({attr("phoenix.rollup")}, "true") where {group} != nil')
        st += [f"delete_key(resource.attributes, {ottl_str(k)}) where {group} != nil" for k in IDENTITY_KEYS]
        st.append('delete_key(resource.attributes, "phoenix.group")')

        agg: list[str] = []
        rolled = f'{attr("phoenix.rollup")} == "true"'
        for metric in PROCESS_METRICS:
            if metric.attribute_keys:
                key_list = "[" + ", ".join(ottl_str(k) for k in metric.attribute_keys) + "]"
                agg.append(f'aggregate_on_attributes("sum", {key_list}) where {rolled} and '
                           f"metric.name == {ottl_str(metric.name)}")
        plain = " and ".join(f"metric.name != {ottl_str(m.name)}" for m in PROCESS_METRICS if m.attribute_keys)
        agg.append(f'aggregate_on_attributes("sum") where {rolled} and {plain}')

        # aggregate_on_attributes groups points by attributes *and timestamp*, and the process
        # scraper stamps each process when it reads it: with the members' own timestamps nothing
        # merges and the exporter keeps one member's value. So the group's points get one
        # timestamp (0) before the sum and the processing time after it.
        out = Emitted()
        out.processors[component_id("transform", ctx.node_id, "group")] = {
            "error_mode": "ignore",
            "metric_statements": [
                {"context": "resource", "statements": st},
                {"context": "datapoint", "statements": [f"set(time_unix_nano, 0) where {rolled}"]},
            ],
        }
        out.processors[component_id("groupbyattrs", ctx.node_id)] = {}
        out.processors[component_id("transform", ctx.node_id, "sum")] = {
            "error_mode": "ignore",
            "metric_statements": [
                {"context": "metric", "statements": agg},
                {"context": "datapoint", "statements": [f"set(time, Now()) where {rolled}"]},
            ],
        }
        return out

    def kernel(self, frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
        """collector: transform (rename, delete identity, mark) → groupbyattrs → sum.

        Rows that are neither critical nor kept get their group name and lose their identity;
        then identical resources merge and every value column is summed per group, so for each
        host, metric and data-point attribute set the total is unchanged.
        """
        p = self.with_defaults(params)
        df = frame.df.copy(deep=False)
        # collector: eligible = not critical, not kept and not already a rollup group.
        target = frame.reducible_mask() & ~frame.rollup_mask()
        group_by = p.get("group_by", OTHER)
        default = str(p.get("default_category") or OTHER)
        name_col = df["process.executable.name"]
        if group_by == "category":
            df["process.executable.name"] = categorise(name_col, p.get("categories") or {}, target, default)
        elif group_by != "executable_name":  # "other": one group per host
            df["process.executable.name"] = rename_rows(name_col, target, default)
        elif p.get("strip_after"):
            # collector: replace_pattern(name, "<re.escape(text)>.*$", "") on grouped rows.
            df["process.executable.name"] = strip_after(name_col, target, str(p["strip_after"]))
        set_na(df, list(IDENTITY_KEYS), target)
        set_marker(df, ROLLUP, target)
        out, groups, collisions = compact(df)
        ctx.report(rolled_up=int(target.sum()), groups=groups, collisions=collisions)
        return frame.replace(out)


NODE = Rollup()
