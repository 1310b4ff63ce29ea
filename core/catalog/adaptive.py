"""Adaptive: keeps as many of each host's largest processes as the host's series budget allows.

Budget per host = ``budget_ratio`` × the host's baseline series (what ``process-baseline-v1``
would export for it: the receiver's default metrics), capped by ``series_budget_per_host``
when that is set (the smaller wins; 0 = no cap). Saved pipelines from before the ratio
carry ``series_budget_per_host: 800`` and keep meaning an absolute cap of 800.

Tuning (``core.engine.tuning``) sizes K per host from that budget and turns it into
thresholds, one pair per host (``computed.hosts``) matched on ``host.name`` plus the fleet's
median pair for hosts the tuning has not seen. During runs a closed loop corrects each host's
K from the series the collector actually exported. The ranking metric
(``process.cpu.utilization``, which baseline does not export) is dropped right after the
keep marks unless ``keep_ranking_metric`` is set, so adaptive never exports more series
than baseline.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from core.catalog._common import GUARD, attr, check_params, component_id, ottl_str
from core.catalog._thresholds import (
    BY_CHOICES,
    DEFAULT_CPU_UTILIZATION,
    DEFAULT_MEMORY_BYTES,
    computed_problems,
    effective,
    keep_statements,
    uses_cpu,
    uses_memory,
)
from core.catalog.base import EmitContext, Emitted, NodeType, Param
from core.catalog.frame import HOST_NAME_ATTRIBUTE, KEEP
from core.catalog.kernel_ops import (
    keep_rows,
    metric_available,
    per_host_counts,
    set_marker,
    spread,
    threshold_marks,
)
from core.catalog.topk import threshold_note
from core.domain.user_text import text_problem

if TYPE_CHECKING:
    from core.catalog.eval_context import EvalContext
    from core.catalog.frame import ResourceFrame

RANKING_METRIC = "process.cpu.utilization"  # the ranking metric baseline does not export
DEFAULT_BUDGET_RATIO = 0.25
# Per-host thresholds cost one keep statement per host and metric: past this many hosts the
# config would be unwieldy, so tuning writes only the fleet-wide pair.
MAX_HOSTS_PER_CONFIG = 1000
HOST_NUMBERS = ("k", "cpu_utilization", "memory_bytes", "budget", "achieved", "base_series",
                "series_per_process")


class Adaptive(NodeType):
    type_name = "adaptive"
    title = "Adaptive (series budget)"
    description = ("Keeps as many of each host's largest processes as its series budget allows "
                   "(25% of the host's baseline series by default); re-tuned each interval during runs.")
    reduces_processes = True
    keeps_processes = True
    ranked_by = "by"
    tuning = "budget_thresholds"
    params = (
        Param("budget_ratio", "float", DEFAULT_BUDGET_RATIO,
              "Series budget per host as a share of that host's baseline series (0.25: keep at most a quarter).",
              minimum=0.01, maximum=1.0),
        Param("series_budget_per_host", "int", 0,
              "Optional absolute cap on exported series per host (0: none); the smaller budget wins.", "series",
              minimum=0, maximum=1_000_000),
        Param("by", "enum", "cpu", "Ranking (cpu needs process.cpu.utilization enabled).", choices=BY_CHOICES),
        Param("keep_ranking_metric", "bool", False,
              "Export process.cpu.utilization after ranking (baseline does not; off: never more series than "
              "baseline)."),
        Param("retune_interval", "duration", "60s", "How often Phoenix re-tunes thresholds during a run.",
              "s", minimum=5, maximum=86400),
        Param("action", "enum", "mark", "mark: a following rollup gathers the rest; drop: remove the rest.",
              choices=("mark", "drop")),
        Param("computed", "map", {}, "k, cpu_utilization, memory_bytes, hosts {name: k, thresholds, budget, "
              "achieved}, source, computed_at (filled by the engine).", advanced=True),
    )

    def describe(self, p: dict[str, Any]) -> str:
        text = f"≤ {float(p['budget_ratio']):.0%} of baseline series by {p['by']}"
        if int(p["series_budget_per_host"]):
            text += f" · cap {int(p['series_budget_per_host']):,}/host"
        return text + (" · tuned" if self.is_tuned(p) else "")

    def validate(self, params: dict[str, Any]) -> list[str]:
        problems = check_params(self.params, params)
        if problems:
            return problems
        computed = self.with_defaults(params)["computed"]
        problems = computed_problems(computed, ("k", "cpu_utilization", "memory_bytes"))
        if isinstance(computed, dict):
            problems += hosts_problems(computed.get("hosts"))
        return problems

    def emit(self, params: dict[str, Any], ctx: EmitContext) -> Emitted:
        p = self.with_defaults(params)
        cpu, mem, computed = effective(p["computed"], p["by"], DEFAULT_CPU_UTILIZATION, DEFAULT_MEMORY_BYTES)
        hosts = host_thresholds(p["computed"], p["by"], cpu, mem)
        out = Emitted()
        out.processors[component_id("transform", ctx.node_id)] = {
            "error_mode": "ignore",
            "metric_statements": [{"context": "datapoint", "statements": statements(p["by"], cpu, mem, hosts)}],
        }
        if p["action"] == "drop":
            out.processors[component_id("filter", ctx.node_id)] = {
                "error_mode": "ignore", "metrics": {"metric": [GUARD]},
            }
        if drops_ranking_metric(p):
            # After the keep marks are set: the metric only served the ranking.
            out.processors[component_id("filter", ctx.node_id, "ranking")] = {
                "error_mode": "ignore", "metrics": {"metric": [f"name == {ottl_str(RANKING_METRIC)}"]},
            }
        out.notes.append(threshold_note(ctx.node_id, p, computed))
        if hosts:
            out.notes.append(f"{ctx.node_id}: per-host thresholds for {len(hosts)} host(s) by host.name; "
                             "other hosts use the fleet thresholds")
        return out

    def kernel(self, frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
        p = self.with_defaults(params)
        cpu, mem, computed = effective(p.get("computed"), p["by"], DEFAULT_CPU_UTILIZATION, DEFAULT_MEMORY_BYTES)
        if not computed:
            ctx.warn(f"{ctx.node_id}: thresholds not computed from data; the documented defaults apply")
        hosts = host_thresholds(p.get("computed"), p["by"], cpu, mem)
        df = frame.df.copy(deep=False)
        cpu_row = np.full(len(df), float(cpu))
        mem_row = np.full(len(df), float(mem))
        if hosts and HOST_NAME_ATTRIBUTE in df.columns:
            # collector: the statement whose host.name matches; NA (no resourcedetection) matches none.
            # One hashed lookup per row (not one comparison per host per row: 1,000 hosts made
            # that the whole evaluation's cost).
            names = df[HOST_NAME_ATTRIBUTE].astype(object)
            per_cpu = names.map({h: hc for h, (hc, _) in hosts.items()}).to_numpy(dtype=float, na_value=np.nan)
            per_mem = names.map({h: hm for h, (_, hm) in hosts.items()}).to_numpy(dtype=float, na_value=np.nan)
            cpu_row = np.where(np.isnan(per_cpu), cpu_row, per_cpu)
            mem_row = np.where(np.isnan(per_mem), mem_row, per_mem)
        mark = threshold_marks(df, ctx, p["by"], cpu_row, mem_row)  # type: ignore[arg-type]
        newly = mark & ~frame.keep_mask() & ~frame.critical_mask()
        set_marker(df, KEEP, mark)
        ctx.report(thresholds={"by": p["by"], "cpu_utilization": cpu, "memory_bytes": mem,
                               "hosts": len(hosts)},
                   achieved_k=spread(per_host_counts(df, newly)), marked=int(newly.sum()))
        out = frame.replace(df)
        if p["action"] == "drop":
            out = keep_rows(out, ~out.reducible_mask())
        if drops_ranking_metric(p) and RANKING_METRIC in ctx.enabled_metrics:
            # collector: filter ``name == "process.cpu.utilization"`` for every process.
            gone = metric_available(out.df, ctx, RANKING_METRIC)
            ctx.enabled_metrics.discard(RANKING_METRIC)
            if gone:
                out = out.replace(out.df.drop(columns=gone))
        k = (p.get("computed") or {}).get("k")
        ctx.report(target_k=None if k is None else int(k), computed=bool(computed),
                   budget_ratio=float(p["budget_ratio"]),
                   series_budget_per_host=int(p["series_budget_per_host"]) or None)
        return out


def drops_ranking_metric(p: dict[str, Any]) -> bool:
    return uses_cpu(p["by"]) and not p["keep_ranking_metric"]


def hosts_problems(hosts: Any) -> list[str]:
    """Shape check of ``computed.hosts`` (written by the engine, but saved files are edited)."""
    if hosts is None:
        return []
    if not isinstance(hosts, dict):
        return ["computed.hosts must be a mapping of host name to thresholds"]
    if len(hosts) > MAX_HOSTS_PER_CONFIG:
        return [f"computed.hosts has more than {MAX_HOSTS_PER_CONFIG} hosts"]
    problems = []
    for h, v in hosts.items():
        bad = text_problem(h) if isinstance(h, str) else "must be a string"
        if bad or not h:
            problems.append(f"computed.hosts: host name {h!r} {bad or 'must not be empty'}")
            continue
        if not isinstance(v, dict):
            problems.append(f"computed.hosts[{h!r}] must be a mapping")
            continue
        for key in HOST_NUMBERS:
            x = v.get(key)
            if x is not None and (isinstance(x, bool) or not isinstance(x, int | float) or not x >= 0
                                  or math.isinf(x)):
                problems.append(f"computed.hosts[{h!r}].{key} must be a non-negative number, got {x!r}")
        c = v.get("correction")
        if c is not None and (isinstance(c, bool) or not isinstance(c, int | float) or not math.isfinite(c)):
            problems.append(f"computed.hosts[{h!r}].correction must be a number, got {c!r}")
    return problems


def host_thresholds(computed: Any, by: str, cpu: float, mem: int) -> dict[str, tuple[float, int]]:
    """Host name → (cpu, memory) thresholds; a host missing one uses the fleet's."""
    hosts = computed.get("hosts") if isinstance(computed, dict) else None
    if not isinstance(hosts, dict):
        return {}
    out = {}
    for h, v in sorted(hosts.items()):
        if not isinstance(v, dict):
            continue
        hc = v.get("cpu_utilization") if uses_cpu(by) else None
        hm = v.get("memory_bytes") if uses_memory(by) else None
        out[str(h)] = (float(hc) if hc is not None else cpu, int(hm) if hm is not None else mem)
    return out


def statements(by: str, cpu: float, mem: int, hosts: dict[str, tuple[float, int]]) -> list[str]:
    """Keep statements: one set per listed host (``host.name ==``), then the fleet's for the rest."""
    if not hosts:
        return keep_statements(by, cpu, mem)
    host = attr(HOST_NAME_ATTRIBUTE)
    out = []
    for h, (hc, hm) in hosts.items():
        out += [s.replace(" where ", f" where {host} == {ottl_str(h)} and ", 1) for s in keep_statements(by, hc, hm)]
    # IsMatch on a missing host.name is false, so `not IsMatch` sends it to the fleet pair.
    listed = "^(?:" + "|".join(re.escape(h) for h in hosts) + ")$"
    rest = f"not IsMatch({host}, {ottl_str(listed)})"
    out += [s.replace(" where ", f" where {rest} and ", 1) for s in keep_statements(by, cpu, mem)]
    return out


NODE = Adaptive()
