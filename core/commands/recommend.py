"""``phoenix recommend``: a pipeline that keeps the processes your rules and dashboards query."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from core.domain.errors import ValidationError


def register(subparsers: Any) -> None:
    from core.commands.common import add_identity

    p = subparsers.add_parser(
        "recommend", help="recommend a pipeline from the PromQL of alert rules and dashboards",
        description="Find the process metrics and processes that Prometheus rules and Grafana dashboards query, "
                    "and propose a pipeline that keeps those processes individual and rolls up the rest "
                    "(docs/recommend.md).",
    )
    p.add_argument("--snapshot", required=True, metavar="FILE.csv", help="process snapshot (columns: docs/pipeline-semantics.md)")
    p.add_argument("--rules", action="append", default=[], metavar="FILE",
                   help="Prometheus alert/recording rule file (YAML groups); repeatable")
    p.add_argument("--dashboards", metavar="DIR", help="directory of Grafana dashboard JSON files (searched recursively)")
    p.add_argument("--prometheus", metavar="URL", help="read the rules Prometheus evaluates (GET URL/api/v1/rules)")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.add_argument("--pipeline-out", metavar="OUT.yaml", help="write the recommended pipeline (YAML) to this file")
    add_identity(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from core.commands.common import acting
    from core.engine.snapshot import load_snapshot
    from core.services.requests import Recommend, UsageFile
    from core.usage.sources import read_dashboard_dir, read_files

    if not (args.rules or args.dashboards or args.prometheus):
        raise ValidationError("give at least one of --rules FILE, --dashboards DIR, --prometheus URL")
    if not Path(args.snapshot).is_file():
        raise ValidationError(f"snapshot file {args.snapshot} does not exist")
    rule_files, problems = read_files(args.rules, "rule file")
    dashboards: list[tuple[str, bytes]] = []
    if args.dashboards:
        dashboards, more = read_dashboard_dir(args.dashboards)
        problems += more
    request = Recommend.of(
        rule_files=[UsageFile(name=n, text=_text(raw)) for n, raw in rule_files],
        dashboards=[UsageFile(name=n, text=_text(raw)) for n, raw in dashboards],
        prometheus_url=args.prometheus, problems=problems, source=Path(args.snapshot).name,
    )
    snapshot = load_snapshot(args.snapshot)
    with acting(args) as (services, actor):
        report = services.recommendations.recommend(actor, request, snapshot)
    if args.pipeline_out:
        import yaml

        from core.outputs import output_file, replacing

        out = output_file(args.pipeline_out, flag="--pipeline-out")
        with replacing(out, flag="--pipeline-out") as tmp:
            Path(tmp).write_text(yaml.safe_dump(report["pipeline"], sort_keys=False))
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(summary(report))
    return 0


def _text(raw: bytes) -> str:
    # undecodable bytes stay visible as U+FFFD; the document reader then names the file
    return raw.decode("utf-8", errors="replace")


def summary(r: dict[str, Any]) -> str:
    e, c = r["estimate"], r["counts"]
    lines = [
        f"pipeline     {r['pipeline']['name']}: {r['pipeline']['description']}",
        f"queries      {c['kept']} kept working, {c['not kept']} not kept, {c['error']} unreadable, "
        f"{c['ignored']} on other metrics",
        f"processes    {r['processes']['referenced']} referenced (last scrape), "
        f"{len(r['processes']['keep_rules'])} keep rule(s)",
        f"labels       {', '.join(r['labels']) or '—'}",
        f"series       in {e['series_in']:,}  out {e['series_out']:,}  reduction {e['reduction_pct']:.1f}%",
    ]
    crit = e.get("critical") or {}
    if crit:
        lines.append(f"critical     {crit.get('covered')}/{crit.get('critical_processes')} processes fully visible")
    for q in r["queries"]:
        if q["status"] != "ignored":
            lines.append(f"{q['status']:<12} {q['origin']}: {q['reason']}")
    for p in r["problems"]:
        lines.append(f"problem      {p}")
    return "\n".join(lines) + "\n"
