"""Intelligent: keep the processes Phoenix learns to matter, roll up the rest.

Phoenix learns from stored history (``core/engine/learning.py``: resource share, variability,
restarts, an isolation-forest anomaly score per executable name per host) or, with too
little history, from one snapshot (share of host CPU or memory at or above
``resource_share_pct``, or the top ``anomaly_top`` by CPU variance). ``learned.names`` are
kept on every host, ``learned.hosts`` per host (matched on ``host.name``); both compile into
anchored regexes of escaped names. ``learned`` also stores why each one is kept, the
source, the time and the model's parameters, so a version says exactly what it keeps and why.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np

from core.catalog._common import MAX_LIST_ITEMS, attr, check_params, component_id, ottl_str
from core.catalog.base import EmitContext, Emitted, NodeType, Param
from core.catalog.frame import HOST_NAME_ATTRIBUTE, KEEP
from core.catalog.kernel_ops import equal_hits, per_host_counts, set_marker, spread
from core.domain.user_text import text_problem

if TYPE_CHECKING:
    from core.catalog.eval_context import EvalContext
    from core.catalog.frame import ResourceFrame


MAX_HOSTS = 1000  # per-host statements in one config (as adaptive's per-host thresholds)


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
        Param("max_names", "int", 50, "Upper bound on learned names (and on per-host anomalies).",
              minimum=0, maximum=MAX_LIST_ITEMS),
        Param("anomaly_score", "float", 0.65, "History: keep a process group whose isolation-forest score "
              "reaches this (0.5 = typical).", minimum=0.5, maximum=1.0, advanced=True),
        Param("restart_min", "int", 3, "History: keep a name restarting at least this often (and 2× more "
              "than on its peers).", minimum=1, maximum=100000, advanced=True),
        Param("variance_top_pct", "float", 2.0, "History: keep the top % by CPU coefficient of variation.",
              "%", minimum=0, maximum=100, advanced=True),
        Param("seed", "int", 0, "History: the isolation forest's seed (same history + seed = same names).",
              minimum=0, maximum=2**31 - 1, advanced=True),
        Param("learned", "map", {}, "names, hosts, explanations, model, source, computed_at (filled by the "
              "engine).", advanced=True),
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
        problems += _hosts_problems(learned.get("hosts"))
        return problems

    def emit(self, params: dict[str, Any], ctx: EmitContext) -> Emitted:
        p = self.with_defaults(params)
        learned = p["learned"] or {}
        names = sorted(set(learned.get("names") or []))
        hosts = learned_hosts(p)
        out = Emitted()
        if not names and not hosts:
            if learned.get("source"):
                out.notes.append(f"{ctx.node_id}: no executable qualified when learning from {learned['source']} "
                                 f"at {learned.get('computed_at', 'unknown time')}; only critical processes stay "
                                 "individual")
            else:
                out.notes.append(f"{ctx.node_id}: nothing learned yet; only critical processes stay individual "
                                 "until Phoenix evaluates a snapshot")
            return out
        keep = f'set({attr("phoenix.keep")}, "true") where '
        name = attr("process.executable.name")
        statements = [f"{keep}IsMatch({name}, {ottl_str(_pattern(names))})"] if names else []
        # One statement per host with anomalies of its own; a missing host.name matches none.
        statements += [f"{keep}{attr(HOST_NAME_ATTRIBUTE)} == {ottl_str(h)} and IsMatch({name}, "
                       f"{ottl_str(_pattern(hn))})" for h, hn in hosts.items()]
        out.processors[component_id("transform", ctx.node_id)] = {
            "error_mode": "ignore",
            "metric_statements": [{"context": "resource", "statements": statements}],
        }
        per_host = f" and {sum(len(v) for v in hosts.values())} on {len(hosts)} host(s)" if hosts else ""
        out.notes.append(f"{ctx.node_id}: {len(names)} names{per_host} learned from "
                         f"{learned.get('source', 'a snapshot')} at {learned.get('computed_at', 'unknown time')}")
        return out

    def kernel(self, frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
        """collector: ``set(phoenix.keep, "true") where IsMatch(executable.name, "^(?:n1|n2…)$")``."""
        p = self.with_defaults(params)
        names = learned_names(p)
        hosts = learned_hosts(p)
        df = frame.df.copy(deep=False)
        mark = equal_hits(df["process.executable.name"], names) if names else np.zeros(len(df), dtype=bool)
        if hosts and HOST_NAME_ATTRIBUTE in df.columns:
            # collector: the statement whose host.name matches; NA (no resourcedetection) matches none.
            on_host = df[HOST_NAME_ATTRIBUTE].astype(object).to_numpy()
            for h, hn in hosts.items():
                mark |= (on_host == h) & equal_hits(df["process.executable.name"], hn)
        newly = mark & ~frame.keep_mask() & ~frame.critical_mask()
        set_marker(df, KEEP, mark)
        ctx.report(learned_names=len(names), learned_host_names=sum(len(v) for v in hosts.values()),
                   achieved_k=spread(per_host_counts(df, newly)), marked=int(newly.sum()))
        return frame.replace(df)



def learned_names(params: dict[str, Any]) -> list[str]:
    """The names the engine learned, whether ``learned`` is ``{names: [...]}`` or a bare list."""
    learned = params.get("learned") or {}
    names = learned.get("names") if isinstance(learned, dict) else learned
    return [str(n) for n in (names or [])]


def learned_hosts(params: dict[str, Any]) -> dict[str, list[str]]:
    """Host → names kept on that host only (learned from history), sorted; {} when none."""
    learned = params.get("learned") or {}
    hosts = learned.get("hosts") if isinstance(learned, dict) else None
    if not isinstance(hosts, dict):
        return {}
    return {str(h): sorted({str(n) for n in v}) for h, v in sorted(hosts.items()) if isinstance(v, list) and v}


def _pattern(names: list[str]) -> str:
    return "^(?:" + "|".join(re.escape(n) for n in names) + ")$"


def _hosts_problems(hosts: Any) -> list[str]:
    """Shape check of ``learned.hosts`` (written by the engine, but saved files are edited)."""
    if hosts is None:
        return []
    if not isinstance(hosts, dict):
        return ["learned.hosts must be a mapping of host name to executable names"]
    if len(hosts) > MAX_HOSTS:
        return [f"learned.hosts has more than {MAX_HOSTS} hosts"]
    problems = []
    for h, names in hosts.items():
        bad = text_problem(h) if isinstance(h, str) else "must be a string"
        if bad or not h:
            problems.append(f"learned.hosts: host name {h!r} {bad or 'must not be empty'}")
        elif not isinstance(names, list) or not all(isinstance(n, str) and n and not text_problem(n)
                                                      for n in names):
            problems.append(f"learned.hosts[{h!r}] must be a list of executable names")
        elif len(names) > MAX_LIST_ITEMS:
            problems.append(f"learned.hosts[{h!r}] has more than {MAX_LIST_ITEMS} names")
    return problems


NODE = Intelligent()
