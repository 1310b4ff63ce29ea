"""Intelligent learning from history: per-process features, an isolation forest, explanations.

The unit is a **process group**: one executable name on one host, followed over every
scrape of the history (several stored snapshots concatenated, or one long snapshot). A
name is what the collector can match, and the host is what makes an anomaly local: a
crash-looping ``payments-api`` on ``node-0007`` is kept there, not on the 40 hosts where it
behaves. Features per group (docs/pipeline-semantics.md, "Intelligent"):

- ``cpu_share`` / ``mem_share``: the group's typical process (per scrape: group total ÷
  processes) as a share of the host's CPU / memory, median over scrapes;
- ``cpu_cv``: coefficient of variation over time of the group's CPU utilisation;
- ``mem_growth``: growth of its per-process memory from the first to the last third of the
  history, relative to its mean (a leak);
- ``restarts``: pids of the name that appeared after the host's first scrape (crash loops,
  churn) and their rate per hour;
- the last three again *minus the median of the same name on the other hosts* ("unlike this
  program elsewhere"): cron jobs churn everywhere, a crash loop churns on one host.

A scikit-learn ``IsolationForest`` (seeded; same history → same model → same names) scores
every group; the score is the original paper's s(x) in (0, 1), above 0.5 meaning "easier to
isolate than a typical point". A group is kept when its score reaches ``anomaly_score`` or a
named rule fires (restarts, leak, CPU variability beyond its peers), and never when it is a
pool (more than ``POOL_SIZE`` processes: keeping a name keeps all of them). Each kept group
carries its reasons as text, stored in the node's ``learned`` params.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.catalog.frame import ResourceFrame
from core.catalog.process_metrics import METRICS_BY_NAME
from core.domain.user_text import text_problem

MIN_HISTORY_SCRAPES = 6  # per host: fewer and CPU variation over time is noise (5 utilisation points)
POOL_SIZE = 3  # groups with more processes on a typical scrape are pools: left to the rollup
N_ESTIMATORS = 100
FEATURES: tuple[str, ...] = (
    "cpu_share", "mem_share", "cpu_cv", "mem_growth", "cpu_cv_excess", "mem_growth_excess", "restarts_ratio",
)
# Named rules (beside the model's score): how far beyond its peers a group must be.
LEAK_GROWTH = 0.5  # +50 % per-process memory from the first to the last third of the history
CV_EXCESS = 0.5  # CPU coefficient of variation 0.5 above the same name's median elsewhere
UTIL_COLUMNS = METRICS_BY_NAME["process.cpu.utilization"].columns


@dataclass(frozen=True)
class HistoryShape:
    scrapes: int  # median scrapes per host
    hosts: int
    span_s: float  # median time between a host's first and last scrape

    def as_dict(self) -> dict[str, Any]:
        return {"scrapes_per_host": self.scrapes, "hosts": self.hosts, "span_s": round(self.span_s, 1)}


def history_shape(frame: ResourceFrame) -> HistoryShape:
    df = frame.df
    if len(df) == 0:
        return HistoryShape(0, 0, 0.0)
    g = pd.DataFrame({"h": df["host_name"].cat.codes.to_numpy(), "t": df["timestamp"].to_numpy()}).groupby("h")["t"]
    n = g.nunique()
    span = g.max() - g.min()
    return HistoryShape(int(np.median(n.to_numpy())), int(len(n)), float(np.median(span.to_numpy())))


def _duration(seconds: float) -> str:
    if seconds >= 2 * 86_400:
        return f"{seconds / 86_400:.1f} d"
    if seconds >= 3_600:
        return f"{seconds / 3_600:.1f} h"
    return f"{max(seconds, 0) / 60:.0f} min"


def group_features(frame: ResourceFrame, candidate: np.ndarray) -> pd.DataFrame:
    """One row per (host, name) among ``candidate`` rows: the features above plus bookkeeping."""
    df = frame.df
    h = df["host_name"].cat.codes.to_numpy().astype(np.int64)
    s = df["scrape"].to_numpy(dtype=np.int64)
    t = df["timestamp"].to_numpy(dtype=np.float64)
    util = cpu_values_sum(df)
    cpu = np.nan_to_num(util)
    mem = np.nan_to_num(df["memory_usage"].to_numpy(dtype=np.float64)) if "memory_usage" in df else np.zeros(len(df))
    # Host totals per scrape over every process (critical ones too: a share is of the whole host).
    tot = pd.DataFrame({"h": h, "s": s, "cpu": cpu, "mem": mem}).groupby(["h", "s"], sort=False)[["cpu", "mem"]].sum()
    name = df["process.executable.name"].cat.codes.to_numpy().astype(np.int64)
    pid = df["process.pid"].to_numpy(dtype=np.int64, na_value=-1)
    c = candidate
    rows = pd.DataFrame({"h": h[c], "n": name[c], "s": s[c], "t": t[c], "p": pid[c], "cpu": cpu[c],
                         "util_known": ~np.isnan(util[c]), "mem": mem[c]})
    if rows.empty:
        return pd.DataFrame(columns=["h", "n", *FEATURES, "procs", "restarts", "span_s", "score"])
    per = rows.groupby(["h", "n", "s"], sort=False).agg(
        cpu=("cpu", "sum"), mem=("mem", "sum"), procs=("p", "size"), known=("util_known", "any"))
    per = per.join(tot.rename(columns={"cpu": "cpu_host", "mem": "mem_host"}))
    per["cpu_share"] = np.divide(per["cpu"] / per["procs"], per["cpu_host"],
                                 out=np.zeros(len(per)), where=per["cpu_host"].to_numpy() > 0)
    per["mem_share"] = np.divide(per["mem"] / per["procs"], per["mem_host"],
                                 out=np.zeros(len(per)), where=per["mem_host"].to_numpy() > 0)
    per["mem_pp"] = per["mem"] / per["procs"]
    per = per.reset_index().sort_values(["h", "n", "s"], kind="stable")
    grouped = per.groupby(["h", "n"], sort=True)
    out = grouped.agg(cpu_share=("cpu_share", "median"), mem_share=("mem_share", "median"),
                      procs=("procs", "median"))
    # CPU variability over time: only scrapes where some utilisation point exists (a pid's
    # first scrape has none); the mean of 0 gives a CV of 0.
    known = per[per["known"]]
    stats = known.groupby(["h", "n"])["cpu"].agg(["mean", "std", "count"])
    cv = np.divide(stats["std"].fillna(0.0).to_numpy(), stats["mean"].to_numpy(),
                   out=np.zeros(len(stats)), where=stats["mean"].to_numpy() > 0)
    out["cpu_cv"] = pd.Series(np.where(stats["count"].to_numpy() >= 3, cv, 0.0), index=stats.index)
    out["cpu_cv"] = out["cpu_cv"].fillna(0.0)
    # Variability that matters at host scale: the std as a share of the host's typical CPU
    # (a kernel thread's 0.01 s clock ticks have a huge CV and no weight).
    host_cpu = tot["cpu"].groupby(level="h").median()
    std_share = np.divide(stats["std"].fillna(0.0).to_numpy(),
                          host_cpu.reindex(stats.index.get_level_values("h")).to_numpy(),
                          out=np.zeros(len(stats)),
                          where=host_cpu.reindex(stats.index.get_level_values("h")).to_numpy() > 0)
    out["cpu_std_share"] = pd.Series(std_share, index=stats.index).reindex(out.index, fill_value=0.0)

    # Memory growth of the same process (a leak), not of a changing set of pids: per pid seen
    # in at least three scrapes, (last − first) ÷ its mean; per group, the largest.
    by_pid = rows.groupby(["h", "n", "p"], sort=False)
    pid_stats = by_pid["mem"].agg(["first", "last", "mean", "size"])
    pid_stats = pid_stats[(pid_stats["size"] >= 3) & (pid_stats["mean"] > 0)]
    pid_growth = (pid_stats["last"] - pid_stats["first"]) / pid_stats["mean"]
    out["mem_growth"] = pid_growth.groupby(level=["h", "n"]).max().reindex(out.index, fill_value=0.0)
    # Restarts: pids of the group first seen after its host's first scrape.
    first_seen = by_pid["s"].min().reset_index()
    host_first = rows.groupby("h")["s"].min()
    first_seen = first_seen[first_seen["s"].to_numpy() > host_first.reindex(first_seen["h"]).to_numpy()]
    out["restarts"] = first_seen.groupby(["h", "n"]).size().reindex(out.index, fill_value=0)
    span = pd.DataFrame({"h": h, "t": t}).groupby("h")["t"].agg(lambda x: x.max() - x.min())
    out["span_s"] = span.reindex(out.index.get_level_values("h")).to_numpy()
    # Against the same name on the other hosts: cron jobs and health checks start new pids on
    # every host; a crash loop does so on one. Restarts as a log ratio to the peers' median.
    peer_restarts = out.groupby(level="n")["restarts"].transform("median")
    out["restarts_ratio"] = np.log((out["restarts"] + 1.0) / (peer_restarts + 1.0))
    for col in ("cpu_cv", "mem_growth"):
        out[f"{col}_excess"] = out[col] - out.groupby(level="n")[col].transform("median")
    out["peer_restarts"] = peer_restarts
    return out.reset_index()


def cpu_values_sum(df: pd.DataFrame) -> np.ndarray:
    """CPU utilisation summed over states per row; NaN where no state has a point."""
    cols = [c for c in UTIL_COLUMNS if c in df.columns]
    if not cols:
        return np.full(len(df), np.nan)
    stacked = np.vstack([df[c].to_numpy(dtype=np.float64) for c in cols])
    total = np.nansum(stacked, axis=0)
    total[np.isnan(stacked).all(axis=0)] = np.nan
    return total


def _signed_log(x: np.ndarray) -> np.ndarray:
    # Heavy tails (a share of 1e-6 next to 0.3; 0 or 400 restarts an hour) on a usable scale.
    return np.sign(x) * np.log1p(np.abs(x) * 100.0)


def anomaly_scores(features: pd.DataFrame, seed: int) -> np.ndarray:
    """Isolation-forest score s(x) in (0, 1) per row (higher = more anomalous); seeded."""
    from sklearn.ensemble import IsolationForest

    n = len(features)
    if n < 2:
        return np.zeros(n)
    x = _signed_log(features[list(FEATURES)].to_numpy(dtype=np.float64))
    model = IsolationForest(n_estimators=N_ESTIMATORS, max_samples=min(256, n), random_state=seed)
    model.fit(x)
    return -model.score_samples(x)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%" if x >= 0.001 else f"{100 * x:.2f}%"


def learn_from_history(frame: ResourceFrame, params: dict[str, Any], candidate: np.ndarray,
                       *, has_host_attribute: bool) -> dict[str, Any]:
    """Per-host kept names with their reasons: ``{hosts, explanations, model, history, ...}``.

    ``candidate``: rows the node may keep (non-critical, not kept, not rolled up, learnable name).
    """
    seed = int(params.get("seed", 0))
    threshold = float(params.get("anomaly_score", 0.65))
    restart_min = int(params.get("restart_min", 3))
    variance_pct = float(params.get("variance_top_pct", 2.0))
    max_names = int(params.get("max_names", 50))
    shape = history_shape(frame)
    feats = group_features(frame, candidate)
    cats = frame.df["process.executable.name"].cat.categories.astype(str)
    hosts = frame.df["host_name"].cat.categories.astype(str)
    model = {"kind": "IsolationForest", "library": _sklearn_version(), "n_estimators": N_ESTIMATORS,
             "max_samples": int(min(256, len(feats))), "seed": seed, "anomaly_score": threshold,
             "features": list(FEATURES), "groups": int(len(feats))}
    if len(feats) == 0:
        return {"hosts": {}, "explanations": [], "model": model, "history": shape.as_dict()}
    feats["score"] = anomaly_scores(feats, seed)
    share_pct = float(params.get("resource_share_pct", 5.0)) / 100.0
    weighty = feats["cpu_std_share"].to_numpy() >= share_pct / 10
    # "Top x% CPU variance" over every group of the fleet, where variability that does not weigh
    # on its host (a kernel thread's clock ticks) counts as none.
    effective_cv = np.where(weighty, feats["cpu_cv"].to_numpy(), 0.0)
    cv_cut = float(np.quantile(effective_cv, 1 - variance_pct / 100.0)) if variance_pct > 0 else math.inf
    kept: list[dict[str, Any]] = []
    pools = 0
    for i, r in enumerate(feats.itertuples(index=False)):
        reasons = []
        heavy = max(r.cpu_share, r.mem_share)
        if heavy >= share_pct:
            which = "CPU" if r.cpu_share >= r.mem_share else "memory"
            reasons.append(f"typical process uses {_pct(heavy)} of host {which}")
        if r.restarts >= restart_min and r.restarts >= restart_min + 2 * r.peer_restarts:
            reasons.append(f"{int(r.restarts)} restarts in {_duration(r.span_s)}")
        if r.mem_growth >= LEAK_GROWTH and r.mem_growth_excess >= LEAK_GROWTH:
            reasons.append(f"memory per process grew {100 * r.mem_growth:.0f}% over {_duration(r.span_s)}")
        if effective_cv[i] >= cv_cut and effective_cv[i] > 0 and r.cpu_cv_excess >= CV_EXCESS:
            reasons.append(f"top {variance_pct:g}% CPU variance (CV {r.cpu_cv:.2f})")
        if r.score >= threshold:
            reasons.append(f"anomaly score {r.score:.2f} (isolation forest)")
        if not reasons:
            continue
        if r.procs > POOL_SIZE and heavy < share_pct:
            pools += 1
            continue
        kept.append({"host": str(hosts[int(r.h)]), "name": str(cats[int(r.n)]), "score": round(float(r.score), 3),
                     "reasons": [f"kept: {x}" for x in reasons],
                     "features": {f: round(float(getattr(r, f)), 6) for f in FEATURES}})
    # Most anomalous first; named rules beat a bare score at equal score.
    kept.sort(key=lambda e: (-len(e["reasons"]), -e["score"], e["host"], e["name"]))
    kept = kept[:max_names]
    by_host: dict[str, list[str]] = {}
    for e in kept:
        by_host.setdefault(e["host"], []).append(e["name"])
    out: dict[str, Any] = {"hosts": {h: sorted(set(v)) for h, v in sorted(by_host.items())}, "explanations": kept,
                           "model": model, "history": shape.as_dict()}
    notes = []
    if pools:
        notes.append(f"{pools} pool group(s) (more than {POOL_SIZE} processes of one name on a host) looked "
                     "anomalous but are left to the rollup")
    if not has_host_attribute and kept:
        notes.append("no host.name at this node (add resourcedetection with the system detector): "
                     "the collector cannot keep these per host")
    if notes:
        out["note"] = "; ".join(notes)
    return out


def _sklearn_version() -> str:
    import sklearn

    return f"scikit-learn {sklearn.__version__}"


def learnable_names(cats: pd.Index) -> list[int]:
    """Codes of names the node's validation would refuse (empty, control characters, ``${``)."""
    return [i for i, c in enumerate(cats.astype(str)) if not c or text_problem(c)]
