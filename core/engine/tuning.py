"""Data-driven parameters: top-K / adaptive thresholds and intelligent's learned names.

Contrib has no top-K processor, so Phoenix compiles "K per host" into one fleet-wide
threshold (docs/pipeline-semantics.md, topk row): for each host the K-th largest value
among the processes the node can act on (non-critical, not already kept), then the
median over hosts. The values are written into the node's ``computed``/``learned`` params
(with source and time) and both the emitter and the engine read them from there, so the
YAML and the estimate apply the very same numbers.

Each tunable node is tuned on *its own input*: the pipeline is evaluated up to that node
(earlier tuned nodes included), on the last scrape.
"""

from __future__ import annotations

import copy
import math
import re
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from core.catalog.compiled import CompiledNode, CompiledPipeline
from core.catalog.eval_context import EvalContext
from core.catalog.frame import HOST_NAME_ATTRIBUTE, ResourceFrame, from_snapshot
from core.catalog.process_metrics import DEFAULT_METRICS, METRICS_BY_NAME
from core.domain.critical import CriticalPolicy
from core.domain.pipeline import Pipeline
from core.domain.user_text import text_problem
from core.engine.evaluate import compile_for_engine, evaluate
from core.engine.expand import series_per_row
from core.engine.learning import (
    MIN_HISTORY_SCRAPES,
    cpu_values_sum,
    history_shape,
    learn_from_history,
    learnable_names,
)

# Closed loop (adaptive): share of last interval's error corrected each interval. Below 1 so a
# host's scrape-to-scrape noise (processes crossing the threshold) is damped, not amplified.
LOOP_GAIN = 0.5
POOL_SIZE = 3  # intelligent: names with more processes per typical host are pools
# Thresholds no process can reach: what K = 0 compiles to.
NEVER_CPU = 1.0e6
NEVER_MEMORY = 2**62
# Smallest per-host CPU threshold: below one clock tick over any interval, above an idle 0.
MIN_CPU = 1.0e-9
UTIL_COLUMNS = METRICS_BY_NAME["process.cpu.utilization"].columns


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def kth_largest_per_host(values: np.ndarray, hosts: np.ndarray, k: int) -> np.ndarray:
    """Per host with candidates: its K-th largest value (its smallest when it has fewer).

    ``values`` must be free of NaN. Vectorised: one lexsort, then one index per host.
    """
    if len(values) == 0 or k <= 0:
        return np.zeros(0)
    order = np.lexsort((-values, hosts))
    h = hosts[order]
    starts = np.flatnonzero(np.r_[True, h[1:] != h[:-1]])
    counts = np.diff(np.r_[starts, len(h)])
    pick = starts + np.minimum(k, counts) - 1
    return values[order][pick]


def fleet_threshold(values: np.ndarray, hosts: np.ndarray, k: int) -> float | None:
    """Median over hosts of the per-host K-th largest value; None without candidates."""
    per_host = kth_largest_per_host(values, hosts, k)
    return float(np.median(per_host)) if len(per_host) else None


def _round_cpu(x: float) -> float:
    # Six significant digits, rounded *down* so the emitted literal never excludes the
    # process that set the threshold.
    if x <= 0:
        return 0.0
    digits = 6 - int(math.floor(math.log10(abs(x)))) - 1
    return math.floor(x * 10**digits) / 10**digits


def cpu_values(df: pd.DataFrame) -> np.ndarray:
    """What ``value_double >= C`` on process.cpu.utilization sees: the max over states."""
    cols = [c for c in UTIL_COLUMNS if c in df.columns]
    if not cols:
        return np.full(len(df), np.nan)
    return np.fmax.reduce([df[c].to_numpy(dtype=np.float64) for c in cols])


def candidates(frame: ResourceFrame) -> pd.DataFrame:
    """Last-scrape rows the node can act on: non-critical and not already kept."""
    last = frame.df["scrape"].to_numpy() == frame.n_scrapes - 1
    mask = last & frame.reducible_mask() & ~frame.rollup_mask()
    return frame.df[mask]


