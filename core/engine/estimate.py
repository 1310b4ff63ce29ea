"""The estimate: what a pipeline keeps, sends and costs on a snapshot.

docs/architecture.md §3 follows an estimate from the command line to the price.

Everything is computed from one evaluation (``core.engine.evaluate``) at process level;
series are only materialised for a bounded sample that the exporters' encoders turn into
real bytes. Counting rules are in docs/pipeline-semantics.md ("Counting").
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core import cost
from core.catalog.eval_context import EvalContext
from core.catalog.frame import INTERNAL_MARKERS, ResourceFrame, attribute_columns, from_snapshot
from core.catalog.process_metrics import DEFAULT_METRICS, METRICS_BY_NAME
from core.catalog.registry import get as get_node_type
from core.domain.critical import CriticalPolicy
from core.domain.durations import duration_or_none
from core.domain.pipeline import Pipeline
from core.engine import encoding
from core.engine.evaluate import EvaluationResult, compile_for_engine, evaluate
from core.engine.expand import expand, series_per_row
from core.engine.tuning import host_budgets, needs_tuning, tune

MINUTES_PER_MONTH = 730 * 60  # the 730-hour month vendors bill by
BYTE_SAMPLE_SERIES = 2_000  # series handed to the encoders (they sample whole resources)
TOP_CONTRIBUTORS = 10

# Host totals the estimate compares in vs out (sum-preserving rollups keep them equal).
TOTAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "cpu_time_seconds": ("cpu_time_user", "cpu_time_system", "cpu_time_wait"),
    "memory_usage_bytes": ("memory_usage",),
    "memory_virtual_bytes": ("memory_virtual",),
    "disk_io_bytes": ("disk_io_read", "disk_io_write"),
}


@dataclass
class EstimateResult:
    report: dict[str, Any]
    evaluation: EvaluationResult
    pipeline: Pipeline  # as evaluated (tuned when it needed tuning)

    def series_out_frame(self) -> pd.DataFrame:
        """``host_name, metric, attributes, value`` of the last scrape (``--series-out``)."""
        from core.engine.expand import attributes_json

        series = self.evaluation.output_series(-1)
        return pd.DataFrame({
            "host_name": series["host_name"].astype(str),
            "metric": series["metric"].astype(str),
            "attributes": attributes_json(series),
            "value": series["value"],
        })


def _last(df: pd.DataFrame, n_scrapes: int) -> pd.DataFrame:
    return df[df["scrape"].to_numpy() == n_scrapes - 1]


def _stats(values: np.ndarray) -> dict[str, float]:
    if len(values) == 0:
        return {"min": 0, "p50": 0, "p90": 0, "max": 0, "mean": 0}
    return {
        "min": float(values.min()), "p50": float(np.percentile(values, 50)),
        "p90": float(np.percentile(values, 90)), "max": float(values.max()), "mean": float(values.mean()),
    }


def _per_host(df: pd.DataFrame, weights: np.ndarray, n_hosts: int) -> np.ndarray:
    return np.bincount(df["host_name"].cat.codes.to_numpy(), weights=weights, minlength=n_hosts)


def critical_coverage(result: EvaluationResult, policy: CriticalPolicy,
                      last_in: pd.DataFrame | None = None, last_out: pd.DataFrame | None = None) -> dict[str, Any]:
    """Critical processes (by ``policy``, input's last scrape) whose every expected series
    is exported with its ``process.pid`` intact / critical processes in the input.

    Expected = what the receiver scrapes for that process (its enabled metrics with data).
    """
    n = result.input.n_scrapes
    inp = ResourceFrame((last_in if last_in is not None else _last(result.input.df, n)).reset_index(drop=True))
    classified = get_node_type("priority_classifier").kernel(inp, {}, EvalContext(critical_policy=policy))
    crit = classified.df[classified.critical_mask()]
    expected = series_per_row(crit, result.ctx.enabled_metrics)
    out = last_out if last_out is not None else _last(result.output.df, n)
    has_pid = out["process.pid"].notna().to_numpy() if "process.pid" in out.columns else np.zeros(len(out), bool)
    rolled = out["phoenix.rollup"].cat.codes.to_numpy() == 0
    out = out[has_pid & ~rolled]
    got = series_per_row(out, result.ctx.enabled_metrics)

    def key(df: pd.DataFrame) -> np.ndarray:
        hosts = df["host_name"].cat.codes.to_numpy().astype(np.int64)
        return (hosts << 32) | df["process.pid"].to_numpy(dtype=np.int64, na_value=-1)

    out_counts = pd.Series(got, index=key(out)).groupby(level=0).sum()
    found = out_counts.reindex(key(crit)).fillna(-1).to_numpy()
    covered = found >= expected
    total = len(crit)
    missing = crit[~covered]
    examples = [
        {"host_name": str(h), "pid": int(p), "executable_name": str(e)}
        for h, p, e in zip(missing["host_name"].head(5), missing["process.pid"].head(5),
                           missing["process.executable.name"].head(5), strict=True)
    ]
    return {
        "critical_processes": total,
        "covered": int(covered.sum()),
        "coverage_pct": 100.0 if total == 0 else round(100.0 * covered.sum() / total, 4),
        "policy": getattr(policy, "source", "custom"),
        "missing_examples": examples,
    }


def host_totals(result: EvaluationResult, last_in: pd.DataFrame | None = None,
                last_out: pd.DataFrame | None = None) -> dict[str, Any]:
    """Per host, Σ value in (every scraped process) vs out, last scrape."""
    n = result.input.n_scrapes
    inp = last_in if last_in is not None else _last(result.input.df, n)
    out = last_out if last_out is not None else _last(result.output.df, n)
    n_hosts = len(result.input.df["host_name"].cat.categories)
    report: dict[str, Any] = {}
    for name, cols in TOTAL_COLUMNS.items():
        metric = next(m for m in METRICS_BY_NAME.values() if cols[0] in m.columns)
        t_in = np.zeros(n_hosts)
        t_out = np.zeros(n_hosts)
        for col in cols:
            t_in += _per_host(inp, np.nan_to_num(inp[col].to_numpy(dtype=np.float64)), n_hosts)
            if col in out.columns and metric.name in result.ctx.enabled_metrics:
                t_out += _per_host(out, np.nan_to_num(out[col].to_numpy(dtype=np.float64)), n_hosts)
        present = t_in > 0
        dev = np.abs(t_out[present] - t_in[present]) / t_in[present] * 100.0
        report[name] = {
            "in": float(t_in.sum()), "out": float(t_out.sum()),
            "out_over_in": float(t_out.sum() / t_in.sum()) if t_in.sum() > 0 else 1.0,
            "max_host_deviation_pct": float(dev.max()) if len(dev) else 0.0,
        }
    return report


def _identity_hashes(df: pd.DataFrame) -> np.ndarray:
    """64-bit hash of each row's exported identity (host + remaining attributes).

    Mixes integer codes, not strings: every row of one frame shares each column's
    categories, so equal codes mean equal values across scrapes.
    """
    cols = ["host_name", *[c for c in attribute_columns(df) if c not in INTERNAL_MARKERS]]
    h = np.zeros(len(df), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for col in cols:
            s = df[col]
            if isinstance(s.dtype, pd.CategoricalDtype):
                v = s.cat.codes.to_numpy().astype(np.int64) + 1
            else:
                v = pd.array(s, dtype="Int64").to_numpy(dtype=np.int64, na_value=-1) + 2
            h ^= v.astype(np.uint64)
            h *= np.uint64(0x9E3779B97F4A7C15)
            h ^= h >> np.uint64(29)
    return h


def _presence(df: pd.DataFrame, enabled: set[str] | frozenset[str]) -> np.ndarray:
    """rows × points boolean matrix: which of its possible series each row emits."""
    cols = [c for m in METRICS_BY_NAME.values() if m.name in enabled for c in m.columns]
    out = np.zeros((len(df), len(cols)), dtype=bool)
    for j, col in enumerate(cols):
        if col in df.columns:
            out[:, j] = ~np.isnan(df[col].to_numpy(dtype=np.float64))
    return out


def churn(frame: ResourceFrame, enabled: set[str] | frozenset[str], hosts: list[str] | None = None) -> int | None:
    """Series present in exactly one of the last two scrapes (new pids, exits, renames).

    Matched at resource level: rows of the two scrapes are paired by the hash of their
    exported identity (host + remaining attributes); a paired row contributes the points
    whose presence differs, an unpaired row all its series. Only ``hosts`` (default: every
    host) count: a host scraped once has no previous scrape, so none of its series churned.
    """
    n = frame.n_scrapes
    if n < 2:
        return None
    scrape = frame.df["scrape"].to_numpy()
    a = frame.df[scrape == n - 2]
    b = frame.df[scrape == n - 1]
    if hosts is not None:
        a = a[a["host_name"].isin(hosts).to_numpy()]
        b = b[b["host_name"].isin(hosts).to_numpy()]
    ha, hb = _identity_hashes(a), _identity_hashes(b)
    pa_, pb_ = _presence(a, enabled), _presence(b, enabled)
    # Identical identities within one scrape are one series each (collisions): dedupe.
    ua, ia = np.unique(ha, return_index=True) if len(ha) != len(pd.unique(ha)) else (ha, np.arange(len(ha)))
    ub, ib = np.unique(hb, return_index=True) if len(hb) != len(pd.unique(hb)) else (hb, np.arange(len(hb)))
    pa_, pb_ = pa_[ia], pb_[ib]
    pos = pd.Index(ub).get_indexer(ua)
    matched = pos >= 0
    changed = int((pa_[matched] != pb_[pos[matched]]).sum())
    only_a = int(pa_[~matched].sum())
    in_b = np.zeros(len(ub), dtype=bool)
    in_b[pos[matched]] = True
    only_b = int(pb_[~in_b].sum())
    return changed + only_a + only_b


def top_contributors(df: pd.DataFrame, enabled: set[str] | frozenset[str]) -> list[dict[str, Any]]:
    names = df["process.executable.name"]
    counts = pd.Series(series_per_row(df, enabled), index=names.cat.codes.to_numpy())
    by = counts.groupby(level=0).sum().sort_values(ascending=False, kind="stable").head(TOP_CONTRIBUTORS)
    cats = names.cat.categories
    return [{"executable_name": "(none)" if i < 0 else str(cats[i]), "series": int(v)} for i, v in by.items()]


def exporter_bytes(result: EvaluationResult, dpm: float, last_out: pd.DataFrame | None = None) -> dict[str, Any]:
    """Bytes per point measured by encoding a sample of the exported series, per exporter."""
    out: dict[str, Any] = {}
    sample: pd.DataFrame | None = None
    for node in result.exporters:
        enc = node.node_type.wire_encoding
        if enc is None:
            out[node.id] = {"type": node.type, "encoding": None, "bytes_per_point": 0.0, "bytes_per_month": 0.0}
            continue
        if sample is None:
            sample = _series_sample(result, last_out)
        bpp = float(encoding.bytes_per_point(sample, enc)) if len(sample) else 0.0
        out[node.id] = {
            "type": node.type, "encoding": enc, "bytes_per_point": round(bpp, 2),
            "bytes_per_month": dpm * MINUTES_PER_MONTH * bpp,
        }
    return out


def _otlp_bytes(result: EvaluationResult, dpm: float, last_out: pd.DataFrame | None) -> dict[str, Any]:
    sample = _series_sample(result, last_out)
    bpp = float(encoding.bytes_per_point(sample, "otlp")) if len(sample) else 0.0
    return {"type": "otlphttp", "encoding": "otlp", "bytes_per_point": round(bpp, 2),
            "bytes_per_month": dpm * MINUTES_PER_MONTH * bpp}


def _series_sample(result: EvaluationResult, last_out: pd.DataFrame | None = None) -> pd.DataFrame:
    """Last-scrape series of an evenly spaced sample of resources (bounded cost)."""
    df = last_out if last_out is not None else _last(result.output.df, result.input.n_scrapes)
    per_row = series_per_row(df, result.ctx.enabled_metrics)
    total = int(per_row.sum())
    if total > BYTE_SAMPLE_SERIES:
        step = math.ceil(total / BYTE_SAMPLE_SERIES)
        df = df.iloc[::step]
    return expand(ResourceFrame(df), result.ctx.enabled_metrics)


def scrapes_per_host(frame: ResourceFrame) -> pd.Series:
    """Scrapes each host saw, indexed by host name (scrape indices are aligned at the end,
    ``core.catalog.frame.align_scrapes``, so a host's count is S − its first index)."""
    df = frame.df
    if not len(df):
        return pd.Series([], dtype=np.int64)
    host = df["host_name"]
    first = np.full(len(host.cat.categories), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, host.cat.codes.to_numpy(), df["scrape"].to_numpy(dtype=np.int64))
    present = first < np.iinfo(np.int64).max
    return pd.Series(frame.n_scrapes - first[present], index=host.cat.categories[present].astype(str))


def scrape_report(counts: pd.Series, n_scrapes: int) -> dict[str, Any]:
    """Compact per-host scrape counts: min/max, hosts per count, and every host below the max."""
    fewer = counts[counts.to_numpy() < n_scrapes].sort_index()
    by_count = counts.value_counts().sort_index()
    return {
        "scrapes_per_host": {
            "min": int(counts.min()) if len(counts) else 0,
            "max": int(n_scrapes),
            "hosts_by_scrapes": {str(int(k)): int(v) for k, v in by_count.items()},
        },
        # Every host not listed here saw ``scrapes`` scrapes.
        "hosts_with_fewer_scrapes": {str(h): int(k) for h, k in fewer.items()},
    }


def _fewer_scrapes_warning(counts: pd.Series, n_scrapes: int, utilisation_enabled: bool) -> str | None:
    fewer = counts[counts.to_numpy() < n_scrapes].sort_index()
    if fewer.empty:
        return None
    names = ", ".join(f"{h} ({k})" for h, k in fewer.head(5).items())
    more = f" and {len(fewer) - 5} more" if len(fewer) > 5 else ""
    text = (f"{len(fewer)} of {len(counts)} host(s) saw fewer than {n_scrapes} scrapes: {names}{more}; "
            "each is evaluated on its own last scrape")
    single = int((fewer.to_numpy() == 1).sum())
    if single and utilisation_enabled:
        text += (f"; {single} host(s) scraped once have no CPU utilisation points yet, so cpu thresholds "
                 "keep none of their processes (memory thresholds and critical rules still apply)")
    return text


def k_report(result: EvaluationResult) -> dict[str, Any]:
    out = {}
    for n in result.nodes:
        if result.compiled.node(n.node_id).node_type.tunable:
            out[n.node_id] = {
                "type": n.type, "target_k": n.details.get("target_k"), "achieved_k": n.details.get("achieved_k"),
                "thresholds": n.details.get("thresholds"), "learned_names": n.details.get("learned_names"),
            }
    return out


def learned_report(result: EvaluationResult) -> dict[str, Any]:
    """Per learning node (intelligent): what it keeps and why (``learned`` minus bookkeeping)."""
    out: dict[str, Any] = {}
    for n in result.compiled.tunable():
        if n.node_type.tuning != "learned_names":
            continue
        learned = n.params.get("learned") or {}
        out[n.id] = {key: learned.get(key) for key in ("mode", "names", "hosts", "explanations", "note", "model",
                                                       "history", "source", "computed_at") if key in learned}
    return out


def budget_report(result: EvaluationResult, inp_last: pd.DataFrame, out_last: pd.DataFrame) -> dict[str, Any]:
    """Per series-budget node (adaptive): each host's budget vs the series it exports."""
    out: dict[str, Any] = {}
    nodes = [n for n in result.compiled.tunable() if n.node_type.tuning == "budget_thresholds"]
    if not nodes:
        return out
    achieved = pd.Series(series_per_row(out_last, result.ctx.enabled_metrics).astype(float)).groupby(
        out_last["host_name"].astype(str).to_numpy()).sum()
    # What process-baseline-v1 would export per host: the base of the relative budget.
    baseline = pd.Series(series_per_row(inp_last, DEFAULT_METRICS).astype(float)).groupby(
        inp_last["host_name"].astype(str).to_numpy()).sum()
    for n in nodes:
        p = n.node_type.with_defaults(dict(n.params))
        budgets = host_budgets(inp_last, float(p["budget_ratio"]), int(p["series_budget_per_host"]))
        hosts = {}
        tuned = ((n.params.get("computed") or {}).get("hosts") or {})
        for h, b in budgets.items():
            a = float(achieved.get(h, 0.0))
            hosts[h] = {"baseline_series": float(baseline.get(h, 0.0)), "budget": round(float(b), 3), "achieved": a,
                        "deviation_pct": round(100.0 * (a / b - 1.0), 3) if b > 0 else None}
            limit = tuned[h].get("limit") if isinstance(tuned.get(h), dict) else None
            if limit:
                hosts[h]["limit"] = limit
        devs = [abs(v["deviation_pct"]) for v in hosts.values() if v["deviation_pct"] is not None]
        out[n.id] = {"budget_ratio": float(p["budget_ratio"]),
                     "series_budget_per_host": int(p["series_budget_per_host"]) or None,
                     "worst_deviation_pct": max(devs) if devs else None, "hosts": hosts}
    return out


def estimate(
    pipeline: Pipeline,
    snapshot: pd.DataFrame | ResourceFrame,
    *,
    policy: CriticalPolicy | None = None,
    source: str = "snapshot",
    with_cost: bool = True,
    cards: list[Any] | None = None,
) -> EstimateResult:
    """Evaluate ``pipeline`` on ``snapshot`` and report what it keeps, sends and costs.

    Tunable nodes without computed thresholds / learned names are tuned on this snapshot
    first (what rendering after an estimate emits); ``report["tuned"]`` says so.
    """
    frame = snapshot if isinstance(snapshot, ResourceFrame) else from_snapshot(snapshot)
    if policy is not None:
        # The pipeline carries the policy, so what is rendered afterwards classifies alike.
        pipeline = copy.deepcopy(pipeline)
        pipeline.critical_policy = [r.to_dict() for r in policy.rules]
    compiled = compile_for_engine(pipeline)
    policy = policy or compiled.policy
    tuned = needs_tuning(compiled)
    if tuned:
        pipeline = tune(compiled, frame, policy=policy, source=source)
        compiled = compile_for_engine(pipeline)
    result = evaluate(compiled, frame, policy=policy)
    n = frame.n_scrapes
    if n < 2 and "process.cpu.utilization" in result.ctx.enabled_metrics:
        result.ctx.warn("the snapshot has one scrape: no CPU utilisation points exist yet, so cpu "
                        "thresholds match nothing (take two scrapes of the same processes)")
    scrape_counts = scrapes_per_host(frame)
    fewer = _fewer_scrapes_warning(scrape_counts, n, "process.cpu.utilization" in result.ctx.enabled_metrics)
    if fewer:
        result.ctx.warn(fewer)
    multi_scrape_hosts = None if fewer is None else list(scrape_counts.index[scrape_counts.to_numpy() >= 2])
    inp_last = _last(frame.df, n)
    out_last = _last(result.output.df, n)
    n_hosts = len(frame.df["host_name"].cat.categories)
    series_in_rows = series_per_row(inp_last, DEFAULT_METRICS)
    series_out_rows = series_per_row(out_last, result.ctx.enabled_metrics)
    series_in = int(series_in_rows.sum())
    series_out = int(series_out_rows.sum())
    baseline_interval = duration_or_none(get_node_type("hostmetrics").defaults()["collection_interval"]) or 60.0
    dpm_in = series_in * 60.0 / baseline_interval
    dpm_out = series_out * 60.0 / result.ctx.export_interval_s
    hosts_present = np.bincount(inp_last["host_name"].cat.codes.to_numpy(), minlength=n_hosts) > 0
    report: dict[str, Any] = {
        "pipeline": pipeline.name,
        "source": source,
        "tuned": tuned,
        "snapshot": {
            "hosts": int(hosts_present.sum()), "processes": len(inp_last), "scrapes": n, "rows": len(frame.df),
            **scrape_report(scrape_counts, n),
        },
        "series_in": series_in,
        "series_scraped": int(series_per_row(result.received.df, result.ctx.enabled_metrics)[
            result.received.df["scrape"].to_numpy() == n - 1].sum()),
        "series_out": series_out,
        "reduction_pct": round(100.0 * (1 - series_out / series_in), 4) if series_in else 0.0,
        "enabled_metrics": sorted(result.ctx.enabled_metrics),
        "collection_interval_s": result.ctx.collection_interval_s,
        "export_interval_s": result.ctx.export_interval_s,
        "dpm_in": dpm_in,
        "dpm_out": dpm_out,
        "critical": critical_coverage(result, policy, inp_last, out_last),
        "host_totals": host_totals(result, inp_last, out_last),
        "per_host": {
            "series_in": _stats(_per_host(inp_last, series_in_rows.astype(float), n_hosts)[hosts_present]),
            "series_out": _stats(_per_host(out_last, series_out_rows.astype(float), n_hosts)[hosts_present]),
        },
        "churn": {"in": churn(frame, DEFAULT_METRICS, multi_scrape_hosts),
                  "out": churn(result.output, result.ctx.enabled_metrics, multi_scrape_hosts)},
        "k": k_report(result),
        "budget": budget_report(result, inp_last, out_last),
        "learned": learned_report(result),
        "top_contributors": {
            "before": top_contributors(inp_last, DEFAULT_METRICS),
            "after": top_contributors(out_last, result.ctx.enabled_metrics),
        },
        "nodes": [r.to_dict() for r in result.nodes],
        "warnings": list(result.ctx.warnings),
        "evaluation_seconds": round(result.seconds, 4),
    }
    exporters = exporter_bytes(result, dpm_out, out_last)
    report["exporters"] = exporters
    if with_cost:
        priced = dict(exporters)
        if not any(e["type"] == "otlphttp" for e in exporters.values()) and exporters:
            # New Relic bills OTLP bytes: price what this pipeline's output would weigh as
            # OTLP even when it exports elsewhere, rather than borrowing another encoding's size.
            priced["(otlp for pricing)"] = _otlp_bytes(result, dpm_out, out_last)
        report["cost"] = _cost(report, priced, cards)
    report["warnings"] = list(result.ctx.warnings)
    report["tuned_params"] = {node.id: node.params.get(node.node_type.tuned_param) or None
                              for node in compiled.tunable()}
    return EstimateResult(report=report, evaluation=result, pipeline=pipeline)


def _cost(report: dict[str, Any], exporters: dict[str, Any], cards: list[Any] | None = None) -> Any:
    """$/month per price card for series/DPM/bytes in vs out (``core.cost.project``)."""
    bytes_month = {e["type"]: e["bytes_per_month"] for e in exporters.values() if e.get("bytes_per_month")}
    return cost.project(
        series_out=report["series_out"], series_in=report["series_in"], dpm_out=report["dpm_out"],
        dpm_in=report["dpm_in"], hosts=report["snapshot"]["hosts"], bytes_per_month=bytes_month, cards=cards,
    )
