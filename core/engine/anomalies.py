"""Injected anomalies and the "interesting processes kept per series" metric.

``inject_anomalies(fleet, per_kind, seed)`` takes a generated fleet (``generate_fleet`` with
several scrapes) and turns a few quiet, long-lived, non-critical processes into the kind of
process an SRE wants to see individually: a **CPU spike** (bursts of half a core in some
intervals of the second half), a **memory leak** (resident memory growing linearly to 4×)
and a **crash loop** (a fresh pid, with its CPU time restarting, every scrape). Seeded:
same fleet and seed → same processes, same values. Counters stay monotonic per pid and
Δcpu ≤ Δwall × num_cpus, so the result is a valid snapshot.

The metric (docs/pipelines.md, "Interesting processes kept per series"):

- an **interesting** process group is a (host, executable name) injected with an anomaly
  (the ground truth: the generator knows which ones it broke); critical processes are kept
  by every pipeline and are not counted;
- it is **kept** when at least one of its processes leaves the pipeline individually (not
  rolled up, not dropped) on the last scrape;
- **interesting kept per 1,000 series** = kept interesting groups × 1,000 ÷ series the
  pipeline exports on the last scrape.

Reported beside it, for honesty about what each method is for: **heavy** groups (a process
using at least ``HEAVY_SHARE`` of its host's CPU or memory on the last scrape, non-critical)
kept, where top-K is at home.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.catalog.frame import ResourceFrame
from core.domain.critical import CriticalPolicy
from core.domain.pipeline import Pipeline
from core.engine.evaluate import evaluate
from core.engine.expand import series_per_row
from core.engine.fleet import CRITICAL_COMMAND_PATTERN, CRITICAL_NAME_PATTERN
from core.engine.learning import cpu_values_sum

KINDS: tuple[str, ...] = ("cpu_spike", "memory_leak", "crash_loop")
HEAVY_SHARE = 0.05  # of the host's CPU or memory: the processes any reducer should keep


@dataclass(frozen=True)
class Injected:
    frame: pd.DataFrame  # a snapshot frame
    labels: pd.DataFrame  # host_name, executable_name, kind


def _quiet_groups(df: pd.DataFrame) -> pd.DataFrame:
    """(host, name) groups with one long-lived, non-critical, non-kernel process and small memory."""
    n_scrapes = df.groupby("host_name", observed=True)["scrape"].transform("nunique")
    name = df["executable_name"].astype(str)
    critical = name.str.fullmatch(CRITICAL_NAME_PATTERN) | df["command_line"].astype(str).str.contains(
        CRITICAL_COMMAND_PATTERN, regex=True)
    ok = (df["executable_path"].astype(str) != "") & ~critical
    g = pd.DataFrame({"h": df["host_name"].astype(str), "n": name, "p": df["pid"], "ok": ok,
                      "rows": 1, "S": n_scrapes, "mem": df["memory_usage"]})
    agg = g.groupby(["h", "n"]).agg(pids=("p", "nunique"), rows=("rows", "sum"), S=("S", "max"),
                                    ok=("ok", "all"), mem=("mem", "median"))
    host_mem = df.groupby("host_name", observed=True)["memory_usage"].median()
    agg = agg[(agg["pids"] == 1) & (agg["rows"] == agg["S"]) & agg["ok"]]
    agg = agg[agg["mem"].to_numpy() <= host_mem.reindex(agg.index.get_level_values("h")).to_numpy() * 4]
    return agg.reset_index()


def inject_anomalies(fleet: pd.DataFrame, per_kind: int = 3, seed: int = 0) -> Injected:
    """``per_kind`` process groups of each kind in ``KINDS``, on distinct hosts where possible."""
    scrapes = int(fleet["scrape"].max()) + 1
    if scrapes < 4:
        raise ValueError("injecting anomalies needs a fleet with at least 4 scrapes")
    rng = np.random.default_rng(seed)
    quiet = _quiet_groups(fleet)
    need = per_kind * len(KINDS)
    if len(quiet) < need:
        raise ValueError(f"the fleet has {len(quiet)} quiet process groups, {need} are needed")
    # Distinct hosts first (shuffled), then the rest: anomalies spread over the fleet.
    order = rng.permutation(len(quiet))
    picked = quiet.iloc[order].drop_duplicates("h").head(need)
    if len(picked) < need:
        picked = pd.concat([picked, quiet.iloc[order].drop(picked.index, errors="ignore")]).head(need)
    df = fleet.copy()
    host = df["host_name"].astype(str).to_numpy()
    name = df["executable_name"].astype(str).to_numpy()
    labels = []
    for i, (h, n) in enumerate(zip(picked["h"], picked["n"], strict=True)):
        kind = KINDS[i // per_kind]
        rows = np.flatnonzero((host == h) & (name == n))
        rows = rows[np.argsort(df["scrape"].to_numpy()[rows], kind="stable")]
        _inject(df, rows, kind, rng)
        labels.append((h, n, kind))
    df = df.sort_values(["host_name", "scrape", "pid"], kind="stable").reset_index(drop=True)
    return Injected(df, pd.DataFrame(labels, columns=["host_name", "executable_name", "kind"]))


def _inject(df: pd.DataFrame, rows: np.ndarray, kind: str, rng: np.random.Generator) -> None:
    ts = df["timestamp"].to_numpy()[rows]
    dt = np.diff(ts, prepend=ts[0])
    S = len(rows)
    if kind == "cpu_spike":
        # Half a core in about a third of the intervals of the second half (at least two).
        burst = np.zeros(S)
        late = np.arange(S // 2, S)
        on = rng.choice(late, size=max(2, len(late) // 3), replace=False)
        burst[on] = 0.5 * dt[on]
        df.loc[df.index[rows], "cpu_time_user"] = df["cpu_time_user"].to_numpy()[rows] + np.floor(
            np.cumsum(burst) * 100) / 100
    elif kind == "memory_leak":
        growth = 1.0 + 3.0 * np.arange(S) / max(S - 1, 1)
        for col in ("memory_usage", "memory_virtual"):
            v = df[col].to_numpy()[rows]
            df.loc[df.index[rows], col] = np.floor(v * growth / 4096) * 4096
    else:  # crash_loop: a new pid every scrape, its CPU time starting again
        host_rows = df["host_name"].to_numpy() == df["host_name"].to_numpy()[rows[0]]
        top = int(df["pid"].to_numpy()[host_rows].max())
        df.loc[df.index[rows], "pid"] = top + 1 + np.arange(S)
        for col in ("cpu_time_user", "cpu_time_system", "cpu_time_wait"):
            df.loc[df.index[rows], col] = np.floor(df[col].to_numpy()[rows] * 0 + rng.uniform(0.01, 0.5, S) * 100) / 100


def heavy_groups(frame: ResourceFrame, policy: CriticalPolicy) -> set[tuple[str, str]]:
    """Non-critical (host, name) groups with a process at ≥ ``HEAVY_SHARE`` of host CPU or memory."""
    df = frame.df
    last = df[df["scrape"].to_numpy() == frame.n_scrapes - 1]
    host = last["host_name"].astype(str).to_numpy()
    name = last["process.executable.name"].astype(str).to_numpy()
    cpu = np.nan_to_num(cpu_values_sum(last))
    mem = np.nan_to_num(last["memory_usage"].to_numpy(dtype=np.float64))
    tot = pd.DataFrame({"h": host, "c": cpu, "m": mem}).groupby("h")[["c", "m"]].sum()
    tc, tm = tot["c"].reindex(host).to_numpy(), tot["m"].reindex(host).to_numpy()
    share = np.fmax(np.divide(cpu, tc, out=np.zeros(len(cpu)), where=tc > 0),
                    np.divide(mem, tm, out=np.zeros(len(mem)), where=tm > 0))
    crit = (policy.classify(last["process.executable.name"], last["process.command_line"], last["process.owner"])
            == "critical").to_numpy(dtype=bool)
    critical_groups = {(h, n) for h, n, c in zip(host, name, crit, strict=True) if c}
    return {(h, n) for h, n, s in zip(host, name, share, strict=True) if s >= HEAVY_SHARE} - critical_groups


def injected_groups(labels: pd.DataFrame) -> set[tuple[str, str]]:
    return {(str(h), str(n)) for h, n in zip(labels["host_name"], labels["executable_name"], strict=True)}


def interesting_per_series(pipeline: Pipeline, frame: ResourceFrame, interesting: set[tuple[str, str]],
                           policy: CriticalPolicy | None = None,
                           heavy: set[tuple[str, str]] | None = None) -> dict[str, Any]:
    """The metric for one (tuned) pipeline: kept interesting groups, series out, per 1,000 series
    (and, given ``heavy``, how many heavy groups it keeps)."""
    result = evaluate(pipeline, frame, policy=policy, node_stats=False)
    out = result.output.df
    out = out[out["scrape"].to_numpy() == frame.n_scrapes - 1]
    series = int(series_per_row(out, result.ctx.enabled_metrics).sum())
    individual = out[out["process.pid"].notna().to_numpy()]
    seen = set(zip(individual["host_name"].astype(str), individual["process.executable.name"].astype(str),
                   strict=True))
    kept = len(interesting & seen)
    out: dict[str, Any] = {"interesting": len(interesting), "kept": kept, "series_out": series,
                           "per_1000_series": round(1000.0 * kept / series, 4) if series else 0.0,
                           "recall": round(kept / len(interesting), 4) if interesting else 0.0}
    if heavy is not None:
        out["heavy"], out["heavy_kept"] = len(heavy), len(heavy & seen)
    return out



def compare(nodes: int, procs: int, seeds: list[int], *, scrapes: int = 12, per_kind: int = 3,
            interval_s: float = 60.0) -> dict[str, Any]:
    """Intelligent vs top-K on the metric, per seed: generated fleet, injected anomalies, both tuned
    on the same history (``phoenix bench intelligent``, bench/intelligent.py)."""
    import time

    from core.catalog.frame import from_snapshot
    from core.catalog.templates import get_template
    from core.domain.critical import DEFAULT_POLICY
    from core.engine.fleet import generate_fleet
    from core.engine.tuning import tune

    rows = []
    for seed in seeds:
        injected = inject_anomalies(generate_fleet(nodes, procs, seed=seed, scrapes=scrapes, interval_s=interval_s),
                                    per_kind=per_kind, seed=seed)
        frame = from_snapshot(injected.frame)
        interesting, heavy = injected_groups(injected.labels), heavy_groups(frame, DEFAULT_POLICY)
        row: dict[str, Any] = {"seed": seed}
        for key, template in (("topk", "process-topk-v1"), ("intelligent", "process-intelligent-v1")):
            started = time.perf_counter()
            tuned = tune(get_template(template), frame)
            row[f"{key}_tune_seconds"] = round(time.perf_counter() - started, 3)
            row[key] = interesting_per_series(tuned, frame, interesting, DEFAULT_POLICY, heavy=heavy)
        row["intelligent_wins"] = row["intelligent"]["per_1000_series"] > row["topk"]["per_1000_series"]
        rows.append(row)
    return {"nodes": nodes, "procs": procs, "scrapes": scrapes, "interval_s": interval_s,
            "anomalies_per_kind": per_kind, "kinds": list(KINDS), "seeds": rows}