#: What each ranking compares, for the ceiling's explanation.
RANK_METRIC = {"cpu": "CPU utilisation", "memory": "memory", "combined": "CPU utilisation or memory"}


def rankable(cand: pd.DataFrame, by: str) -> np.ndarray:
    """Mask of the candidates a threshold of ranking ``by`` can admit: above 0 by the ranked
    metric (the thresholds' floors, ``MIN_CPU`` and 1 byte, never admit a 0)."""
    mask = np.zeros(len(cand), dtype=bool)
    if by in ("cpu", "combined"):
        mask |= np.nan_to_num(cpu_values(cand), nan=0.0) >= MIN_CPU
    if by in ("memory", "combined") and "memory_usage" in cand.columns:
        mask |= np.nan_to_num(cand["memory_usage"].to_numpy(dtype=np.float64), nan=0.0) >= 1.0
    return mask


def thresholds_for(frame: ResourceFrame, ctx: EvalContext, by: str, k: int) -> dict[str, Any]:
    """``computed`` thresholds so that about ``k`` candidates per host pass."""
    cand = candidates(frame)
    hosts = cand["host_name"].cat.codes.to_numpy()
    share = math.ceil(k / 2) if by == "combined" else k
    out: dict[str, Any] = {}
    if by in ("cpu", "combined"):
        if "process.cpu.utilization" not in ctx.enabled_metrics:
            out["note"] = "process.cpu.utilization is not enabled: the cpu threshold cannot match"
        v = cpu_values(cand)
        ok = ~np.isnan(v)
        t = fleet_threshold(v[ok], hosts[ok], share) if share > 0 else None
        out["cpu_utilization"] = NEVER_CPU if share == 0 or t is None else _round_cpu(t)
    if by in ("memory", "combined"):
        v = cand["memory_usage"].to_numpy(dtype=np.float64) if "memory_usage" in cand.columns else np.zeros(0)
        ok = ~np.isnan(v)
        t = fleet_threshold(v[ok], hosts[ok], share) if share > 0 else None
        out["memory_bytes"] = NEVER_MEMORY if share == 0 or t is None else int(math.floor(t))
    return out


