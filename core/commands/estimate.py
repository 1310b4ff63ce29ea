"""``phoenix estimate``: what a pipeline keeps, sends and costs on a process snapshot."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from core.domain.budget import from_estimate, text_table
from core.domain.errors import ValidationError

SHOWN_HOSTS = 10  # hosts named in the text summary's scrapes line (JSON lists them all)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "estimate", help="estimate series, data points, bytes, cost and critical coverage of a pipeline",
        description="Run a pipeline over a process snapshot (CSV) and report what it would export.",
    )
    p.add_argument("--pipeline", required=True, metavar="NAME_OR_FILE",
                   help="built-in template name, saved pipeline NAME[@VERSION], or a pipeline JSON/YAML file")
    p.add_argument("--snapshot", required=True, metavar="FILE.csv", help="process snapshot (columns: docs/pipeline-semantics.md)")
    p.add_argument("--critical-file", metavar="F.yaml", help="critical policy: rules: [{match, pattern, priority}] "
                   "(default: the pipeline's own, else the default saved in Settings)")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.add_argument("--series-out", metavar="OUT.csv",
                   help="write the exported series of the last scrape: host_name,metric,attributes,value")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from core.bootstrap import open_configuration
    from core.commands.pipeline import load_pipeline_ref
    from core.domain.critical import load_policy_file
    from core.engine.snapshot import load_snapshot
    from core.outputs import output_file, replacing
    from core.services.estimate import Estimates, estimate_pipeline
    from core.settings import Settings

    series_out = output_file(args.series_out, flag="--series-out") if args.series_out is not None else None
    pipeline = load_pipeline_ref(args.pipeline, args)
    policy = load_policy_file(args.critical_file) if args.critical_file else None
    if not Path(args.snapshot).is_file():
        raise ValidationError(f"snapshot file {args.snapshot} does not exist")
    started = time.perf_counter()
    snapshot = load_snapshot(args.snapshot)
    loaded = time.perf_counter()
    settings = Settings.from_env()
    # Price cards and the default critical policy: what Settings holds (env overrides included).
    with open_configuration(settings.database_url) as configuration:
        if series_out is not None:  # needs the evaluation itself, which is never cached
            result = estimate_pipeline(pipeline, snapshot, configuration, policy=policy,
                                       source=Path(args.snapshot).name)
            report = result.report
        else:  # through the cache: another process's estimate of the same inputs (with PHOENIX_REDIS_URL)
            estimates = Estimates.for_redis(configuration, settings.redis_url)
            try:
                report = estimates.report(pipeline, snapshot, policy=policy, source=Path(args.snapshot).name)
            finally:
                estimates.close()
    report["timings"] = {"load_snapshot_seconds": round(loaded - started, 3),
                         "estimate_seconds": round(time.perf_counter() - loaded, 3)}
    if series_out is not None:
        frame = result.series_out_frame()
        with replacing(series_out, flag="--series-out") as tmp:
            frame.to_csv(tmp, index=False)
        report["series_out_file"] = {"path": args.series_out, "rows": len(frame)}
    if args.json:
        json.dump(_clean(report), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(summary(report))
    return 0


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf become null (json.dump would write invalid JSON)."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        return _clean(value.item())
    return value


def summary(r: dict[str, Any]) -> str:
    c = r["critical"]
    lines = [
        f"pipeline {r['pipeline']} on {r['source']}: {r['snapshot']['hosts']} hosts, "
        f"{r['snapshot']['processes']} processes (last of {r['snapshot']['scrapes']} scrapes)"
        + (" — thresholds/names tuned on this snapshot" if r["tuned"] else ""),
        _scrapes_line(r["snapshot"]),
        f"series       in {r['series_in']:,}  out {r['series_out']:,}  reduction {r['reduction_pct']:.1f}%",
        f"data points  in {r['dpm_in']:,.0f}/min  out {r['dpm_out']:,.0f}/min "
        f"(export every {r['export_interval_s']:g}s)",
        f"critical     {c['covered']}/{c['critical_processes']} processes fully visible "
        f"({c['coverage_pct']:.2f}%)",
        f"per host     out p50 {r['per_host']['series_out']['p50']:,.0f}  max {r['per_host']['series_out']['max']:,.0f}",
        (f"churn        in {r['churn']['in']}  out {r['churn']['out']}" if r["churn"]["in"] is not None
         else "churn        n/a (the snapshot has one scrape)"),
    ]
    for name, t in r["host_totals"].items():
        lines.append(f"host total   {name}: out/in {t['out_over_in']:.4f} "
                     f"(worst host off by {t['max_host_deviation_pct']:.3f}%)")
    for node_id, e in r["exporters"].items():
        if e.get("bytes_per_month") is not None:
            lines.append(f"exporter     {node_id} ({e['type']}): {e['bytes_per_point']} B/point, "
                         f"{e['bytes_per_month'] / 1e9:,.2f} GB/month")
    for node_id, k in r["k"].items():
        got = k["achieved_k"]
        got = (f"min {got['min']}, median {got['median']}, max {got['max']} per host"
               if isinstance(got, dict) else got)
        lines.append(f"{k['type']:<12} {node_id}: target K {k['target_k']}, achieved {got}")
    lines += learned_lines(r.get("learned") or {})
    budget = text_table(from_estimate(r.get("budget")))
    if budget:
        lines.append("budget       series per host, achieved vs budget:")
        lines += [f"  {line}" for line in budget]
    cost = r.get("cost")
    if isinstance(cost, dict):
        lines.append(f"cost         {cost.get('currency', 'USD')} per {cost.get('period', 'month')}, "
                     f"{cost.get('hosts', '?')} host(s); before → after")
        for card in cost.get("cards", []):
            lines.append(f"  {card['vendor'] + ' ' + card['plan']:<44} {_money(card)}")
    for w in r["warnings"]:
        lines.append(f"warning      {w}")
    if "series_out_file" in r:
        lines.append(f"wrote {r['series_out_file']['rows']:,} series to {r['series_out_file']['path']}")
    return "\n".join(lines) + "\n"


def _scrapes_line(snap: dict[str, Any]) -> str:
    """How many scrapes each host saw: everyone the same, or the hosts that saw fewer."""
    fewer = snap.get("hosts_with_fewer_scrapes") or {}
    if not fewer:
        return f"scrapes      every host saw {snap['scrapes']}"
    shown = ", ".join(f"{h} ({k})" for h, k in list(fewer.items())[:SHOWN_HOSTS])
    more = f" … and {len(fewer) - SHOWN_HOSTS} more" if len(fewer) > SHOWN_HOSTS else ""
    full = snap["hosts"] - len(fewer)
    return (f"scrapes      {full} host(s) saw {snap['scrapes']}; {len(fewer)} saw fewer, each evaluated on its "
            f"own last scrape: {shown}{more}")


def _money(card: dict[str, Any]) -> str:
    if card.get("after_usd") is None:
        return card.get("note") or "not computed"
    text = (f"${card['before_usd']:>12,.2f} → ${card['after_usd']:>12,.2f}"
            f"  saves ${card['saving_usd']:,.2f} ({card['saving_pct']:.1f}%)")
    return f"{text}  [{card['note']}]" if card.get("note") else text


def learned_lines(learned: dict[str, Any], limit: int = 20) -> list[str]:
    """Why each learned process is kept (intelligent), at most ``limit`` lines per node."""
    lines = []
    for node_id, info in learned.items():
        mode = info.get("mode") or "snapshot"
        lines.append(f"learned      {node_id}: from {'history' if mode == 'history' else 'one snapshot'} "
                     f"({info.get('source', '?')})" + (f"; {info['note']}" if info.get("note") else ""))
        explanations = info.get("explanations") or []
        for e in explanations[:limit]:
            where = "every host" if e.get("host") == "*" else e.get("host")
            lines.append(f"  {e.get('name')} on {where}: {'; '.join(e.get('reasons') or [])}")
        if len(explanations) > limit:
            lines.append(f"  … and {len(explanations) - limit} more (--json shows all)")
    return lines
