"""``phoenix snapshot add|list|retrain``: the stored history intelligent pipelines learn from.

``add FILE [--scope S]`` validates a process snapshot (CSV or Parquet, the columns of
docs/pipeline-semantics.md) and stores it; ``list`` shows what a scope holds; ``retrain NAME``
learns a saved pipeline's intelligent nodes again from the scope's snapshots and saves a new
version only when what they keep changes (the scheduler does the same on a schedule).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from core.commands import common
from core.domain.errors import ValidationError
from core.engine.snapshot import DEFAULT_MAX_BYTES
from core.services.requests import AddSnapshot, RetrainPipeline


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("snapshot", help="store process snapshots and retrain intelligent pipelines from them")
    ssub = p.add_subparsers(dest="snapshot_command", metavar="ACTION")
    ssub.required = True

    a = ssub.add_parser("add", help="validate and store a process snapshot in a history scope")
    a.add_argument("file", metavar="FILE", help="process snapshot (CSV or Parquet)")
    a.add_argument("--scope", default="default", help="which history (a fleet, a cluster); default 'default'")
    common.add_identity(a)
    a.set_defaults(handler=_add)

    ls = ssub.add_parser("list", help="the stored snapshots, newest first")
    ls.add_argument("--scope", default=None)
    ls.add_argument("--json", action="store_true")
    common.add_identity(ls)
    ls.set_defaults(handler=_list)

    r = ssub.add_parser("retrain", help="learn a saved intelligent pipeline again from a scope's snapshots")
    r.add_argument("pipeline", metavar="NAME")
    r.add_argument("--scope", default="default")
    r.add_argument("--json", action="store_true")
    common.add_identity(r)
    r.set_defaults(handler=_retrain)


def _add(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise ValidationError(f"snapshot file {args.file} does not exist")
    if path.stat().st_size > DEFAULT_MAX_BYTES:
        raise ValidationError(f"snapshot file {args.file} is larger than {DEFAULT_MAX_BYTES:,} bytes")
    with common.acting(args) as (services, actor):
        rec = services.learning.add_snapshot(actor, AddSnapshot.of(scope=args.scope, source=path.name),
                                             path.read_bytes())
    print(f"stored snapshot {rec.id} in scope {rec.scope}: {rec.hosts} hosts, {rec.rows:,} rows, "
          f"{rec.scrapes} scrapes per host, taken {rec.taken_at:%Y-%m-%d %H:%M:%S} UTC ({rec.size_bytes:,} bytes)")
    return 0


def _list(args: argparse.Namespace) -> int:
    with common.acting(args) as (services, actor):
        recs = services.learning.snapshots(actor, args.scope)
    rows = [{"id": r.id, "scope": r.scope, "taken_at": r.taken_at.isoformat(), "hosts": r.hosts, "rows": r.rows,
             "scrapes": r.scrapes, "source": r.source, "added_by": r.added_by} for r in recs]
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("no snapshots stored" + (f" in scope {args.scope}" if args.scope else ""))
    else:
        for r in rows:
            print(f"{r['id']:>5}  {r['scope']:<12} {r['taken_at'][:19]}  {r['hosts']} hosts  {r['rows']:,} rows  "
                  f"{r['scrapes']} scrapes  {r['source']}  by {r['added_by']}")
    return 0


def _retrain(args: argparse.Namespace) -> int:
    with common.acting(args) as (services, actor):
        result = services.learning.retrain(actor, RetrainPipeline.of(pipeline=args.pipeline, scope=args.scope))
    if args.json:
        print(json.dumps({"pipeline": result.pipeline, "changed": result.changed, "version": result.version,
                          "snapshots": result.snapshots, "added": result.added, "removed": result.removed,
                          "explanations": result.explanations}, indent=2, default=str))
        return 0
    what = f"saved version {result.version}" if result.changed else f"unchanged, version {result.version} stays"
    print(f"{result.pipeline}: learned from {result.snapshots} snapshot(s): {what}")
    for node, names in result.added.items():
        print(f"  {node}: now kept: {', '.join(names)}")
    for node, names in result.removed.items():
        print(f"  {node}: no longer kept: {', '.join(names)}")
    for node, expl in result.explanations.items():
        for e in expl:
            where = "every host" if e.get("host") == "*" else e.get("host")
            print(f"  {node}: {e.get('name')} on {where}: {'; '.join(e.get('reasons') or [])}")
    return 0