def learn_names(frame: ResourceFrame, params: dict[str, Any]) -> dict[str, Any]:
    """Executable names worth keeping individual (``intelligent``), learned from data.

    A name qualifies when its typical process (median over its processes on a host, then
    over the hosts running it) uses at least ``resource_share_pct`` % of that host's CPU (utilisation
    summed over states) or memory (RSS) — processes that matter one by one; pools of small
    workers are what the rollup summarises. Plus, per host, the ``anomaly_top`` names whose
    CPU varies most over time (per-process standard deviation of utilisation across
    scrapes, as a share of host CPU, at least ``resource_share_pct`` / 10; names running more
    than ``POOL_SIZE`` processes on a typical host are pools and left to the rollup),
    ranked by how many hosts rank them top. Share names come first (largest
    share first); at most ``max_names`` in all.
    """
    pct = float(params.get("resource_share_pct", 5.0)) / 100.0
    top = int(params.get("anomaly_top", 3))
    max_names = int(params.get("max_names", 50))
    df = frame.df
    last = df["scrape"].to_numpy() == frame.n_scrapes - 1
    host = df["host_name"].cat.codes.to_numpy().astype(np.int64)
    name_cat = df["process.executable.name"]
    name = name_cat.cat.codes.to_numpy().astype(np.int64)
    cats = name_cat.cat.categories
    # Names the node's validation would refuse (empty; control characters, ``${``/``$$``:
    # core.domain.user_text) cannot be kept by name: their processes are left to the rollup.
    cand = frame.reducible_mask() & ~frame.rollup_mask() & (name >= 0)
    unlearnable = [i for i, c in enumerate(cats.astype(str)) if not c or text_problem(c)]  # per name, not row
    if unlearnable:
        cand &= ~np.isin(name, unlearnable)
    cpu = np.nan_to_num(cpu_values_sum(df))
    mem = np.nan_to_num(df["memory_usage"].to_numpy(dtype=np.float64)) if "memory_usage" in df else np.zeros(len(df))
    n_hosts = int(host.max()) + 1 if len(host) else 0
    host_cpu = np.bincount(host[last], weights=cpu[last], minlength=n_hosts)
    host_mem = np.bincount(host[last], weights=mem[last], minlength=n_hosts)
    sel = last & cand
    # Per process: its share of its host's CPU (utilisation summed over states) or memory.
    share_row = np.fmax(
        np.divide(cpu[sel], host_cpu[host[sel]], out=np.zeros(int(sel.sum())), where=host_cpu[host[sel]] > 0),
        np.divide(mem[sel], host_mem[host[sel]], out=np.zeros(int(sel.sum())), where=host_mem[host[sel]] > 0),
    )
    # Per (host, name): its typical (median) process; per name: the median over the hosts
    # running it — a name qualifies for what its processes typically do, not for one
    # outlier process or host.
    per_host = pd.DataFrame({"h": host[sel], "n": name[sel], "s": share_row}).groupby(
        ["h", "n"], sort=False)["s"].median()
    typical = per_host.groupby(level="n").median()
    best = typical[typical >= pct].sort_values(ascending=False, kind="stable")
    share_names = [str(cats[i]) for i in best.index]
    anomaly: list[str] = []
    votes = pd.Series(dtype=np.int64)
    anomaly_note = None
    if top > 0:
        # Variability over time of each process (same host and pid across scrapes): needs
        # two utilisation points, i.e. three scrapes. Spread across a pool's processes is
        # not an anomaly, so it is not used instead.
        util = cpu_values_sum(df)
        ok = cand & ~np.isnan(util)
        pid = df["process.pid"].to_numpy(dtype=np.int64, na_value=-1)
        g = pd.DataFrame({"h": host[ok], "p": pid[ok], "n": name[ok], "u": util[ok]})
        per_proc = g.groupby(["h", "p", "n"], sort=False)["u"].agg(["std", "count"])
        # Only variability that matters at host scale: std as a share of the host's CPU, at
        # least a tenth of resource_share_pct (0.5 % of the host with the default 5 %).
        host_of = per_proc.index.get_level_values("h").to_numpy()
        per_proc["std"] = np.divide(per_proc["std"].to_numpy(), host_cpu[host_of],
                                    out=np.zeros(len(per_proc)), where=host_cpu[host_of] > 0)
        per_proc = per_proc[(per_proc["count"] >= 2) & (per_proc["std"] >= pct / 10)]
        if len(per_proc) == 0:
            anomaly_note = "CPU variability needs three or more scrapes; none learned from variability"
        else:
            # Pools (a name with more than POOL_SIZE processes on a typical host) are left
            # to the rollup: keeping a name keeps every process of it individual, so a
            # pool's jittery workers would cost more series than the anomaly is worth.
            last_cand = last & cand
            counts = pd.DataFrame({"h": host[last_cand], "n": name[last_cand]}).value_counts()
            typical = counts.groupby(level="n").median()
            small = set(typical[typical <= POOL_SIZE].index)
            per_name = per_proc["std"].groupby(level=["h", "n"]).max().reset_index()
            per_name = per_name[per_name["n"].isin(small)]
            per_name = per_name.sort_values(["h", "std"], ascending=[True, False], kind="stable")
            top_rows = per_name.groupby("h", sort=False).head(top)
            votes = top_rows["n"].value_counts(sort=False).sort_index(kind="stable").sort_values(
                ascending=False, kind="stable")
            anomaly = [str(cats[i]) for i in votes.index if str(cats[i]) not in set(share_names)]
    names = (share_names + anomaly)[:max_names]
    explanations = [{"host": "*", "name": n, "reasons": [
        f"kept: typical process uses {100 * float(best[cats.get_loc(n)]):.1f}% of host CPU or memory"]}
        for n in names if n in set(share_names)]
    explanations += [{"host": "*", "name": n, "reasons": [
        f"kept: among the {top} most variable CPU processes on {int(votes[cats.get_loc(n)])} host(s)"]}
        for n in names if n in set(anomaly)]
    out: dict[str, Any] = {
        "names": sorted(names), "share_names": len([n for n in names if n in set(share_names)]),
        "anomaly_names": len([n for n in names if n in set(anomaly)]), "explanations": explanations,
    }
    if anomaly_note:
        out["note"] = anomaly_note
    return out


