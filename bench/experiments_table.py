"""Experiments table benchmark: the store's filter, sort and offset paging at 10,000 experiments.

    .venv/bin/python bench/experiments_table.py [--experiments 10000] [--runs 15] [--database-url URL] [--json]

The table (``ExperimentService.table``, the Experiments page and ``GET /api/v1/experiments?sort=…``)
pages by offset, sorts on any column, and two of its columns (reduction, verdict) are read out of
the ``result`` JSON, which no index covers. This measures the cases that could degrade: the first
page and a deep page for each sort, and the filters. Seeds a fresh SQLite database with
``phoenix demo seed`` unless ``--database-url`` points at one already seeded (e.g. PostgreSQL).
Target: median ≤ 100 ms per query. Not a unit test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TARGET_MS = 100.0
PAGE_SIZE = 25


def cases(n: int, owner: str, pipeline: str) -> list[tuple[str, dict[str, object]]]:
    deep = max(0, n // PAGE_SIZE // 2)  # the middle of the table: half the rows skipped
    out: list[tuple[str, dict[str, object]]] = []
    for sort in ("created", "reduction", "verdict", "name", "pipelines"):
        out.append((f"sort {sort}, page 1", {"sort": sort}))
        out.append((f"sort {sort}, page {deep + 1}", {"sort": sort, "page": deep}))
    out += [
        ("state Completed, page 1", {"states": ["Completed"]}),
        ("verdict PROMOTE, page 1", {"verdict": "PROMOTE"}),
        (f"owner {owner}, page 1", {"owner": owner}),
        (f"pipeline {pipeline}, by reduction", {"pipeline": pipeline, "sort": "reduction"}),
    ]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiments", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--database-url", help="an already seeded database (skips seeding)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    data = Path(tempfile.mkdtemp(prefix="phoenix-bench-table-"))
    url = args.database_url or f"sqlite:///{data}/phoenix.db"
    os.environ.update({"PHOENIX_DATA_DIR": str(data), "PHOENIX_DATABASE_URL": url,
                       "PHOENIX_RUNTIME": "memory", "PHOENIX_EMBEDDED_SCHEDULER": "false"})
    from core.bootstrap import bootstrap
    from core.commands.demo import seed
    from core.domain.accounts import SYSTEM_SCHEDULER
    from core.services.requests import ExperimentTable

    svc = bootstrap()
    seed_s = None
    if not args.database_url:
        t = time.perf_counter()
        seed(svc, args.experiments, 50, 50)
        seed_s = time.perf_counter() - t
    counts = svc.experiments.counts_by_state(SYSTEM_SCHEDULER)
    total = sum(counts.values())
    any_exp = svc.experiments.table(SYSTEM_SCHEDULER, ExperimentTable.of(page_size=1)).items[0]
    owner, pipeline = any_exp.owner, any_exp.candidate.split("@")[0]

    results = []
    for label, params in cases(total, owner, pipeline):
        request = ExperimentTable.of(page_size=PAGE_SIZE, **params)
        rows = svc.experiments.table(SYSTEM_SCHEDULER, request)  # warm: statement cache, pages in memory
        times = []
        for _ in range(args.runs):
            t = time.perf_counter()
            svc.experiments.table(SYSTEM_SCHEDULER, request)
            times.append((time.perf_counter() - t) * 1000)
        med = statistics.median(times)
        results.append({"query": label, "rows": len(rows.items), "median_ms": round(med, 2),
                        "p90_ms": round(sorted(times)[max(0, int(0.9 * len(times)) - 1)], 2), "ok": med <= TARGET_MS})
    svc.close()
    dialect = url.split(":", 1)[0].split("+", 1)[0]
    out = {"database": dialect, "experiments": total, "by_state": counts,
           "seed_seconds": None if seed_s is None else round(seed_s, 1), "runs": args.runs,
           "page_size": PAGE_SIZE, "target_median_ms": TARGET_MS, "queries": results}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"{total:,} experiments on {dialect}; {args.runs} runs per query; page size {PAGE_SIZE}")
        print(f"{'query':40} {'rows':>5} {'median ms':>10} {'p90 ms':>8}")
        for r in results:
            print(f"{r['query']:40} {r['rows']:>5} {r['median_ms']:>10} {r['p90_ms']:>8} {'ok' if r['ok'] else 'SLOW'}")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