def learnable_candidates(frame: ResourceFrame) -> np.ndarray:
    """Rows intelligent may keep: non-critical, not kept, not rolled up, with a name its
    validation accepts (empty names, control characters, ``${``/``$$`` are left to the rollup)."""
    name = frame.df["process.executable.name"].cat.codes.to_numpy().astype(np.int64)
    cand = frame.reducible_mask() & ~frame.rollup_mask() & (name >= 0)
    bad = learnable_names(frame.df["process.executable.name"].cat.categories)
    return cand & ~np.isin(name, bad) if bad else cand


def learn(frame: ResourceFrame, params: dict[str, Any], *, has_host_attribute: bool) -> dict[str, Any]:
    """``learned`` of an intelligent node: from history when there is enough, else one snapshot.

    History (≥ ``MIN_HISTORY_SCRAPES`` scrapes per typical host): names whose typical process
    holds ``resource_share_pct`` of its host stay fleet-wide (``names``), and the process groups
    ``core.engine.learning`` finds anomalous are kept per host (``hosts``), each with reasons.
    Shorter: the single-snapshot rule (``learn_names``), and the explanation says so.
    """
    shape = history_shape(frame)
    if shape.hosts == 0 or not learnable_candidates(frame).any():
        return {"names": [], "share_names": 0, "anomaly_names": 0, "explanations": [], "mode": "snapshot",
                "history": shape.as_dict(), "note": "no processes to learn from (only critical, kept or "
                "rolled-up ones, or none at all): only critical processes stay individual"}
    if shape.scrapes < MIN_HISTORY_SCRAPES:
        out = learn_names(frame, params)
        why = (f"history too short ({shape.scrapes} scrape(s) per host, learning from history needs "
               f"{MIN_HISTORY_SCRAPES}): learned from a single snapshot")
        for e in out["explanations"]:
            e["reasons"].append(f"({why})")
        out["note"] = f"{out['note']}; {why}" if out.get("note") else why
        return {**out, "mode": "snapshot", "history": shape.as_dict()}
    share = learn_names(frame.scrape(-1), {**params, "anomaly_top": 0})
    hist = learn_from_history(frame, params, learnable_candidates(frame), has_host_attribute=has_host_attribute)
    names = list(share["names"])
    hosts = hist["hosts"]
    if not has_host_attribute:
        # The collector cannot tell hosts apart here: keep those names fleet-wide instead.
        names = sorted(set(names) | {n for v in hosts.values() for n in v})
        hosts = {}
    out = {"names": names, "hosts": hosts, "share_names": share["share_names"],
           "anomaly_names": len(hist["explanations"]), "mode": "history",
           "explanations": share["explanations"] + hist["explanations"],
           "model": hist["model"], "history": hist["history"]}
    if hist.get("note"):
        out["note"] = hist["note"]
    return out


def _plain_text(text: str) -> str:
    """A snapshot's name as ``computed.source``: control characters and the ``$`` of ``${``/``$$``
    become ``_`` (the node's validation refuses them in any param; ``a$$b.csv`` is a valid file name)."""
    return re.sub(r"[\x00-\x1f\x7f]|\$(?=[{$])", "_", text)


def kth_largest_each(values: np.ndarray, hosts: np.ndarray, ks: np.ndarray, *, midpoint: bool = False) -> np.ndarray:
    """Per host code h (0..len(ks)-1): the ``ks[h]``-th largest of its values (its smallest when
    it has fewer; NaN when it has none or ``ks[h]`` is 0); ``midpoint``: halfway to the next."""
    out = np.full(len(ks), np.nan)
    if len(values) == 0:
        return out
    order = np.lexsort((-values, hosts))
    h = hosts[order]
    starts = np.flatnonzero(np.r_[True, h[1:] != h[:-1]])
    counts = np.diff(np.r_[starts, len(h)])
    k = ks[h[starts]]
    ok = k > 0
    pick = starts[ok] + np.minimum(k[ok], counts[ok]) - 1
    kth = values[order][pick]
    if midpoint:
        # Halfway to the next value down (when there is one): a process that sits right at the
        # threshold flips in and out with the next scrape's noise; the gap is the stable place.
        has_next = k[ok] < counts[ok]
        nxt = values[order][np.minimum(pick + 1, len(values) - 1)]
        kth = np.where(has_next & (nxt < kth), (kth + nxt) / 2.0, kth)
    out[h[starts][ok]] = kth
    return out


def _per_host(df: pd.DataFrame, weights: np.ndarray, n_hosts: int) -> np.ndarray:
    return np.bincount(df["host_name"].cat.codes.to_numpy(), weights=weights.astype(np.float64), minlength=n_hosts)


def host_budgets(last: pd.DataFrame, ratio: float, cap: int) -> pd.Series:
    """Host name → series budget: ``ratio`` × the host's baseline series (the receiver's default
    metrics on its last scrape, what ``process-baseline-v1`` exports), capped by ``cap`` (0: none)."""
    hosts = last["host_name"].cat.categories
    base = _per_host(last, series_per_row(last, DEFAULT_METRICS), len(hosts))
    present = np.bincount(last["host_name"].cat.codes.to_numpy(), minlength=len(hosts)) > 0
    budget = ratio * base
    if cap > 0:
        budget = np.minimum(budget, float(cap))
    return pd.Series(budget[present], index=hosts[present].astype(str))


def _budget_sizing(pipeline: Pipeline, frame: ResourceFrame, node_id: str, node_input: ResourceFrame,
                   ctx: EvalContext, p: dict[str, Any], policy: CriticalPolicy | None,
                   achieved: dict[str, float] | None) -> dict[str, Any]:
    """``computed`` of an adaptive node: K and thresholds per host from its series budget.

    Model: K = ⌊(budget − base) / series per process⌋ per host, where base is what the host
    exports when this node keeps nothing extra (critical, otherwise kept, rollup groups) and
    series per process is the median over its candidates of what one exports. Closed loop:
    when ``achieved`` (series each host exported last interval, as the collector served them)
    is given, each host's correction accumulates (budget − achieved) / series per process,
    so the model's bias (ties, processes without some metrics, churn) is driven out over
    a few intervals. K is clamped to [0, candidates the ranking can tell apart] and the
    correction with it (no wind-up); a host held at that ceiling, or at K = 0 with the
    processes it must keep already over budget (the floor), says so (``limit``).
    """
    from core.catalog.adaptive import MAX_HOSTS_PER_CONFIG

    last_df = frame.df[frame.df["scrape"].to_numpy() == frame.n_scrapes - 1]
    budgets = host_budgets(last_df, float(p["budget_ratio"]), int(p["series_budget_per_host"]))
    probe = copy.deepcopy(pipeline)
    probe.node(node_id).params["computed"] = {"k": 0, "cpu_utilization": NEVER_CPU, "memory_bytes": NEVER_MEMORY}
    result = evaluate(probe, frame, policy=policy, node_stats=False)
    exported = result.ctx.enabled_metrics  # what leaves the collector (ranking metric dropped or not)
    out = result.output.df
    out = out[out["scrape"].to_numpy() == frame.n_scrapes - 1]
    names = [str(c) for c in frame.df["host_name"].cat.categories]
    n_hosts = len(names)
    base = _per_host(out, series_per_row(out, exported), n_hosts) if len(out) else np.zeros(n_hosts)
    cand = candidates(node_input)
    codes = cand["host_name"].cat.codes.to_numpy()
    spp_rows = series_per_row(cand, exported).astype(np.float64)
    spp = np.zeros(n_hosts)
    if len(cand):
        spp_med = pd.Series(spp_rows).groupby(codes).median()
        spp[spp_med.index.to_numpy()] = spp_med.to_numpy()
    prev = (p.get("computed") or {}).get("hosts") or {}
    budget = np.array([float(budgets.get(h, 0.0)) for h in names])
    model = np.divide(budget - base, spp, out=np.zeros(n_hosts), where=spp > 0)
    correction = np.zeros(n_hosts)
    for i, h in enumerate(names):
        before = prev.get(h) if isinstance(prev, dict) else None
        if not isinstance(before, dict):
            continue
        correction[i] = float(before.get("correction", 0.0))
        if achieved is not None and h in achieved and spp[i] > 0:
            correction[i] += LOOP_GAIN * (float(before.get("budget", budget[i])) - float(achieved[h])) / spp[i]
    # The ceiling is what the ranking can tell apart, not the candidate count: a process at 0 by
    # the ranked metric (kernel threads by memory, idle ones by CPU) never passes a threshold, so
    # a K above the ceiling would change nothing the collector exports while the correction
    # kept winding up (the loop would chase a budget it cannot reach, forever).
    n_rank = np.bincount(codes[rankable(cand, p["by"])], minlength=n_hosts) if len(cand) else np.zeros(n_hosts, int)
    wanted = np.floor(model + correction)
    k = np.clip(wanted, 0, n_rank).astype(np.int64)
    correction = np.where(spp > 0, k - model, 0.0)  # anti-wind-up: what the clamp let through
    present = np.isin(np.arange(n_hosts), last_df["host_name"].cat.codes.to_numpy())
    k_fleet = int(np.median(k[present])) if present.any() else 0
    computed: dict[str, Any] = {"k": k_fleet, **thresholds_for(node_input, ctx, p["by"], k_fleet)}
    hosts: dict[str, Any] = {}
    per_host_thresholds = HOST_NAME_ATTRIBUTE in node_input.df.columns and int(present.sum()) <= MAX_HOSTS_PER_CONFIG
    thresholds = _host_thresholds(cand, codes, p["by"], k, n_hosts) if per_host_thresholds else {}
    for i in np.flatnonzero(present):
        h = names[i]
        if not h or text_problem(h):
            continue  # a name the node would refuse cannot be matched on: the fleet pair serves it
        entry = {"k": int(k[i]), "budget": round(float(budget[i]), 3), "base_series": float(base[i]),
                 "series_per_process": float(spp[i]), "correction": round(float(correction[i]), 6),
                 "rankable": int(n_rank[i]), **{key: v[i] for key, v in thresholds.items()}}
        # Said, so nobody reads the gap as the loop failing to converge:
        if wanted[i] > n_rank[i]:  # every process the ranking can tell apart is kept, budget not filled
            entry["limit"] = f"ceiling: only {int(n_rank[i])} processes rank above 0 by {RANK_METRIC[p['by']]}"
        elif wanted[i] < 0 and base[i] > budget[i]:  # keeping none, what it must keep is over budget
            entry["limit"] = (f"floor: critical, kept and rolled-up series alone are {base[i]:,.0f}, "
                              f"over the budget of {budget[i]:,.0f}")
        if achieved is not None and h in achieved:
            entry["achieved"] = float(achieved[h])
        hosts[h] = entry
    computed["hosts"] = hosts
    return computed


def _host_thresholds(cand: pd.DataFrame, codes: np.ndarray, by: str, k: np.ndarray,
                     n_hosts: int) -> dict[str, list[Any]]:
    """Per host code: the thresholds that let its ``k`` largest candidates pass."""
    share = np.ceil(k / 2).astype(np.int64) if by == "combined" else k
    out: dict[str, list[Any]] = {}
    if by in ("cpu", "combined"):
        v = cpu_values(cand)
        ok = ~np.isnan(v)
        t = kth_largest_each(v[ok], codes[ok], share, midpoint=True)
        # A K-th value of 0 (fewer busy processes than K: idle ones tie at 0) would compile to
        # ``>= 0`` and admit every process; the floor admits the busy ones only.
        out["cpu_utilization"] = [NEVER_CPU if np.isnan(x) else max(MIN_CPU, _round_cpu(float(x))) for x in t]
    if by in ("memory", "combined"):
        v = cand["memory_usage"].to_numpy(dtype=np.float64) if "memory_usage" in cand.columns else np.zeros(len(cand))
        ok = ~np.isnan(v)
        t = kth_largest_each(v[ok], codes[ok], share, midpoint=True)
        out["memory_bytes"] = [NEVER_MEMORY if np.isnan(x) else max(1, int(math.floor(x))) for x in t]
    return out


def tunable_nodes(pipeline: Pipeline | CompiledPipeline) -> tuple[CompiledNode, ...]:
    """The nodes whose params tuning fills (their type's ``tuning`` capability), in chain order."""
    return compile_for_engine(pipeline).tunable()


def tuned_state(pipeline: Pipeline | CompiledPipeline) -> dict[str, dict[str, Any]]:
    """Node id → what tuning wrote (without source and time): compares two tunings."""
    out = {}
    for n in tunable_nodes(pipeline):
        c = dict(n.params.get(n.node_type.tuned_param) or {})
        c.pop("computed_at", None)
        c.pop("source", None)
        out[n.id] = c
    return out


def tune(
    pipeline: Pipeline | CompiledPipeline,
    data: pd.DataFrame | ResourceFrame,
    *,
    policy: CriticalPolicy | None = None,
    source: str = "snapshot",
    computed_at: str | None = None,
    achieved: dict[str, float] | None = None,
) -> Pipeline:
    """A copy of ``pipeline`` with the data-driven params of its tunable nodes filled from
    ``data`` (``computed`` thresholds, ``learned`` names); other nodes are untouched.

    ``achieved``: series each host exported in the last interval under ``pipeline`` (the
    collector's output, by ``host.name``); budget nodes correct their K with it (closed loop)."""
    frame = data if isinstance(data, ResourceFrame) else from_snapshot(data)
    tuned = copy.deepcopy(pipeline.pipeline if isinstance(pipeline, CompiledPipeline) else pipeline)
    stamp = {"source": _plain_text(source), "computed_at": computed_at or now_iso()}
    # Thresholds look at the last scrape only: evaluate just that (half the work).
    last = frame.scrape(-1)
    for node in tunable_nodes(tuned):
        # Compiled again per node: each sees the nodes tuned before it.
        upstream = evaluate(tuned, last, policy=policy, node_stats=False, stop_before=node.id)
        node_input, ctx = upstream.output, upstream.ctx
        p = node.params
        target = tuned.node(node.id).params
        if node.node_type.tuning == "k_thresholds":
            computed = thresholds_for(node_input, ctx, p["by"], int(p["k"]))
            target["computed"] = {**computed, "k": int(p["k"]), **stamp}
        elif node.node_type.tuning == "budget_thresholds":
            params = node.node_type.with_defaults(dict(p))
            target["computed"] = {**_budget_sizing(tuned, last, node.id, node_input, ctx, params, policy,
                                                   achieved), **stamp}
        else:
            # Learning is Phoenix's analysis of the snapshot, not something the collector
            # computes: it may use CPU utilisation even when the receiver does not export it.
            probe = copy.deepcopy(tuned)
            probe.receiver().params.setdefault("metrics", {})["process.cpu.utilization"] = True
            # Variability over time needs ≥ 3 scrapes; with fewer, the last one says it all.
            source_frame = frame if frame.n_scrapes >= 3 else last
            seen = evaluate(probe, source_frame, policy=policy, node_stats=False, stop_before=node.id).output
            target["learned"] = {**learn(seen, dict(p), has_host_attribute=HOST_NAME_ATTRIBUTE in node_input.df.columns),
                                 **stamp}
    return tuned


def needs_tuning(pipeline: Pipeline | CompiledPipeline) -> bool:
    """True when a tunable node has nothing computed/learned yet."""
    return any(not n.node_type.is_tuned(n.params) for n in tunable_nodes(pipeline))
